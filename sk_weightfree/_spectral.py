"""Compare network structures through the spectra of their graphs.

A feed-forward network is turned into an undirected graph with one node per
unit (inputs, hidden units and outputs) and one edge per non-zero weight
between consecutive layers. In a convolutional network the channels are the
nodes: a kernel ``(out, in, kh, kw)`` gives an edge between two channels when
any of their taps is non-zero (weight: ``sum |w|`` over the taps), and a linear
layer reading the flattened output of a convolution gives an edge from a
channel to a unit when any of the channel's rows is non-zero (weight: ``sum
|w|`` over those rows). Two networks are compared through the smoothed
eigenvalue distributions of their normalised Laplacians
``L = I - D^{-1/2} A D^{-1/2}``; by default ``A`` keeps the signs of the
edges and ``D`` holds the absolute degrees (the signed normalised
Laplacian), and the kernel width follows the number of eigenvalues.

Isolated nodes (units whose weights are all zero) have a zero row in
``D^{-1/2} A D^{-1/2}`` and therefore contribute the eigenvalue 1. All
eigenvalues lie in ``[0, 2]``.

Such a layered graph is bipartite (even layers against odd layers), so with
``C`` the even-by-odd block of ``D^{-1/2} A D^{-1/2}`` the spectrum of ``L`` is
``{1 - s, 1 + s}`` for the singular values ``s`` of ``C``, plus eigenvalue 1
for the remaining nodes. Both methods below work on ``C`` only. Those
remaining "forced" ones (size imbalance of the two sides, isolated units) are
the same for every network of one shape; ``drop_forced_ones`` leaves them out.
"""

import numbers
import sys

import numpy as np
from scipy import linalg, sparse
from scipy.stats import wasserstein_distance
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._inference import fold_paired

__all__ = [
    "pairwise_spectral_similarity",
    "rewire",
    "spectral_density",
    "spectral_similarity",
]

_METHODS = ("auto", "exact", "approximate")
_METRICS = ("jensen-shannon", "wasserstein")
#: ``method="auto"`` computes the exact spectrum up to this many nodes.
_AUTO_EXACT_MAX_NODES = 2000
# Upper bound on the number of kernel evaluations held in memory at once.
_CHUNK = 1 << 22
#: The fixed bandwidth before ``"auto"``, and the widest ``"auto"`` gives.
_FIXED_BANDWIDTH = 0.02
#: ``bandwidth="auto"``: kernel width in mean eigenvalue spacings.
_AUTO_SPACINGS = 4.0
#: Lanczos work (edges x probes x steps) ``"auto"`` may spend on one network.
_LANCZOS_WORK = 30 * 20 * 1.1e6
#: Default of ``signed``.
_SIGNED_DEFAULT = True
#: Swap proposals per edge of a degree-preserving rewiring.
_N_SWAPS = 10


# --------------------------------------------------------------------------
# Input conversion
# --------------------------------------------------------------------------
def _torch_module_class():
    # Only look torch up if the caller already imported it: an object cannot be
    # a torch module otherwise, and importing torch here would be slow.
    torch = sys.modules.get("torch")
    if torch is None:
        return None, None, None
    return torch.nn.Module, torch.nn.Linear, torch.nn.Conv2d


def _as_layers(net, paired=None):
    """Convert a network to a list of CSR weight matrices shaped (n_in, n_out).

    Parameters
    ----------
    net : object
        A fitted estimator with ``coefs_``, a ``torch.nn.Module`` (its
        ``nn.Conv2d`` and ``nn.Linear`` submodules in registration order), or
        a list/tuple of layers: 2-D arrays or sparse matrices shaped
        ``(n_in, n_out)`` and 4-D kernels shaped ``(out_channels,
        in_channels, kh, kw)``. An estimator with ``paired_inputs_ == True``
        feeds every layer ``[h, -h]``: its ``coefs_`` are ``(2 * n_in, n_out)``
        and ``(out, 2 * in, kh, kw)``; the twins are folded into one signed
        layer. In a torch module, a layer preceded by a ``PairedInput`` is
        folded the same way.
    paired : bool or None, default=None
        Fold every layer's twin lines (``True``) or none (``False``).
        ``None`` reads it from the network: ``paired_inputs_`` of an
        estimator, ``PairedInput`` modules of a torch module; a list is not
        folded.

    Returns
    -------
    layers : list of scipy.sparse.csr_matrix
        Float64 matrices without explicit zeros. Channels are nodes: a
        convolution becomes ``(in_channels, out_channels)`` with entries
        ``sum |w|`` over its kernel taps, and a linear layer right after a
        convolution with ``C`` output channels becomes ``(C, n_out)`` with
        entries ``sum |w|`` over each channel's rows.
    """
    module_cls, linear_cls, conv_cls = _torch_module_class()
    groups = None
    if isinstance(net, (list, tuple)):
        raw = list(net)
        fold = [bool(paired)] * len(raw)
    elif hasattr(net, "coefs_"):
        raw = net.coefs_
        if not isinstance(raw, (list, tuple)):
            raise TypeError(
                f"{type(net).__name__}.coefs_ must be a list of 2-D or 4-D "
                f"arrays, got {type(raw).__name__}."
            )
        raw = list(raw)
        own = bool(getattr(net, "paired_inputs_", False))
        fold = [own if paired is None else bool(paired)] * len(raw)
    elif module_cls is not None and isinstance(net, module_cls):
        raw, groups, fold = _module_layers(net, linear_cls, conv_cls)
        if paired is not None:
            fold = [bool(paired)] * len(raw)
    else:
        _refuse_non_network(net)
    if len(raw) == 0:
        raise ValueError("The network has no layers (empty list of weights).")
    raw = [_fold_paired(w, i) if f else w for i, (w, f) in enumerate(zip(raw, fold))]
    if groups is None:
        groups = [1] * len(raw)
    layers, shapes, is_conv = [], [], []
    for i, w in enumerate(raw):
        w = _as_numeric(w, i)
        shapes.append(w.shape)
        is_conv.append(w.ndim == 4)
        layers.append(_collapse_conv(w, i, groups[i]) if w.ndim == 4
                      else _check_layer(w, i))
    for i in range(len(layers) - 1):
        n_out, n_in = layers[i].shape[1], layers[i + 1].shape[0]
        if is_conv[i] and not is_conv[i + 1] and n_in != n_out:
            if n_in % n_out:
                raise ValueError(
                    f"Layer shapes do not chain: layer {i} is a convolution "
                    f"with {n_out} output channels (shape {shapes[i]}) but "
                    f"layer {i + 1} has {n_in} rows (shape {shapes[i + 1]}), "
                    f"not a multiple of {n_out}. A linear layer after a "
                    "convolution takes its output flattened channel by channel "
                    "(channels * height * width rows)."
                    + _paired_hint(shapes, any(fold))
                )
            layers[i + 1] = _collapse_flatten(layers[i + 1], n_out, i + 1,
                                              shapes[i + 1])
        elif n_in != n_out:
            what = "input channels" if is_conv[i + 1] else "rows"
            raise ValueError(
                f"Layer shapes do not chain: layer {i} has shape {shapes[i]} "
                f"but layer {i + 1} has shape {shapes[i + 1]}; expected layer "
                f"{i + 1} to have {n_out} {what}."
                + _paired_hint(shapes, any(fold))
            )
    return layers


def _refuse_non_network(net):
    """Raise the error that says why ``net`` cannot be read."""
    name = type(net).__name__
    if hasattr(net, "fit"):
        # Fitted estimators of other kinds (a LogisticRegression, a forest)
        # are not networks: "fit it first" would send the user the wrong way.
        try:
            check_is_fitted(net)
        except NotFittedError:
            raise NotFittedError(
                f"This {name} instance has no `coefs_` attribute: it is not "
                "fitted yet. Call `fit` before computing its spectrum."
            ) from None
        except TypeError:
            pass
        else:
            raise TypeError(
                f"{name} is not a network this function reads: it is fitted "
                "but has no `coefs_` (a list of weight matrices shaped "
                "(n_in, n_out)). Pass an estimator of this package, an "
                "MLPClassifier/MLPRegressor, a torch.nn.Module or a list of "
                "weight matrices."
            )
    raise TypeError(
        "Expected a fitted estimator with `coefs_`, a torch.nn.Module or a "
        "list of 2-D weight matrices shaped (n_in, n_out) and 4-D kernels "
        f"shaped (out_channels, in_channels, kh, kw); got {name}."
    )


def _paired_hint(shapes, folded):
    """Advice for layers that would chain once their twin lines are folded."""
    if folded or any(len(shape) not in (2, 4) for shape in shapes):
        return ""
    n_in = [shape[0] if len(shape) == 2 else shape[1] for shape in shapes]
    n_out = [shape[1] if len(shape) == 2 else shape[0] for shape in shapes]
    if all(a % 2 == 0 for a in n_in) and all(
            n_in[i + 1] == 2 * n_out[i] or (len(shapes[i]) == 4
                                             and n_in[i + 1] % (2 * n_out[i]) == 0)
            for i in range(len(shapes) - 1)):
        return (
            " The layers look paired (each reads [h, -h]: twice the previous "
            "layer's units), as the coefs_ of an estimator with "
            "paired_inputs_=True are: pass the estimator itself, or "
            "paired=True to fold the twin lines."
        )
    return ""


def _module_layers(net, linear_cls, conv_cls):
    """Weights of the ``nn.Linear`` / ``nn.Conv2d`` layers, their groups and
    whether each one reads the ``[h, -h]`` of a ``PairedInput`` before it."""
    # torch is loaded (``net`` is a torch module), so this import is cheap.
    from .nn import PairedInput

    raw, groups, fold = [], [], []
    after_pairing = False
    for m in net.modules():
        if isinstance(m, PairedInput):
            after_pairing = True
        elif isinstance(m, (linear_cls, conv_cls)):
            weight = m.weight.detach().cpu().numpy()
            raw.append(weight.T if isinstance(m, linear_cls) else weight)
            groups.append(int(getattr(m, "groups", 1)))
            fold.append(after_pairing)
            after_pairing = False
    if not raw:
        raise ValueError(
            f"The torch module {type(net).__name__} contains no nn.Linear or "
            "nn.Conv2d layers."
        )
    return raw, groups, fold


def _fold_paired(w, i):
    """Signed weights of a layer that sees ``[h, -h]``.

    A 2-D layer ``(2 * n_in, n_out)`` has unit ``j`` on row ``j`` and its
    inhibitory twin on row ``n_in + j``; a 4-D kernel ``(out, 2 * in, kh,
    kw)`` has them on input channels ``c`` and ``in + c``. Both are one
    neuron, so they make one node, and two lines that are both on cancel
    exactly (``1 - 1 = 0``, no edge).
    """
    w = _as_numeric(w, i)
    w = w.toarray() if sparse.issparse(w) else w
    if w.ndim not in (2, 4):
        return w  # _check_layer names the wrong number of dimensions
    axis, what = (0, "rows") if w.ndim == 2 else (1, "input channels")
    if w.shape[axis] % 2:
        raise ValueError(
            f"Layer {i} of a network with paired inputs must have an even "
            f"number of {what} (inputs, then their inhibitory twins); got "
            f"shape {w.shape}."
        )
    if w.dtype.kind != "f":  # bool cannot subtract, unsigned ints wrap
        w = w.astype(np.float64)
    return fold_paired(w, axis)


def _as_numeric(w, i):
    """``w`` as a 2-D sparse matrix or an ndarray of real numbers."""
    if sparse.issparse(w):
        if w.ndim != 2:  # n-D sparse (COO) arrays
            w = w.toarray()
    else:
        try:
            w = np.asarray(w)
        except Exception as exc:  # e.g. ragged nested lists
            raise TypeError(
                f"Layer {i} could not be converted to an array: {exc}"
            ) from exc
    if w.dtype.kind not in "biuf":
        raise TypeError(
            f"Layer {i} must hold real numbers, got dtype {w.dtype} "
            f"({type(w).__name__})."
        )
    return w


def _check_empty(w, i):
    if min(w.shape) == 0:
        raise ValueError(f"Layer {i} has an empty dimension: shape {w.shape}.")


def _not_finite(i, shape):
    return ValueError(f"Layer {i} (shape {shape}) contains NaN or infinite values.")


def _overflow(i, shape, what):
    return ValueError(
        f"Layer {i} (shape {shape}): the sum of |w| over {what} overflows "
        "float64; scale the weights down (the spectrum does not change when "
        "every weight is scaled by the same factor)."
    )


def _check_layer(w, i):
    """A 2-D layer as a float64 CSR matrix without explicit zeros."""
    if w.ndim != 2:
        raise ValueError(
            f"Layer {i} must be 2-D (n_in, n_out) or 4-D (out_channels, "
            f"in_channels, kh, kw), got shape {w.shape}."
        )
    _check_empty(w, i)
    mat = sparse.csr_matrix(w, dtype=np.float64, copy=True)
    if not np.all(np.isfinite(mat.data)):
        raise _not_finite(i, w.shape)
    mat.eliminate_zeros()
    return mat


def _collapse_conv(w, i, groups=1):
    """Channel graph of a kernel ``(out, in // groups, kh, kw)``: ``(in, out)``.

    Entry ``(c, o)`` is ``sum |w[o, c]|`` over the kernel taps: zero (no
    edge) only when every tap between the two channels is zero. With
    ``groups > 1`` (torch modules) output channel ``o`` sees only the input
    channels of its group.
    """
    _check_empty(w, i)
    n_out, n_in_group = w.shape[:2]
    with np.errstate(over="ignore", invalid="ignore"):
        taps = np.abs(w.reshape(n_out, n_in_group, -1), dtype=np.float64)
        taps = taps.sum(axis=2)
    if not np.all(np.isfinite(taps)):
        if not np.all(np.isfinite(w)):
            raise _not_finite(i, w.shape)
        raise _overflow(i, w.shape, "the kernel taps")
    if groups == 1:
        mat = sparse.csr_matrix(taps.T)
    else:
        group_of = np.arange(n_out) // (n_out // groups)
        rows = group_of[:, None] * n_in_group + np.arange(n_in_group)
        cols = np.broadcast_to(np.arange(n_out)[:, None], rows.shape)
        mat = sparse.csr_matrix(
            (taps.ravel(), (rows.ravel(), cols.ravel())),
            shape=(n_in_group * groups, n_out),
        )
    mat.eliminate_zeros()
    return mat


def _collapse_flatten(mat, n_channels, i, shape):
    """Rows of a linear layer after a convolution, summed per channel.

    torch flattens ``(C, H, W)`` channel-major, so row ``r`` of a
    ``(C * k, n_out)`` layer reads channel ``r // k``. Returns ``(C, n_out)``
    with entries ``sum |w|`` over each channel's ``k`` rows.
    """
    n_rows = mat.shape[0]
    # Channel c's rows are the contiguous block [c * k, (c + 1) * k): one
    # sparse product with a 0/1 block matrix sums them.
    blocks = sparse.csr_matrix(
        (np.ones(n_rows), np.arange(n_rows),
         np.arange(0, n_rows + 1, n_rows // n_channels)),
        shape=(n_channels, n_rows),
    )
    out = (blocks @ abs(mat)).tocsr()
    out.sort_indices()
    if not np.all(np.isfinite(out.data)):
        raise _overflow(i, shape, "each channel's rows")
    return out


# --------------------------------------------------------------------------
# Graph construction
# --------------------------------------------------------------------------
def _layer_sizes(layers):
    return [layers[0].shape[0]] + [w.shape[1] for w in layers]


def _edge_values(w, weighted, signed=False):
    if signed:
        return w.data.copy() if weighted else np.sign(w.data)
    return np.abs(w.data) if weighted else np.ones_like(w.data)


def _adjacency(net, weighted=False, signed=False):
    """Symmetric sparse adjacency matrix, nodes ordered layer by layer."""
    layers = _as_layers(net)
    sizes = _layer_sizes(layers)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    rows, cols, vals = [], [], []
    for i, w in enumerate(layers):
        coo = w.tocoo()
        rows.append(offsets[i] + coo.row)
        cols.append(offsets[i + 1] + coo.col)
        vals.append(_edge_values(coo, weighted, signed))
    r, c, v = (np.concatenate(x) for x in (rows, cols, vals))
    n = int(offsets[-1])
    upper = sparse.csr_matrix((v, (r, c)), shape=(n, n))
    return (upper + upper.T).tocsr()


def _normalized_block(layers, weighted=False, signed=False):
    """Even-by-odd block ``C`` of ``D^{-1/2} A D^{-1/2}`` and the node count.

    With ``signed=True`` the entries keep their signs and ``D`` holds the
    absolute degrees ``sum_j |A_ij|`` (the signed normalised Laplacian).
    """
    sizes = _layer_sizes(layers)
    # Position of every layer inside its side (even layers / odd layers).
    side_offsets, filled = [], [0, 0]
    for j, size in enumerate(sizes):
        side_offsets.append(filled[j % 2])
        filled[j % 2] += size
    n_even, n_odd = filled
    rows, cols, vals = [], [], []
    for i, w in enumerate(layers):
        coo = w.tocoo()
        if i % 2 == 0:  # layer i is even, layer i + 1 is odd
            rows.append(side_offsets[i] + coo.row)
            cols.append(side_offsets[i + 1] + coo.col)
        else:
            rows.append(side_offsets[i + 1] + coo.col)
            cols.append(side_offsets[i] + coo.row)
        vals.append(_edge_values(coo, weighted, signed))
    r, c, v = (np.concatenate(x) for x in (rows, cols, vals))
    block = sparse.csr_matrix((v, (r, c)), shape=(n_even, n_odd))
    magnitudes = abs(block)
    deg_even = np.asarray(magnitudes.sum(axis=1)).ravel()
    deg_odd = np.asarray(magnitudes.sum(axis=0)).ravel()
    inv_even = _inv_sqrt(deg_even)
    inv_odd = _inv_sqrt(deg_odd)
    row_of = np.repeat(np.arange(n_even), np.diff(block.indptr))
    block.data *= inv_even[row_of] * inv_odd[block.indices]
    return block, n_even + n_odd


def _inv_sqrt(deg):
    out = np.zeros_like(deg)
    pos = deg > 0
    out[pos] = 1.0 / np.sqrt(deg[pos])
    return out


def _laplacian_eigenvalues(net, weighted=False, drop_forced_ones=False,
                           signed=False):
    """Exact sorted eigenvalues of the normalised Laplacian of ``net``."""
    s, n_forced = _exact_singular_values(_as_layers(net), weighted, signed)
    ones = np.ones(0 if drop_forced_ones else n_forced)
    return np.sort(np.concatenate([1.0 - s, 1.0 + s, ones]))


def _smaller_side(layers, weighted, signed=False):
    """Normalised block over connected units, smaller side first.

    Returns ``(left, n_forced)``: ``left`` has shape ``(m, k)`` with
    ``m <= k``, so the Laplacian has the eigenvalues ``1 +- s`` for the ``m``
    singular values ``s`` of ``left`` and ``n_forced = n_nodes - 2 m``
    eigenvalues at exactly 1 (isolated units and the imbalance of the sides).
    """
    block, n_nodes = _normalized_block(layers, weighted, signed)
    # Isolated units are empty rows/columns; dropping them changes nothing
    # but the count of forced ones, which is then known without sampling.
    block = block[block.getnnz(axis=1) > 0][:, block.getnnz(axis=0) > 0]
    if block.shape[0] > block.shape[1]:
        block = block.T
    left = block.tocsr()
    return left, n_nodes - 2 * left.shape[0]


def _exact_singular_values(layers, weighted, signed=False):
    # Dense SVD of the bipartite block: cheaper and more accurate than
    # eigvalsh of the full Laplacian.
    left, n_forced = _smaller_side(layers, weighted, signed)
    if left.shape[0] == 0:
        return np.zeros(0), n_forced
    s = linalg.svdvals(left.toarray(), check_finite=False)
    return np.clip(s, 0.0, 1.0), n_forced


# --------------------------------------------------------------------------
# Densities
# --------------------------------------------------------------------------
def _smooth(grid, centers, weights, bandwidth):
    """Sum of Gaussians ``weights[j] * N(grid; centers[j], bandwidth)``."""
    scaled = weights / bandwidth
    out = np.zeros_like(grid)
    step = max(1, _CHUNK // grid.size)
    for start in range(0, centers.size, step):
        sl = slice(start, start + step)
        z = (grid[:, None] - centers[None, sl]) / bandwidth
        # einsum avoids threaded BLAS, whose spin-waits are slow on busy CPUs.
        out += np.einsum("ij,j->i", np.exp(-0.5 * z * z), scaled[sl])
    return out


def _lanczos_quadrature(left, n_steps, n_vectors, rng):
    """Stochastic Lanczos quadrature of the spectrum of ``W = left @ left.T``.

    Returns Ritz values ``theta`` (eigenvalues of ``W`` lie in [0, 1]) and
    weights summing to ``dim`` such that ``sum(weights * f(theta))``
    estimates ``trace(f(W))``. Each probe's ``n_steps`` Ritz values are the
    Gauss quadrature rule of its spectral measure, exact for polynomials of
    degree ``2 * n_steps - 1``. All probes run together as one block, so each
    step is one sparse product with a dense block. No reorthogonalisation:
    in floating point Lanczos still gives the quadrature of a nearby
    measure (Knizhnerman 1996; Musco, Musco & Sidford 2018), and ghost Ritz
    values only split weight between copies.
    """
    dim = left.shape[0]
    if n_vectors >= dim:  # exact traces: one probe per basis vector
        probes = np.eye(dim)
    else:
        probes = 2.0 * rng.randint(0, 2, size=(dim, n_vectors)) - 1.0
    n_probe = probes.shape[1]
    # float32 products halve the memory traffic of the sparse products;
    # their rounding (1e-7) is far below the kernel's resolution.
    left32 = left.astype(np.float32)
    right32 = left32.T.tocsr()
    q = probes / np.linalg.norm(probes, axis=0)
    q_prev = np.zeros_like(q)
    alpha = np.zeros((n_steps, n_probe))
    beta = np.zeros((n_steps, n_probe))
    steps = np.full(n_probe, n_steps)
    done = np.zeros(n_probe, dtype=bool)
    for j in range(n_steps):
        x = q.astype(np.float32)
        w = (left32 @ (right32 @ x)).astype(np.float64)
        alpha[j] = np.einsum("ij,ij->j", q, w)
        w -= alpha[j] * q + (beta[j - 1] if j else 0.0) * q_prev
        beta[j] = np.sqrt(np.einsum("ij,ij->j", w, w))
        # An invariant subspace was found: that probe's rule is complete.
        stop = ~done & (beta[j] <= 1e-6)
        steps[stop] = j + 1
        done |= stop
        beta[j, done] = 0.0
        q_prev, q = q, np.divide(w, beta[j], out=np.zeros_like(w), where=~done)
    thetas, weights = [], []
    for c in range(n_probe):
        k = steps[c]
        theta, vec = linalg.eigh_tridiagonal(
            alpha[:k, c], beta[: k - 1, c], check_finite=False
        )
        thetas.append(theta)
        weights.append(vec[0] ** 2)
    theta = np.clip(np.concatenate(thetas), 0.0, 1.0)
    return theta, np.concatenate(weights) * (dim / n_probe)


# --------------------------------------------------------------------------
# Spectra and their resolution
# --------------------------------------------------------------------------
class _Spectrum:
    """Kernel centres and weights of one network's eigenvalues.

    ``bandwidth`` is the network's own kernel width: the fixed value the
    caller gave, or the one ``bandwidth="auto"`` derives from its spectrum.
    Two networks are compared at the wider of their two bandwidths.
    """

    def __init__(self, centers, weights, bandwidth):
        self.centers = centers
        self.weights = weights
        self.bandwidth = bandwidth
        self._densities = {}

    def density(self, grid, bandwidth):
        """Smoothed, normalised density on ``grid`` (cached per bandwidth)."""
        if bandwidth not in self._densities:
            density = _smooth(grid, self.centers, self.weights, bandwidth)
            total = density.sum() * (grid[1] - grid[0])
            if not total > 0:
                raise ValueError(
                    f"bandwidth={bandwidth!r} is too small for the grid spacing "
                    f"{grid[1] - grid[0]:.3g}: increase bandwidth or n_points."
                )
            self._densities[bandwidth] = density / total
        return self._densities[bandwidth]


def _auto_bandwidth(n_pairs, n_points, lanczos_steps=None):
    """Kernel width from the spectrum: ``_AUTO_SPACINGS`` mean eigenvalue
    spacings, within the grid's and the Lanczos quadrature's resolution.

    ``n_pairs`` informative eigenvalue pairs ``1 +- s`` share ``[0, 2]``, so
    their mean spacing is ``1 / n_pairs``. A kernel of a few spacings is the
    finest that still averages neighbouring eigenvalues into a density; the
    old fixed 0.02 is the upper bound (networks with few units keep it).
    ``lanczos_steps`` Gauss nodes per probe cannot place detail finer than
    about ``0.6 / lanczos_steps`` (the relation of ``n_steps`` to
    ``bandwidth``, measured in docs/spectral.md).
    """
    floor = 2.0 / (n_points - 1)  # one grid spacing per standard deviation
    if lanczos_steps is not None:
        floor = max(floor, 0.6 / lanczos_steps)
    rule = _AUTO_SPACINGS / max(n_pairs, 1)
    return float(min(max(rule, floor), _FIXED_BANDWIDTH))


def _affordable_steps(n_edges, n_vectors):
    # Lanczos work grows as edges * probes * steps; the budget is what the
    # 20k-node, 1.1M-edge pair needs at 30 steps with its 20 probes.
    return int(min(max(_LANCZOS_WORK / max(n_edges * n_vectors, 1), 30), 1000))


def _net_spectrum(layers, bandwidth, n_points, weighted, signed,
                  drop_forced_ones, method, n_steps, n_vectors, random_state):
    """The :class:`_Spectrum` of one network's normalised Laplacian."""
    sizes = _layer_sizes(layers)
    if method == "auto":
        method = "exact" if sum(sizes) <= _AUTO_EXACT_MAX_NODES else "approximate"
    left, n_forced = _smaller_side(layers, weighted, signed)
    n_pairs = left.shape[0]
    if method == "exact":
        if bandwidth == "auto":
            bandwidth = _auto_bandwidth(n_pairs, n_points)
        s = np.zeros(0)
        if n_pairs:
            s = np.clip(linalg.svdvals(left.toarray(), check_finite=False), 0.0, 1.0)
        weights = np.ones_like(s)
    else:
        if n_vectors is None:
            n_vectors = _default_vectors(min(sum(sizes[0::2]), sum(sizes[1::2])))
        if bandwidth == "auto":
            steps = n_steps or _affordable_steps(left.nnz, min(n_vectors, n_pairs or 1))
            bandwidth = _auto_bandwidth(n_pairs, n_points, steps)
        if n_steps is None:
            n_steps = _default_steps(bandwidth)
        s, weights = np.zeros(0), np.zeros(0)
        if n_pairs:
            theta, weights = _lanczos_quadrature(
                left, n_steps, n_vectors, check_random_state(random_state))
            s = np.sqrt(theta)
    centers = np.concatenate([1.0 - s, 1.0 + s])
    weights = np.concatenate([weights, weights])
    if not drop_forced_ones and n_forced:
        centers = np.append(centers, 1.0)
        weights = np.append(weights, float(n_forced))
    if centers.size == 0:
        raise ValueError(
            "The network has no edges, so with drop_forced_ones=True its "
            "spectrum is empty; use drop_forced_ones=False to compare it."
        )
    return _Spectrum(centers, weights, bandwidth)


# --------------------------------------------------------------------------
# Degree-preserving rewiring
# --------------------------------------------------------------------------
def _rewire_layer(mat, rng, n_swaps):
    """Double-edge swaps on one layer block, in rounds of disjoint pairs.

    A swap turns edges ``(a, b), (c, d)`` of the same sign into ``(a, d), (c,
    b)`` when neither exists. Each round pairs every edge with another one of
    its sign at random and applies, all at once, the swaps that create no
    existing edge and no edge twice, so every unit keeps its number of
    positive and of negative edges. An edge keeps its value (it moves along
    its row).
    """
    coo = mat.tocoo()
    rows, cols, values = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data
    n_cols = np.int64(mat.shape[1])
    by_sign = [np.flatnonzero(values > 0), np.flatnonzero(values < 0)]
    for _ in range(2 * n_swaps):  # a round proposes one swap per two edges
        firsts, seconds = [], []
        for group in by_sign:
            order = rng.permutation(group)
            half = order.size // 2
            firsts.append(order[:half])
            seconds.append(order[half:2 * half])
        i, j = np.concatenate(firsts), np.concatenate(seconds)
        keys = np.sort(rows * n_cols + cols)
        new_i = rows[i] * n_cols + cols[j]
        new_j = rows[j] * n_cols + cols[i]
        ok = (rows[i] != rows[j]) & (cols[i] != cols[j])
        ok &= ~_contains(keys, new_i) & ~_contains(keys, new_j)
        proposed = np.concatenate([new_i[ok], new_j[ok]])
        unique, counts = np.unique(proposed, return_counts=True)
        clash = unique[counts > 1]
        ok[ok] = ~(_contains(clash, new_i[ok]) | _contains(clash, new_j[ok]))
        i, j = i[ok], j[ok]
        cols[i], cols[j] = cols[j], cols[i].copy()
    out = sparse.csr_matrix((values, (rows, cols)), shape=mat.shape)
    out.sort_indices()
    return out


def _contains(sorted_keys, keys):
    """Whether each of ``keys`` is in the sorted array ``sorted_keys``."""
    if sorted_keys.size == 0:
        return np.zeros(keys.shape, dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
    return sorted_keys[at] == keys


def rewire(net, random_state=None, *, n_swaps=_N_SWAPS, paired=None):
    """A degree-preserving rewiring of a network's graph.

    Every layer block is randomised by double-edge swaps: edges ``(a, b)``
    and ``(c, d)`` of the same sign become ``(a, d)`` and ``(c, b)``. Each
    unit keeps its number of edges (of each sign) in each layer, so the
    rewiring keeps the degrees and density of ``net`` and forgets which
    units its edges join: the null model for "structure beyond degrees".

    Parameters
    ----------
    net : estimator, torch.nn.Module or list of array-like
        A network, as accepted by :func:`spectral_density`.
    random_state : int, RandomState instance or None, default=None
        Seed of the swaps. An int gives the same rewiring every time.
    n_swaps : int, default=10
        Swap proposals per edge (in rounds of disjoint pairs); 10 mixes the
        degree-preserving ensemble well.
    paired : bool or None, default=None
        As in :func:`spectral_density`.

    Returns
    -------
    layers : list of scipy.sparse.csr_matrix, or list of ndarray of bool
        The network as the spectral functions read it (paired twins folded
        into signed edges, convolutions as channel graphs), rewired, shaped
        ``(n_in, n_out)``. Edge values move with their edges. Given an
        *architecture* (a list of boolean numpy arrays, as
        :func:`~sk_weightfree.architecture_of` returns), the rewired
        architecture in the same form and shapes: each layer rewired as a
        bipartite graph of its inputs and outputs (a convolution's inputs
        are its ``(in_channel, tap)`` pairs), every input and output keeping
        its number of edges; ``paired`` does not apply to it.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_weightfree._spectral import rewire
    >>> layers = [np.eye(4), np.ones((4, 2))]
    >>> rewired = rewire(layers, random_state=0)
    >>> rewired[0].sum(axis=0), rewired[0].sum(axis=1).T
    (matrix([[1., 1., 1., 1.]]), matrix([[1., 1., 1., 1.]]))
    """
    _check_int(n_swaps, "n_swaps", 1)
    _check_paired(paired)
    rng = check_random_state(random_state)
    from ._architecture import is_architecture, rewire_architecture

    if is_architecture(net):
        return rewire_architecture(net, rng, n_swaps)
    return [_rewire_layer(w, rng, n_swaps) for w in _as_layers(net, paired)]


# --------------------------------------------------------------------------
# Parameter validation
# --------------------------------------------------------------------------
def _check_params(bandwidth, n_points, method, n_steps, n_vectors, weighted,
                  drop_forced_ones, signed=False, paired=None):
    _check_int(n_points, "n_points", 2)
    if isinstance(bandwidth, str):
        if bandwidth != "auto":
            raise ValueError(
                f"bandwidth must be 'auto' or a real number > 0, got {bandwidth!r}."
            )
    elif isinstance(bandwidth, bool) or not isinstance(bandwidth, numbers.Real):
        raise ValueError(
            f"bandwidth must be 'auto' or a real number > 0, got {bandwidth!r}."
        )
    elif not np.isfinite(bandwidth) or bandwidth <= 0:
        raise ValueError(f"bandwidth must be > 0, got {bandwidth!r}.")
    else:
        spacing = 2.0 / (n_points - 1)
        if bandwidth < spacing / 2:
            # A kernel narrower than the grid spacing falls between grid points.
            raise ValueError(
                f"bandwidth={bandwidth!r} is too small for the grid spacing "
                f"{spacing:.3g} (n_points={n_points}); use bandwidth >= "
                f"{spacing / 2:.3g} or more n_points."
            )
    for name, value in (("weighted", weighted), ("drop_forced_ones", drop_forced_ones),
                        ("signed", signed)):
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{name} must be True or False, got {value!r}.")
    _check_paired(paired)
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")
    if n_steps is not None:
        _check_int(n_steps, "n_steps", 1)
    if n_vectors is not None:
        _check_int(n_vectors, "n_vectors", 1)


def _check_paired(paired):
    if paired is not None and not isinstance(paired, (bool, np.bool_)):
        raise ValueError(f"paired must be None, True or False, got {paired!r}.")


def _check_int(value, name, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}.")


def _default_steps(bandwidth):
    # Measured (docs/spectral.md): 30 steps reach the stochastic error floor
    # at bandwidth 0.02; a narrower kernel needs more.
    return int(min(max(np.ceil(0.6 / bandwidth), 10), 1000))


def _default_vectors(dim):
    # Stochastic trace error shrinks like 1 / sqrt(n_vectors * dim).
    return int(min(max(8, np.ceil(2e5 / max(dim, 1))), 64))


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------
def spectral_density(net, *, bandwidth="auto", n_points=512, weighted=False,
                     signed=_SIGNED_DEFAULT, drop_forced_ones=True,
                     method="auto", n_steps=None, n_vectors=None,
                     random_state=None, paired=None):
    """Smoothed eigenvalue density of a network's normalised Laplacian.

    Parameters
    ----------
    net : estimator, torch.nn.Module or list of array-like
        A fitted estimator exposing ``coefs_`` (e.g. ``MLPClassifier``), a
        torch module (its ``nn.Conv2d`` and ``nn.Linear`` layers in
        registration order; biases are ignored), or a list of 2-D arrays /
        sparse matrices shaped ``(n_in, n_out)`` and 4-D convolution kernels
        shaped ``(out_channels, in_channels, kh, kw)``. A linear layer after
        a convolution with ``C`` output channels reads its output flattened
        channel-major: ``C * k`` rows, ``k`` per channel. An estimator with
        ``paired_inputs_=True``, and a layer of a torch module that follows a
        ``PairedInput`` (as in ``to_module()``), has its excitatory and
        inhibitory input lines (rows, or input channels of a kernel) folded
        into one signed edge.
    bandwidth : "auto" or float, default="auto"
        Standard deviation of the Gaussian kernel. ``"auto"`` follows the
        spectrum: ``4 / m`` for a network with ``m`` eigenvalue pairs
        ``1 +- s`` (four mean eigenvalue spacings), at most 0.02 and at least
        one grid spacing; with the approximate method also at least the
        ``0.6 / n_steps`` that its Lanczos steps resolve (docs/spectral.md).
        ``0.02`` is the fixed value used before.
    n_points : int, default=512
        Number of grid points on ``[0, 2]``.
    weighted : bool, default=False
        Use ``|w|`` as edge weights instead of 1 (``w`` with ``signed``).
    signed : bool, default=True
        Keep the signs of the edges: the spectrum of the signed normalised
        Laplacian ``I - D^{-1/2} A D^{-1/2}``, ``A`` signed and ``D`` the
        absolute degrees. It sees which edges inhibit (the sign pattern of a
        paired weight-free network, of a dense network's weights); for
        networks without negative edges it is the unsigned spectrum.
    drop_forced_ones : bool, default=True
        Leave out the eigenvalues at exactly 1 that the layer sizes force: one
        per isolated unit and ``|n_even - n_odd|`` from the unequal sides of
        the bipartite graph. They are the same for every network of one shape
        and pull all similarities towards 1. ``False`` keeps the full
        spectrum.
    method : {"auto", "exact", "approximate"}, default="auto"
        ``"exact"`` computes all eigenvalues with a dense SVD (cubic cost).
        ``"approximate"`` uses stochastic Lanczos quadrature on the sparse
        matrix: time ``O(n_edges * n_steps * n_vectors)``, memory
        ``O(n_edges + n_nodes * n_vectors)``; its base-2 Jensen-Shannon
        distance to the exact density is about 0.01 (docs/spectral.md).
        ``"auto"`` is exact up to 2000 nodes, approximate above.
    n_steps : int, default=None
        Lanczos steps per probe vector (approximate method). ``None`` uses
        ``0.6 / bandwidth`` clipped to ``[10, 1000]``.
    n_vectors : int, default=None
        Number of random probe vectors (approximate method). ``None`` uses
        ``2e5 / m`` clipped to ``[8, 64]``, with ``m`` the size of the smaller
        side of the bipartite graph. Exact traces (one probe per unit) are
        used when ``n_vectors >= m``.
    random_state : int, RandomState instance or None, default=None
        Seed of the probe vectors. An int gives reproducible results.
    paired : bool or None, default=None
        Fold twin lines ``[h, -h]`` into signed edges: ``None`` reads it from
        the network (``paired_inputs_``, ``PairedInput``; lists are not
        folded), ``True`` folds every layer (e.g. a list of a paired
        estimator's ``coefs_``), ``False`` none.

    Returns
    -------
    grid : ndarray of shape (n_points,)
        ``np.linspace(0, 2, n_points)``.
    density : ndarray of shape (n_points,)
        Non-negative, ``density.sum() * (grid[1] - grid[0]) == 1``.

    Notes
    -----
    The graph has one node per unit and one edge per non-zero weight; the
    spectrum is that of ``L = I - D^{-1/2} A D^{-1/2}``, with isolated units
    contributing the eigenvalue 1. A convolution contributes one node per
    channel and one edge per channel pair with a non-zero tap (weight ``sum
    |w|`` over the taps); a linear layer after it, one edge per channel and
    unit with a non-zero weight (``sum |w|`` over the channel's rows).
    """
    _check_params(bandwidth, n_points, method, n_steps, n_vectors, weighted,
                  drop_forced_ones, signed, paired)
    grid = np.linspace(0.0, 2.0, n_points)
    spectrum = _net_spectrum(_as_layers(net, paired), bandwidth, n_points,
                             weighted, signed, drop_forced_ones, method,
                             n_steps, n_vectors, random_state)
    return grid, spectrum.density(grid, spectrum.bandwidth)


def _js_distance(p, q):
    """Base-2 Jensen-Shannon distance, stable when ``p`` is close to ``q``.

    Equals ``scipy.spatial.distance.jensenshannon(p, q, base=2)``; scipy's
    form rounds ``p / m`` and leaves ~1e-8 of noise after the square root,
    while ``log1p`` of the relative difference keeps identical inputs at 0.
    """
    p = p / p.sum()
    q = q / q.sum()
    m = 0.5 * (p + q)
    d = 0.5 * (p - q)
    pos = m > 0
    x = d[pos] / m[pos]
    with np.errstate(divide="ignore", invalid="ignore"):
        h = (1 + x) * np.log1p(x) + (1 - x) * np.log1p(-x)
    # x = +-1 (one of p, q is zero there): limit is 2 log 2.
    h = np.where(np.abs(x) >= 1.0, 2.0 * np.log(2.0), h)
    div = 0.5 * np.sum(m[pos] * h) / np.log(2.0)
    return float(np.sqrt(max(div, 0.0)))


def _compare(grid, p, q, metric):
    if metric == "jensen-shannon":
        sim = 1.0 - _js_distance(p, q)
    else:
        # Earth mover's distance between the densities; the support has
        # length 2, so the distance is at most 2.
        sim = 1.0 - 0.5 * wasserstein_distance(grid, grid, p, q)
    return float(np.clip(sim, 0.0, 1.0))


def _check_metric(metric):
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {_METRICS}, got {metric!r}.")


def spectral_similarity(a, b, *, bandwidth="auto", n_points=512, weighted=False,
                        signed=_SIGNED_DEFAULT, drop_forced_ones=True,
                        method="auto", n_steps=None, n_vectors=None,
                        random_state=None, metric="jensen-shannon",
                        paired=None, calibrate=False, n_rewirings=3):
    """Similarity of two networks' Laplacian spectra.

    Parameters
    ----------
    a, b : estimator, torch.nn.Module or list of array-like
        Networks, as accepted by :func:`spectral_density`.
    bandwidth, n_points, weighted, signed, drop_forced_ones, method, \
n_steps, n_vectors, random_state, paired
        See :func:`spectral_density`. The two networks are compared at the
        wider of their two ``"auto"`` bandwidths. An int ``random_state``
        gives both networks the same probe stream.
    metric : {"jensen-shannon", "wasserstein"}, default="jensen-shannon"
        ``"jensen-shannon"``: ``1 - jensenshannon(p, q, base=2)``.
        ``"wasserstein"``: ``1 - W1(p, q) / 2`` (eigenvalues span ``[0, 2]``).
    calibrate : bool, default=False
        Report the similarity relative to a null: ``1 - d / d0``, with ``d =
        1 - similarity`` and ``d0`` the larger of the mean distances of
        ``a`` and of ``b`` to ``n_rewirings`` of their own degree-preserving
        rewirings (:func:`rewire`). 1 means identical spectra, 0 "no more
        alike than a network and its rewiring" (the degrees and density
        alone), negative less alike. It costs ``n_rewirings`` rewirings and
        extra spectra per network.
    n_rewirings : int, default=3
        Rewirings per network for ``calibrate=True``, seeded from
        ``random_state``.

    Returns
    -------
    similarity : float
        In ``[0, 1]`` (at most 1 with ``calibrate=True``), 1 for identical
        spectra, symmetric in ``a`` and ``b``. Invariant to permutations of
        hidden units (up to rounding with the exact method, up to the
        sampling error with the approximate one).
    """
    return float(pairwise_spectral_similarity(
        [a, b], bandwidth=bandwidth, n_points=n_points, weighted=weighted,
        signed=signed, drop_forced_ones=drop_forced_ones, method=method,
        n_steps=n_steps, n_vectors=n_vectors, random_state=random_state,
        metric=metric, paired=paired, calibrate=calibrate,
        n_rewirings=n_rewirings,
    )[0, 1])


def pairwise_spectral_similarity(nets, *, bandwidth="auto", n_points=512,
                                 weighted=False, signed=_SIGNED_DEFAULT,
                                 drop_forced_ones=True, method="auto",
                                 n_steps=None, n_vectors=None,
                                 random_state=None, metric="jensen-shannon",
                                 paired=None, calibrate=False, n_rewirings=3):
    """Matrix of spectral similarities, each spectrum computed once.

    Parameters
    ----------
    nets : sequence of networks
        Networks, as accepted by :func:`spectral_density`.
    bandwidth, n_points, weighted, signed, drop_forced_ones, method, \
n_steps, n_vectors, random_state, paired
        See :func:`spectral_density`.
    metric, calibrate, n_rewirings
        See :func:`spectral_similarity`.

    Returns
    -------
    similarity : ndarray of shape (n_nets, n_nets)
        Symmetric, ones on the diagonal, entry ``(i, j)`` equal to
        ``spectral_similarity(nets[i], nets[j])`` with the same arguments.
    """
    _check_params(bandwidth, n_points, method, n_steps, n_vectors, weighted,
                  drop_forced_ones, signed, paired)
    _check_metric(metric)
    if not isinstance(calibrate, (bool, np.bool_)):
        raise ValueError(f"calibrate must be True or False, got {calibrate!r}.")
    _check_int(n_rewirings, "n_rewirings", 1)
    grid = np.linspace(0.0, 2.0, n_points)
    options = (bandwidth, n_points, weighted, signed, drop_forced_ones, method,
               n_steps, n_vectors)
    layer_lists = [_as_layers(net, paired) for net in nets]
    spectra = [_net_spectrum(layers, *options, random_state)
               for layers in layer_lists]
    nulls = None
    if calibrate:
        # The same rewiring seeds for every network, so that a network's
        # null does not depend on its position in ``nets``.
        seeds = check_random_state(random_state).randint(
            np.iinfo(np.int32).max, size=n_rewirings)
        nulls = [
            [_net_spectrum([_rewire_layer(w, np.random.RandomState(seed), _N_SWAPS)
                            for w in layers], *options, random_state)
             for seed in seeds]
            for layers in layer_lists
        ]
    n = len(spectra)
    out = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            width = max(spectra[i].bandwidth, spectra[j].bandwidth)
            sim = _compare(grid, spectra[i].density(grid, width),
                           spectra[j].density(grid, width), metric)
            if nulls is not None:
                # The larger of the two nulls: a network and its own
                # rewiring then score 0 whichever of them is structured.
                null_distance = max(np.mean([
                    1.0 - _compare(grid, spectra[k].density(grid, width),
                                   r.density(grid, width), metric)
                    for r in nulls[k]]) for k in (i, j))
                sim = _calibrated(1.0 - sim, null_distance)
            out[i, j] = out[j, i] = sim
    return out


def _calibrated(distance, null_distance):
    """``1 - distance / null_distance``; 1 when both are 0."""
    if null_distance <= 1e-12:
        # The degrees fix the graph (complete layers): any difference in the
        # spectrum is infinitely beyond the null.
        return 1.0 if distance <= 1e-12 else -np.inf
    return float(1.0 - distance / null_distance)
