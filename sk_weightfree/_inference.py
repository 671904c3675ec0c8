"""The one prediction formula of every sk_weightfree network, in numpy and scipy alone.

This module must never import torch, skorch or scikit-learn's estimators: it is what a
model loaded by :func:`sk_weightfree.io.load` predicts with. The formula (the user guide
gives it too) is, for each member of the prediction::

    a = X
    for i, W in enumerate(coefs):
        if paired_inputs: a = [a, -a]
        z = (a @ W) * unit_scales[i] + intercepts[i]
        if i is not the last layer: a = activation(z) * unit_signs[i]
    output = z

One member for every estimator except a weight-agnostic ensemble, whose output is the log of
the mean probability over its members (one per shared weight value).

Layers whose weights are all 0 or one value ``c`` ({0,1} masks, and weight-agnostic masks
with ``c`` factored into the unit scales) are computed as sums of selected inputs (a scipy
CSR matrix of ones) or as a BLAS product, whichever :func:`use_sum_of_inputs` says is faster
for that layer's density and the batch size; both give the same sums.
"""

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, logsumexp

ACTIVATIONS = ("relu", "tanh", "logistic", "identity")
OUT_ACTIVATIONS = ("softmax", "logistic", "identity")
DEFAULT_BATCH_SIZE = 4096
METHODS = ("auto", "sum", "blas")


def _activate(name, z):
    if name == "relu":
        return np.maximum(z, 0.0, out=z)
    if name == "tanh":
        return np.tanh(z, out=z)
    if name == "logistic":
        return expit(z, out=z)
    return z


@dataclass
class LayerSpec:
    """One layer: ``z = (a @ W) * unit_scales + intercepts``, then (hidden layers)
    ``activation(z) * unit_signs``.

    ``W`` is ``coefs``, or ``value * coefs`` when ``value`` is given (``coefs`` is then a
    {0,1} mask, which members of an ensemble can share). It has shape (n_in, n_out), or
    (2 * n_in, n_out) when the network's inputs are paired. ``unit_signs`` None means ones
    (and is ignored on the output layer).
    """

    coefs: np.ndarray
    intercepts: np.ndarray
    unit_scales: np.ndarray
    unit_signs: np.ndarray = None
    value: float = None

    def __post_init__(self):
        self.coefs = np.asarray(self.coefs, dtype=np.float64)
        n_out = self.coefs.shape[1]
        self.intercepts = np.asarray(self.intercepts, dtype=np.float64).reshape(n_out)
        self.unit_scales = np.asarray(self.unit_scales, dtype=np.float64).reshape(n_out)
        if self.unit_signs is not None:
            self.unit_signs = np.asarray(self.unit_signs, dtype=np.float64).reshape(n_out)

    @property
    def weights(self):
        """The layer's weight matrix ``W``."""
        return self.coefs if self.value is None else self.coefs * self.value

    @property
    def shared_value(self):
        """The value ``c`` if every nonzero weight equals ``c`` (1.0 for an empty layer),
        else None: such a layer is a mask times one number."""
        if self.value is not None:
            return self.value
        nonzero = self.coefs[self.coefs != 0]
        if nonzero.size == 0:
            return 1.0
        value = nonzero[0]
        return float(value) if np.all(nonzero == value) else None


@dataclass
class NetworkSpec:
    """Everything the prediction formula needs, as numpy arrays.

    Attributes
    ----------
    activation : {"relu", "tanh", "logistic", "identity"}
        Hidden-layer activation.
    out_activation : {"softmax", "logistic", "identity"}
        Output function: softmax (classes), logistic per column (multilabel), identity
        (regression).
    paired_inputs : bool
        Every layer sees its input twice, as ``[a, -a]``.
    members : list of list of LayerSpec
        One network per member; more than one only for weight-agnostic ensembles.
    n_features_in : int
    classes : ndarray or None
        Class labels (None for regressors).
    n_outputs : int
    estimator : str
        Class name of the estimator the spec came from.
    """

    activation: str
    out_activation: str
    paired_inputs: bool
    members: list
    n_features_in: int
    classes: np.ndarray = None
    n_outputs: int = None
    estimator: str = ""
    _plans: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}; got {self.activation!r}.")
        if self.out_activation not in OUT_ACTIVATIONS:
            raise ValueError(
                f"out_activation must be one of {OUT_ACTIVATIONS}; got {self.out_activation!r}."
            )
        if not self.members or not all(self.members):
            raise ValueError("a network needs at least one member with at least one layer.")
        if self.n_outputs is None:
            self.n_outputs = self.members[0][-1].coefs.shape[1]

    @property
    def is_classifier(self):
        return self.classes is not None

    @property
    def multilabel(self):
        return self.is_classifier and self.out_activation == "logistic"

    @property
    def layer_shapes(self):
        return [layer.coefs.shape for layer in self.members[0]]

    def plan(self):
        """The compiled layers (cached): per member, per layer, a :class:`_LayerPlan`."""
        if "members" not in self._plans:
            shared = {}  # members with the same mask share its matrices
            self._plans["members"] = [
                [_LayerPlan(layer, self.paired_inputs, i < len(member) - 1, shared)
                 for i, layer in enumerate(member)]
                for member in self.members
            ]
        return self._plans["members"]


def spec_from_estimator(est):
    """Build a :class:`NetworkSpec` from a fitted estimator's public attributes.

    Reads ``coefs_``, ``intercepts_``, ``unit_scales_``, ``unit_signs_``,
    ``paired_inputs_``, ``activation``, ``out_activation_``, ``classes_``,
    ``n_features_in_`` and, where the estimator has it, ``_prediction_members()`` (the
    members of a weight-agnostic ensemble). Missing optional attributes take their
    documented defaults (unit scales and signs of ones, no paired inputs, no intercepts,
    softmax output for classifiers and identity for regressors). Also reads the older
    names ``unit_offsets_`` (as intercepts) and ``layer_scales_`` (one scale per layer).
    """
    if not hasattr(est, "coefs_"):
        raise ValueError(f"{type(est).__name__} is not fitted (it has no coefs_).")
    if getattr(est, "module", None) is not None:
        raise ValueError(
            f"This {type(est).__name__} was fitted with a module template (module="
            f"{getattr(est.module, '__name__', type(est.module).__name__)}); the compact "
            f"file and the ONNX export describe the multilayer network only. Pickle the "
            f"estimator, or save the plain torch module of to_module() where it exists."
        )
    coefs = [np.asarray(c, dtype=np.float64) for c in est.coefs_]
    n_layers = len(coefs)
    is_classifier = hasattr(est, "classes_")
    paired = bool(getattr(est, "paired_inputs_", False))

    def per_unit(values, default):
        if values is None:
            return [np.full(c.shape[1], default, dtype=np.float64) for c in coefs]
        return [np.asarray(v, dtype=np.float64) for v in values]

    if hasattr(est, "_prediction_members"):
        raw_members = list(est._prediction_members())
    else:
        raw_members = _legacy_members(est, coefs)
    signs = getattr(est, "unit_signs_", None)
    signs = [None] * n_layers if signs is None else [*signs, None]
    if len(signs) != n_layers:
        raise ValueError(
            f"{type(est).__name__} has {len(signs) - 1} unit_signs_ arrays for "
            f"{n_layers - 1} hidden layers."
        )
    members = []
    for member_coefs, member_intercepts, member_scales in raw_members:
        member_intercepts = per_unit(member_intercepts, 0.0)
        member_scales = per_unit(member_scales, 1.0)
        members.append([
            LayerSpec(c, b, s, signs[i]) for i, (c, b, s)
            in enumerate(zip(member_coefs, member_intercepts, member_scales))
        ])
    default_out = "softmax" if is_classifier else "identity"
    return NetworkSpec(
        activation=est.activation,
        out_activation=getattr(est, "out_activation_", default_out),
        paired_inputs=paired,
        members=members,
        n_features_in=int(est.n_features_in_),
        classes=np.asarray(est.classes_) if is_classifier else None,
        n_outputs=int(getattr(est, "n_outputs_", coefs[-1].shape[1])),
        estimator=type(est).__name__,
    )


def _legacy_members(est, coefs):
    """Members of an estimator without ``_prediction_members`` (releases before 0.2)."""
    intercepts = getattr(est, "intercepts_", None)
    if intercepts is None:
        intercepts = getattr(est, "unit_offsets_", None)
    scales = getattr(est, "unit_scales_", None)
    layer_scales = getattr(est, "layer_scales_", None)
    if scales is None and layer_scales is not None:
        scales = [np.full(c.shape[1], s) for c, s in zip(coefs, layer_scales)]
    if getattr(est, "ensemble", False) and hasattr(est, "masks_"):
        values = np.asarray(est.weight_values, dtype=np.float64).ravel()
        return [([w * np.asarray(m, dtype=np.float64) for m in est.masks_], intercepts, scales)
                for w in values]
    return [(coefs, intercepts, scales)]


# ---------------------------------------------------------------------------- compute
# The rule below comes from benchmarks/compact.py (2 shared x86-64 cores, OpenBLAS, float64):
# a sum of selected inputs (CSR of ones) costs about 2-3 ns per kept edge and sample, a BLAS
# product 0.1 ns (large batches) to 0.35 ns (one sample, matrix-vector) per possible edge
# and sample, plus fixed overheads that dominate small layers. So the sum wins when the
# layer is sparse enough: at density <= 10% for up to 64 samples, <= 3% for larger batches,
# and never on layers with fewer than 4,096 possible edges.
SUM_MAX_DENSITY_SMALL_BATCH = 0.10
SUM_MAX_DENSITY_LARGE_BATCH = 0.03
SMALL_BATCH = 64
SUM_MIN_EDGES = 4096


def use_sum_of_inputs(density, n_edges, batch_size):
    """Whether a {0,1} layer of this density and size is faster as a sum of selected inputs
    than as a dense BLAS product, for ``batch_size`` rows."""
    if n_edges < SUM_MIN_EDGES:
        return False
    limit = SUM_MAX_DENSITY_SMALL_BATCH if batch_size <= SMALL_BATCH else SUM_MAX_DENSITY_LARGE_BATCH
    return density <= limit


class _LayerPlan:
    """One layer ready to run: paired inputs folded into a signed matrix, a shared weight
    value folded into the unit scales, the CSR form built on first use."""

    def __init__(self, layer, paired, hidden, shared):
        value = layer.shared_value
        self.binary = value is not None
        key = (id(layer.coefs), value if layer.value is None else None)
        if key not in shared:
            # W / c has entries in {0, 1}, or {-1, 0, 1} once paired inputs are folded:
            # sums and differences of selected inputs (c / c is exact)
            matrix = layer.coefs if self.binary and layer.value is not None else (
                layer.coefs / value if self.binary else layer.coefs)
            if paired:
                n_in = matrix.shape[0] // 2
                # [a, -a] @ W == a @ (W[:n] - W[n:]): one product instead of two
                matrix = matrix[:n_in] - matrix[n_in:]
            shared[key] = _Matrix(matrix)
        self.matrix = shared[key]
        self.scales = layer.unit_scales * value if self.binary else layer.unit_scales
        self.intercepts = layer.intercepts
        self.hidden = hidden
        self.signs = layer.unit_signs if hidden else None

    def product(self, a, method):
        matrix = self.matrix
        if sp.issparse(a):
            return np.asarray(a @ matrix.dense)
        if self.binary and (method == "sum" or (
                method == "auto" and use_sum_of_inputs(matrix.density, matrix.dense.size, len(a)))):
            return np.asarray((matrix.selection @ a.T).T)
        return a @ matrix.dense

    def __call__(self, a, activation, method, product=None):
        z = self.product(a, method) if product is None else product.copy()
        z *= self.scales
        z += self.intercepts
        if self.hidden:
            z = _activate(activation, z)
            if self.signs is not None:
                z *= self.signs
        return z


class _Matrix:
    """A layer's matrix, dense for BLAS and (on first use) as CSR for sums of inputs."""

    def __init__(self, dense):
        self.dense = dense
        self.density = np.count_nonzero(dense) / max(dense.size, 1)
        self._selection = None

    @property
    def selection(self):
        """The transposed {-1, 0, 1} matrix as CSR: row k lists the inputs unit k sums."""
        if self._selection is None:
            self._selection = sp.csr_matrix(self.dense.T)
        return self._selection


def _check_method(method):
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}.")


def forward(spec, X, batch_size=DEFAULT_BATCH_SIZE, method="auto"):
    """The network's output ``z`` for ``X``, float64, shape (n_samples, n_outputs).

    Logits for classifiers (for an ensemble, the log of the mean probability over its
    members), the prediction itself for regressors.

    Parameters
    ----------
    spec : NetworkSpec
    X : ndarray or scipy sparse matrix of shape (n_samples, n_features)
        Already validated (finite, float64, right width); sparse rows are processed batch
        by batch and never densified.
    batch_size : int, default=4096
        Rows per batch: memory is bounded by it; the output does not depend on it.
    method : {"auto", "sum", "blas"}, default="auto"
        How {0,1} layers are computed: chosen per layer and batch ("auto"), always as sums
        of selected inputs, or always as BLAS products.
    """
    _check_method(method)
    if not (isinstance(batch_size, (int, np.integer)) and batch_size >= 1):
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}.")
    n_samples = X.shape[0]
    outputs = [_forward_batch(spec, X[start:start + batch_size], method)
               for start in range(0, n_samples, batch_size)]
    if not outputs:
        return np.empty((0, spec.members[0][-1].coefs.shape[1]))
    return np.concatenate(outputs)


def _forward_batch(spec, X, method):
    plans = spec.plan()
    if sp.issparse(X):
        X = X.tocsr()
    else:
        X = np.asarray(X, dtype=np.float64)
    outputs = []
    first_products = {}  # ensemble members share their first mask and its input, X
    for member in plans:
        first, *rest = member
        if len(plans) > 1 and id(first.matrix) not in first_products:
            first_products[id(first.matrix)] = first.product(X, method)
        a = first(X, spec.activation, method, first_products.get(id(first.matrix)))
        for layer in rest:
            a = layer(a, spec.activation, method)
        outputs.append(a)
    if len(outputs) == 1:
        return outputs[0]
    stacked = np.stack(outputs)
    if spec.out_activation == "softmax":
        log_proba = stacked - logsumexp(stacked, axis=2, keepdims=True)
        return logsumexp(log_proba, axis=0) - np.log(len(outputs))
    if spec.out_activation == "logistic":
        proba = expit(stacked).mean(axis=0)
        return np.log(proba) - np.log1p(-proba)
    return stacked.mean(axis=0)


def softmax(z):
    """Row-wise softmax of logits, rows summing to one."""
    log_proba = z - logsumexp(z, axis=1, keepdims=True)
    proba = np.exp(log_proba)
    return proba / proba.sum(axis=1, keepdims=True)
