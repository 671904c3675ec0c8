"""The fit's data: training, target, weight and validation-set checks, and the split that
early stopping holds out (the estimators' :class:`TrainingDataMixin`)."""

import warnings

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.utils import column_or_1d
from sklearn.utils.validation import check_array, check_consistent_length
from sklearn_compat.utils.validation import validate_data

from ._training import ResidentData, weighted_rows

FLOAT32_MAX = float(np.finfo(np.float32).max)
# Training squares values in float32 (batch statistics, the optimiser's second moments), so
# features beyond the square root of float32's range overflow in some family or other: one
# limit for all of them, checked before any training.
FEATURE_LIMIT = float(np.sqrt(FLOAT32_MAX))


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


class TrainingDataMixin:
    """Input, target, sample-weight and validation-set checks of ``fit``, and the
    device-resident data sets they give. The head encodes the targets
    (``_encode_targets``)."""

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
