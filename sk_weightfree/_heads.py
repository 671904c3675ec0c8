"""The classifier and regressor heads: targets, loss, and the answers (labels,
probabilities, predictions) from the network's output by :mod:`sk_weightfree._inference`'s
head rules."""

import numpy as np
import torch
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import r2_score
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn_compat.base import _fit_context

from ._inference import decision, labels, log_probabilities, predictions, probabilities
from ._training import ResidentClassifierNet, ResidentRegressorNet

def _softmax_last(x):
    return torch.softmax(x, dim=-1)


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
