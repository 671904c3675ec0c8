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
``L = I - D^{-1/2} A D^{-1/2}``.

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

__all__ = [
    "pairwise_spectral_similarity",
    "spectral_density",
    "spectral_similarity",
]

_METHODS = ("auto", "exact", "approximate")
_METRICS = ("jensen-shannon", "wasserstein")
#: ``method="auto"`` computes the exact spectrum up to this many nodes.
_AUTO_EXACT_MAX_NODES = 2000
# Upper bound on the number of kernel evaluations held in memory at once.
_CHUNK = 1 << 22


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


def _as_layers(net):
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
        layer.

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
    elif hasattr(net, "coefs_"):
        raw = net.coefs_
        if not isinstance(raw, (list, tuple)):
            raise TypeError(
                f"{type(net).__name__}.coefs_ must be a list of 2-D or 4-D "
                f"arrays, got {type(raw).__name__}."
            )
        raw = list(raw)
        if getattr(net, "paired_inputs_", False):
            raw = [_fold_paired(w, i) for i, w in enumerate(raw)]
    elif module_cls is not None and isinstance(net, module_cls):
        raw, groups = _module_layers(net, linear_cls, conv_cls)
    elif hasattr(net, "fit"):
        raise NotFittedError(
            f"This {type(net).__name__} instance has no `coefs_` attribute: "
            "it is not fitted yet. Call `fit` before computing its spectrum."
        )
    else:
        raise TypeError(
            "Expected a fitted estimator with `coefs_`, a torch.nn.Module or a "
            "list of 2-D weight matrices shaped (n_in, n_out) and 4-D kernels "
            f"shaped (out_channels, in_channels, kh, kw); got {type(net).__name__}."
        )
    if len(raw) == 0:
        raise ValueError("The network has no layers (empty list of weights).")
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
                )
            layers[i + 1] = _collapse_flatten(layers[i + 1], n_out, i + 1,
                                              shapes[i + 1])
        elif n_in != n_out:
            what = "input channels" if is_conv[i + 1] else "rows"
            raise ValueError(
                f"Layer shapes do not chain: layer {i} has shape {shapes[i]} "
                f"but layer {i + 1} has shape {shapes[i + 1]}; expected layer "
                f"{i + 1} to have {n_out} {what}."
            )
    return layers


def _module_layers(net, linear_cls, conv_cls):
    """Weights of the ``nn.Linear`` / ``nn.Conv2d`` layers and their groups."""
    raw, groups = [], []
    for m in net.modules():
        if isinstance(m, linear_cls):
            raw.append(m.weight.detach().cpu().numpy().T)
            groups.append(1)
        elif isinstance(m, conv_cls):
            raw.append(m.weight.detach().cpu().numpy())
            groups.append(int(m.groups))
    if not raw:
        raise ValueError(
            f"The torch module {type(net).__name__} contains no nn.Linear or "
            "nn.Conv2d layers."
        )
    return raw, groups


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
    n_in = w.shape[axis] // 2
    if axis == 0:
        return w[:n_in] - w[n_in:]
    return w[:, :n_in] - w[:, n_in:]


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


def _edge_values(w, weighted):
    return np.abs(w.data) if weighted else np.ones_like(w.data)


def _adjacency(net, weighted=False):
    """Symmetric sparse adjacency matrix, nodes ordered layer by layer."""
    layers = _as_layers(net)
    sizes = _layer_sizes(layers)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    rows, cols, vals = [], [], []
    for i, w in enumerate(layers):
        coo = w.tocoo()
        rows.append(offsets[i] + coo.row)
        cols.append(offsets[i + 1] + coo.col)
        vals.append(_edge_values(coo, weighted))
    r, c, v = (np.concatenate(x) for x in (rows, cols, vals))
    n = int(offsets[-1])
    upper = sparse.csr_matrix((v, (r, c)), shape=(n, n))
    return (upper + upper.T).tocsr()


def _normalized_block(layers, weighted=False):
    """Even-by-odd block ``C`` of ``D^{-1/2} A D^{-1/2}`` and the node count."""
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
        vals.append(_edge_values(coo, weighted))
    r, c, v = (np.concatenate(x) for x in (rows, cols, vals))
    block = sparse.csr_matrix((v, (r, c)), shape=(n_even, n_odd))
    deg_even = np.asarray(block.sum(axis=1)).ravel()
    deg_odd = np.asarray(block.sum(axis=0)).ravel()
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


def _laplacian_eigenvalues(net, weighted=False, drop_forced_ones=False):
    """Exact sorted eigenvalues of the normalised Laplacian of ``net``."""
    s, n_forced = _exact_singular_values(_as_layers(net), weighted)
    ones = np.ones(0 if drop_forced_ones else n_forced)
    return np.sort(np.concatenate([1.0 - s, 1.0 + s, ones]))


def _smaller_side(layers, weighted):
    """Normalised block over connected units, smaller side first.

    Returns ``(left, n_forced)``: ``left`` has shape ``(m, k)`` with
    ``m <= k``, so the Laplacian has the eigenvalues ``1 +- s`` for the ``m``
    singular values ``s`` of ``left`` and ``n_forced = n_nodes - 2 m``
    eigenvalues at exactly 1 (isolated units and the imbalance of the sides).
    """
    block, n_nodes = _normalized_block(layers, weighted)
    # Isolated units are empty rows/columns; dropping them changes nothing
    # but the count of forced ones, which is then known without sampling.
    block = block[block.getnnz(axis=1) > 0][:, block.getnnz(axis=0) > 0]
    if block.shape[0] > block.shape[1]:
        block = block.T
    left = block.tocsr()
    return left, n_nodes - 2 * left.shape[0]


def _exact_singular_values(layers, weighted):
    # Dense SVD of the bipartite block: cheaper and more accurate than
    # eigvalsh of the full Laplacian.
    left, n_forced = _smaller_side(layers, weighted)
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


def _spectrum(layers, weighted, method, n_steps, n_vectors, rng):
    """Singular values ``s`` with weights, and the number of forced ones."""
    if method == "exact":
        s, n_forced = _exact_singular_values(layers, weighted)
        return s, np.ones_like(s), n_forced
    left, n_forced = _smaller_side(layers, weighted)
    if left.shape[0] == 0:
        return np.zeros(0), np.zeros(0), n_forced
    theta, weights = _lanczos_quadrature(left, n_steps, n_vectors, rng)
    return np.sqrt(theta), weights, n_forced


# --------------------------------------------------------------------------
# Parameter validation
# --------------------------------------------------------------------------
def _check_params(bandwidth, n_points, method, n_steps, n_vectors, weighted,
                  drop_forced_ones):
    if isinstance(bandwidth, bool) or not isinstance(bandwidth, numbers.Real):
        raise ValueError(f"bandwidth must be a real number > 0, got {bandwidth!r}.")
    if not np.isfinite(bandwidth) or bandwidth <= 0:
        raise ValueError(f"bandwidth must be > 0, got {bandwidth!r}.")
    _check_int(n_points, "n_points", 2)
    spacing = 2.0 / (n_points - 1)
    if bandwidth < spacing / 2:
        # A kernel narrower than the grid spacing falls between grid points.
        raise ValueError(
            f"bandwidth={bandwidth!r} is too small for the grid spacing {spacing:.3g} "
            f"(n_points={n_points}); use bandwidth >= {spacing / 2:.3g} or more n_points."
        )
    for name, value in (("weighted", weighted), ("drop_forced_ones", drop_forced_ones)):
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{name} must be True or False, got {value!r}.")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")
    if n_steps is not None:
        _check_int(n_steps, "n_steps", 1)
    if n_vectors is not None:
        _check_int(n_vectors, "n_vectors", 1)


def _check_int(value, name, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}.")


def _default_steps(bandwidth):
    # Measured (docs/spectral.md): 30 steps reach the stochastic error floor
    # at the default bandwidth 0.02; a narrower kernel needs more.
    return int(min(max(np.ceil(0.6 / bandwidth), 10), 1000))


def _default_vectors(dim):
    # Stochastic trace error shrinks like 1 / sqrt(n_vectors * dim).
    return int(min(max(8, np.ceil(2e5 / max(dim, 1))), 64))


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------
def _density(layers, bandwidth, n_points, weighted, drop_forced_ones, method,
             n_steps, n_vectors, random_state):
    grid = np.linspace(0.0, 2.0, n_points)
    sizes = _layer_sizes(layers)
    if method == "auto":
        method = "exact" if sum(sizes) <= _AUTO_EXACT_MAX_NODES else "approximate"
    if n_steps is None:
        n_steps = _default_steps(bandwidth)
    if n_vectors is None:
        n_vectors = _default_vectors(min(sum(sizes[0::2]), sum(sizes[1::2])))
    rng = check_random_state(random_state) if method == "approximate" else None
    s, weights, n_forced = _spectrum(layers, weighted, method, n_steps,
                                     n_vectors, rng)
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
    density = _smooth(grid, centers, weights, bandwidth)
    total = density.sum() * (grid[1] - grid[0])
    if not total > 0:
        raise ValueError(
            f"bandwidth={bandwidth!r} is too small for the grid spacing "
            f"{grid[1] - grid[0]:.3g}: increase bandwidth or n_points."
        )
    density /= total
    return grid, density


def spectral_density(net, *, bandwidth=0.02, n_points=512, weighted=False,
                     drop_forced_ones=True, method="auto", n_steps=None,
                     n_vectors=None, random_state=None):
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
        ``paired_inputs_=True`` has its excitatory and inhibitory input lines
        (rows, or input channels of a kernel) folded into one signed edge.
    bandwidth : float, default=0.02
        Standard deviation of the Gaussian kernel.
    n_points : int, default=512
        Number of grid points on ``[0, 2]``.
    weighted : bool, default=False
        Use ``|w|`` as edge weights instead of 1.
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
        ``0.6 / bandwidth`` clipped to ``[10, 1000]`` (30 for the default
        bandwidth).
    n_vectors : int, default=None
        Number of random probe vectors (approximate method). ``None`` uses
        ``2e5 / m`` clipped to ``[8, 64]``, with ``m`` the size of the smaller
        side of the bipartite graph. Exact traces (one probe per unit) are
        used when ``n_vectors >= m``.
    random_state : int, RandomState instance or None, default=None
        Seed of the probe vectors. An int gives reproducible results.

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
                  drop_forced_ones)
    return _density(_as_layers(net), bandwidth, n_points, weighted,
                    drop_forced_ones, method, n_steps, n_vectors, random_state)


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


def spectral_similarity(a, b, *, bandwidth=0.02, n_points=512, weighted=False,
                        drop_forced_ones=True, method="auto", n_steps=None,
                        n_vectors=None, random_state=None,
                        metric="jensen-shannon"):
    """Similarity in ``[0, 1]`` of two networks' Laplacian spectra.

    Parameters
    ----------
    a, b : estimator, torch.nn.Module or list of array-like
        Networks, as accepted by :func:`spectral_density`.
    bandwidth, n_points, weighted, drop_forced_ones, method, n_steps, \
n_vectors, random_state
        See :func:`spectral_density`. An int ``random_state`` gives both
        networks the same probe stream.
    metric : {"jensen-shannon", "wasserstein"}, default="jensen-shannon"
        ``"jensen-shannon"``: ``1 - jensenshannon(p, q, base=2)``.
        ``"wasserstein"``: ``1 - W1(p, q) / 2`` (eigenvalues span ``[0, 2]``).

    Returns
    -------
    similarity : float
        1 for identical spectra, symmetric in ``a`` and ``b``. Invariant to
        permutations of hidden units (up to rounding with the exact method,
        up to the sampling error with the approximate one).
    """
    _check_metric(metric)
    return float(pairwise_spectral_similarity(
        [a, b], bandwidth=bandwidth, n_points=n_points, weighted=weighted,
        drop_forced_ones=drop_forced_ones, method=method, n_steps=n_steps,
        n_vectors=n_vectors, random_state=random_state, metric=metric,
    )[0, 1])


def pairwise_spectral_similarity(nets, *, bandwidth=0.02, n_points=512,
                                 weighted=False, drop_forced_ones=True,
                                 method="auto", n_steps=None, n_vectors=None,
                                 random_state=None, metric="jensen-shannon"):
    """Matrix of spectral similarities, each density computed once.

    Parameters
    ----------
    nets : sequence of networks
        Networks, as accepted by :func:`spectral_density`.
    bandwidth, n_points, weighted, drop_forced_ones, method, n_steps, \
n_vectors, random_state
        See :func:`spectral_density`.
    metric : {"jensen-shannon", "wasserstein"}, default="jensen-shannon"
        See :func:`spectral_similarity`.

    Returns
    -------
    similarity : ndarray of shape (n_nets, n_nets)
        Symmetric, ones on the diagonal, values in ``[0, 1]``.
    """
    _check_params(bandwidth, n_points, method, n_steps, n_vectors, weighted,
                  drop_forced_ones)
    _check_metric(metric)
    layer_lists = [_as_layers(net) for net in nets]
    densities = [
        _density(layers, bandwidth, n_points, weighted, drop_forced_ones,
                 method, n_steps, n_vectors, random_state)
        for layers in layer_lists
    ]
    n = len(densities)
    out = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = _compare(
                densities[i][0], densities[i][1], densities[j][1], metric
            )
    return out
