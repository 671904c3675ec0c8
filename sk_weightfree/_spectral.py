"""Compare network structures through the spectra of their graphs.

A feed-forward network is turned into an undirected graph with one node per
unit (inputs, hidden units and outputs) and one edge per non-zero weight
between consecutive layers. Two networks are compared through the smoothed
eigenvalue distributions of their normalised Laplacians
``L = I - D^{-1/2} A D^{-1/2}``.

Isolated nodes (units whose weights are all zero) have a zero row in
``D^{-1/2} A D^{-1/2}`` and therefore contribute the eigenvalue 1. All
eigenvalues lie in ``[0, 2]``.

Such a layered graph is bipartite (even layers against odd layers), so with
``C`` the even-by-odd block of ``D^{-1/2} A D^{-1/2}`` the spectrum of ``L`` is
``{1 - s, 1 + s}`` for the singular values ``s`` of ``C``, plus eigenvalue 1
for the remaining nodes. Both methods below work on ``C`` only.
"""

import numbers
import sys

import numpy as np
from scipy import fft, linalg, sparse
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
        return None, None
    return torch.nn.Module, torch.nn.Linear


def _as_layers(net):
    """Convert a network to a list of CSR weight matrices shaped (n_in, n_out).

    Parameters
    ----------
    net : object
        A fitted estimator with ``coefs_``, a ``torch.nn.Module`` (its
        ``nn.Linear`` submodules in registration order), or a list/tuple of
        2-D arrays or sparse matrices shaped ``(n_in, n_out)``.

    Returns
    -------
    layers : list of scipy.sparse.csr_matrix
        Float64 matrices without explicit zeros.
    """
    module_cls, linear_cls = _torch_module_class()
    if isinstance(net, (list, tuple)):
        raw = list(net)
    elif hasattr(net, "coefs_"):
        raw = net.coefs_
        if not isinstance(raw, (list, tuple)):
            raise TypeError(
                f"{type(net).__name__}.coefs_ must be a list of 2-D arrays, "
                f"got {type(raw).__name__}."
            )
        raw = list(raw)
    elif module_cls is not None and isinstance(net, module_cls):
        raw = [
            m.weight.detach().cpu().numpy().T
            for m in net.modules()
            if isinstance(m, linear_cls)
        ]
        if not raw:
            raise ValueError(
                f"The torch module {type(net).__name__} contains no nn.Linear "
                "layers."
            )
    elif hasattr(net, "fit"):
        raise NotFittedError(
            f"This {type(net).__name__} instance has no `coefs_` attribute: "
            "it is not fitted yet. Call `fit` before computing its spectrum."
        )
    else:
        raise TypeError(
            "Expected a fitted estimator with `coefs_`, a torch.nn.Module or a "
            "list of 2-D weight matrices shaped (n_in, n_out); got "
            f"{type(net).__name__}."
        )
    if len(raw) == 0:
        raise ValueError("The network has no layers (empty list of weights).")
    layers = [_check_layer(w, i) for i, w in enumerate(raw)]
    for i in range(len(layers) - 1):
        if layers[i].shape[1] != layers[i + 1].shape[0]:
            raise ValueError(
                f"Layer shapes do not chain: layer {i} has shape "
                f"{layers[i].shape} but layer {i + 1} has shape "
                f"{layers[i + 1].shape}; expected layer {i + 1} to have "
                f"{layers[i].shape[1]} rows."
            )
    return layers


def _check_layer(w, i):
    if sparse.issparse(w):
        dtype, ndim = w.dtype, w.ndim
    else:
        try:
            w = np.asarray(w)
        except Exception as exc:  # e.g. ragged nested lists
            raise TypeError(
                f"Layer {i} could not be converted to an array: {exc}"
            ) from exc
        dtype, ndim = w.dtype, w.ndim
    if dtype.kind not in "biuf":
        raise TypeError(
            f"Layer {i} must hold real numbers, got dtype {dtype} "
            f"({type(w).__name__})."
        )
    if ndim != 2:
        raise ValueError(
            f"Layer {i} must be 2-D (n_in, n_out), got shape {w.shape}."
        )
    if min(w.shape) == 0:
        raise ValueError(f"Layer {i} has an empty dimension: shape {w.shape}.")
    mat = sparse.csr_matrix(w, dtype=np.float64, copy=True)
    if not np.all(np.isfinite(mat.data)):
        raise ValueError(
            f"Layer {i} (shape {w.shape}) contains NaN or infinite values."
        )
    mat.eliminate_zeros()
    return mat


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


def _laplacian_eigenvalues(net, weighted=False):
    """Exact sorted eigenvalues of the normalised Laplacian of ``net``."""
    return _exact_eigenvalues(_as_layers(net), weighted)


def _exact_eigenvalues(layers, weighted):
    # Dense SVD of the bipartite block: cheaper and more accurate than
    # eigvalsh of the full Laplacian.
    block, n_nodes = _normalized_block(layers, weighted)
    s = linalg.svdvals(block.toarray(), check_finite=False)
    s = np.clip(s, 0.0, 1.0)
    ones = np.ones(n_nodes - 2 * s.size)
    return np.sort(np.concatenate([1.0 - s, 1.0 + s, ones]))


# --------------------------------------------------------------------------
# Densities
# --------------------------------------------------------------------------
def _smooth(grid, centers, weights, bandwidth):
    """Sum of Gaussians ``weights[j] * N(grid; centers[j], bandwidth[j])``.

    ``bandwidth`` is a scalar or one value per center; chunked over centers.
    """
    bandwidth = np.broadcast_to(np.asarray(bandwidth, dtype=float), centers.shape)
    scaled = weights / bandwidth
    out = np.zeros_like(grid)
    step = max(1, _CHUNK // grid.size)
    for start in range(0, centers.size, step):
        sl = slice(start, start + step)
        z = (grid[:, None] - centers[None, sl]) / bandwidth[None, sl]
        # einsum avoids threaded BLAS, whose spin-waits are slow on busy CPUs.
        out += np.einsum("ij,j->i", np.exp(-0.5 * z * z), scaled[sl])
    return out


def _exact_density(layers, grid, bandwidth, weighted):
    eig = _exact_eigenvalues(layers, weighted)
    return _smooth(grid, eig, np.ones_like(eig), bandwidth)


def _jackson(n_moments):
    """Jackson damping factors g_0 .. g_{n_moments - 1}."""
    m1 = n_moments + 1
    j = np.arange(n_moments)
    a = np.pi / m1
    return ((m1 - j) * np.cos(a * j) + np.sin(a * j) / np.tan(a)) / m1


def _chebyshev_traces(block, degree, n_vectors, rng):
    """Estimate ``tr T_k(2 W - I)`` for ``k = 0 .. degree``.

    ``W`` is the smaller of ``C C^T`` and ``C^T C`` (eigenvalues in [0, 1]).
    Rademacher probes; the identity is used (exact traces) when
    ``n_vectors`` reaches the dimension of ``W``.
    """
    left = block if block.shape[0] <= block.shape[1] else block.T.tocsr()
    right = left.T.tocsr()
    dim = left.shape[0]
    if n_vectors >= dim:
        probes, n_probe = np.eye(dim), 1
    else:
        n_probe = n_vectors
        probes = rng.randint(0, 2, size=(dim, n_vectors)).astype(np.float64)
        probes = 2.0 * probes - 1.0

    def shifted(x):  # (2W - I) x
        return 2.0 * (left @ (right @ x)) - x

    def dot(x, y):
        # einsum avoids threaded BLAS, whose spin-waits are slow on busy CPUs.
        return np.einsum("ij,ij->", x, y)

    mu = np.empty(degree + 1)
    v_prev, v_cur = probes, shifted(probes)
    mu[0] = dot(v_prev, v_prev)
    if degree >= 1:
        mu[1] = dot(v_prev, v_cur)
    # Doubling: T_{2k} = 2 T_k^2 - T_0 and T_{2k+1} = 2 T_{k+1} T_k - T_1,
    # so k products with W give the moments up to degree 2k + 1.
    k = 1
    while 2 * k <= degree:
        mu[2 * k] = 2.0 * dot(v_cur, v_cur) - mu[0]
        if 2 * k + 1 <= degree:
            v_next = 2.0 * shifted(v_cur) - v_prev
            mu[2 * k + 1] = 2.0 * dot(v_next, v_cur) - mu[1]
            v_prev, v_cur = v_cur, v_next
        k += 1
    return mu / n_probe, dim


def _kpm_density(layers, grid, bandwidth, weighted, n_moments, n_vectors, rng):
    block, n_nodes = _normalized_block(layers, weighted)
    # Spectrum of N = D^-1/2 A D^-1/2 is symmetric (bipartite graph): odd
    # Chebyshev moments vanish and T_{2k}(N) = T_k(2 N^2 - I), where N^2 is
    # block diagonal with the non-zero spectrum of W twice, plus zeros.
    half = (n_moments - 1) // 2
    traces, dim = _chebyshev_traces(block, half, n_vectors, rng)
    sign = (-1.0) ** np.arange(half + 1)
    tau = np.zeros(n_moments)
    tau[0 : 2 * half + 1 : 2] = (2.0 * traces + (n_nodes - 2 * dim) * sign) / n_nodes
    coef = _jackson(n_moments) * tau
    # Damped density of N's eigenvalues nu on Chebyshev nodes (DCT-III), then
    # Gauss-Chebyshev quadrature against the Gaussian kernel in lambda = 1 - nu.
    n_nodes_q = fft.next_fast_len(max(2 * n_moments, int(np.ceil(10.0 / bandwidth))))
    padded = np.zeros(n_nodes_q)
    padded[:n_moments] = coef
    values = fft.dct(padded, type=3)
    nu = np.cos(np.pi * (np.arange(n_nodes_q) + 0.5) / n_nodes_q)
    # Jackson damping turns an eigenvalue at nu into a peak of variance
    # var(nu) (exact, from the damped moments of x and x^2). Narrow the
    # Gaussian by the same amount so the total width stays ``bandwidth``.
    g = np.zeros(3)
    g[: min(3, n_moments)] = _jackson(n_moments)[:3]
    var = 0.5 * (1.0 + g[2] * (2.0 * nu**2 - 1.0)) - (g[1] * nu) ** 2
    var = np.clip(var, 0.0, 0.5 * bandwidth**2)
    return _smooth(grid, 1.0 - nu, values, np.sqrt(bandwidth**2 - var))


# --------------------------------------------------------------------------
# Parameter validation
# --------------------------------------------------------------------------
def _check_params(bandwidth, n_points, method, n_moments, n_vectors, weighted):
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
    if not isinstance(weighted, (bool, np.bool_)):
        raise ValueError(f"weighted must be True or False, got {weighted!r}.")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")
    if n_moments is not None:
        _check_int(n_moments, "n_moments", 2)
    if n_vectors is not None:
        _check_int(n_vectors, "n_vectors", 1)


def _check_int(value, name, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}.")


def _default_moments(bandwidth):
    # Jackson damping broadens a peak by about pi / n_moments (compensated in
    # _kpm_density); keep that below a third of the bandwidth.
    return int(min(max(np.ceil(3.0 * np.pi / bandwidth), 64), 4096))


def _default_vectors(dim_hint):
    # Stochastic trace error shrinks like 1 / sqrt(n_vectors * dim).
    return int(min(max(8, np.ceil(2e5 / max(dim_hint, 1))), 64))


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------
def _density(layers, bandwidth, n_points, weighted, method, n_moments,
             n_vectors, random_state):
    grid = np.linspace(0.0, 2.0, n_points)
    n_nodes = sum(_layer_sizes(layers))
    if method == "auto":
        method = "exact" if n_nodes <= _AUTO_EXACT_MAX_NODES else "approximate"
    if method == "exact":
        density = _exact_density(layers, grid, bandwidth, weighted)
    else:
        if n_moments is None:
            n_moments = _default_moments(bandwidth)
        if n_vectors is None:
            sizes = _layer_sizes(layers)
            dim = min(sum(sizes[0::2]), sum(sizes[1::2]))
            n_vectors = _default_vectors(dim)
        rng = check_random_state(random_state)
        density = _kpm_density(
            layers, grid, bandwidth, weighted, n_moments, n_vectors, rng
        )
    # Stochastic moments can leave tiny negative values far from the support.
    density = np.clip(density, 0.0, None)
    total = density.sum() * (grid[1] - grid[0])
    if not total > 0:
        raise ValueError(
            f"bandwidth={bandwidth!r} is too small for the grid spacing "
            f"{grid[1] - grid[0]:.3g}: increase bandwidth or n_points."
        )
    density /= total
    return grid, density


def spectral_density(net, *, bandwidth=0.02, n_points=512, weighted=False,
                     method="auto", n_moments=None, n_vectors=None,
                     random_state=None):
    """Smoothed eigenvalue density of a network's normalised Laplacian.

    Parameters
    ----------
    net : estimator, torch.nn.Module or list of array-like
        A fitted estimator exposing ``coefs_`` (e.g. ``MLPClassifier``), a
        torch module (its ``nn.Linear`` layers in registration order; biases
        are ignored), or a list of 2-D arrays / sparse matrices shaped
        ``(n_in, n_out)``.
    bandwidth : float, default=0.02
        Standard deviation of the Gaussian kernel.
    n_points : int, default=512
        Number of grid points on ``[0, 2]``.
    weighted : bool, default=False
        Use ``|w|`` as edge weights instead of 1.
    method : {"auto", "exact", "approximate"}, default="auto"
        ``"exact"`` computes all eigenvalues with a dense SVD (cubic cost).
        ``"approximate"`` uses the kernel polynomial method with Jackson
        damping (the Gaussian is narrowed to compensate for the damping's
        broadening) and Rademacher probe vectors on the sparse matrix: time
        ``O(n_edges * n_moments * n_vectors)``, memory ``O(n_edges)``; its
        base-2 Jensen-Shannon distance to the exact density is about 0.01.
        ``"auto"`` is exact up to 2000 nodes, approximate above.
    n_moments : int, default=None
        Number of Chebyshev moments of the Laplacian (approximate method).
        ``None`` uses ``3 * pi / bandwidth`` clipped to ``[64, 4096]``
        (472 for the default bandwidth).
    n_vectors : int, default=None
        Number of random probe vectors (approximate method). ``None`` uses
        ``2e5 / m`` clipped to ``[8, 64]``, with ``m`` the size of the smaller
        side of the bipartite graph. Exact traces are used when
        ``n_vectors >= m``.
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
    contributing the eigenvalue 1.
    """
    _check_params(bandwidth, n_points, method, n_moments, n_vectors, weighted)
    return _density(_as_layers(net), bandwidth, n_points, weighted, method,
                    n_moments, n_vectors, random_state)


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
                        method="auto", n_moments=None, n_vectors=None,
                        random_state=None, metric="jensen-shannon"):
    """Similarity in ``[0, 1]`` of two networks' Laplacian spectra.

    Parameters
    ----------
    a, b : estimator, torch.nn.Module or list of array-like
        Networks, as accepted by :func:`spectral_density`.
    bandwidth, n_points, weighted, method, n_moments, n_vectors, random_state
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
        method=method, n_moments=n_moments, n_vectors=n_vectors,
        random_state=random_state, metric=metric,
    )[0, 1])


def pairwise_spectral_similarity(nets, *, bandwidth=0.02, n_points=512,
                                 weighted=False, method="auto", n_moments=None,
                                 n_vectors=None, random_state=None,
                                 metric="jensen-shannon"):
    """Matrix of spectral similarities, each density computed once.

    Parameters
    ----------
    nets : sequence of networks
        Networks, as accepted by :func:`spectral_density`.
    bandwidth, n_points, weighted, method, n_moments, n_vectors, random_state
        See :func:`spectral_density`.
    metric : {"jensen-shannon", "wasserstein"}, default="jensen-shannon"
        See :func:`spectral_similarity`.

    Returns
    -------
    similarity : ndarray of shape (n_nets, n_nets)
        Symmetric, ones on the diagonal, values in ``[0, 1]``.
    """
    _check_params(bandwidth, n_points, method, n_moments, n_vectors, weighted)
    _check_metric(metric)
    layer_lists = [_as_layers(net) for net in nets]
    densities = [
        _density(layers, bandwidth, n_points, weighted, method, n_moments,
                 n_vectors, random_state)
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
