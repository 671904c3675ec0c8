"""What every estimator shares: validation, data movement, seeding, training, export.

:class:`BaseNetwork` owns the machinery; :class:`ClassifierHeadMixin` and
:class:`RegressorHeadMixin` add what differs between a classifier and a regressor (targets,
loss, output transform). A family module defines one base holding its network and search or
pruning rule, and its classifier and regressor are that base with a head.
"""

import copy
import inspect
import io
import warnings
from abc import ABCMeta, abstractmethod
from contextlib import contextmanager, nullcontext
from numbers import Integral, Real

import numpy as np
import torch
from skorch.callbacks import EarlyStopping
from skorch.helper import predefined_split
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_array, check_consistent_length, check_is_fitted
from sklearn_compat.base import _fit_context
from sklearn_compat.utils.validation import validate_data

from ._inference import (decision, labels, log_probabilities, predictions,
                         probabilities)
from ._params import DeviceString, PositiveInts, parse_device, positive_ints
from ._training import (CosineLR, DeviceBatchIterator, EpochLog, EpochProgressBar,
                        ResidentClassifierNet, ResidentData, ResidentRegressorNet, print_line,
                        weighted_rows)
from .nn import ACTIVATIONS
from .nn._layers import remove_weighting, weightable_norms
from .nn._templates import WEIGHT_LAYERS

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
}
PREDICT_BATCH_SIZE = 8192
# Rows of a prediction batch are capped so that a densified batch of sparse input holds at
# most this many values (32 MiB in float64), whatever the number of features.
PREDICT_MAX_VALUES = 1 << 22
FLOAT32_MAX = float(np.finfo(np.float32).max)
# Training squares values in float32 (batch statistics, the optimiser's second moments), so
# features beyond the square root of float32's range overflow in some family or other: one
# limit for all of them, checked before any training.
FEATURE_LIMIT = float(np.sqrt(FLOAT32_MAX))
NON_FINITE_TRAINING = ("Training produced non-finite weights. The input may contain very "
                       "large values: scale it (e.g. StandardScaler) or lower lr.")
_FUSED_ADAM = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2]) >= (2, 4)


def resolve_device(device):
    """Turn the ``device`` hyper-parameter into a ``torch.device`` or raise ``ValueError``."""
    resolved = parse_device(device)
    if resolved is None:
        raise ValueError(
            f"device must be {DeviceString()}; got {device!r}."
        )
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} but CUDA is not available here; use device='cpu' or "
                f"'auto'."
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} but only {torch.cuda.device_count()} CUDA device(s) "
                f"are visible (cuda:0 to cuda:{torch.cuda.device_count() - 1})."
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


def _softmax_last(x):
    return torch.softmax(x, dim=-1)


def _same_param(a, b):
    try:
        return bool(np.all(np.asarray(a, dtype=object) == np.asarray(b, dtype=object))) \
            and np.shape(a) == np.shape(b)
    except (TypeError, ValueError):
        return a is b


def _oriented(weight):
    """A layer's (out, in) weight as (in, out); convolution kernels stay as they are."""
    return weight.T if weight.ndim == 2 else weight


def _numpy(tensors):
    """Tensors as float64 arrays of their own."""
    return [t.detach().cpu().double().numpy().copy() for t in tensors]


def _check_sample_weight(sample_weight, n_samples, name="sample_weight"):
    """Validated float64 sample weights, or None for unit weights."""
    if sample_weight is None:
        return None
    if np.isscalar(sample_weight):
        sample_weight = np.full(n_samples, sample_weight, dtype=np.float64)
    weight = check_array(sample_weight, ensure_2d=False, dtype=np.float64, input_name=name)
    if weight.ndim != 1 or weight.shape[0] != n_samples:
        raise ValueError(f"{name} must have shape ({n_samples},); got {weight.shape}.")
    if (weight < 0).any():
        raise ValueError(f"{name} has negative values; weights must be >= 0.")
    if not weight.sum() > 0:
        raise ValueError(f"{name} sums to zero; at least one weight must be > 0.")
    return weight


def _check_feature_range(X, name="X"):
    """Refuse features too large for float32 training."""
    largest = max(X.max(), -X.min()) if X.shape[0] * X.shape[1] else 0.0  # no |X| copy
    if largest > FEATURE_LIMIT:
        raise ValueError(
            f"{name} has values up to {largest:.3g}, beyond {FEATURE_LIMIT:.3g}: training "
            f"runs in float32 and squares values (batch statistics, optimiser moments), "
            f"which overflows float32's range ({FLOAT32_MAX:.3g}) there and gives "
            f"non-finite weights or a model at chance; scale the features first (e.g. "
            f"StandardScaler)."
        )


class BaseNetwork(BaseEstimator, metaclass=ABCMeta):
    """Shared machinery of every sk_weightfree estimator.

    A family implements :meth:`_build_module` (its torch network) and may override
    :meth:`_train` (its search or pruning rule), :meth:`_finish_training`,
    :meth:`_extra_callbacks` and :meth:`_check_params`. A head (classifier or regressor)
    implements the target handling, the loss and the output transform. Everything else —
    parameter and input validation, seeding, the device-resident skorch net, warm starts
    and ``partial_fit``, batched prediction and the export of ``coefs_``/``masks_`` —
    lives here once.
    """

    _parameter_constraints = {
        "hidden_layer_sizes": [PositiveInts()],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "optimizer": [StrOptions(set(OPTIMIZERS))],
        "lr_schedule": [StrOptions({"constant", "cosine"})],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "device": [DeviceString()],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "precision": [StrOptions({"float32", "bfloat16", "float64"})],
        "torch_compile": ["boolean"],
        "module": [None, callable],
        "input_shape": [None, PositiveInts(allow_empty=False)],
    }

    # Defaults for models pickled before these parameters existed.
    module = None
    input_shape = None
    shuffle = True
    alpha = 0.0

    # ------------------------------------------------------------------ family hooks
    @abstractmethod
    def _build_module(self, n_features, n_outputs, generator):
        """Return the untrained torch module (raw outputs) for this estimator."""

    def _extra_callbacks(self):
        return []

    def _check_params(self):
        """Cross-parameter checks that constraints cannot express; returns the private
        state the parameters imply, which ``fit`` sets (validation alone sets nothing).
        A family adds its own checks and state to the base's."""
        if self.input_shape is not None and self.module is None:
            raise ValueError("input_shape is the shape of one sample for module; it needs "
                             "module to be set.")
        return {"_hidden_sizes": positive_ints(self.hidden_layer_sizes),
                "_input_shape": (None if self.input_shape is None
                                 else positive_ints(np.ravel(self.input_shape)))}

    def validate_params(self):
        """Check the hyper-parameters as ``fit`` does before it reads any data, without
        fitting: the constraints of ``_parameter_constraints``, the checks across
        parameters and the availability of ``device``. The estimator is left unchanged
        (an unfitted one stays unfitted).

        Returns
        -------
        self : object

        Raises
        ------
        ValueError or TypeError
            Naming the parameter, as ``fit`` would.
        """
        self._validate_params()
        self._check_params()
        resolve_device(self.device)
        return self

    def _train(self, train_data, epochs, incremental):
        """Run the training; the default is plain skorch training for ``epochs``."""
        self.net_.partial_fit(train_data, epochs=epochs)

    def _finish_training(self, train_data, valid_data):
        """Work after training and before export: networks with batch norm re-estimate
        its statistics with the final hard masks."""
        module = self.net_.module_
        if hasattr(module, "recalibrate_norms"):
            # shuffled, so that sorted data cannot give single-class batches
            generator = torch.Generator().manual_seed(self._sample_seed)
            batches = ((X, None if w is None else w * train_data.weight_mean)
                       for X, (_, w) in DeviceBatchIterator(
                           train_data, self.batch_size, shuffle=True, generator=generator))
            module.recalibrate_norms(batches)

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None, sample_weight_val=None):
        """Fit the network to data.

        With ``warm_start=True`` and a fitted model, training continues from the fitted
        network and its optimiser state for ``max_epochs`` more epochs (a validation set
        may be given to a continuing fit too).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data (dense arrays of any numeric dtype, scipy sparse, DataFrames).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets: class labels of any type or a multilabel indicator matrix
            (classifiers); real values, one column per output (regressors).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights (zeros allowed). Training minimises the weighted mean of the
            samples' losses: weights are scaled to mean 1 over the data and a batch's loss
            is the mean of weight times loss.
        X_val : {array-like, sparse matrix} of shape (n_val, n_features), default=None
            Validation data for ``early_stopping=True``, as scikit-learn's
            ``HistGradientBoostingClassifier`` takes it: it replaces the
            ``validation_fraction`` split, so every sample of ``X`` is trained on. Needs
            ``y_val``, and ``early_stopping=True`` (``ValueError`` otherwise). In a
            ``Pipeline`` with metadata routing on, request it with
            ``set_fit_request(X_val=True, y_val=True)``; ``Pipeline(...,
            transform_input=["X_val"])`` transforms it by the steps before, as ``X``.
        y_val : array-like of shape (n_val,) or (n_val, n_outputs), default=None
            Validation targets, encoded as ``y``: labels must be among ``classes_`` (a
            multilabel matrix must have as many columns); regression targets are
            standardised with the statistics of the training targets.
        sample_weight_val : array-like of shape (n_val,), default=None
            Weights of the validation score (weighted accuracy or R²); ``class_weight``
            multiplies them as it does the split held out of ``X`` (``HistGradientBoosting``
            leaves its validation weights without class weights). Needs ``X_val``.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        validation = self._check_validation_args(X_val, y_val, sample_weight_val)
        return self._fit_keeping_state(X, y, sample_weight, incremental=False,
                                       validation=validation)

    def _check_validation_args(self, X_val, y_val, sample_weight_val):
        """``(X_val, y_val, sample_weight_val)``, or None without a validation set."""
        if X_val is None and y_val is None:
            if sample_weight_val is not None:
                raise ValueError("sample_weight_val is given without X_val and y_val; pass "
                                 "the validation data it weighs.")
            return None
        if y_val is None:
            raise ValueError("X_val is given, but y_val is not: pass both.")
        if X_val is None:
            raise ValueError("y_val is given, but X_val is not: pass both.")
        if not self.early_stopping:
            raise ValueError(
                "X_val and y_val are the validation data of early stopping, but "
                "early_stopping=False; set early_stopping=True to stop on them (they "
                "then replace the validation_fraction split)."
            )
        return X_val, y_val, sample_weight_val

    def _partial_fit(self, X, y, sample_weight, classes=None):
        if self.early_stopping:
            raise ValueError(
                "partial_fit does not support early_stopping=True: each call runs one "
                "epoch on the data it is given, so there is no held-out split to stop on. "
                "Use fit, or score your own validation data between partial_fit calls."
            )
        return self._fit_keeping_state(X, y, sample_weight, incremental=True,
                                       classes=classes)

    def _fit_keeping_state(self, X, y, sample_weight, *, incremental, classes=None,
                           validation=None):
        """Fit; a failure restores the previous state (unfitted, or the previous model)."""
        previous_state = self.__dict__.copy()
        continuing = (incremental or self.warm_start) and hasattr(self, "net_")
        snapshot = self.net_.snapshot() if continuing else None
        try:
            with self._device_errors():
                return self._fit(X, y, sample_weight, incremental=incremental,
                                 continuing=continuing, classes=classes,
                                 validation=validation)
        except BaseException:
            if snapshot is not None:
                previous_state["net_"].restore(snapshot)
            self.__dict__.clear()
            self.__dict__.update(previous_state)
            raise

    # What a warm start or partial_fit may change: the rest shapes the fitted network or
    # its optimiser, and changing it takes a fresh fit. A family adds its own names, and
    # may accept a change of a structured parameter in _continuable_change.
    _CONTINUABLE_PARAMS = frozenset({
        "max_epochs", "batch_size", "shuffle", "lr", "alpha", "lr_schedule", "verbose",
        "warm_start",
        "early_stopping", "validation_fraction", "n_iter_no_change", "tol",
        "torch_compile", "class_weight", "random_state", "device",
    })

    def _params_snapshot(self):
        """``get_params(deep=False)`` with estimator-like values (a mask rule) cloned, so
        that a later ``set_params(mask_rule__...)`` shows as a change."""
        return {name: clone(value) if hasattr(value, "get_params") else value
                for name, value in self.get_params(deep=False).items()}

    def _continuable_change(self, name, old, new):
        """Whether a warm start may change parameter ``name`` from ``old`` to ``new``
        (names outside ``_CONTINUABLE_PARAMS``; the mask rule asks its own rule)."""
        # bf16 autocast can be switched on and off; float64 training is the network's dtype
        return name == "precision" and "float64" not in (old, new)

    def _update_search(self):
        """Apply a continuing fit's settings to the family's search state (mask rules)."""

    def _fit(self, X, y, sample_weight, *, incremental, continuing, classes, validation):
        if not continuing:
            self.__dict__.update(self._check_params())
            device = resolve_device(self.device)
        else:
            self._check_continuable()
            device = torch.device(self.net_.device)
        X, y_encoded, weights, validation = self._validate_training_data(
            X, y, sample_weight, first=not continuing, classes=classes,
            incremental=incremental, validation=validation)
        if not continuing:
            rng = check_random_state(self.random_state)
            init_seed, shuffle_seed, sample_seed, split_seed = rng.randint(0, 2**31 - 1, 4)
            self._sample_seed, self._split_seed = int(sample_seed), int(split_seed)
            self.t_ = 0
        train_data, valid_data = self._make_datasets(X, y_encoded, weights, device,
                                                     validation)
        if not continuing:
            module = self._build_module(self.n_features_in_, self.n_outputs_,
                                        torch.Generator().manual_seed(int(init_seed)))
            if self.module is not None:
                self._row_values = self._dry_run(module)
            if self.precision == "float64":
                module = module.double()
            self.net_ = self._make_net(module, device)
            self.net_.shuffle_generator = torch.Generator().manual_seed(int(shuffle_seed))
            self.net_.initialize()
            self._fit_params = self._params_snapshot()
        else:
            self._update_net()
        net = self.net_
        net.__dict__.pop("_predict_cache", None)
        n_epochs_before = len(net.history)
        # Per-fit state of the net, cleared whatever happens: a bound method left on the
        # net would make the estimator's pickle recurse, and the validation data would
        # travel with it.
        net.train_split = None if valid_data is None else predefined_split(valid_data)
        net.valid_score_fn = self._valid_score if valid_data is not None else None
        net.scheduled_ = not incremental
        self._check_batch_norms(net.module_)
        # Layers that draw random numbers (dropout in a template) use torch's global
        # generator: seed it from random_state for this fit, and leave the caller's as it was.
        devices = [] if device.type != "cuda" else [
            torch.cuda.current_device() if device.index is None else device.index]
        try:
            # weighted batch norms keep one forward pass over the fit (torch.compile)
            weighting = (nullcontext() if train_data.w is None
                         else weightable_norms(net.module_))
            with torch.random.fork_rng(devices=devices), weighting:
                torch.manual_seed(self._sample_seed + n_epochs_before)
                self._train(train_data, 1 if incremental else self.max_epochs, incremental)
                self._finish_training(train_data, valid_data)
        finally:
            net.train_split = net.valid_score_fn = None
            net.__dict__.pop("_last_epoch_state", None)
        self.t_ += len(train_data) * (len(net.history) - n_epochs_before)
        self._export_fitted_attributes()
        return self

    def _check_continuable(self):
        changed = sorted(
            name for name, value in self.get_params(deep=False).items()
            if name not in self._CONTINUABLE_PARAMS
            and not _same_param(value, self._fit_params.get(name))
            and not self._continuable_change(name, self._fit_params.get(name), value)
        )
        if changed:
            raise ValueError(
                f"warm_start and partial_fit continue the fitted network, but "
                f"{', '.join(changed)} changed since it was built; refit from scratch "
                f"(warm_start=False) to change {'them' if len(changed) > 1 else 'it'}."
            )

    def _update_net(self):
        """Apply the parameters a continuing fit may change to the existing net."""
        net = self.net_
        net.lr, net.batch_size, net.max_epochs = self.lr, self.batch_size, self.max_epochs
        net.alpha, net.iterator_train__shuffle = self.alpha, self.shuffle
        for group in net.optimizer_.param_groups:
            group["lr"] = self.lr
        net.callbacks = self._callbacks()
        net.initialize_callbacks()
        self._update_search()
        self._set_forward_options(net)
        self._fit_params = self._params_snapshot()

    def _make_net(self, module, device):
        if self.optimizer == "sgd":
            optimizer_params = {"momentum": self.momentum,
                                "nesterov": self.nesterovs_momentum and self.momentum > 0}
        else:
            optimizer_params = {"betas": (self.beta_1, self.beta_2)}
            if _FUSED_ADAM and device.type in ("cpu", "cuda"):
                optimizer_params["fused"] = True  # one kernel for the whole update
        net = self._net_class(
            module=module,
            criterion=self._criterion(),
            criterion__reduction="none",
            optimizer=OPTIMIZERS[self.optimizer],
            **{f"optimizer__{k}": v for k, v in optimizer_params.items()},
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            iterator_train__shuffle=self.shuffle,
            device=device,
            train_split=None,
            callbacks=self._callbacks(),
            predict_nonlinearity=self._predict_nonlinearity(),
        )
        net.alpha = self.alpha
        self._set_forward_options(net)
        return net

    def _set_forward_options(self, net):
        """The net's training forward pass (bf16 autocast, torch.compile) and its messages."""
        # skorch's own messages (the stopping rule's, re-initialisations) with the log
        net.verbose = int(self.verbose >= 2)
        net.autocast_dtype = torch.bfloat16 if self.precision == "bfloat16" else None
        net.compile_forward = self.torch_compile

    def _template(self, n_features, n_outputs, generator):
        """The ``module`` template, built, checked on a dry run and initialised from
        ``generator``.

        A class is built under a seeded random state, so its own initialisation is kept;
        an instance is copied and its parameters reset (innermost modules first).
        """
        shape = self._input_shape
        if shape is not None and int(np.prod(shape)) != n_features:
            raise ValueError(f"input_shape {shape} holds {int(np.prod(shape))} values, but "
                             f"X has {n_features} features.")
        template = self.module
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if isinstance(template, torch.nn.Module):
                template = copy.deepcopy(template)
                built = False
            else:
                template = self._instantiate_template(template, n_outputs)
                built = True
            name = type(template).__name__
            example = torch.zeros(2, *(shape or (n_features,)))
            layers = [m for m in template.modules() if isinstance(m, WEIGHT_LAYERS)]
            calls = []
            hooks = [layer.register_forward_hook(lambda m, i, o: calls.append(m))
                     for layer in layers]
            outputs = []
            for dtype in (torch.float32, torch.float64):  # training, then prediction
                module = template if dtype == torch.float32 else copy.deepcopy(template)
                try:
                    with torch.no_grad():  # also initialises lazy layers
                        outputs.append(module.to(dtype).eval()(example.to(dtype)))
                except Exception as exc:
                    raise ValueError(
                        f"module {name} failed on a {dtype} batch of shape "
                        f"{tuple(example.shape)} ({type(exc).__name__}: {exc}); check "
                        f"input_shape{' and that forward keeps the input dtype (prediction runs in float64 on the CPU)' if outputs else ''}."
                    ) from None
            for hook in hooks:
                hook.remove()
            if not built:
                for layer in reversed(list(template.modules())):
                    if hasattr(layer, "reset_parameters"):
                        layer.reset_parameters()
        template.train()
        output = outputs[0]
        if not (isinstance(output, torch.Tensor) and tuple(output.shape) == (2, n_outputs)):
            got = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output)
            raise ValueError(
                f"module {name} must output shape (batch, {n_outputs}) for these targets; "
                f"on a batch of 2 it gave {got}."
            )
        if not layers:
            raise ValueError(f"module {name} has no nn.Linear or nn.Conv2d layer to train.")
        order = list(dict.fromkeys(calls[:len(calls) // 2]))  # the float32 pass
        if order != layers:
            raise ValueError(
                f"module {name} must call each of its nn.Linear/nn.Conv2d layers in the "
                f"order it registers them (coefs_ follows that order, and the last one is "
                f"the output layer); {len(layers)} registered, called in the order "
                f"{[layers.index(m) for m in order]}."
            )
        return template

    def _dry_run(self, module):
        """Run the built network on two zero rows (a clear error now rather than a torch
        traceback in training); returns the values its layers hold per row, which sizes
        prediction batches."""
        leaves = [m for m in module.modules() if not list(m.children())]
        sizes = []
        hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(
            o.numel() if isinstance(o, torch.Tensor) else 0)) for m in leaves]
        try:
            with torch.no_grad():
                module.eval()(torch.zeros(2, self.n_features_in_))
        except ValueError:
            raise
        except Exception as exc:
            raise ValueError(
                f"The network built from module {type(self.module).__name__} failed on a "
                f"batch of 2 rows ({type(exc).__name__}: {exc})."
            ) from None
        finally:
            for hook in hooks:
                hook.remove()
            module.train()
        return max(self.n_features_in_, sum(sizes) // 2)

    def _prediction_rows(self, n_features):
        """Rows per prediction batch: at most PREDICT_MAX_VALUES values a batch, in the
        input (dense or densified sparse rows) or, for a template, in its layers."""
        values = max(n_features, getattr(self, "_row_values", 0))
        return max(1, min(PREDICT_BATCH_SIZE, PREDICT_MAX_VALUES // max(1, values)))

    def _instantiate_template(self, cls, n_outputs):
        """``cls(n_outputs=...)``, with ``input_shape=`` when set and ``cls`` takes it."""
        kwargs = {"n_outputs": n_outputs}
        if self._input_shape is not None:
            try:
                if "input_shape" in inspect.signature(cls).parameters:
                    kwargs["input_shape"] = self._input_shape
            except (TypeError, ValueError):  # no signature to read
                pass
        try:
            template = cls(**kwargs)
        except Exception as exc:
            hint = (" Set input_shape." if self._input_shape is None
                    and "input_shape" in str(inspect.signature(cls)) else "")
            raise ValueError(
                f"module={cls!r} could not be built as module("
                f"{', '.join(f'{k}={v!r}' for k, v in kwargs.items())}) "
                f"({type(exc).__name__}: {exc}).{hint}"
            ) from None
        if not isinstance(template, torch.nn.Module):
            raise TypeError(f"module must be a torch.nn.Module class or instance; "
                            f"{cls!r}(...) gave {type(template).__name__}.")
        return template

    def _check_batch_norms(self, module):
        """Batch norms need two samples a batch."""
        if self.batch_size < 2 and any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                                       for m in module.modules()):
            raise ValueError("The network has batch normalisation, which needs "
                             "batch_size >= 2.")

    # Networks that estimate batch statistics (batch norm) need two samples a batch; the
    # others can take single-sample partial_fit updates, as MLPClassifier does.
    _min_batch_samples = 2

    def _validate_training_data(self, X, y, sample_weight, *, first, classes, incremental,
                                validation=None):
        """Validated ``X``, encoded targets and weights, and the validation set as
        ``(X_val, encoded y_val, weights)`` (None without one)."""
        X, y = validate_data(
            self, X, y, reset=first, accept_sparse=["csr", "csc"],
            dtype=[np.float32, np.float64], multi_output=True, y_numeric=self._y_numeric,
            ensure_min_samples=self._min_batch_samples if incremental else 2,
        )
        _check_feature_range(X)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        weights = _check_sample_weight(sample_weight, X.shape[0])
        y_encoded, weights = self._encode_targets(y, weights, first=first, classes=classes,
                                                  incremental=incremental)
        needed = self._min_batch_samples if incremental else 2
        if weights is not None and (weights > 0).sum() < needed:
            raise ValueError(
                f"{int((weights > 0).sum())} sample(s) have non-zero weight (sample_weight "
                f"times class_weight); samples of weight 0 are left out of training, which "
                f"needs at least {needed}.")
        if validation is not None:
            validation = self._validate_validation_data(*validation, y)
        return X, y_encoded, weights, validation

    def _validate_validation_data(self, X_val, y_val, sample_weight_val, y):
        """``fit``'s validation set checked against the model (``y`` is the training
        targets, which ``class_weight="balanced"`` counts)."""
        try:
            X_val = validate_data(self, X_val, reset=False, accept_sparse=["csr", "csc"],
                                  dtype=[np.float32, np.float64])
        except ValueError as exc:  # sklearn's message says "X"
            raise ValueError(f"X_val does not fit the model: {exc}") from None
        y_val = check_array(y_val, ensure_2d=False, dtype="numeric" if self._y_numeric else None,
                            input_name="y_val")
        check_consistent_length(X_val, y_val)
        _check_feature_range(X_val, "X_val")
        if y_val.ndim == 2 and y_val.shape[1] == 1 and y.ndim == 1:
            y_val = column_or_1d(y_val, warn=True)
        weights = _check_sample_weight(sample_weight_val, X_val.shape[0], "sample_weight_val")
        y_encoded, weights = self._encode_validation_targets(y_val, weights, y)
        return X_val, y_encoded, weights

    def _make_datasets(self, X, y_encoded, weights, device, validation=None):
        dtype = torch.float64 if self.precision == "float64" else None
        if validation is not None:  # the user's validation set: train on all of X
            X_val, y_val, w_val = validation
            return (ResidentData(X, y_encoded, device, dtype=dtype, sample_weight=weights),
                    ResidentData(X_val, y_val, device, dtype=dtype, sample_weight=w_val))
        if not self.early_stopping:
            return ResidentData(X, y_encoded, device, dtype=dtype, sample_weight=weights), None
        n_given = X.shape[0]
        X, y_encoded, weights = weighted_rows(X, y_encoded, weights)  # split what is trained on
        arrays = [X, y_encoded] + ([] if weights is None else [weights])
        stratify = self._stratify(y_encoded)
        if stratify is not None and len(np.unique(stratify)) < 2:
            raise ValueError(
                f"early_stopping=True needs weighted samples of at least 2 classes to score "
                f"the held-out part; {X.shape[0]} of {n_given} samples have non-zero "
                f"sample_weight (times class_weight), of 1 class. Give weight to more "
                f"classes or use early_stopping=False.")
        try:
            parts = train_test_split(
                *arrays, test_size=self.validation_fraction,
                stratify=stratify, random_state=self._split_seed,
            )
        except ValueError as exc:
            parts = None
            if stratify is not None:  # too few samples of some class to stratify
                try:
                    parts = train_test_split(*arrays, test_size=self.validation_fraction,
                                             random_state=self._split_seed)
                except ValueError:
                    pass
                else:
                    warnings.warn(
                        f"early_stopping=True could not hold out validation_fraction="
                        f"{self.validation_fraction} of {X.shape[0]} samples with every "
                        f"class represented ({exc}); the validation split is not "
                        f"stratified.", UserWarning, stacklevel=6)
            if parts is None:
                raise ValueError(
                    f"early_stopping=True could not set aside validation_fraction="
                    f"{self.validation_fraction} of {X.shape[0]} samples ({exc}); use more "
                    f"data, a larger validation_fraction, or early_stopping=False."
                ) from None
        w_train, w_valid = (None, None) if weights is None else parts[4:6]
        # every weight is positive here; the split holds out at least one sample
        if w_train is not None and len(w_train) < 2:
            classes = "" if stratify is None else f", of {len(np.unique(stratify))} class(es)"
            raise ValueError(
                f"The training part of the early-stopping split has {len(w_train)} "
                f"sample(s) of non-zero sample_weight (times class_weight), fewer than 2: "
                f"{X.shape[0]} of {n_given} samples have non-zero weight{classes}; give "
                f"weight to more samples or use early_stopping=False."
            )
        return (ResidentData(parts[0], parts[2], device, dtype=dtype, sample_weight=w_train),
                ResidentData(parts[1], parts[3], device, dtype=dtype, sample_weight=w_valid))

    def _callbacks(self):
        log = self.verbose >= 2  # a line per epoch and the stopping rule's messages
        callbacks = [("epoch_log", EpochLog())] if log else []
        callbacks.append(
            ("stopping", EarlyStopping(
                monitor="valid_score" if self.early_stopping else "train_loss",
                lower_is_better=not self.early_stopping,
                patience=self.n_iter_no_change, threshold=self.tol, threshold_mode="abs",
                load_best=self.early_stopping, sink=print_line if log else _no_output,
            )))
        if self.lr_schedule == "cosine":
            callbacks.append(("lr_schedule", CosineLR()))
        callbacks += self._extra_callbacks()
        if self.verbose and not log:
            callbacks.append(("progress", EpochProgressBar(desc=type(self).__name__)))
        return callbacks

    @contextmanager
    def _device_errors(self):
        """Re-raise a device out-of-memory error as a ``MemoryError`` with advice."""
        try:
            yield
        except (torch.OutOfMemoryError, RuntimeError) as exc:
            if not isinstance(exc, torch.OutOfMemoryError) and "out of memory" not in str(exc):
                raise  # MPS reports exhaustion as a plain RuntimeError
            raise MemoryError(
                f"{type(self).__name__} ran out of memory on device {self.device!r} ({exc}). "
                f"Try a smaller batch_size or hidden_layer_sizes, or device='cpu'."
            ) from None

    # ------------------------------------------------------------------ export
    def _export_fitted_attributes(self):
        module = self.net_.module_
        module.eval()
        if not all(t.isfinite().all() for t in module.state_dict().values()
                   if t.is_floating_point()):
            raise ValueError(NON_FINITE_TRAINING)

        # linear layers in MLPClassifier's (n_in, n_out) orientation, convolutions in
        # torch's (out, in, kh, kw) layout
        coefs, intercepts, scales = BaseNetwork._network_members(self)[0]
        self.masks_ = [_oriented(m.detach().cpu().numpy().astype(bool))
                       for _, m in module.connections()]
        units = module.unit_arrays()
        if "unit_signs" in units:
            self.unit_signs_ = _numpy(units["unit_signs"])
        self.paired_inputs_ = bool(getattr(module, "paired", False))
        self.coefs_, self.intercepts_, scales = self._fold_outputs(coefs, intercepts, scales)
        if scales is not None:
            self.unit_scales_ = scales
        self.n_connections_ = int(sum(m.sum() for m in self.masks_))
        self.density_ = self.n_connections_ / sum(m.size for m in self.masks_)
        self.n_layers_ = len(self.coefs_) + 1
        self.history_ = [
            {
                "epoch": row["epoch"],
                "train_loss": float(row["train_loss"]),
                **{key: float(row[key]) for key in ("valid_loss", "valid_score")
                   if key in row},
                "seconds": float(row["dur"]),
            }
            for row in self.net_.history if "train_loss" in row
        ]
        self.n_iter_ = len(self.history_)
        self.loss_curve_ = [row["train_loss"] for row in self.history_]
        self.loss_ = self.loss_curve_[-1] if self.loss_curve_ else None
        if self.early_stopping:
            self.validation_scores_ = [row.get("valid_score") for row in self.history_]
            self.best_validation_score_ = max(
                (s for s in self.validation_scores_ if s is not None), default=None)
            self.best_loss_ = None
        else:
            self.validation_scores_ = self.best_validation_score_ = None
            self.best_loss_ = min(self.loss_curve_, default=None)
        self._chain = self._export_chain()

    def _network_members(self):
        """The networks whose outputs prediction combines, as exported from the torch
        module: ``(coefs, intercepts, unit_scales)`` each, before the head's target map
        (None: no per-unit scales). One for every estimator but weight-agnostic
        ensembles."""
        module = self.net_.module_
        units = module.unit_arrays()
        coefs = [_oriented(w) for w in _numpy(w for w, _ in module.connections())]
        scales = _numpy(units["unit_scales"]) if "unit_scales" in units else None
        return [(coefs, _numpy(units["intercepts"]), scales)]

    def _prediction_members(self):
        """The members in the form of the public arrays (the head's target map folded
        into the last layer): each reproduces its network's outputs by the user guide's
        formula."""
        return [self._fold_outputs(*member) for member in self._network_members()]

    def _export_chain(self):
        """The fitted network as one :class:`~sk_weightfree._inference.Chain` with its
        head: what CPU prediction, ``io.dump``, ``to_onnx`` and ``to_module()`` read.

        A multilayer network's from the module's exported arrays; a template's traced
        with ``torch.fx``. None for a template whose forward is not a chain of supported
        layers (a residual connection, a weight-agnostic template): such a network
        predicts with its torch module, through the same head, and
        ``io.dump``/``to_onnx`` say why they refuse it.
        """
        from ._inference import perceptron_chain
        from ._tracing import NotAChainError, chain_from_template, target_affine

        if self.module is not None:
            try:
                # building plain layers draws initial weights: leave the caller's rng
                with torch.random.fork_rng(devices=[]):
                    return chain_from_template(self)
            except NotAChainError:
                return None
        is_classifier = hasattr(self, "classes_")
        return perceptron_chain(
            self._network_members(), activation=self.activation,
            unit_signs=getattr(self, "unit_signs_", None), paired=self.paired_inputs_,
            target=target_affine(self), n_features_in=int(self.n_features_in_),
            out_activation=self.out_activation_,
            classes=np.asarray(self.classes_) if is_classifier else None,
            n_outputs=int(self.n_outputs_), estimator=type(self).__name__)

    def _fold_outputs(self, coefs, intercepts, unit_scales):
        """Heads whose outputs are mapped after the network fold the map into the last
        layer here, so that the exported arrays give the predictions directly."""
        return coefs, intercepts, unit_scales

    def to_module(self):
        """The fitted network as plain torch layers, in eval mode, whose output is what
        ``decision_function`` and ``predict`` are computed from.

        The module returns the network's output ``z``: for classifiers the logits in
        ``classes_`` order (``predict_proba`` is their softmax, or sigmoid for multilabel
        targets; a weight-agnostic ensemble's are the log of its mean probability), for
        regressors the predictions in ``y``'s units, shape (n_samples, n_outputs). It is
        built from the fitted chain (the layers of ``coefs_``, ``intercepts_`` and the
        per-unit arrays: ``nn.Linear``/``nn.Conv2d`` weights, a
        :class:`~sk_weightfree.nn.PairedInput` where inputs are paired, per-unit affine
        maps and activations), followed by the head; a template that is not a chain keeps
        its own plain layers before the head. It is on the training device, in the
        training dtype.

        Returns
        -------
        module : torch.nn.Module
        """
        from ._tracing import Head, chain_module, target_affine

        check_is_fitted(self)
        module = self.net_.module_
        dtype = next((t.dtype for t in module.state_dict().values()
                      if t.is_floating_point()), torch.float32)
        chain = getattr(self, "_chain", None)  # None too while a fit is under way
        if chain is not None:
            plain = chain_module(chain)
        else:  # remove_weighting: a copy made during a weighted fit
            plain = torch.nn.Sequential(remove_weighting(module.to_module()),
                                        Head(self.out_activation_, target_affine(self)))
        return plain.to(device=self._module_device(), dtype=dtype).eval()

    # ------------------------------------------------------------------ predict
    def _module_device(self):
        module = self.net_.module_
        tensor = next(module.parameters(), None)
        tensor = next(module.buffers(), None) if tensor is None else tensor
        return torch.device("cpu") if tensor is None else tensor.device

    def _prediction_module(self):
        """The module prediction runs where the numpy chain does not (another device, or a
        template that is not a chain), and the input dtype it takes.

        On the CPU a float64 copy, made once per fitted model: float64 makes a sample's
        output independent of the batch it is in (float32 GEMM kernels sum in a
        batch-size-dependent order).
        """
        module = self.net_.module_
        if self._module_device().type != "cpu":
            return module.eval(), None
        key = (id(module),) + tuple(t._version for t in module.parameters()) + tuple(
            t._version for t in module.buffers())
        cache = self.net_.__dict__.get("_predict_cache")  # not the estimator's: predict
        if cache is None or cache[0] != key:              # leaves its __dict__ unchanged
            cache = (key, copy.deepcopy(module).double().eval())
            self.net_.__dict__["_predict_cache"] = cache
        return cache[1], torch.float64

    def _forward_outputs(self, X):
        """The network's output ``z``, what the head turns into answers: logits for
        classifiers (an ensemble's: the log of its mean probability), predictions in
        ``y``'s units for regressors.

        In ``X``'s floating type: float32 stays float32, anything else is float64. On the
        CPU through the fitted chain (what ``io.load`` predicts with), else through the
        torch module and the same head rules.
        """
        from ._inference import compute_dtype

        check_is_fitted(self)
        X = validate_data(
            self, X, reset=False, accept_sparse=["csr", "csc"], dtype=[np.float64, np.float32]
        )
        if self._chain is not None and self._module_device().type == "cpu":
            outputs = self._chain_outputs(X)
        else:
            outputs = self._module_outputs(X)
        return outputs.astype(compute_dtype(X.dtype), copy=False)

    def _chain_outputs(self, X):
        """``z`` from the fitted chain (numpy, CPU)."""
        from ._inference import forward

        try:
            return forward(self._chain, X)
        except MemoryError as exc:
            raise MemoryError(
                f"{type(self).__name__} ran out of memory predicting {X.shape[0]} "
                f"rows on the cpu ({exc}). Predict fewer rows at a time."
            ) from None

    def _module_outputs(self, X):
        """``z`` from the torch module (another device, or a template that is not a
        chain), through the head rules: members combined, targets un-scaled."""
        from ._inference import combine_members
        from ._tracing import target_affine

        module, dtype = self._prediction_module()
        data = ResidentData(X, None, self._module_device(), dtype=dtype)
        rows = self._prediction_rows(X.shape[1])
        with torch.inference_mode(), self._device_errors():
            outputs = [
                module(data.rows(slice(start, start + rows))).double().cpu()
                for start in range(0, len(data), rows)
            ]
        outputs = torch.cat(outputs, dim=-2).numpy()
        if outputs.ndim == 3:
            outputs = combine_members(outputs, self.out_activation_)
        target = target_affine(self)
        return outputs if target is None else target(outputs)

    def __getstate__(self):
        # The net goes through torch's own serialisation, so that every tensor in it (in
        # the module and optimiser, but also in callbacks) can be mapped to the CPU when
        # the pickle is loaded where the training device is missing.
        state = dict(super().__getstate__())  # object.__getstate__ gives __dict__ itself
        state.pop("_chain", None)  # derived from the fitted state: rebuilt on loading
        if "net_" in state:
            buffer = io.BytesIO()
            torch.save(state["net_"], buffer)
            state["net_"] = _SerializedNet(buffer.getvalue())
        return state

    def __setstate__(self, state):
        net = state.get("net_")
        if isinstance(net, _SerializedNet):
            state = {**state, "net_": net.load()}
        if "loss_curve_" in state and "loss_" not in state:  # pickled before loss_ (0.2.x)
            state = {**state, "loss_": (state["loss_curve_"] or [None])[-1]}
        super().__setstate__(state)
        if "net_" in state and "coefs_" in state:
            self._chain = self._export_chain()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class _SerializedNet(bytes):
    """A skorch net saved with ``torch.save`` inside an estimator's pickle."""

    def load(self):
        available = {"cuda": torch.cuda.is_available(),
                     "mps": torch.backends.mps.is_available(), "cpu": True}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # weights_only default notices
            net = torch.load(io.BytesIO(self), weights_only=False, map_location=(
                lambda storage, location: storage if available.get(
                    location.split(":")[0], False) else storage.cpu()))
        if not available.get(torch.device(net.device).type, False):
            warnings.warn(
                f"This model was trained on {net.device!r}, which is not available here; "
                f"it was loaded on the CPU.", UserWarning, stacklevel=3)
            net.device = "cpu"
        return net


class ClassifierHeadMixin(ClassifierMixin):
    """Classifier head: labels of any type, multiclass (softmax) or multilabel (sigmoids).

    Binary problems use two softmax outputs (``n_outputs_ == 2``), where
    ``MLPClassifier`` uses one logistic output.
    """

    _head_constraints = {"class_weight": [dict, StrOptions({"balanced"}), None]}
    _net_class = ResidentClassifierNet
    _y_numeric = False

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Run one epoch over ``(X, y)``, continuing from the current model.

        The optimiser state is kept between calls; the learning rate and temperature are
        not scheduled (``lr`` and ``temperature`` apply).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
        classes : array-like of shape (n_classes,), default=None
            Every class that ``y`` can hold, required on the first call (as in
            ``MLPClassifier``) unless ``y`` is a multilabel indicator matrix.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        return self._partial_fit(X, y, sample_weight, classes)

    def _criterion(self):
        return torch.nn.BCEWithLogitsLoss if self._multilabel else torch.nn.CrossEntropyLoss

    def _predict_nonlinearity(self):
        return torch.sigmoid if self._multilabel else _softmax_last

    def _stratify(self, y_encoded):
        return None if self._multilabel else y_encoded

    def _encode_targets(self, y, weights, *, first, classes, incremental):
        multilabel = self._check_label_form(y, "y", first=first)
        if first:
            self._set_classes(y, multilabel, classes, incremental)
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(
                f"classes={classes!r} is not the same as on the first call to partial_fit "
                f"({self.classes_!r})."
            )
        if self._multilabel and self.class_weight is not None:
            raise ValueError("class_weight is not supported with multilabel y.")
        among, hint = (("partial_fit's classes", "") if incremental else (
            "the classes of the first fit",
            "; warm_start continues the fitted model and needs the same classes"))
        y_encoded = self._encode_labels(y, "y", among, hint)
        if self._multilabel:
            return y_encoded, weights
        missing = [] if first or incremental else np.setdiff1d(self.classes_, y)
        if len(missing):  # as MLPClassifier: a warm start is trained on every class again
            raise ValueError(
                f"warm_start continues the fitted model and needs y to hold the same "
                f"classes as the first fit {self.classes_.tolist()}; y lacks "
                f"{missing.tolist()}. Refit with warm_start=False, or use partial_fit "
                f"(batches may hold a subset of its classes)."
            )
        return y_encoded, self._apply_class_weight(y, y_encoded, weights, incremental)

    def _encode_validation_targets(self, y_val, weights, y):
        """``y_val`` encoded as the training targets, ``weights`` times the class weights
        of the training targets ``y``."""
        self._check_label_form(y_val, "y_val")
        y_encoded = self._encode_labels(y_val, "y_val", "the classes of y")
        if self._multilabel:
            return y_encoded, weights
        return y_encoded, self._apply_class_weight(y, y_encoded, weights, incremental=False,
                                                   name="sample_weight_val")

    def _check_label_form(self, y, name, first=False):
        """Whether ``y`` is a multilabel matrix; unless ``first``, it must have the form
        of the fitted model's targets."""
        multilabel = type_of_target(y) == "multilabel-indicator"
        if not multilabel:
            check_classification_targets(y)
        if not first and (multilabel != self._multilabel
                          or (multilabel and y.shape[1] != self.n_outputs_)):
            raise ValueError(
                f"{name} must have the form of the data this model was fitted on "
                f"({'a multilabel indicator matrix with ' + str(self.n_outputs_) + ' columns' if self._multilabel else 'class labels'})."
            )
        return multilabel

    def _encode_labels(self, y, name, among, hint=""):
        """Labels as class codes (a float matrix for multilabel ``y``); a label outside
        ``classes_`` is an error."""
        if self._multilabel:
            if not np.isin(y, (0, 1)).all():
                raise ValueError(f"A multilabel {name} must be an indicator matrix of 0 and 1.")
            return np.asarray(y, dtype=np.float32)
        unseen = np.setdiff1d(np.unique(y), self.classes_)
        if len(unseen):
            raise ValueError(f"{name} holds label(s) {unseen.tolist()} not among {among} "
                             f"{self.classes_.tolist()}{hint}.")
        return np.searchsorted(self.classes_, y).astype(np.int64)

    def _set_classes(self, y, multilabel, classes, incremental):
        self._multilabel = multilabel
        self.out_activation_ = "logistic" if multilabel else "softmax"
        if multilabel:
            self.classes_ = np.arange(y.shape[1])
            self.n_outputs_ = y.shape[1]
            return
        if incremental and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        self.classes_ = LabelEncoder().fit(y if classes is None else classes).classes_
        if len(self.classes_) < 2:
            label = self.classes_[0]
            label = label.item() if isinstance(label, np.generic) else label  # not np.int64(0)
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in y; "
                f"got 1 class ({label!r})."
            )
        self.n_outputs_ = len(self.classes_)

    def _apply_class_weight(self, y, y_encoded, weights, incremental, name="sample_weight"):
        """``weights`` times the class weights of the labels ``y_encoded`` ("balanced"
        counts the classes in ``y``)."""
        if self.class_weight is None:
            return weights
        if self.class_weight == "balanced" and incremental:
            raise ValueError(
                "class_weight='balanced' is not supported by partial_fit (the class "
                "frequencies of the whole data are unknown); pass a dict of weights."
            )
        per_class = compute_class_weight(self.class_weight, classes=self.classes_,
                                         y=y if self.class_weight == "balanced" else self.classes_)
        if not (np.isfinite(per_class).all() and (per_class >= 0).all()
                and per_class.sum() > 0):
            raise ValueError(
                f"class_weight must give finite, non-negative weights, not all zero; got "
                f"{self.class_weight!r}."
            )
        class_weights = per_class[y_encoded]
        weights = class_weights if weights is None else weights * class_weights
        if not weights.sum() > 0:
            raise ValueError(f"{name} times class_weight is zero for every sample.")
        return weights

    def _valid_score(self, outputs, y, w):
        """Validation accuracy (subset accuracy for multilabel), weighted."""
        if outputs.dim() == 3:
            return float(np.mean([self._valid_score(o, y, w) for o in outputs]))
        if self._multilabel:
            correct = ((outputs > 0) == (y > 0.5)).all(dim=1)
        else:
            correct = outputs.argmax(dim=1) == y
        correct = correct.double().cpu().numpy()
        return float(np.average(correct, weights=None if w is None else w.cpu().numpy()))

    def decision_function(self, X):
        """Raw network outputs: shape (n_samples,) for two classes (the second logit minus
        the first), else (n_samples, ``n_outputs_``)."""
        return decision(self._forward_outputs(X), self.out_activation_)

    def predict_log_proba(self, X):
        """Log class probabilities, shape (n_samples, ``n_outputs_``), in ``classes_`` order."""
        return log_probabilities(self._forward_outputs(X), self.out_activation_)

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, ``n_outputs_``), columns in ``classes_``
        order; for multilabel ``y``, one independent probability per label."""
        return probabilities(self._forward_outputs(X), self.out_activation_)

    def predict(self, X):
        """Predicted class labels (shape (n_samples,)), or the indicator matrix for
        multilabel ``y``."""
        return labels(self._forward_outputs(X), self.out_activation_, self.classes_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class RegressorHeadMixin(RegressorMixin):
    """Regressor head: real targets, one or several outputs, standardised inside ``fit``.

    The network is trained on ``(y - mean) / std`` (statistics of the first fit) and its
    outputs are mapped back, so unscaled targets work out of the box — a step beyond
    ``MLPRegressor``. The map is folded into the last layer of the exported arrays.
    """

    _head_constraints = {"loss": [StrOptions({"squared_error", "absolute_error", "huber"})]}
    _net_class = ResidentRegressorNet
    _y_numeric = True
    _LOSSES = {"squared_error": torch.nn.MSELoss, "absolute_error": torch.nn.L1Loss,
               "huber": torch.nn.HuberLoss}

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Run one epoch over ``(X, y)``, continuing from the current model.

        The optimiser state and the target standardisation of the first call are kept;
        the learning rate and temperature are not scheduled.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        return self._partial_fit(X, y, sample_weight)

    def _criterion(self):
        return self._LOSSES[self.loss]

    def _predict_nonlinearity(self):
        return None

    def _stratify(self, y_encoded):
        return None

    def _encode_targets(self, y, weights, *, first, classes, incremental, name="y"):
        y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        if not np.isfinite(y2).all():
            raise ValueError(f"{name} contains NaN or infinity.")
        if first:
            self.out_activation_ = "identity"
            self._single_output = y.ndim == 1
            self.n_outputs_ = y2.shape[1]
            self._target_mean = np.average(y2, axis=0, weights=weights)
            with np.errstate(over="ignore", invalid="ignore"):  # checked just below
                scale = np.sqrt(np.average((y2 - self._target_mean) ** 2, axis=0,
                                           weights=weights))
            if not (np.isfinite(scale).all() and np.isfinite(self._target_mean).all()):
                raise ValueError(
                    "y is too large to standardise (its variance overflows float64); "
                    "rescale the target."
                )
            # a relative threshold: a constant target gives scale 1 whatever its size
            tiny = 10 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(self._target_mean))
            self._target_scale = np.where(scale > tiny, scale, 1.0)
        elif y2.shape[1] != self.n_outputs_:
            raise ValueError(
                f"{name} has {y2.shape[1]} output(s) but this model was fitted on "
                f"{self.n_outputs_}."
            )
        return ((y2 - self._target_mean) / self._target_scale).astype(np.float32), weights

    def _encode_validation_targets(self, y_val, weights, y):
        """``y_val`` standardised with the training statistics."""
        return self._encode_targets(y_val, weights, first=False, classes=None,
                                    incremental=False, name="y_val")

    def _valid_score(self, outputs, y, w):
        """Validation R² (uniform average over outputs), weighted."""
        if outputs.dim() == 3:
            return float(np.mean([self._valid_score(o, y, w) for o in outputs]))
        return float(r2_score(y.cpu().numpy(), outputs.double().cpu().numpy(),
                              sample_weight=None if w is None else w.cpu().numpy()))

    def _fold_outputs(self, coefs, intercepts, unit_scales):
        scale, mean = self._target_scale, self._target_mean
        coefs, intercepts = list(coefs), list(intercepts)
        if unit_scales is not None:
            unit_scales = list(unit_scales)
            unit_scales[-1] = unit_scales[-1] * scale
        else:  # (n_in, n_out), or a kernel (out, in, kh, kw)
            last = coefs[-1]
            coefs[-1] = last * (scale if last.ndim == 2 else scale.reshape(-1, 1, 1, 1))
        intercepts[-1] = intercepts[-1] * scale + mean
        return coefs, intercepts, unit_scales

    def predict(self, X):
        """Predicted targets, shape (n_samples,) or (n_samples, ``n_outputs_``)."""
        return predictions(self._forward_outputs(X), self._single_output)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
