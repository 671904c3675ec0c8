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

A network fitted from a ``module`` template is a :class:`ChainSpec` instead: operations
(reshape, ``[h, -h]``, linear, 2-D convolution as an im2col product, per-unit affine maps,
activations, pooling) applied in order. :func:`chain_from_estimator` builds it by tracing the
fitted torch network with ``torch.fx`` (torch is imported there only, on the dumping side).

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

    An estimator fitted with a ``module`` template gives a :class:`ChainSpec` instead
    (see :func:`chain_from_estimator`).

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
        return chain_from_estimator(est)
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
    spec : NetworkSpec or ChainSpec
    X : ndarray or scipy sparse matrix of shape (n_samples, n_features)
        Already validated (finite, float64, right width); sparse rows are processed batch
        by batch and never densified (a :class:`ChainSpec` densifies one batch at a time).
    batch_size : int, default=4096
        Rows per batch: memory is bounded by it; the output does not depend on it. A
        :class:`ChainSpec` takes fewer rows when a batch's largest intermediate array
        (a convolution's unfolded input) would exceed :data:`MAX_BATCH_VALUES` values.
    method : {"auto", "sum", "blas"}, default="auto"
        How {0,1} layers are computed: chosen per layer and batch ("auto"), always as sums
        of selected inputs, or always as BLAS products (convolutions: always BLAS).
    """
    _check_method(method)
    if not (isinstance(batch_size, (int, np.integer)) and batch_size >= 1):
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}.")
    if isinstance(spec, ChainSpec):
        return _forward_chain(spec, X, batch_size, method)
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


# ---------------------------------------------------------------------------- templates
# A network fitted from a ``module`` template (dense, pruned, weight-free and random
# families) is stored and predicted as a *chain*: a sequence of operations, each taking the
# previous one's output alone. Shapes below are those of one sample (the batch axis left
# out); the chain starts from a flat row of ``n_features_in`` values.
MAX_BATCH_VALUES = 2**22  # float64 values of a batch's largest intermediate array (32 MiB)
CHAIN_OPS = ("reshape", "paired", "linear", "conv2d", "affine", "activation", "pool")
POOL_MODES = ("max", "avg")


def _prod(values):
    out = 1
    for v in values:
        out *= int(v)
    return out


class _Op:
    """One operation of a :class:`ChainSpec`."""

    op = ""
    weight = None  # weight layers: the float64 weight in torch layout

    def out_shape(self, shape):
        """The output shape of one sample for input ``shape``; ValueError if it does not fit."""
        return tuple(shape)

    def values_per_row(self, shape):
        """Float64 values one sample needs while this op runs (its largest array)."""
        return _prod(self.out_shape(shape))

    def describe(self):
        return self.op


class Reshape(_Op):
    """Each sample reshaped to ``shape`` (row-major, as ``torch.reshape``/``nn.Flatten``)."""

    op = "reshape"

    def __init__(self, shape):
        self.shape = tuple(int(s) for s in shape)

    def out_shape(self, shape):
        if _prod(shape) != _prod(self.shape) or min(self.shape, default=1) < 1:
            raise ValueError(f"cannot reshape {tuple(shape)} to {self.shape}")
        return self.shape

    def __call__(self, a):
        return a.reshape(len(a), *self.shape)

    def describe(self):
        return f"reshape{self.shape}"


class Paired(_Op):
    """``[a, -a]`` along the first axis of a sample (features, or channels)."""

    op = "paired"

    def out_shape(self, shape):
        if not shape:
            raise ValueError("paired input needs at least one axis")
        return (2 * shape[0], *shape[1:])

    def __call__(self, a):
        return np.concatenate([a, -a], axis=1)


class _Weighted(_Op):
    """A weight layer: ``weight`` in torch layout (out, in, ...), float64; with ``value``,
    ``weight`` is a {0,1} mask and the layer's weight is ``value * mask``."""

    def __init__(self, weight, value=None):
        self.weight = np.asarray(weight, dtype=np.float64)
        self.value = None if value is None else float(value)

    @property
    def weights(self):
        return self.weight if self.value is None else self.weight * self.value

    @property
    def shared_value(self):
        """As :attr:`LayerSpec.shared_value`: ``c`` when every nonzero weight equals ``c``."""
        if self.value is not None:
            return self.value
        nonzero = self.weight[self.weight != 0]
        if nonzero.size == 0:
            return 1.0
        value = nonzero[0]
        return float(value) if np.all(nonzero == value) else None


class Linear(_Weighted):
    """``a @ W.T`` on samples of shape (in,); ``W`` shaped (out, in)."""

    op = "linear"

    def out_shape(self, shape):
        if len(shape) != 1 or shape[0] != self.weight.shape[1]:
            raise ValueError(f"a linear layer of shape {self.weight.shape} gets samples of "
                             f"shape {tuple(shape)}")
        return (self.weight.shape[0],)

    def describe(self):
        return f"linear({self.weight.shape[1]} -> {self.weight.shape[0]})"


class Conv2d(_Weighted):
    """2-D cross-correlation as ``torch.nn.functional.conv2d`` with ``groups=1``: ``W``
    shaped (out, in, kh, kw), zero ``padding`` ((top, bottom), (left, right))."""

    op = "conv2d"

    def __init__(self, weight, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1),
                 value=None):
        super().__init__(weight, value)
        self.stride = tuple(int(s) for s in stride)
        self.padding = tuple(tuple(int(p) for p in pair) for pair in padding)
        self.dilation = tuple(int(d) for d in dilation)

    def _geometry(self, shape):
        if len(shape) != 3 or shape[0] != self.weight.shape[1]:
            raise ValueError(f"a convolution of weight shape {self.weight.shape} gets "
                             f"samples of shape {tuple(shape)}")
        sizes = []
        for size, (before, after), k, s, d in zip(shape[1:], self.padding,
                                                  self.weight.shape[2:], self.stride,
                                                  self.dilation):
            n = (size + before + after - d * (k - 1) - 1) // s + 1
            if n < 1:
                raise ValueError(f"a convolution's kernel {self.weight.shape[2:]} does not "
                                 f"fit in samples of shape {tuple(shape)}")
            sizes.append(n)
        return tuple(sizes)

    def out_shape(self, shape):
        return (self.weight.shape[0], *self._geometry(shape))

    def values_per_row(self, shape):
        h, w = self._geometry(shape)
        unfolded = _prod(self.weight.shape[1:]) * h * w  # the im2col copy of the input
        padded = shape[0] * (shape[1] + sum(self.padding[0])) * (shape[2] + sum(self.padding[1]))
        return max(unfolded, padded, _prod(self.out_shape(shape)))

    def describe(self):
        out, n_in, kh, kw = self.weight.shape
        return f"conv2d({n_in} -> {out}, {kh}x{kw})"


class Affine(_Op):
    """``a * scale + offset`` per unit or channel (the first axis of a sample): biases,
    eval-mode batch norms, a regressor's target scale. None means ones and zeros."""

    op = "affine"

    def __init__(self, scale=None, offset=None):
        self.scale = None if scale is None else np.asarray(scale, dtype=np.float64).ravel()
        self.offset = None if offset is None else np.asarray(offset, dtype=np.float64).ravel()

    @property
    def size(self):
        return len(self.scale if self.scale is not None else self.offset)

    def out_shape(self, shape):
        for values in (self.scale, self.offset):
            if values is not None and (not shape or len(values) != shape[0]):
                raise ValueError(f"{len(values)} per-unit values for samples of shape "
                                 f"{tuple(shape)}")
        return tuple(shape)

    def then(self, other):
        """The affine map ``other(self(a))`` as one."""
        scale = other.scale if self.scale is None else (
            self.scale if other.scale is None else self.scale * other.scale)
        offset = self.offset
        if offset is not None and other.scale is not None:
            offset = offset * other.scale
        if other.offset is not None:
            offset = other.offset if offset is None else offset + other.offset
        return Affine(scale, offset)

    def __call__(self, a):
        trailing = (1,) * (a.ndim - 2)
        if self.scale is not None:
            a = a * self.scale.reshape(-1, *trailing)
        if self.offset is not None:
            a = a + self.offset.reshape(-1, *trailing)
        return a


class Activation(_Op):
    """An elementwise activation of :data:`ACTIVATIONS`."""

    op = "activation"

    def __init__(self, name):
        if name not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}; got {name!r}.")
        self.name = name

    def __call__(self, a):
        return _activate(self.name, a)

    def describe(self):
        return self.name


class Pool2d(_Op):
    """Max or average pooling over ``kernel`` windows moved by ``stride``, no padding,
    windows that do not fit dropped (``ceil_mode=False``)."""

    op = "pool"

    def __init__(self, mode, kernel, stride):
        if mode not in POOL_MODES:
            raise ValueError(f"pool mode must be one of {POOL_MODES}; got {mode!r}.")
        self.mode = mode
        self.kernel = tuple(int(k) for k in kernel)
        self.stride = tuple(int(s) for s in stride)

    def out_shape(self, shape):
        if len(shape) != 3 or any(n < k for n, k in zip(shape[1:], self.kernel)):
            raise ValueError(f"a {self.kernel} pooling gets samples of shape {tuple(shape)}")
        return (shape[0], *((n - k) // s + 1
                            for n, k, s in zip(shape[1:], self.kernel, self.stride)))

    def __call__(self, a):
        (kh, kw), (sh, sw) = self.kernel, self.stride
        h, w = ((n - k) // s + 1 for n, k, s in zip(a.shape[2:], self.kernel, self.stride))
        out = None
        for i in range(kh):  # one elementwise step per kernel tap, over strided slices
            for j in range(kw):
                tap = a[:, :, i:i + sh * (h - 1) + 1:sh, j:j + sw * (w - 1) + 1:sw]
                if out is None:
                    out = tap.copy()
                elif self.mode == "max":
                    np.maximum(out, tap, out=out)
                else:
                    out += tap
        if self.mode == "avg":
            out /= kh * kw
        return out

    def describe(self):
        return f"{self.mode}pool{self.kernel}"


def _conv2d(a, weight, stride, padding, dilation):
    """``torch.nn.functional.conv2d(a, weight, None, stride, padding, dilation)`` in numpy:
    the input, channels last, unfolded with ``sliding_window_view`` (im2col: one row of
    ``in * kh * kw`` values per output position) and multiplied by the kernels with BLAS."""
    a = a.transpose(0, 2, 3, 1)  # (n, h, w, in): each window's values end up contiguous
    if any(p for pair in padding for p in pair):
        a = np.pad(a, ((0, 0), *padding, (0, 0)))
    n_out, n_in, kh, kw = weight.shape
    (sh, sw), (dh, dw) = stride, dilation
    windows = np.lib.stride_tricks.sliding_window_view(
        a, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(1, 2))
    windows = windows[:, ::sh, ::sw, :, ::dh, ::dw]  # (n, h, w, in, kh, kw)
    n, h, w = windows.shape[:3]
    columns = windows.reshape(n * h * w, n_in * kh * kw)  # the one copy
    out = columns @ weight.reshape(n_out, -1).T
    return np.ascontiguousarray(out.reshape(n, h, w, n_out).transpose(0, 3, 1, 2))


@dataclass
class ChainSpec:
    """A template network as a chain of operations, for numpy prediction.

    Attributes
    ----------
    ops : list of Reshape, Paired, Linear, Conv2d, Affine, Activation, Pool2d
        Applied in order to rows of shape (n_features_in,); the last gives
        (n_samples, n_outputs) (logits for classifiers, the prediction for regressors).
    n_features_in : int
    out_activation : {"softmax", "logistic", "identity"}
    classes : ndarray or None
    n_outputs : int
    estimator : str
    """

    ops: list
    n_features_in: int
    out_activation: str
    classes: np.ndarray = None
    n_outputs: int = None
    estimator: str = ""
    _plans: dict = field(default_factory=dict, repr=False, compare=False)

    activation = None  # the template's own layers say which activations it uses
    paired_inputs = False
    members = ()

    def __post_init__(self):
        if self.out_activation not in OUT_ACTIVATIONS:
            raise ValueError(
                f"out_activation must be one of {OUT_ACTIVATIONS}; got {self.out_activation!r}."
            )
        shapes = self.shapes()
        if len(shapes[-1]) != 1:
            raise ValueError(f"the chain ends with samples of shape {shapes[-1]}; it must end "
                             f"with one value per output.")
        if self.n_outputs is None:
            self.n_outputs = shapes[-1][0]

    @property
    def is_classifier(self):
        return self.classes is not None

    @property
    def multilabel(self):
        return self.is_classifier and self.out_activation == "logistic"

    @property
    def weight_layers(self):
        return [op for op in self.ops if isinstance(op, _Weighted)]

    @property
    def layer_shapes(self):
        """Weight shapes in torch layout, one per weight layer."""
        return [op.weight.shape for op in self.weight_layers]

    def shapes(self):
        """The sample shape before the first op and after each op."""
        shapes = [(int(self.n_features_in),)]
        for i, op in enumerate(self.ops):
            try:
                shapes.append(tuple(op.out_shape(shapes[-1])))
            except ValueError as exc:
                raise ValueError(f"operation {i} ({op.describe()}): {exc}") from None
        return shapes

    def values_per_row(self):
        """Float64 values one sample needs at the widest point of the chain."""
        shapes = self.shapes()
        return max([shapes[0][0]] + [op.values_per_row(shape)
                                     for op, shape in zip(self.ops, shapes)])

    def describe(self):
        return " -> ".join(op.describe() for op in self.ops if op.op not in ("affine",))

    def plan(self):
        """The ops ready to run (cached): paired inputs folded into the next weight layer
        as signed weights (``[a, -a] @ W == a @ (W₊ - W₋)``), shared values into scales."""
        if "ops" not in self._plans:
            plan, ops, i = [], self.ops, 0
            while i < len(ops):
                op = ops[i]
                paired = (isinstance(op, Paired) and i + 1 < len(ops)
                          and isinstance(ops[i + 1], _Weighted))
                if paired:
                    i += 1
                    op = ops[i]
                if isinstance(op, Linear):
                    plan.append(_LinearPlan(op, paired))
                elif isinstance(op, Conv2d):
                    plan.append(_ConvPlan(op, paired))
                else:
                    plan.append(op)
                i += 1
            self._plans["ops"] = plan
        return self._plans["ops"]


def _signed(weight, paired):
    if not paired:
        return weight
    n_in = weight.shape[1] // 2
    return weight[:, :n_in] - weight[:, n_in:]


class _LinearPlan:
    """A linear op; {0,1} (times one value) weights may run as sums of selected inputs."""

    def __init__(self, op, paired):
        value = op.shared_value
        self.binary = value is not None
        weight = op.weight if op.value is not None else (op.weight / value if self.binary
                                                         else op.weight)
        self.matrix = _Matrix(np.ascontiguousarray(_signed(weight, paired).T))
        self.scale = value if self.binary and value != 1.0 else None

    def __call__(self, a, method):
        matrix = self.matrix
        if self.binary and (method == "sum" or (
                method == "auto" and use_sum_of_inputs(matrix.density, matrix.dense.size, len(a)))):
            z = np.asarray((matrix.selection @ a.T).T)
        else:
            z = a @ matrix.dense
        if self.scale is not None:
            z *= self.scale
        return z


class _ConvPlan:
    def __init__(self, op, paired):
        self.weight = _signed(op.weights, paired)
        self.op = op

    def __call__(self, a, method):
        op = self.op
        return _conv2d(a, self.weight, op.stride, op.padding, op.dilation)


def _chain_rows(spec, batch_size):
    return max(1, min(int(batch_size), MAX_BATCH_VALUES // max(1, spec.values_per_row())))


def _forward_chain(spec, X, batch_size, method):
    rows = _chain_rows(spec, batch_size)
    plan = spec.plan()
    outputs = []
    for start in range(0, X.shape[0], rows):
        a = X[start:start + rows]
        # a copy: activations then work in place on arrays the chain owns
        a = a.toarray() if sp.issparse(a) else np.array(a, dtype=np.float64)
        a = a.astype(np.float64, copy=False)
        for step in plan:
            a = step(a, method) if isinstance(step, (_LinearPlan, _ConvPlan)) else step(a)
        outputs.append(a)
    if not outputs:
        return np.empty((0, spec.shapes()[-1][0]))
    return np.concatenate(outputs)


# ---------------------------------------------------------------- templates: from torch
# What follows reads a fitted torch network; it imports torch, and runs only on the side
# that dumps or exports (never at load or predict).
def _refuse(est, piece, why):
    raise ValueError(
        f"This {type(est).__name__}'s network (module={_module_name(est.module)}) cannot be "
        f"written as a chain of supported layers: {piece} {why}. The compact file and the "
        f"ONNX export handle templates whose forward is a chain of Linear, Conv2d "
        f"(groups=1, zero padding), BatchNorm1d/2d, ReLU/Tanh/Sigmoid/Identity, "
        f"MaxPool2d/AvgPool2d (no padding, ceil_mode=False), Flatten/reshape and Dropout; "
        f"pickle the estimator instead."
    )


def _module_name(module):
    if hasattr(module, "func"):  # functools.partial
        module = module.func
    return getattr(module, "__name__", type(module).__name__)


def plain_template_module(est):
    """The fitted template network as plain torch layers, on the CPU in float64, eval mode:
    ``TemplateNetwork.to_module()`` (the reshape, then the body; {0,1} units as
    ``PairedInput -> Conv2d/Linear -> batch norm``). Refuses weight-agnostic networks."""
    import torch

    from .nn import SharedWeightTemplate, TemplateNetwork

    module = est.net_.module_
    if isinstance(module, SharedWeightTemplate):
        raise ValueError(
            f"This {type(est).__name__} was fitted with a module template "
            f"(module={_module_name(est.module)}); weight-agnostic template networks "
            f"(SharedWeightUnit layers evaluated at a shared weight value, with bias nodes) "
            f"are not supported by the compact file or the ONNX export. Pickle the "
            f"estimator instead."
        )
    if not isinstance(module, TemplateNetwork):
        raise ValueError(f"This {type(est).__name__} has a {type(module).__name__} network, "
                         f"not a TemplateNetwork; it cannot be exported.")
    plain = module.to_module().to(device="cpu", dtype=torch.float64).eval()
    return plain


def chain_from_estimator(est):
    """A :class:`ChainSpec` of a fitted estimator with a ``module`` template (dense, pruned,
    weight-free and random families).

    The plain torch network (:func:`plain_template_module`) is traced with
    ``torch.fx``; its graph must be a chain (each operation takes the previous one's
    output alone) of supported layers. Anything else raises ValueError naming the piece.
    The chain is checked against the torch network on a few random rows before it is
    returned.
    """
    import torch

    plain = plain_template_module(est)
    ops = _trace_chain(est, plain)
    n_features = int(est.n_features_in_)
    is_classifier = hasattr(est, "classes_")
    default_out = "softmax" if is_classifier else "identity"
    spec = ChainSpec(ops=_merge_affines(ops), n_features_in=n_features,
                     out_activation=getattr(est, "out_activation_", default_out),
                     estimator=type(est).__name__)
    # the chain must compute what torch computes (a guard against a misread layer)
    rows = np.random.default_rng(0).normal(size=(3, n_features))
    with torch.inference_mode():
        expected = plain(torch.as_tensor(rows)).double().numpy()
    got = forward(spec, rows)
    if got.shape != expected.shape or not np.allclose(got, expected, rtol=1e-6, atol=1e-6):
        _refuse(est, "the traced network", "does not reproduce the torch network's outputs")
    n_last = spec.shapes()[-1][0]
    if is_classifier:
        if n_last != len(est.classes_):
            _refuse(est, "the output", f"has {n_last} values for {len(est.classes_)} classes")
    elif hasattr(est, "_target_scale"):  # regressors: outputs are mapped back to y's scale
        spec.ops = _merge_affines(spec.ops + [Affine(
            np.broadcast_to(np.asarray(est._target_scale, dtype=np.float64), (n_last,)),
            np.broadcast_to(np.asarray(est._target_mean, dtype=np.float64), (n_last,)))])
        spec._plans.clear()
    spec.classes = np.asarray(est.classes_) if is_classifier else None
    spec.n_outputs = int(getattr(est, "n_outputs_", n_last))
    return spec


def _merge_affines(ops):
    merged = []
    for op in ops:
        if isinstance(op, Affine) and merged and isinstance(merged[-1], Affine):
            merged[-1] = merged[-1].then(op)
        elif not (isinstance(op, Affine) and op.scale is None and op.offset is None):
            merged.append(op)
    return merged


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _trace_chain(est, plain):
    """The ops of ``plain``'s fx graph, which must be a chain of supported operations."""
    import operator

    import torch
    from torch import fx, nn
    from torch.nn import functional as F

    from .nn import PairedInput

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m, qualified_name):
            return isinstance(m, PairedInput) or super().is_leaf_module(m, qualified_name)

    try:
        graph = Tracer().trace(plain)
    except Exception as exc:
        _refuse(est, "its forward", f"cannot be traced by torch.fx ({type(exc).__name__}: "
                                    f"{exc})")
    shape = (int(est.n_features_in_),)
    ops = []
    current = None
    sizes = {}  # nodes that hold sizes: the batch size "N", or a tuple of sizes

    body_prefix = f"{len(plain) - 1}."  # to_module(): [Unflatten,] then the template's body

    def where(node):
        if node.op == "call_module":
            name = node.target
            name = name[len(body_prefix):] if name.startswith(body_prefix) else name
            return f"{type(plain.get_submodule(node.target)).__name__} ({name})"
        if node.op == "call_method":
            return f"the tensor method .{node.target}()"
        if node.op == "call_function":
            return f"{getattr(node.target, '__module__', '') or ''}." \
                   f"{getattr(node.target, '__name__', node.target)}".lstrip(".")
        return f"{node.op} {node.target}"

    def nodes_in(value):
        if isinstance(value, fx.Node):
            return [value]
        if isinstance(value, (list, tuple)):
            return [n for v in value for n in nodes_in(v)]
        if isinstance(value, dict):
            return [n for v in value.values() for n in nodes_in(v)]
        return []

    def bind(node, names, defaults):
        """Positional and keyword arguments after the input, by name."""
        values = dict(defaults)
        values.update(zip(names, node.args[1:]))
        values.update(node.kwargs)
        return values

    def reshape_to(node, target):
        full = (None, *shape)
        if not (isinstance(target, tuple) and target and target[0] in ("N", -1)):
            _refuse(est, where(node), "reshapes across the batch axis (the first size must "
                                      "be the batch size or -1)")
        rest = list(target[1:])
        if any(not isinstance(s, int) for s in rest) or rest.count(-1) > 1:
            _refuse(est, where(node), f"reshapes to sizes {target} that are not plain "
                                      f"integers")
        total = _prod(full[1:])
        if -1 in rest:
            known = _prod(s for s in rest if s != -1)
            if known == 0 or total % known:
                _refuse(est, where(node), f"cannot reshape {shape} to {target}")
            rest[rest.index(-1)] = total // known
        if target[0] == -1 and _prod(rest) != total:
            _refuse(est, where(node), f"cannot reshape {shape} to {target} per sample")
        return Reshape(rest)

    def flatten(node, start, end):
        ndim = len(shape) + 1
        start, end = start % ndim, end % ndim
        if start < 1:
            _refuse(est, where(node), "flattens the batch axis (start_dim must be 1 or more)")
        full = (None, *shape)
        return Reshape(full[1:start] + (_prod(full[start:end + 1]),) + full[end + 1:])

    def convert_module(node, m):
        if isinstance(m, nn.Unflatten):
            ndim = len(shape) + 1
            dim = m.dim % ndim
            if dim < 1:
                _refuse(est, where(node), "unflattens the batch axis")
            return [reshape_to(node, ("N", *shape[:dim - 1], *m.unflattened_size,
                                      *shape[dim:]))]
        if isinstance(m, nn.Flatten):
            return [flatten(node, m.start_dim, m.end_dim)]
        if isinstance(m, PairedInput):
            if m.dim % (len(shape) + 1) != 1:
                _refuse(est, where(node), f"pairs axis {m.dim}; only axis 1 (features or "
                                          f"channels) is supported")
            return [Paired()]
        if type(m) in (nn.Linear, nn.Conv2d):
            weight = (m.weight_orig * m.weight_mask if hasattr(m, "weight_mask")
                      else m.weight).detach().double().numpy().copy()
            if isinstance(m, nn.Conv2d):
                if m.groups != 1 or m.padding_mode != "zeros":
                    _refuse(est, where(node), f"has groups={m.groups}, padding_mode="
                                              f"{m.padding_mode!r} (only groups=1 with zero "
                                              f"padding)")
                kh, kw = weight.shape[2:]
                dilation = _pair(m.dilation)
                if m.padding == "valid":
                    padding = ((0, 0), (0, 0))
                elif m.padding == "same":
                    padding = tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2)
                                    for d, k in zip(dilation, (kh, kw)))
                else:
                    padding = tuple((int(p), int(p)) for p in _pair(m.padding))
                op = Conv2d(weight, _pair(m.stride), padding, dilation)
            else:
                op = Linear(weight)
            bias = None if m.bias is None else m.bias.detach().double().numpy().copy()
            return [op, Affine(None, bias)]
        if type(m) in (nn.BatchNorm1d, nn.BatchNorm2d):
            if m.training or m.running_mean is None or m.running_var is None:
                _refuse(est, where(node), "normalises with batch statistics (no running "
                                          "statistics)")
            from .nn._layers import batch_norm_affine

            scale, offset = batch_norm_affine(m)
            return [Affine(scale.numpy().copy(), offset.numpy().copy())]
        activations = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "logistic"}
        if type(m) in activations:
            return [Activation(activations[type(m)])]
        if type(m) in (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout,
                       nn.FeatureAlphaDropout):
            return []  # identity at inference (the network is in eval mode)
        if type(m) in (nn.MaxPool2d, nn.AvgPool2d):
            mode = "max" if isinstance(m, nn.MaxPool2d) else "avg"
            options = dict(padding=m.padding, ceil_mode=m.ceil_mode,
                           dilation=getattr(m, "dilation", 1),
                           return_indices=getattr(m, "return_indices", False),
                           divisor_override=getattr(m, "divisor_override", None))
            return [pool(node, mode, m.kernel_size, m.stride, options)]
        _refuse(est, where(node), "is not a supported layer")

    def pool(node, mode, kernel, stride, options):
        kernel = _pair(kernel)
        stride = _pair(stride) if stride not in (None, (), []) else kernel
        if (any(_pair(options.get("padding", 0))) or options.get("ceil_mode")
                or _pair(options.get("dilation", 1)) != (1, 1)
                or options.get("return_indices") or options.get("divisor_override")):
            _refuse(est, where(node), f"uses options {options} (only padding=0, dilation=1, "
                                      f"ceil_mode=False are supported)")
        return Pool2d(mode, kernel, stride)

    relus = {torch.relu: "relu", F.relu: "relu", torch.tanh: "tanh", F.tanh: "tanh",
             torch.sigmoid: "logistic", F.sigmoid: "logistic"}
    dropouts = (F.dropout, F.dropout1d, F.dropout2d, F.alpha_dropout,
                F.feature_alpha_dropout)

    def convert_function(node):
        target = node.target
        if target in relus:
            return [Activation(relus[target])]
        if target in dropouts:
            if bind(node, ("p", "training"), {"training": True}).get("training"):
                _refuse(est, where(node), "drops units at inference (training=True)")
            return []
        if target is torch.flatten:
            options = bind(node, ("start_dim", "end_dim"), {"start_dim": 0, "end_dim": -1})
            return [flatten(node, options["start_dim"], options["end_dim"])]
        if target in (torch.reshape,):
            return [reshape_to(node, resolve(node.args[1]))]
        if target in (F.max_pool2d, F.avg_pool2d):
            mode = "max" if target is F.max_pool2d else "avg"
            names = (("kernel_size", "stride", "padding", "dilation", "ceil_mode",
                      "return_indices") if mode == "max" else
                     ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                      "divisor_override"))
            options = bind(node, names, {})
            return [pool(node, mode, options.pop("kernel_size"), options.pop("stride", None),
                         options)]
        _refuse(est, where(node), "is not a supported operation")

    def resolve(value):
        if isinstance(value, fx.Node):
            if value not in sizes:
                _refuse(est, where(value), "is used as a size")
            return sizes[value]
        if isinstance(value, (list, tuple)):
            return tuple(resolve(v) for v in value)
        return value

    def convert_method(node):
        name = node.target
        if name in ("relu", "tanh", "sigmoid"):
            return [Activation({"sigmoid": "logistic"}.get(name, name))]
        if name in ("contiguous",):
            return []
        if name == "flatten":
            options = bind(node, ("start_dim", "end_dim"), {"start_dim": 0, "end_dim": -1})
            return [flatten(node, options["start_dim"], options["end_dim"])]
        if name in ("view", "reshape"):
            args = node.args[1:]
            target = resolve(args[0]) if len(args) == 1 and not isinstance(args[0], int) \
                else resolve(tuple(args))
            return [reshape_to(node, target)]
        _refuse(est, where(node), "is not a supported operation")

    for node in graph.nodes:
        if node.op == "placeholder":
            if current is not None:
                _refuse(est, "its forward", "takes more than one input")
            current = node
            continue
        if node.op == "get_attr":
            _refuse(est, f"the attribute {node.target}", "is read as a tensor outside a "
                                                         "supported layer")
        # sizes: x.shape, x.size(), x.size(0), and items of those
        if node.op == "call_method" and node.target == "size" and node.args[0] is current:
            full = ("N", *shape)
            sizes[node] = full[node.args[1]] if len(node.args) > 1 else full
            continue
        if node.op == "call_function" and node.target is getattr and node.args[0] is current \
                and node.args[1] == "shape":
            sizes[node] = ("N", *shape)
            continue
        if node.op == "call_function" and node.target is operator.getitem \
                and node.args[0] in sizes:
            sizes[node] = sizes[node.args[0]][node.args[1]]
            continue
        if node.op == "output":
            if nodes_in(node.args) != [current]:
                _refuse(est, "its output", "is not the last operation's result alone")
            break
        inputs = [n for n in nodes_in((node.args, node.kwargs)) if n not in sizes]
        if inputs != [current] or node.args[:1] != (current,):
            _refuse(est, where(node), "does not take the previous operation's output alone "
                                      "(the network is not a chain: a residual connection, "
                                      "a concatenation or a second input)")
        if node.op == "call_module":
            new = convert_module(node, plain.get_submodule(node.target))
        elif node.op == "call_function":
            new = convert_function(node)
        else:
            new = convert_method(node)
        for op in new:
            try:
                shape = tuple(op.out_shape(shape))
            except ValueError as exc:
                _refuse(est, where(node), f"does not fit its input ({exc})")
            ops.append(op)
        current = node
    return ops
