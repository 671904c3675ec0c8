"""The device-resident data path and the skorch nets the estimators drive."""

import contextlib
import copy
import math
import warnings

import numpy as np
import scipy.sparse as sp
import torch
from skorch import NeuralNetClassifier, NeuralNetRegressor
from skorch.callbacks import Callback, EpochTimer, PrintLog

from .nn import ScoredMask
from .nn._layers import pruned_weight, sample_weighted
from .nn._templates import WEIGHT_LAYERS


def weighted_rows(X, y, sample_weight):
    """``X``, ``y`` and ``sample_weight`` without the samples of weight 0 (as they are when
    every weight is positive or there are none)."""
    if sample_weight is None or (sample_weight > 0).all():
        return X, y, sample_weight
    kept = np.flatnonzero(sample_weight > 0)
    return X[kept], None if y is None else y[kept], sample_weight[kept]


class ResidentData(torch.utils.data.Dataset):
    """Features, targets and sample weights converted once and held on the device.

    Dense ``X`` becomes one float32 (``dtype=torch.float64``: float64) tensor on ``device``
    (no copy when it already is a C-contiguous array of that type and the device is the
    CPU). Sparse ``X`` stays a CSR matrix on the host and only the rows of a batch are
    densified and moved. ``y`` keeps its kind: integer class codes become a long tensor,
    anything else (multilabel indicators, regression targets) float32, as does
    ``sample_weight`` (None for unit weights); float64 with ``dtype=torch.float64``.
    Samples of weight 0 are left out: training on the rest is the same fit as on the data
    without them.
    """

    def __init__(self, X, y, device, dtype=None, sample_weight=None):
        self.device = torch.device(device)
        X, y, sample_weight = weighted_rows(X, y, sample_weight)
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
        real_dtype = torch.float64 if dtype == torch.float64 else torch.float32
        self.y = None if y is None else _target_tensor(y, real_dtype).to(self.device)
        if sample_weight is not None:
            # Scaled to mean 1 over the data: a batch's loss is then mean(w * loss), an
            # unbiased estimate of the weighted mean over the data, and a batch of
            # low-weight samples weighs little (dividing by the batch's own weight sum
            # would give it full weight).
            sample_weight = np.asarray(sample_weight, dtype=np.float64)
            if sample_weight.size and (sample_weight == sample_weight[0]).all():
                sample_weight = None  # equal weights are unit weights: the unweighted path
            else:
                self.weight_mean = float(sample_weight.mean())
                sample_weight = sample_weight / self.weight_mean
        self.w = None if sample_weight is None else torch.as_tensor(
            sample_weight, dtype=real_dtype).to(self.device)

    # The mean of the given weights: ``w * weight_mean`` are the weights as given, whose
    # sums batch statistics count as sample sizes (nn.sample_weighted).
    weight_mean = 1.0

    def __len__(self):
        return self.X_sparse.shape[0] if self.X is None else self.X.shape[0]

    def __getitem__(self, index):
        return self.rows(slice(index, index + 1)), self.targets(slice(index, index + 1))

    def rows(self, index):
        """Rows ``index`` (a slice or an index tensor) of X as a dense tensor on the device."""
        if self.X is not None:
            return _take(self.X, index)
        if isinstance(index, torch.Tensor):
            index = index.cpu().numpy()
        return torch.from_numpy(self.X_sparse[index].toarray()).to(self.device)

    def targets(self, index):
        """``(y, sample_weight)`` of rows ``index``; the weight is None for unit weights."""
        return _take(self.y, index), None if self.w is None else _take(self.w, index)


def _take(tensor, index):
    """Rows ``index`` (a slice or an index tensor) of ``tensor``; index_select for an index
    tensor: 4 µs against advanced indexing's 11 for a 128-row batch."""
    return tensor[index] if isinstance(index, slice) else tensor.index_select(0, index)


def _target_tensor(y, dtype=torch.float32):
    y = np.asarray(y)
    if np.issubdtype(y.dtype, np.integer) and y.ndim == 1:
        return torch.as_tensor(y, dtype=torch.long)
    return torch.as_tensor(np.ascontiguousarray(y), dtype=dtype)


class DeviceBatchIterator:
    """Mini-batches ``(X, (y, w))`` sliced from a :class:`ResidentData`; no DataLoader.

    Each pass visits every sample exactly once. A final batch of a single sample is merged
    into the previous one so that batch normalisation always sees at least two samples.
    Without targets the batches are plain ``X`` tensors.
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
            if self.data.y is None:
                yield self.data.rows(index)
            else:
                yield self.data.rows(index), self.data.targets(index)


def edge_tensors(module):
    """The trained per-edge tensors of a network, the ones ``alpha`` penalises.

    The scores of every {0,1}-masked layer (:class:`~sk_weightfree.nn.ScoredMask`), and the
    weights of every real-weight ``nn.Linear``/``nn.Conv2d`` as the forward pass used them
    (for a layer pruned with ``torch.nn.utils.prune``, ``weight_orig * weight_mask``, so
    that pruned weights get no gradient). Tensors that are not trained (frozen scores) are
    left out; so are biases and every per-unit parameter (batch norms, output maps).
    """
    for layer in module.modules():
        if isinstance(layer, ScoredMask):
            if layer.scores.requires_grad:
                yield layer.scores
        elif isinstance(layer, WEIGHT_LAYERS):
            if pruned_weight(layer).trained.requires_grad:
                yield layer.weight


def print_line(text):
    """The picklable stdout sink of the ``verbose >= 2`` log."""
    print(text, flush=True)


class _PlainPrintLog(PrintLog):
    """``PrintLog`` without colour: skorch colours a value whose ``<key>_best`` mark
    (:class:`BestLoss`) is set, escape codes that a log file would keep."""

    def format_row(self, row, key, color):
        return super().format_row({k: v for k, v in row.items() if not k.endswith("_best")},
                                  key, color)


class EpochLog(Callback):
    """skorch's :class:`~skorch.callbacks.PrintLog` table, one row per epoch, on stdout.

    A wrapper rather than a ``PrintLog`` itself: skorch moves every ``PrintLog`` after the
    other callbacks, where the row of the epoch on which ``EarlyStopping`` ends training
    would never be printed. Put before the stopping rule, this one prints every epoch.
    """

    def __init__(self, sink=print_line):
        self.sink = sink

    def initialize(self):
        self.table_ = _PlainPrintLog(sink=self.sink).initialize()
        return self

    def on_epoch_end(self, net, **kwargs):
        self.table_.on_epoch_end(net, **kwargs)


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


class BestLoss(Callback):
    """Record ``train_loss_best`` (and ``valid_loss_best`` with validation data) each
    epoch, as skorch's default scoring does, for the callbacks that read them (a
    ``Checkpoint`` monitors ``valid_loss_best``): whether the epoch's loss is the lowest
    of the current training call."""

    def on_epoch_end(self, net, **kwargs):
        rows = net.history[getattr(net, "call_start_epoch_", 0):]
        for key in ("train_loss", "valid_loss"):
            if key in rows[-1]:
                earlier = [row[key] for row in rows[:-1] if key in row]
                net.history.record(f"{key}_best", not earlier or rows[-1][key] < min(earlier))


class ScheduledCallback(Callback):
    """Base of the per-epoch schedules: the position within the current training call.

    ``epoch_in_call(net)`` is 0 at the first epoch of a ``fit`` (or of a fine-tuning phase)
    and counts the epochs of that call; ``active(net)`` is False during an estimator's
    ``partial_fit`` (the net's ``scheduled`` parameter is False), where a schedule keeps its
    starting value.
    """

    @staticmethod
    def epoch_in_call(net):
        return len(net.history) - 1 - net.call_start_epoch_

    def active(self, net):
        return getattr(net, "scheduled", True)  # any skorch net: scheduled unless told


class CosineLR(ScheduledCallback):
    """Cosine decay of the learning rate from ``net.lr`` over the epochs of each call.

    Epoch ``e`` of ``T`` uses ``lr * (1 + cos(pi * e / T)) / 2``, as
    ``torch.optim.lr_scheduler.CosineAnnealingLR`` stepped once per epoch; each call to
    ``fit`` (and each pruning fine-tune phase) restarts it.
    """

    def on_epoch_begin(self, net, **kwargs):
        factor = 1.0
        if self.active(net):
            factor = 0.5 * (1.0 + math.cos(math.pi * self.epoch_in_call(net)
                                           / max(1, net.epochs_planned_)))
        for group in net.optimizer_.param_groups:
            group["lr"] = net.lr * factor


class ResidentNetMixin:
    """skorch net fed by :class:`DeviceBatchIterator`, with a lean epoch.

    skorch still runs the loop, the optimiser, the epoch callbacks and the history. What
    changes: batches come from the device-resident iterator instead of a DataLoader; the
    loss is weighted by per-sample weights (see :class:`ResidentData`);
    per-batch bookkeeping moves to the epoch (the loss is summed on the device and read
    once per epoch; skorch's ``on_batch_begin``/``on_batch_end`` hooks still run, with
    skorch's arguments); with ``valid_score_fn`` set the validation pass also records
    ``valid_score``. An interrupted epoch (KeyboardInterrupt, which skorch catches) is
    rolled back: module and optimiser return to the last completed epoch and the partial
    history row is dropped. With ``batch_history=True`` (set when the estimator is given
    ``callbacks``) each batch's loss and size are also recorded in the history's batch rows,
    as skorch records them, for callbacks that read them (one device sync a batch).
    ``shuffle_generator`` (a CPU ``torch.Generator``) makes
    shuffling reproducible without touching torch's global random state;
    ``iterator_train__shuffle=False`` (skorch's own parameter) feeds the training batches in
    data order instead. With ``alpha > 0`` each training batch's loss gets the L2 penalty
    ``0.5 * alpha * sum(t ** 2) / n_batch`` over :func:`edge_tensors` (as
    ``MLPClassifier``'s). ``scheduled=False`` (an estimator's ``partial_fit``) holds the
    :class:`ScheduledCallback` schedules at their starting values.
    """

    # Defaults for nets pickled before these parameters existed.
    shuffle_generator = None
    alpha = 0.0
    autocast_dtype = None
    use_torch_compile = False
    valid_score_fn = None
    batch_history = False
    scheduled = True

    # the names of the net's own callbacks (``_default_callbacks``)
    DEFAULT_CALLBACKS = ("epoch_timer", "best_loss")

    def __init__(self, module, *args, alpha=0.0, shuffle_generator=None, autocast_dtype=None,
                 use_torch_compile=False, valid_score_fn=None, batch_history=False,
                 scheduled=True, **kwargs):
        super().__init__(module, *args, **kwargs)
        self.alpha = alpha  # the L2 penalty of edge_tensors
        self.shuffle_generator = shuffle_generator  # a CPU torch.Generator, or None
        self.autocast_dtype = autocast_dtype  # e.g. torch.bfloat16: forward under autocast
        self.use_torch_compile = use_torch_compile  # train through torch.compile(module_)
        self.valid_score_fn = valid_score_fn  # (outputs, y, w) -> float, set for a fit
        self.batch_history = batch_history  # skorch's per-batch history rows
        self.scheduled = scheduled  # False in partial_fit: ScheduledCallbacks keep still

    @property
    def _default_callbacks(self):
        return list(zip(self.DEFAULT_CALLBACKS, (EpochTimer(), BestLoss())))

    def get_dataset(self, X, y=None):
        if isinstance(X, ResidentData):
            return X
        return super().get_dataset(X, y)

    def get_iterator(self, dataset, training=False):
        if not isinstance(dataset, ResidentData):  # e.g. net_.predict on plain arrays
            return super().get_iterator(dataset, training=training)
        if training:
            self.weight_mean_ = dataset.weight_mean
        shuffle = training and self.get_params_for("iterator_train").get("shuffle", True)
        return DeviceBatchIterator(dataset, self.batch_size, shuffle=shuffle,
                                   generator=self.shuffle_generator)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        if not isinstance(y_true, tuple):  # skorch's own paths (plain arrays)
            y_true = (y_true, None)
        y, w = y_true
        if y_pred.dim() == 3:  # one output per shared weight value: average the loss
            losses = torch.stack([self._per_sample(p, y) for p in y_pred]).mean(dim=0)
        else:
            losses = self._per_sample(y_pred, y)
        loss = losses.mean() if w is None else (losses * w).mean()
        if training and self.alpha:
            # MLPClassifier's scaling: the gradient gains alpha * t / n_batch
            penalty = sum((t ** 2).sum() for t in edge_tensors(self.module_))
            loss = loss + 0.5 * self.alpha * penalty / len(y)
        return loss

    def _per_sample(self, y_pred, y):
        """The criterion (built with ``reduction="none"``) averaged to one value a row."""
        losses = self.criterion_(y_pred, y)
        return losses.flatten(1).mean(dim=1) if losses.dim() > 1 else losses

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        self.interrupted_ = False
        self.call_start_epoch_ = len(self.history)
        self._last_epoch_state = self.snapshot()
        self.epochs_planned_ = fit_params.get("epochs") or self.max_epochs
        super().partial_fit(X, y, classes, **fit_params)
        del self._last_epoch_state
        return self

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt:
            # skorch stops on KeyboardInterrupt, which EarlyStopping also raises between
            # epochs. Anything else is the user: roll back an epoch cut short (no complete
            # history row) here, before skorch's on_train_end lets EarlyStopping restore
            # the best epoch.
            stopper = dict(self.callbacks_).get("stopping")
            if stopper is None or getattr(stopper, "misses_", 0) < stopper.patience:
                self.interrupted_ = True
                row = self.history[-1] if len(self.history) else {}
                if row and ("train_loss" not in row or (
                        self.train_split is not None and "valid_loss" not in row)):
                    self.restore(self._last_epoch_state)
                warnings.warn(
                    f"Training interrupted by the user after "
                    f"{len(self.history) - self.call_start_epoch_} complete epoch(s) of this "
                    f"call; the model holds the last completed epoch.", UserWarning,
                    stacklevel=2,
                )
            raise

    def snapshot(self, into=None):
        """Copies of the module's and optimiser's states and the history length.

        With ``into`` (an earlier snapshot of this net) the copies are written into its
        tensors where the shapes still match: the snapshot taken after every epoch then
        allocates nothing. Fresh copies of a few megabytes at every epoch slowed every
        later training step in the process through glibc's allocator (weight-free epochs
        on 60,000 Fashion-MNIST rows 2.1 s against 1.3 s without them, and a dense epoch
        after them 1.43 s against 0.86 s; ``benchmarks/README.md``, "Speed").
        """
        module = {k: v.detach() for k, v in self.module_.state_dict().items()}
        optimizer = self.optimizer_.state_dict()
        n_epochs = sum("train_loss" in row for row in self.history)
        if into is None:
            return {"module": {k: v.clone() for k, v in module.items()},
                    "optimizer": copy.deepcopy(optimizer), "n_epochs": n_epochs}
        return {"module": _copied_into(into["module"], module),
                "optimizer": _copied_into(into["optimizer"], optimizer), "n_epochs": n_epochs}

    def restore(self, snapshot):
        """Return module, optimiser and history to ``snapshot``."""
        self.module_.load_state_dict(snapshot["module"])
        self.optimizer_.load_state_dict(snapshot["optimizer"])
        while len(self.history) > snapshot["n_epochs"]:
            self.history.pop()

    def __setstate__(self, state):
        # nets pickled before these were parameters (0.2.x) may lack them or hold the
        # attribute compile_forward: as parameters, skorch's set_params must find them
        state = dict(state)
        if "compile_forward" in state:
            state.setdefault("use_torch_compile", state.pop("compile_forward"))
        if "scheduled_" in state:  # the attribute each fit wrote before it was a parameter
            state.setdefault("scheduled", state.pop("scheduled_"))
        for name in ("alpha", "shuffle_generator", "autocast_dtype", "use_torch_compile",
                     "valid_score_fn", "batch_history", "scheduled"):
            state.setdefault(name, getattr(type(self), name))
        super().__setstate__(state)

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_compiled", None)  # rebuilt on demand; not picklable
        state.pop("_predict_cache", None)  # the estimator's float64 copy, rebuilt on demand
        return state

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if iterator is None:
            return
        self._set_training(training)
        # the callbacks that do something at each batch; skorch would call every one
        hooks = {hook: _listeners(self, hook) for hook in ("on_batch_begin", "on_batch_end")}
        losses, sizes = [], []
        scoring = not training and self.valid_score_fn is not None
        outputs, targets = [], []
        for batch in iterator:
            self._notify(hooks, "on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            size = len(batch[1][0])
            losses.append(step["loss"].detach())
            sizes.append(size)
            if scoring:
                outputs.append(step["y_pred"].detach())
                targets.append(batch[1])
            if self.batch_history:
                self.history.record_batch(prefix + "_loss", step["loss"].item())
                self.history.record_batch(prefix + "_batch_size", size)
            self._notify(hooks, "on_batch_end", batch=batch, training=training, **step)
        self.history.record(prefix + "_loss", _mean_loss(losses, sizes))
        self.history.record(prefix + "_batch_count", len(sizes))
        if scoring:
            w = [t[1] for t in targets]
            self.history.record(prefix + "_score", self.valid_score_fn(
                torch.cat(outputs, dim=-2), torch.cat([t[0] for t in targets]),
                None if w[0] is None else torch.cat(w)))
        if training:
            self._last_epoch_state = self.snapshot(into=self.__dict__.get("_last_epoch_state"))

    def _notify(self, listeners, hook, **kwargs):
        """skorch's ``notify`` of ``hook``, calling only ``listeners[hook]`` of the
        callbacks (the others do nothing there)."""
        getattr(self, hook)(self, **kwargs)
        for callback in listeners[hook]:
            getattr(callback, hook)(self, **kwargs)

    def _training_forward(self):
        if not self.use_torch_compile:
            return self.module_
        # Held in a dict: skorch refuses torch modules as plain attributes set outside
        # initialize_module, and registering it there would list its parameters twice.
        cache = self.__dict__.setdefault("_compiled", {})
        if cache.get("module") is not self.module_:
            cache.update(module=self.module_, forward=torch.compile(self.module_))
        return cache["forward"]

    def train_step(self, batch, **fit_params):
        # skorch's step hands the optimiser a closure and notifies every callback of the
        # computed gradients; without a callback that listens (gradient clipping), the
        # same step runs directly: the same arithmetic without skorch's bookkeeping.
        if _listeners(self, "on_grad_computed") or not all(
                type(getattr(self, name + "_")) in ONE_CALL_OPTIMIZERS
                for name in self._optimizers):
            return super().train_step(batch, **fit_params)
        self._zero_grad_optimizer()
        with torch.enable_grad():  # as the optimisers run a closure
            step = self.train_step_single(batch, **fit_params)
        self._step_optimizer(None)
        return step

    def train_step_single(self, batch, **fit_params):
        # The module is put in training mode once per epoch, not once per batch.
        Xi, yi = batch
        if self.autocast_dtype is None:
            context = contextlib.nullcontext()  # no autocast object at all (mps, old torch)
        else:
            context = torch.autocast(torch.device(self.device).type, dtype=self.autocast_dtype)
        w = yi[1] if isinstance(yi, tuple) else None
        if w is not None:  # the weights as given: their sums are the batch norms' counts
            w = w * getattr(self, "weight_mean_", 1.0)
        with context, sample_weighted(self.module_, w):
            y_pred = self._training_forward()(Xi)
        if self.autocast_dtype is not None:
            y_pred = y_pred.float()  # the loss of a bf16 forward pass in float32
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        loss.backward()
        return {"loss": loss, "y_pred": y_pred}


# optimisers whose step(closure) calls the closure once, before the update: for them
# step() after the closure's work is the same step (exact types: a subclass may differ)
ONE_CALL_OPTIMIZERS = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD)


def _listeners(net, hook):
    """The callbacks of ``net`` whose method ``hook`` is not skorch's no-op."""
    listening = []
    for _, callback in net.callbacks_:
        method = getattr(callback, hook)
        if getattr(method, "__func__", method) is not getattr(Callback, hook):
            listening.append(callback)
    return listening


def _mean_loss(losses, sizes):
    """The epoch's loss per sample from each batch's mean loss (0-d tensors, read from
    the device once) and size. For float32 and float64 losses (the estimators'), the
    value of a running ``total += loss * size`` on the device, bit for bit, without its
    two operations a batch; other dtypes are summed in float64."""
    if not losses:
        return 0.0
    values = torch.stack(losses).cpu()
    if values.dtype not in (torch.float32, torch.float64):
        values = values.double()
    values = values.numpy()
    cast = values.dtype.type
    total = values[0] * cast(sizes[0])
    for value, size in zip(values[1:], sizes[1:]):
        total = total + value * cast(size)
    return float(total / cast(sum(sizes)))


def _copied_into(previous, current):
    """A copy of ``current`` (a state dict: nested dicts and lists of tensors and values)
    that reuses the tensors of ``previous``, a copy of an earlier state of the same
    structure, wherever the shape, dtype and device still match."""
    if isinstance(current, torch.Tensor):
        if (isinstance(previous, torch.Tensor) and previous.shape == current.shape
                and previous.dtype == current.dtype and previous.device == current.device
                and previous.data_ptr() != current.data_ptr()):
            return previous.copy_(current)
        return current.detach().clone()
    if isinstance(current, dict):
        previous = previous if isinstance(previous, dict) else {}
        return {k: _copied_into(previous.get(k), v) for k, v in current.items()}
    if isinstance(current, (list, tuple)):
        previous = previous if isinstance(previous, (list, tuple)) else ()
        copied = [_copied_into(previous[i] if i < len(previous) else None, v)
                  for i, v in enumerate(current)]
        return type(current)(copied) if isinstance(current, tuple) else copied
    return copy.deepcopy(current)


class ResidentClassifierNet(ResidentNetMixin, NeuralNetClassifier):
    """``NeuralNetClassifier`` with the resident data path of :class:`ResidentNetMixin`."""


class ResidentRegressorNet(ResidentNetMixin, NeuralNetRegressor):
    """``NeuralNetRegressor`` with the resident data path of :class:`ResidentNetMixin`."""
