"""The base class every estimator shares: validation, data movement, seeding, export."""

import copy
from contextlib import contextmanager
from abc import abstractmethod
from numbers import Integral, Real

import numpy as np
import torch
from scipy.special import logsumexp
from skorch.callbacks import EarlyStopping, LRScheduler
from skorch.helper import predefined_split
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.base import _fit_context  # private, but the documented way to run constraints
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._training import (DeviceBatchIterator, EpochProgressBar, ResidentData, ResidentNet,
                        TemperatureSchedule)
from .nn import ACTIVATIONS
from .nn._surrogate import SAMPLING_MODES

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
}
PREDICT_BATCH_SIZE = 8192
FLOAT32_MAX = float(np.finfo(np.float32).max)


def resolve_device(device):
    """Turn the ``device`` hyper-parameter into a ``torch.device`` or raise ``ValueError``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        resolved = None
    if resolved is None or resolved.type not in ("cpu", "cuda", "mps"):
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'; got {device!r}."
        )
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} but CUDA is not available here; use device='cpu' or 'auto'."
        )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r} but MPS is not available here.")
    return resolved


def store_params(estimator, params):
    """Store ``__init__`` arguments unchanged (call as ``store_params(self, locals())``)."""
    for name, value in params.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


def _no_output(*args, **kwargs):
    """A picklable sink that drops skorch's messages (progress is the bar's job)."""


class BaseNetworkClassifier(ClassifierMixin, BaseEstimator):
    """Shared machinery of the sk_weightfree classifiers.

    Subclasses implement :meth:`_build_module` (the torch network) and may override
    :meth:`_train` (the search or pruning rule), :meth:`_criterion` and
    :meth:`_extra_callbacks`. Everything else — parameter and input validation, label
    encoding, seeding, the device-resident skorch net, batched prediction and the export of
    ``coefs_``/``masks_`` — lives here once.
    """

    _parameter_constraints = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "optimizer": [StrOptions(set(OPTIMIZERS))],
        "lr_schedule": [StrOptions({"constant", "cosine"})],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "precision": [StrOptions({"float32", "bfloat16"})],
        "torch_compile": ["boolean"],
    }

    # ------------------------------------------------------------------ hooks
    @abstractmethod
    def _build_module(self, n_features, n_classes, generator):
        """Return the untrained torch module (logits out) for this estimator."""

    def _criterion(self):
        return torch.nn.CrossEntropyLoss

    def _extra_callbacks(self):
        return []

    def _net_params(self):
        """Extra keyword arguments for the skorch net (e.g. optimiser parameter groups)."""
        return {}

    def _check_params(self):
        """Cross-parameter checks that constraints cannot express."""

    def _train(self, train_data):
        """Run the training; the default is plain skorch training for ``max_epochs``."""
        self.net_.partial_fit(train_data)

    def _finish_training(self, train_data):
        """Work after training and before export: networks with batch norm re-estimate
        its statistics with the final hard masks."""
        module = self.net_.module_
        if hasattr(module, "recalibrate_norms"):
            # shuffled, so that sorted data cannot give single-class batches
            generator = torch.Generator().manual_seed(self._sample_seed)
            batches = (X for X, _ in DeviceBatchIterator(
                train_data, self.batch_size, shuffle=True, generator=generator))
            module.recalibrate_norms(batches)

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the network to data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data (dense arrays of any numeric dtype, scipy sparse, DataFrames).
        y : array-like of shape (n_samples,)
            Class labels of any type.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        previous_state = self.__dict__.copy()
        try:
            with self._device_errors():
                return self._fit(X, y)
        except BaseException:
            # A failed fit leaves the estimator as it was: unfitted, or the previous model.
            self.__dict__.clear()
            self.__dict__.update(previous_state)
            raise

    def _fit(self, X, y):
        self._check_hidden_layer_sizes()
        self._check_params()
        device = resolve_device(self.device)
        X, y_encoded = self._validate_training_data(X, y)
        rng = check_random_state(self.random_state)
        init_seed, shuffle_seed, sample_seed, split_seed = rng.randint(0, 2**31 - 1, size=4)
        self._sample_seed = int(sample_seed)

        train_data, valid_data = self._make_datasets(X, y_encoded, device, split_seed)
        module = self._build_module(
            self.n_features_in_, len(self.classes_),
            torch.Generator().manual_seed(int(init_seed)),
        )
        self.net_ = ResidentNet(
            module=module,
            criterion=self._criterion(),
            optimizer=OPTIMIZERS[self.optimizer],
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            device=device,
            train_split=None if valid_data is None else predefined_split(valid_data),
            callbacks=self._callbacks(),
            verbose=0,
            **self._net_params(),
        )
        self.net_.shuffle_generator = torch.Generator().manual_seed(int(shuffle_seed))
        self.net_.autocast_dtype = torch.bfloat16 if self.precision == "bfloat16" else None
        self.net_.compile_forward = self.torch_compile
        self.net_.initialize()
        self._train(train_data)
        self._finish_training(train_data)
        self.net_.train_split = None  # drop the validation data: pickles stay small
        self._export_fitted_attributes()
        return self

    def _check_hidden_layer_sizes(self):
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, Integral) else list(sizes)
        if not all(isinstance(s, Integral) and not isinstance(s, bool) and s > 0 for s in sizes):
            raise ValueError(
                f"hidden_layer_sizes must be positive integers; got {self.hidden_layer_sizes!r}."
            )
        self._hidden_sizes = tuple(int(s) for s in sizes)

    def _validate_training_data(self, X, y):
        X, y = validate_data(
            self, X, y, accept_sparse=["csr", "csc"], dtype=[np.float32, np.float64],
            ensure_min_samples=2,
        )
        largest = max(X.max(), -X.min()) if X.shape[0] * X.shape[1] else 0.0  # no |X| copy
        if largest > FLOAT32_MAX:
            raise ValueError(
                f"X has values up to {largest:.3g}, beyond float32's range "
                f"({FLOAT32_MAX:.3g}) that training uses; scale the features first."
            )
        check_classification_targets(y)
        encoder = LabelEncoder()
        y_encoded = encoder.fit_transform(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in y; "
                f"got 1 class ({self.classes_[0]!r})."
            )
        return X, y_encoded

    def _make_datasets(self, X, y_encoded, device, split_seed):
        if not self.early_stopping:
            return ResidentData(X, y_encoded, device), None
        try:
            X_train, X_valid, y_train, y_valid = train_test_split(
                X, y_encoded, test_size=self.validation_fraction, stratify=y_encoded,
                random_state=split_seed,
            )
        except ValueError as exc:
            raise ValueError(
                f"early_stopping=True could not set aside validation_fraction="
                f"{self.validation_fraction} of {X.shape[0]} samples with every class "
                f"represented ({exc}); use more data, a larger validation_fraction, "
                f"or early_stopping=False."
            ) from None
        return ResidentData(X_train, y_train, device), ResidentData(X_valid, y_valid, device)

    def _callbacks(self):
        callbacks = [
            ("stopping", EarlyStopping(
                monitor="valid_loss" if self.early_stopping else "train_loss",
                patience=self.n_iter_no_change, threshold=self.tol, threshold_mode="abs",
                load_best=self.early_stopping, sink=_no_output,
            )),
        ]
        if self.lr_schedule == "cosine":
            callbacks.append(("lr_schedule", LRScheduler(
                policy=torch.optim.lr_scheduler.CosineAnnealingLR, T_max=self.max_epochs,
            )))
        callbacks += self._extra_callbacks()
        if self.verbose:
            callbacks.append(("progress", EpochProgressBar(desc=type(self).__name__)))
        return callbacks

    @contextmanager
    def _device_errors(self):
        """Re-raise a device out-of-memory error as a ``MemoryError`` with advice."""
        try:
            yield
        except torch.OutOfMemoryError as exc:
            raise MemoryError(
                f"{type(self).__name__} ran out of memory on device {self.device!r} ({exc}). "
                f"Try a smaller batch_size or hidden_layer_sizes, or device='cpu'."
            ) from None

    def _export_fitted_attributes(self):
        module = self.net_.module_
        module.eval()
        coefs, masks = [], []
        for weight, mask in module.connections():
            coefs.append(weight.detach().cpu().numpy().T.astype(np.float64))
            masks.append(mask.detach().cpu().numpy().T.astype(bool))
        self.coefs_ = coefs
        self.masks_ = masks
        self.n_connections_ = int(sum(m.sum() for m in masks))
        self.density_ = self.n_connections_ / sum(m.size for m in masks)
        self.history_ = [
            {
                "epoch": row["epoch"],
                "train_loss": float(row["train_loss"]),
                **({"valid_loss": float(row["valid_loss"])} if "valid_loss" in row else {}),
                "seconds": float(row["dur"]),
            }
            for row in self.net_.history
        ]
        self.n_iter_ = len(self.history_)
        if hasattr(module, "signs"):
            self.unit_signs_ = [s.signs.detach().cpu().numpy().copy() for s in module.signs]
        if hasattr(module, "norms"):
            # batch norm in eval mode is the per-unit affine map z * scale + offset
            scales, offsets = [], []
            for norm in module.norms:
                scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
                scales.append(scale.detach().cpu().double().numpy())
                offsets.append((norm.bias - norm.running_mean * scale).detach().cpu()
                               .double().numpy())
            self.unit_scales_, self.unit_offsets_ = scales, offsets
        if not all(t.isfinite().all() for t in module.state_dict().values()
                   if t.is_floating_point()):
            raise ValueError(
                "Training produced non-finite weights. The input may contain very large "
                "values: scale it (e.g. StandardScaler) or lower lr."
            )

    # ------------------------------------------------------------------ predict
    def _module_device(self):
        tensors = list(self.net_.module_.parameters()) + list(self.net_.module_.buffers())
        return tensors[0].device if tensors else torch.device("cpu")

    def _forward_logits(self, X):
        check_is_fitted(self)
        X = validate_data(
            self, X, reset=False, accept_sparse=["csr", "csc"], dtype=[np.float32, np.float64]
        )
        device = self._module_device()
        module = self.net_.module_
        if device.type == "cpu":
            # float64 on the CPU makes a sample's output independent of the batch it is in
            # (float32 GEMM kernels sum in a batch-size-dependent order).
            module = copy.deepcopy(module).double()
        module.eval()
        data = ResidentData(X, None, device,
                            dtype=torch.float64 if device.type == "cpu" else None)
        with torch.inference_mode(), self._device_errors():
            logits = [
                module(data.rows(slice(start, start + PREDICT_BATCH_SIZE))).double().cpu()
                for start in range(0, len(data), PREDICT_BATCH_SIZE)
            ]
        return torch.cat(logits).numpy()

    def predict_log_proba(self, X):
        """Log class probabilities, shape (n_samples, n_classes), in ``classes_`` order."""
        logits = self._forward_logits(X)
        return logits - logsumexp(logits, axis=1, keepdims=True)

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns in ``classes_`` order."""
        proba = np.exp(self.predict_log_proba(X))
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X):
        """Predicted class labels, shape (n_samples,)."""
        logits = self._forward_logits(X)
        return self.classes_[np.argmax(logits, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags



class SurrogateSearchMixin:
    """The surrogate-gradient mask search's own parameters: sampling and temperature.

    Mixed in before :class:`BaseNetworkClassifier` by the estimators that search masks
    with :func:`~sk_weightfree.nn.straight_through_mask`.
    """

    _surrogate_constraints = {
        "sampling": [StrOptions(set(SAMPLING_MODES))],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "final_temperature": [Interval(Real, 0, None, closed="neither"), None],
    }

    def _extra_callbacks(self):
        end = self.temperature if self.final_temperature is None else self.final_temperature
        return [("temperature", TemperatureSchedule(self.temperature, end, self.max_epochs))]
