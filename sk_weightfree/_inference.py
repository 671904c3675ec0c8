"""The one prediction formula of every sk_weightfree network, in numpy and scipy alone.

This module never imports torch, skorch or scikit-learn's estimators: it is what a model
loaded by :func:`sk_weightfree.io.load` predicts with, and what the estimators predict
with on the CPU.

Every network is a :class:`Chain`: operations applied in order to rows of
``n_features_in`` values (reshape, ``[h, -h]``, linear, 2-D convolution as an im2col
product, per-unit affine maps, activations, pooling), each taking the previous one's output
alone. A multilayer perceptron is such a chain; per layer (the user guide's formula)::

    [paired] -> linear W -> affine (unit_scales, intercepts)
             -> activation -> [affine (unit_signs)]          (hidden layers only)

A weight-agnostic ensemble is a list of member chains that share their masks; its output is
the log of the mean probability over its members (regressors: the mean output).

Turning a fitted torch template into a chain (``torch.fx`` tracing) is the torch side's
job: :mod:`sk_weightfree._tracing`.

Layers whose weights are all 0 or one value ``c`` ({0,1} masks, and weight-agnostic masks
with ``c`` factored out) are computed as sums of selected inputs (a scipy CSR matrix of
ones) or as a BLAS product, whichever :func:`use_sum_of_inputs` says is faster for that
layer's density and the batch size; both give the same sums.

Outputs are computed in the input's floating type: float32 rows in float32, everything else
in float64. In float64 a row's output does not depend on the batch it is predicted in (to
rounding: BLAS may sum in a shape-dependent order); in float32 it agrees to float32
rounding only.
"""

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, logsumexp

# Each hidden activation in numpy, computed in place; its name is the one list of activation
# names: ``sk_weightfree.nn`` derives its torch modules and functions from ACTIVATIONS.
NUMPY_ACTIVATIONS = {
    "relu": lambda z: np.maximum(z, 0.0, out=z),
    "tanh": lambda z: np.tanh(z, out=z),
    "logistic": lambda z: expit(z, out=z),
    "identity": lambda z: z,
}
ACTIVATIONS = tuple(NUMPY_ACTIVATIONS)
OUT_ACTIVATIONS = ("softmax", "logistic", "identity")
# Rows per batch, and values of a batch's largest intermediate array (a layer's output, a
# convolution's unfolded input: 64 MiB in float64). Splitting 10,000 rows of 784 features
# into batches of 4,096 took 1.4x the time of one batch (2 loaded cores, float32).
DEFAULT_BATCH_SIZE = 16384
METHODS = ("auto", "sum", "blas")
CHAIN_OPS = ("reshape", "paired", "linear", "conv2d", "affine", "activation", "pool")
POOL_MODES = ("max", "avg")
MAX_BATCH_VALUES = 2**23


def compute_dtype(dtype):
    """The floating type a network computes in for input of ``dtype``: float32 stays,
    anything else is float64 (as scikit-learn's MLPs)."""
    return np.dtype(np.float32) if np.dtype(dtype) == np.float32 else np.dtype(np.float64)


def _prod(values):
    out = 1
    for v in values:
        out *= int(v)
    return out


# ---------------------------------------------------------------------------- operations
# Shapes below are those of one sample (the batch axis left out); a chain starts from a
# flat row of ``n_features_in`` values.
class _Op:
    """One operation of a :class:`Chain`."""

    op = ""
    in_place = False  # works on its input array (a copy is made if that is the caller's)

    def out_shape(self, shape):
        """The output shape of one sample for input ``shape``; ValueError if it does not fit."""
        return tuple(shape)

    def values_per_row(self, shape):
        """Values one sample needs while this op runs (its largest array)."""
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
        """The value ``c`` if every nonzero weight equals ``c`` (1.0 for an empty layer),
        else None: such a layer is a mask times one number."""
        if self.value is not None:
            return self.value
        return _shared_value(self.weight)


def _shared_value(weight):
    nonzero = weight[weight != 0]
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
    per-unit scales and signs, eval-mode batch norms, a regressor's target scale. None
    means ones and zeros."""

    op = "affine"
    in_place = True

    def __init__(self, scale=None, offset=None):
        self.scale = None if scale is None else np.asarray(scale, dtype=np.float64).ravel()
        self.offset = None if offset is None else np.asarray(offset, dtype=np.float64).ravel()

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

    def typed(self, dtype):
        """This map with its arrays in ``dtype``, ones and zeros left out."""
        typed = Affine()
        if self.scale is not None and not np.all(self.scale == 1):
            typed.scale = self.scale.astype(dtype)
        if self.offset is not None and not np.all(self.offset == 0):
            typed.offset = self.offset.astype(dtype)
        return typed

    def __call__(self, a):
        trailing = (1,) * (a.ndim - 2)
        if self.scale is not None:
            a *= self.scale.reshape(-1, *trailing)
        if self.offset is not None:
            a += self.offset.reshape(-1, *trailing)
        return a


class Activation(_Op):
    """An elementwise activation of :data:`ACTIVATIONS`."""

    op = "activation"
    in_place = True

    def __init__(self, name):
        if name not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}; got {name!r}.")
        self.name = name

    def __call__(self, a):
        return NUMPY_ACTIVATIONS[self.name](a)

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


# ---------------------------------------------------------------------------- the chain
@dataclass
class Chain:
    """A network for numpy prediction: one chain of operations per member.

    Attributes
    ----------
    members : list of list of Reshape, Paired, Linear, Conv2d, Affine, Activation, Pool2d
        Each member's operations, applied in order to rows of shape (n_features_in,); the
        last gives (n_samples, n_outputs) (logits for classifiers, the prediction for
        regressors). More than one member only for a weight-agnostic ensemble, whose
        members share their masks (the same arrays).
    n_features_in : int
    out_activation : {"softmax", "logistic", "identity"}
        Output function: softmax (classes), logistic per column (multilabel), identity
        (regression).
    classes : ndarray or None
        Class labels (None for regressors).
    n_outputs : int
    estimator : str
        Class name of the estimator the chain came from.
    """

    members: list
    n_features_in: int
    out_activation: str
    classes: np.ndarray = None
    n_outputs: int = None
    estimator: str = ""
    _plans: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        if self.out_activation not in OUT_ACTIVATIONS:
            raise ValueError(
                f"out_activation must be one of {OUT_ACTIVATIONS}; got {self.out_activation!r}."
            )
        if not self.members or not all(self.members):
            raise ValueError("a network needs at least one member with at least one operation.")
        ends = {self.shapes(member)[-1] for member in self.members}
        if len(ends) != 1 or len(next(iter(ends))) != 1:
            raise ValueError(f"the chain ends with samples of shape(s) {sorted(ends)}; every "
                             f"member must end with the same number of outputs.")
        if self.n_outputs is None:
            self.n_outputs = next(iter(ends))[0]

    @property
    def ops(self):
        """The first member's operations (the only member's, but for ensembles)."""
        return self.members[0]

    @property
    def is_classifier(self):
        return self.classes is not None

    @property
    def multilabel(self):
        return self.is_classifier and self.out_activation == "logistic"

    @property
    def activation(self):
        """The one hidden activation of the chain's layers, or None when there are several
        (or none)."""
        names = {op.name for op in self.ops if isinstance(op, Activation)}
        return names.pop() if len(names) == 1 else None

    @property
    def weight_layers(self):
        return [op for op in self.ops if isinstance(op, _Weighted)]

    @property
    def layer_shapes(self):
        """Weight shapes in torch layout, one per weight layer."""
        return [op.weight.shape for op in self.weight_layers]

    def shapes(self, ops=None):
        """The sample shape before the first op and after each op (of ``ops``, by default
        the first member's)."""
        shapes = [(int(self.n_features_in),)]
        for i, op in enumerate(self.ops if ops is None else ops):
            try:
                shapes.append(tuple(op.out_shape(shapes[-1])))
            except ValueError as exc:
                raise ValueError(f"operation {i} ({op.describe()}): {exc}") from None
        return shapes

    def values_per_row(self):
        """Values one sample needs at the widest point of the chain (a ``[h, -h]`` before a
        weight layer is folded into it: it makes no array)."""
        shapes, ops = self.shapes(), self.ops
        folded = {i for i, op in enumerate(ops[:-1])
                  if isinstance(op, Paired) and isinstance(ops[i + 1], _Weighted)}
        return max([shapes[0][0]] + [op.values_per_row(shape) for i, (op, shape)
                                     in enumerate(zip(ops, shapes)) if i not in folded])

    def widths(self):
        """Units per layer, input first (``[h, -h]`` lines not counted), for a chain of
        linear layers alone; None for a chain with other operations."""
        if not all(isinstance(op, (Paired, Linear, Affine, Activation)) for op in self.ops):
            return None
        return [int(self.n_features_in)] + [op.weight.shape[0] for op in self.weight_layers]

    def describe(self):
        """``"64 -> 32 -> 10"`` for a multilayer perceptron, else the operations in order
        (affine maps left out)."""
        widths = self.widths()
        if widths is not None:
            text = " -> ".join(map(str, widths))
            paired = any(isinstance(op, Paired) for op in self.ops)
            return f"{text} ({self.activation or 'mixed'}{', paired' if paired else ''})"
        return " -> ".join(op.describe() for op in self.ops if op.op != "affine")

    def plan(self, dtype=np.float64):
        """The members' operations ready to run in ``dtype`` (cached): paired inputs folded
        into the next weight layer as signed weights (``[a, -a] @ W == a @ (W₊ - W₋)``),
        weights and per-unit arrays in ``dtype``; members share their layers' matrices."""
        key = np.dtype(dtype).str
        if key not in self._plans:
            shared = {}
            self._plans[key] = [_plan(member, np.dtype(dtype), shared)
                                for member in self.members]
        return self._plans[key]

    def batch_rows(self, batch_size):
        """Rows per batch: ``batch_size``, or fewer when a batch's largest intermediate array
        would exceed :data:`MAX_BATCH_VALUES` values."""
        return max(1, min(int(batch_size), MAX_BATCH_VALUES // max(1, self.values_per_row())))


def _plan(ops, dtype, shared):
    steps, i = [], 0
    while i < len(ops):
        op = ops[i]
        paired = isinstance(op, Paired) and i + 1 < len(ops) and isinstance(ops[i + 1],
                                                                             _Weighted)
        if paired:
            i += 1
            op = ops[i]
        if isinstance(op, Linear):
            steps.append(_LinearStep(op, paired, dtype, shared))
        elif isinstance(op, Conv2d):
            steps.append(_ConvStep(op, paired, dtype))
        elif isinstance(op, Affine):
            steps.append(op.typed(dtype))
        else:
            steps.append(op)
        i += 1
    return steps


def fold_paired(weight, axis=1):
    """The signed weight of a layer that sees ``[h, -h]``: ``W₊ - W₋``.

    The paired lines of a layer lie along ``axis``: its first half are the excitatory
    lines, its second half their inhibitory twins (a linear weight (out, 2 * in) or a
    kernel (out, 2 * in, kh, kw) along axis 1, a ``coefs_`` array (2 * in, out) along
    axis 0). A line and its twin are one edge, so two that are both on cancel.

    This is the only place the fold is written: it uses slicing and subtraction alone, so
    it serves numpy arrays and torch tensors alike (``nn.ScoredMask`` folds its masks
    with it) without this module importing torch.

    Parameters
    ----------
    weight : ndarray or torch.Tensor
        The weight over the paired lines; ``weight.shape[axis]`` is even.
    axis : int, default=1
        The axis of the paired lines.

    Returns
    -------
    ndarray or torch.Tensor
        ``weight`` with ``axis`` halved.
    """
    n_in = weight.shape[axis] // 2
    before = (slice(None),) * axis
    return weight[before + (slice(None, n_in),)] - weight[before + (slice(n_in, None),)]


def _signed(weight, paired):
    return fold_paired(weight) if paired else weight


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


class _Matrix:
    """A layer's (in, out) matrix, dense for BLAS and (on first use) as CSR for sums of
    inputs."""

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


class _LinearStep:
    """A linear op ready to run; a {0,1} (times one value ``c``) layer may run as sums of
    selected inputs, ``c`` applied after the sums."""

    def __init__(self, op, paired, dtype, shared):
        value = op.shared_value
        self.binary = value is not None
        self.scale = None if not self.binary or value == 1.0 else dtype.type(value)
        # W / c has entries in {0, 1}, or {-1, 0, 1} once paired inputs are folded
        divide = value if self.binary and op.value is None and value != 1.0 else None
        # the weight's memory, not its id: members hold their own views of a shared mask
        memory = (op.weight.__array_interface__["data"][0], op.weight.shape,
                  op.weight.strides)
        key = (memory, paired, divide, dtype.str)
        if key not in shared:
            weight = op.weight if divide is None else op.weight / divide
            shared[key] = (op.weight, _Matrix(
                np.ascontiguousarray(_signed(weight, paired).T, dtype=dtype)))
        self.matrix = shared[key][1]

    def product(self, a, method):
        """``a @ W`` before the shared value: sums of inputs or BLAS."""
        matrix = self.matrix
        if sp.issparse(a):
            return np.asarray(a @ matrix.dense)
        if self.binary and (method == "sum" or (
                method == "auto" and use_sum_of_inputs(matrix.density, matrix.dense.size, len(a)))):
            return np.asarray((matrix.selection @ a.T).T)
        return a @ matrix.dense

    def finish(self, z):
        if self.scale is not None:
            z *= self.scale
        return z

    def __call__(self, a, method):
        return self.finish(self.product(a, method))


class _ConvStep:
    def __init__(self, op, paired, dtype):
        self.weight = _signed(op.weights, paired).astype(dtype)
        self.op = op

    def __call__(self, a, method):
        op = self.op
        return _conv2d(a, self.weight, op.stride, op.padding, op.dilation)


def _check_method(method):
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}.")


def forward(chain, X, batch_size=DEFAULT_BATCH_SIZE, method="auto"):
    """The network's output ``z`` for ``X``, shape (n_samples, n_outputs).

    Logits for classifiers (for an ensemble, the log of the mean probability over its
    members), the prediction itself for regressors; float32 for float32 ``X``, else float64.

    Parameters
    ----------
    chain : Chain
    X : ndarray or scipy sparse matrix of shape (n_samples, n_features)
        Already validated (finite numbers, right width). Sparse rows are processed batch by
        batch: a chain that starts with a linear layer never densifies them, any other
        densifies one batch at a time.
    batch_size : int, default=16384
        Rows per batch: memory is bounded by it; in float64 the output does not depend on
        it. Fewer rows are taken when a batch's largest intermediate array (a convolution's
        unfolded input) would exceed :data:`MAX_BATCH_VALUES` values.
    method : {"auto", "sum", "blas"}, default="auto"
        How {0,1} layers are computed: chosen per layer and batch ("auto"), always as sums
        of selected inputs, or always as BLAS products (convolutions: always BLAS).
    """
    _check_method(method)
    if not (isinstance(batch_size, (int, np.integer)) and batch_size >= 1):
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}.")
    dtype = compute_dtype(X.dtype)
    if sp.issparse(X):
        X = X.tocsr().astype(dtype, copy=False)
    else:
        X = np.asarray(X, dtype=dtype)
    plans = chain.plan(dtype)
    rows = chain.batch_rows(batch_size)
    outputs = [_forward_batch(chain, plans, X[start:start + rows], method)
               for start in range(0, X.shape[0], rows)]
    if not outputs:
        return np.empty((0, chain.shapes()[-1][0]), dtype=dtype)
    return outputs[0] if len(outputs) == 1 else np.concatenate(outputs)


def _run(steps, X, method, first_products):
    a = X
    for k, step in enumerate(steps):
        if isinstance(step, _LinearStep):
            if k == 0 and first_products is not None:
                # ensemble members share their first mask and its input, X
                key = id(step.matrix)
                if key not in first_products:
                    first_products[key] = step.product(a, method)
                a = step.finish(first_products[key].copy())
            else:
                a = step(a, method)
            continue
        if sp.issparse(a):
            a = a.toarray()
        if isinstance(step, _ConvStep):
            a = step(a, method)
            continue
        if step.in_place and np.may_share_memory(a, X):
            a = a.copy()  # the caller's rows are never written to
        a = step(a)
    return a


def _forward_batch(chain, plans, X, method):
    if len(plans) == 1:
        return _run(plans[0], X, method, None)
    first_products = {}
    stacked = np.stack([_run(steps, X, method, first_products) for steps in plans])
    return combine_members(stacked, chain.out_activation)


# ---------------------------------------------------------------------------- the head
# What turns a network's output ``z`` into answers, written once: the estimators, the
# numpy-only predictor of io.load and (mirrored in torch by _tracing.Head, pinned by its
# tests) to_module() and the ONNX graph all follow these rules.
def combine_members(stacked, out_activation):
    """One output from several networks' outputs stacked on the leading axis: the log of
    the mean probability (softmax: log-probabilities; logistic: the logit of the mean
    probability), or for regressors (identity) the mean. In ``stacked``'s dtype."""
    if out_activation == "softmax":
        log_proba = stacked - logsumexp(stacked, axis=-1, keepdims=True)
        combined = logsumexp(log_proba, axis=0) - np.log(len(stacked))
    elif out_activation == "logistic":
        proba = expit(stacked).mean(axis=0)
        combined = np.log(proba) - np.log1p(-proba)
    else:
        combined = stacked.mean(axis=0)
    return combined.astype(stacked.dtype, copy=False)  # np.log(n) is a float64 scalar


def decision(z, out_activation):
    """``decision_function``: two softmax classes as one column (the second logit minus
    the first, shape (n_samples,)); else ``z`` itself."""
    if out_activation == "softmax" and z.shape[1] == 2:
        return z[:, 1] - z[:, 0]
    return z


def probabilities(z, out_activation):
    """Class probabilities: softmax of the logits, or one logistic per column
    (multilabel)."""
    if out_activation == "logistic":
        return expit(z)
    return softmax(z)


def log_probabilities(z, out_activation):
    """The log of :func:`probabilities`, computed without rounding through the exp."""
    if out_activation == "logistic":
        return -np.logaddexp(0.0, -z)
    return z - logsumexp(z, axis=1, keepdims=True)


def labels(z, out_activation, classes):
    """Predicted labels: the class of the largest logit, or (multilabel) the indicator
    matrix of positive logits."""
    if out_activation == "logistic":
        return (z > 0).astype(int)
    return np.asarray(classes)[np.argmax(z, axis=1)]


def predictions(z, single_output):
    """A regressor's predictions: one column as shape (n_samples,) when it was fitted on
    a 1-D target."""
    return z.ravel() if single_output else z


def softmax(z):
    """Row-wise softmax of logits, rows summing to one."""
    log_proba = z - logsumexp(z, axis=1, keepdims=True)
    proba = np.exp(log_proba)
    return proba / proba.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------- perceptrons
def perceptron_ops(layers, activation, paired):
    """The operations of one multilayer perceptron.

    Parameters
    ----------
    layers : list of dict
        Per layer: ``weights`` shaped (n_in, n_out) (``MLPClassifier``'s orientation;
        (2 * n_in, n_out) with paired inputs), optional ``value`` (``weights`` is then a
        {0,1} mask and the layer's weight ``value * weights``), ``intercepts``,
        ``unit_scales`` and (hidden layers) ``unit_signs``, each of shape (n_out,) or None
        (zeros, ones, ones). Members of an ensemble pass the same ``weights`` arrays: their
        chains share them.
    activation : {"relu", "tanh", "logistic", "identity"}
    paired : bool
        Every layer sees its input as ``[a, -a]``.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}; got {activation!r}.")
    ops = []
    for i, layer in enumerate(layers):
        if paired:
            ops.append(Paired())
        ops.append(Linear(np.asarray(layer["weights"], dtype=np.float64).T, layer.get("value")))
        ops.append(Affine(layer.get("unit_scales"), layer.get("intercepts")))
        if i < len(layers) - 1:
            ops.append(Activation(activation))
            signs = layer.get("unit_signs")
            if signs is not None and not np.all(np.asarray(signs) == 1):
                ops.append(Affine(signs, None))
    return ops


def perceptron_chain(members, *, activation, unit_signs=None, paired=False, target=None,
                     **head):
    """The :class:`Chain` of a multilayer perceptron, or of an ensemble of them.

    Parameters
    ----------
    members : list of (coefs, intercepts, unit_scales)
        Per network: weights shaped (n_in, n_out) per layer (``MLPClassifier``'s
        orientation), and per-unit arrays per layer, or None (zeros, ones). Layers whose
        nonzero weights all equal one value are stored as that value times a {0,1} mask,
        one mask array shared by the members that have it.
    activation : {"relu", "tanh", "logistic", "identity"}
    unit_signs : list of ndarray or None
        Per hidden layer.
    paired : bool
        Every layer sees its input as ``[a, -a]``.
    target : Affine or None
        A regressor's map to ``y``'s units, after every member's last layer.
    **head
        The chain's other fields (``n_features_in``, ``out_activation``, ``classes``,
        ``n_outputs``, ``estimator``).
    """
    n_layers = len(members[0][0])
    signs = [None] * n_layers if unit_signs is None else [*unit_signs, None]
    if len(signs) != n_layers:
        raise ValueError(f"{len(signs) - 1} unit_signs arrays for {n_layers - 1} hidden "
                         f"layers.")
    masks = {}  # members with the same mask share one array

    def weight_entry(weights):
        weights = np.asarray(weights, dtype=np.float64)
        value = _shared_value(weights)
        if value is None:
            return {"weights": weights}
        mask = weights != 0
        key = (mask.shape, np.packbits(mask).tobytes())
        return {"weights": masks.setdefault(key, mask.astype(np.float64)), "value": value}

    def per_layer(values):
        return [None] * n_layers if values is None else list(values)

    chains = []
    for coefs, intercepts, scales in members:
        layers = [{**weight_entry(c), "intercepts": b, "unit_scales": s, "unit_signs": g}
                  for c, b, s, g in zip(coefs, per_layer(intercepts), per_layer(scales),
                                        signs)]
        ops = perceptron_ops(layers, activation, paired)
        chains.append(ops if target is None else merge_affines(ops + [target]))
    return Chain(members=chains, **head)


def merge_affines(ops):
    """``ops`` with consecutive affine maps merged into one, identity maps left out."""
    merged = []
    for op in ops:
        if isinstance(op, Affine) and merged and isinstance(merged[-1], Affine):
            merged[-1] = merged[-1].then(op)
        elif not (isinstance(op, Affine) and op.scale is None and op.offset is None):
            merged.append(op)
    return merged
