"""The device-resident data path and the skorch net the estimators drive."""

import warnings

import numpy as np
import scipy.sparse as sp
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback, EpochTimer

from .nn import set_temperature


class ResidentData(torch.utils.data.Dataset):
    """Features and encoded labels converted once and held on the training device.

    Dense ``X`` becomes one float32 (``dtype=torch.float64``: float64) tensor on ``device``
    (no copy when it already is a C-contiguous array of that type and the device is the CPU). Sparse ``X`` stays a CSR matrix
    on the host and only the rows of a batch are densified and moved.
    """

    def __init__(self, X, y, device, dtype=None):
        self.device = torch.device(device)
        numpy_dtype = np.float64 if dtype == torch.float64 else np.float32
        if sp.issparse(X):
            self.X_sparse = sp.csr_matrix(X, dtype=numpy_dtype)
            self.X = None
        else:
            self.X_sparse = None
            with warnings.catch_warnings():
                # read-only input (e.g. joblib memmaps): the tensor is never written to
                warnings.filterwarnings("ignore", message=".*not writable.*")
                X = torch.as_tensor(np.ascontiguousarray(X, dtype=numpy_dtype))
            self.X = X.to(self.device)
        self.y = None if y is None else torch.as_tensor(y, dtype=torch.long).to(self.device)

    def __len__(self):
        return self.X_sparse.shape[0] if self.X is None else self.X.shape[0]

    def __getitem__(self, index):
        return self.rows(slice(index, index + 1)), self.y[index]

    def rows(self, index):
        """Rows ``index`` (a slice or an index tensor) of X as a dense tensor on the device."""
        if self.X is not None:
            return self.X[index]
        if isinstance(index, torch.Tensor):
            index = index.cpu().numpy()
        return torch.from_numpy(self.X_sparse[index].toarray()).to(self.device)


class DeviceBatchIterator:
    """Mini-batches sliced from a :class:`ResidentData`; no DataLoader, no collation.

    Each pass visits every sample exactly once. A final batch of a single sample is merged
    into the previous one so that batch normalisation always sees at least two samples.
    """

    def __init__(self, data, batch_size, *, shuffle=False, generator=None):
        self.data = data
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator

    def _bounds(self):
        n, size = len(self.data), self.batch_size
        starts = list(range(0, n, size))
        if len(starts) > 1 and n - starts[-1] == 1:
            starts.pop()
        return [(s, starts[i + 1] if i + 1 < len(starts) else n) for i, s in enumerate(starts)]

    def __len__(self):
        return len(self._bounds())

    def __iter__(self):
        order = None
        if self.shuffle:
            order = torch.randperm(len(self.data), generator=self.generator)
            order = order.to(self.data.device)
        for start, stop in self._bounds():
            index = slice(start, stop) if order is None else order[start:stop]
            y = None if self.data.y is None else self.data.y[index]
            yield self.data.rows(index), y


class EpochProgressBar(Callback):
    """A tqdm bar over epochs showing the training loss (only built when verbose > 0)."""

    def __init__(self, desc=None):
        self.desc = desc

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        from tqdm.auto import tqdm

        total = getattr(net, "epochs_planned_", net.max_epochs)
        self.pbar_ = tqdm(total=total, desc=self.desc, unit="epoch", leave=False)

    def on_epoch_end(self, net, **kwargs):
        self.pbar_.set_postfix(loss=f"{net.history[-1, 'train_loss']:.4f}", refresh=False)
        self.pbar_.update(1)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        self.pbar_.close()

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("pbar_", None)
        return state


class ResidentNet(NeuralNetClassifier):
    """``NeuralNetClassifier`` fed by :class:`DeviceBatchIterator`, with a lean epoch.

    skorch still runs the loop, the optimiser, the epoch callbacks and the history. Two
    things change: batches come from the device-resident iterator instead of a DataLoader,
    and per-batch bookkeeping moves to the epoch — the loss is summed on the device and
    read once per epoch (one host synchronisation instead of one per batch), and no
    per-batch callback hooks run (the estimators' callbacks are all epoch-level).
    An interrupted epoch (KeyboardInterrupt, which skorch catches) is rolled back: the
    module returns to the state of the last completed epoch and the partial history row
    is dropped.
    ``shuffle_generator`` (a CPU ``torch.Generator``) makes shuffling reproducible without
    touching torch's global random state.
    """

    shuffle_generator = None
    autocast_dtype = None  # e.g. torch.bfloat16: training forward passes under autocast
    compile_forward = False  # train through torch.compile(module_)

    @property
    def _default_callbacks(self):
        return [("epoch_timer", EpochTimer())]

    def get_dataset(self, X, y=None):
        if isinstance(X, ResidentData):
            return X
        return super().get_dataset(X, y)

    def get_iterator(self, dataset, training=False):
        if not isinstance(dataset, ResidentData):  # e.g. net_.predict on plain arrays
            return super().get_iterator(dataset, training=training)
        return DeviceBatchIterator(dataset, self.batch_size, shuffle=training,
                                   generator=self.shuffle_generator)

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        self.interrupted_ = False
        self._last_epoch_state = self._module_state()
        self.epochs_planned_ = fit_params.get("epochs") or self.max_epochs
        super().partial_fit(X, y, classes, **fit_params)
        del self._last_epoch_state
        return self

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt:
            # skorch stops on KeyboardInterrupt (early stopping raises it between epochs).
            # An epoch without a recorded loss was cut short by the user: roll it back
            # here, before skorch's on_train_end lets EarlyStopping restore the best epoch.
            if len(self.history) and "train_loss" not in self.history[-1]:
                self.interrupted_ = True
                self.module_.load_state_dict(self._last_epoch_state)
                self.history.pop()
                warnings.warn(
                    f"Training interrupted by the user after {len(self.history)} complete "
                    f"epoch(s); the model holds the last completed epoch.", UserWarning,
                    stacklevel=2,
                )
            raise

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_compiled", None)  # rebuilt on demand; not picklable
        return state

    def _module_state(self):
        return {k: v.detach().clone() for k, v in self.module_.state_dict().items()}

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if iterator is None:
            return
        self._set_training(training)
        loss_sum = torch.zeros((), device=self.device)
        n_samples = n_batches = 0
        for batch in iterator:
            step = step_fn(batch, **fit_params)
            size = len(batch[1])
            loss_sum += step["loss"].detach() * size
            n_samples += size
            n_batches += 1
        self.history.record(prefix + "_loss", (loss_sum / max(n_samples, 1)).item())
        self.history.record(prefix + "_batch_count", n_batches)
        if training:
            self._last_epoch_state = self._module_state()

    def _training_forward(self):
        if not self.compile_forward:
            return self.module_
        # Held in a dict: skorch refuses torch modules as plain attributes set outside
        # initialize_module, and registering it there would list its parameters twice.
        cache = self.__dict__.setdefault("_compiled", {})
        if cache.get("module") is not self.module_:
            cache.update(module=self.module_, forward=torch.compile(self.module_))
        return cache["forward"]

    def train_step_single(self, batch, **fit_params):
        # The module is put in training mode once per epoch, not once per batch.
        Xi, yi = batch
        with torch.autocast(torch.device(self.device).type,
                            dtype=self.autocast_dtype or torch.bfloat16,
                            enabled=self.autocast_dtype is not None):
            y_pred = self._training_forward()(Xi)
        loss = self.get_loss(y_pred.float(), yi, X=Xi, training=True)
        loss.backward()
        return {"loss": loss, "y_pred": y_pred}


class TemperatureSchedule(Callback):
    """Anneal the surrogate temperature geometrically from ``start`` to ``end`` over epochs.

    Sets every :class:`~sk_weightfree.nn.ScoredMaskLinear` at the start of each epoch.
    """

    def __init__(self, start, end, n_epochs):
        self.start = start
        self.end = end
        self.n_epochs = n_epochs

    def temperature_at(self, epoch):
        """Temperature of 0-based ``epoch``."""
        fraction = min(1.0, epoch / max(1, self.n_epochs - 1))
        return self.start * (self.end / self.start) ** fraction

    def on_epoch_begin(self, net, **kwargs):
        set_temperature(net.module_, self.temperature_at(len(net.history) - 1))
