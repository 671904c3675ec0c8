"""What every estimator shares: :class:`BaseNetwork`, the fit lifecycle and the parameters.

The rest of the machinery lives by concern in the mixins it is made of: the fit's data
(:mod:`._data`), templates (:mod:`._templating`), the skorch net (:mod:`._net`), the fitted
form and prediction (:mod:`._export`); :class:`ClassifierHeadMixin` and
:class:`RegressorHeadMixin` (:mod:`._heads`) add what differs between a classifier and a
regressor (targets, loss, answers). A family module defines one base holding its network
and search or pruning rule, and its classifier and regressor are that base with a head.
"""

import io
import warnings
from abc import ABCMeta, abstractmethod
from contextlib import nullcontext
from itertools import islice
from numbers import Integral, Real

import numpy as np
import torch
from skorch.helper import predefined_split
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn_compat.base import _fit_context

from ._data import TrainingDataMixin
from ._export import NON_FINITE_TRAINING, FittedFormMixin
from ._heads import ClassifierHeadMixin, RegressorHeadMixin, _softmax_last
from ._inference import MAX_BATCH_VALUES
from ._net import OPTIMIZERS, NetMixin, _no_output
from ._architecture import check_architecture
from ._params import (ArchitectureList, DeviceString, PositiveInts, SkorchCallbacks,
                      parse_device, positive_ints)
from ._templating import TemplateMixin
from ._threads import fit_threads, step_work, torch_threads
from ._training import DeviceBatchIterator
from .nn import ACTIVATIONS
from .nn._layers import weightable_norms

__all__ = ["BaseNetwork", "ClassifierHeadMixin", "RegressorHeadMixin", "NON_FINITE_TRAINING",
           "resolve_device", "store_params",
           # pickles of fitted models (0.2.x on) name these functions here
           "_no_output", "_softmax_last"]


#: The batch-norm statistics of the final network are re-estimated on at most this many
#: training rows (one batch when a batch is larger): the standard error of a unit's mean
#: is then at most 1 % of its standard deviation. On Fashion-MNIST (50,000 rows, 5
#: epochs, seeds 0-2) validation accuracy moved by -0.0008 to +0.0007 against the whole
#: pass in batches, within its seed spread (``benchmarks/recalibration.py``).
RECALIBRATION_ROWS = 10_240
#: Rows per forward pass of the recalibration of a multilayer perceptron. The pass pools
#: its chunks' moments; larger chunks mean fewer calls, and statistics nearer those each
#: layer sees at prediction (during the pass, the layers below it normalise each chunk
#: with the chunk's own statistics).
RECALIBRATION_CHUNK = 1_024


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


def _same_param(a, b):
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):  # (an architecture)
        return len(a) == len(b) and all(_same_param(x, y) for x, y in zip(a, b))
    try:
        return bool(np.all(np.asarray(a, dtype=object) == np.asarray(b, dtype=object))) \
            and np.shape(a) == np.shape(b)
    except (TypeError, ValueError):
        return a is b


class BaseNetwork(TrainingDataMixin, TemplateMixin, NetMixin, FittedFormMixin, BaseEstimator,
                  metaclass=ABCMeta):
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
        "n_threads": [None, Interval(Integral, 1, None, closed="left")],
        "module": [None, callable],
        "input_shape": [None, PositiveInts(allow_empty=False)],
        "callbacks": [None, SkorchCallbacks()],
        "architecture": [None, ArchitectureList()],
    }

    # Defaults for models pickled before these parameters existed.
    module = None
    input_shape = None
    callbacks = None
    n_threads = None
    architecture = None
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
        if self.architecture is not None:
            check_architecture(self.architecture)  # the form; the shapes at the build
        return {"_hidden_sizes": positive_ints(self.hidden_layer_sizes),
                "_input_shape": (None if self.input_shape is None
                                 else positive_ints(np.ravel(self.input_shape)))}

    def _architecture_edges(self, shapes):
        """``architecture`` checked against the network's weight layers (``shapes``, in
        torch layout: ``(out, in)`` or ``(out, in, kh, kw)``, without pairing), as boolean
        tensors in that layout; a ``ValueError`` naming the layer otherwise."""
        shapes = [tuple(shape) for shape in shapes]
        checked = check_architecture(self.architecture, [
            shape[::-1] if len(shape) == 2 else shape for shape in shapes])
        return [torch.from_numpy(np.ascontiguousarray(a.T if a.ndim == 2 else a))
                for a in checked]

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
        self._check_callbacks()
        resolve_device(self.device)
        return self

    def _train(self, train_data, epochs, incremental):
        """Run the training; the default is plain skorch training for ``epochs``."""
        self.net_.partial_fit(train_data, epochs=epochs)

    def _finish_training(self, train_data, valid_data):
        """Work after training and before export: networks with batch norm re-estimate
        its statistics with the final hard masks (:meth:`_recalibration_batches`)."""
        module = self.net_.module_
        if hasattr(module, "recalibrate_norms"):
            module.recalibrate_norms(self._recalibration_batches(train_data))

    def _recalibration_batches(self, train_data):
        """``(X, sample_weight)`` chunks of a random subsample of the training rows: at most
        :data:`RECALIBRATION_ROWS` rows (one batch when a batch is larger), in chunks of
        :data:`RECALIBRATION_CHUNK` rows for a multilayer perceptron (fewer for wide
        inputs, as prediction bounds its batches) and of the batch size for a template."""
        chunk = self.batch_size
        if self.module is None:
            widest = MAX_BATCH_VALUES // max(1, self.n_features_in_)
            chunk = max(chunk, min(RECALIBRATION_CHUNK, widest))
        # shuffled, so that sorted data cannot give single-class batches
        generator = torch.Generator().manual_seed(self._sample_seed)
        chunks = DeviceBatchIterator(train_data, chunk, shuffle=True, generator=generator)
        batches = ((X, None if w is None else w * train_data.weight_mean)
                   for X, (_, w) in chunks)
        return islice(batches, max(1, RECALIBRATION_ROWS // chunk))

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
        "torch_compile", "n_threads", "class_weight", "random_state", "device",
        "callbacks",
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
        self._check_callbacks()
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
            self._warn_about_features(X)
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
            self.net_ = self._make_net(
                module, device, torch.Generator().manual_seed(int(shuffle_seed)))
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
        net.scheduled = not incremental  # partial_fit keeps the schedules still
        self._check_batch_norms(net.module_)
        # Layers that draw random numbers (dropout in a template) use torch's global
        # generator: seed it from random_state for this fit, and leave the caller's as it was.
        devices = [] if device.type != "cuda" else [
            torch.cuda.current_device() if device.index is None else device.index]
        self.n_threads_ = fit_threads(self.n_threads, step_work(net.module_, self.batch_size))
        with torch_threads(self.n_threads_):
            try:
                # weighted batch norms keep one forward pass over the fit (torch.compile)
                weighting = (nullcontext() if train_data.w is None
                             else weightable_norms(net.module_))
                with torch.random.fork_rng(devices=devices), weighting:
                    torch.manual_seed(self._sample_seed + n_epochs_before)
                    self._train(train_data, 1 if incremental else self.max_epochs,
                                incremental)
                    self._finish_training(train_data, valid_data)
            finally:
                net.train_split = net.valid_score_fn = None
                net.__dict__.pop("_last_epoch_state", None)
            n_epochs = len(net.history) - n_epochs_before
            self.t_ += len(train_data) * n_epochs
            if not incremental:
                self._warn_if_not_converged(n_epochs)
            self._export_fitted_attributes()
        return self

    def _warn_about_features(self, X):
        """Warn about training features the family is known to handle badly (first fit)."""

    def _last_phase_epochs(self, n_epochs):
        """How many of a fit's last ``n_epochs`` trained the network it ends with (the
        stopping rule starts again after each pruning)."""
        return n_epochs

    def _warn_if_not_converged(self, n_epochs):
        """``ConvergenceWarning`` when ``max_epochs`` ended a fit whose last epoch still
        improved the stopping rule's quantity by more than ``tol`` (MLPClassifier's rule)."""
        if n_epochs < self.max_epochs or self.net_.interrupted_:
            return
        key = "valid_score" if self.early_stopping else "train_loss"
        values = self.net_.history[-self._last_phase_epochs(n_epochs):, key]
        if self.early_stopping:
            values = [-value for value in values]
        if len(values) > 1 and min(values[:-1]) - values[-1] <= self.tol:
            return
        quantity = "validation score" if self.early_stopping else "training loss"
        warnings.warn(
            f"{type(self).__name__}: max_epochs={self.max_epochs} reached while the "
            f"{quantity} was still improving by more than tol={self.tol}; the fit has not "
            "converged yet (raise max_epochs for one that has).",
            ConvergenceWarning, stacklevel=6)  # the caller of fit

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


