"""Tests for the spectral comparison of network structures."""

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse
from scipy.spatial.distance import jensenshannon
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

from sk_weightfree._spectral import (
    _AUTO_EXACT_MAX_NODES,
    _adjacency,
    _as_layers,
    _js_distance,
    _laplacian_eigenvalues,
    pairwise_spectral_similarity,
    spectral_density,
    spectral_similarity,
)

# Measured JS distances between exact and approximate densities on the
# ~2000-3000 node random graphs below: 0.004-0.008 (default parameters, five
# seeds). The threshold leaves a margin of ~2.5x.
APPROX_JS_TOL = 0.02


def random_net(sizes, density, seed, binary=True):
    rng = np.random.default_rng(seed)
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        shape = (n_in, n_out)
        mask = rng.random(shape) < density
        values = np.ones(shape) if binary else rng.standard_normal(shape)
        layers.append(mask * values)
    return layers


def permute_hidden(layers, i, perm):
    """Permute the units of hidden layer ``i`` (1 <= i < len(layers))."""
    out = [w.copy() for w in layers]
    out[i - 1] = out[i - 1][:, perm]
    out[i] = out[i][perm, :]
    return out


# ---------------------------------------------------------------- basics
def test_density_grid_and_normalisation():
    grid, density = spectral_density(random_net((6, 8, 3), 0.5, 0), n_points=101)
    np.testing.assert_array_equal(grid, np.linspace(0, 2, 101))
    assert density.shape == (101,)
    assert np.all(density >= 0)
    assert density.sum() * (grid[1] - grid[0]) == pytest.approx(1.0)


@pytest.mark.parametrize("method", ["exact", "approximate"])
def test_self_similarity_symmetry_and_range(method):
    a, b = random_net((10, 15, 4), 0.4, 0), random_net((10, 15, 4), 0.4, 1)
    kw = dict(method=method, random_state=0)
    assert spectral_similarity(a, a, **kw) == pytest.approx(1.0, abs=1e-12)
    s_ab = spectral_similarity(a, b, **kw)
    assert s_ab == spectral_similarity(b, a, **kw)
    assert 0.0 <= s_ab < 1.0


def test_structurally_different_networks():
    dense = [np.ones((20, 20)), np.ones((20, 5))]
    sparse_net = random_net((20, 20, 5), 0.05, 0)
    # Measured 0.46-0.60 over seeds.
    assert spectral_similarity(dense, sparse_net) < 0.8
    assert spectral_similarity(dense, sparse_net, metric="wasserstein") < 0.95


def test_pairwise_matches_pairs():
    nets = [random_net((8, 12, 3), d, s) for s, d in enumerate((0.2, 0.5, 0.9))]
    mat = pairwise_spectral_similarity(nets)
    assert mat.shape == (3, 3)
    np.testing.assert_array_equal(mat, mat.T)
    np.testing.assert_array_equal(np.diag(mat), 1.0)
    assert np.all((mat >= 0) & (mat <= 1))
    assert mat[0, 2] == pytest.approx(spectral_similarity(nets[0], nets[2]), abs=1e-12)


def test_wasserstein_metric():
    a, b = random_net((10, 10, 3), 0.3, 0), random_net((10, 10, 3), 0.9, 1)
    assert spectral_similarity(a, a, metric="wasserstein") == pytest.approx(1.0)
    assert 0.0 <= spectral_similarity(a, b, metric="wasserstein") < 1.0


def test_js_distance_matches_scipy():
    rng = np.random.default_rng(0)
    for _ in range(20):
        p, q = rng.random(50), rng.random(50)
        q[rng.random(50) < 0.2] = 0.0
        assert _js_distance(p, q) == pytest.approx(
            jensenshannon(p, q, base=2), abs=1e-7
        )
    assert _js_distance(p, p) == 0.0


# -------------------------------------------------- permutation invariance
@st.composite
def nets_and_permutation(draw):
    n_layers = draw(st.integers(2, 4))
    n_sizes = n_layers + 1
    sizes = draw(st.lists(st.integers(1, 10), min_size=n_sizes, max_size=n_sizes))
    seed = draw(st.integers(0, 2**32 - 1))
    binary = draw(st.booleans())
    density = draw(st.floats(0.1, 1.0))
    layers = random_net(sizes, density, seed, binary=binary)
    hidden = draw(st.integers(1, n_layers - 1))
    perm = draw(st.permutations(range(sizes[hidden])))
    return layers, hidden, np.array(perm)


@settings(max_examples=40, deadline=None)
@given(nets_and_permutation(), st.booleans())
def test_hidden_permutation_invariance(data, weighted):
    layers, hidden, perm = data
    permuted = permute_hidden(layers, hidden, perm)
    sim = spectral_similarity(layers, permuted, method="exact", weighted=weighted)
    assert sim >= 1.0 - 1e-9
    assert sim <= 1.0


# -------------------------------------------------------- exact spectra
def test_single_edge_eigenvalues():
    eig = _laplacian_eigenvalues([np.ones((1, 1))])
    np.testing.assert_allclose(eig, [0, 2], atol=1e-12)


@pytest.mark.parametrize("m, n", [(1, 3), (3, 4), (5, 5)])
def test_complete_bipartite_eigenvalues(m, n):
    expected = [0.0] + [1.0] * (m + n - 2) + [2.0]
    for weighted, w in [(False, np.ones((m, n))), (True, np.full((m, n), -3.0))]:
        eig = _laplacian_eigenvalues([w], weighted=weighted)
        np.testing.assert_allclose(eig, expected, atol=1e-12)


def test_path_and_isolated_node_eigenvalues():
    # 1-1-1-1 chain is the path P4: eigenvalues 1 - cos(pi k / 3).
    path = [np.ones((1, 1))] * 3
    expected = 1 - np.cos(np.pi * np.arange(4) / 3)
    np.testing.assert_allclose(_laplacian_eigenvalues(path), expected, atol=1e-12)
    # An isolated unit contributes eigenvalue 1.
    eig = _laplacian_eigenvalues([np.array([[1.0, 0.0]])])
    np.testing.assert_allclose(eig, [0, 1, 2], atol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_eigenvalues_match_dense_laplacian(weighted):
    layers = random_net((7, 9, 6, 4), 0.3, 3, binary=False)
    layers[1][2, :] = 0.0  # make some isolated units
    adj = _adjacency(layers, weighted=weighted).toarray()
    np.testing.assert_array_equal(adj, adj.T)
    assert np.count_nonzero(adj) == 2 * sum(np.count_nonzero(w) for w in layers)
    deg = adj.sum(axis=1)
    inv = np.where(deg > 0, 1 / np.sqrt(np.where(deg > 0, deg, 1)), 0.0)
    lap = np.eye(len(deg)) - inv[:, None] * adj * inv[None, :]
    eig = _laplacian_eigenvalues(layers, weighted=weighted)
    np.testing.assert_allclose(eig, np.linalg.eigvalsh(lap), atol=1e-10)


# ------------------------------------------------ approximate vs exact
@pytest.mark.parametrize(
    "sizes, density, binary",
    [((100, 1000, 1000, 10), 0.01, True), ((50, 800, 800, 800, 10), 0.005, False)],
)
def test_approximate_agrees_with_exact(sizes, density, binary):
    layers = [sparse.csr_matrix(w) for w in random_net(sizes, density, 0, binary)]
    kw = dict(weighted=not binary)
    with threadpool_limits(1):  # dense SVD; avoids BLAS thread contention
        _, exact = spectral_density(layers, method="exact", **kw)
    _, approx = spectral_density(layers, method="approximate", random_state=0, **kw)
    assert jensenshannon(exact, approx, base=2) < APPROX_JS_TOL


def test_approximate_with_exact_traces():
    # With as many probes as the smaller side the traces are exact, so only the
    # polynomial approximation is left (measured JS 0.0012 with 512 moments).
    layers = random_net((40, 300, 200, 5), 0.05, 1)
    _, exact = spectral_density(layers, method="exact")
    _, approx = spectral_density(
        layers, method="approximate", n_moments=512, n_vectors=10_000
    )
    assert jensenshannon(exact, approx, base=2) < 0.005


def test_approximate_is_reproducible_and_auto_switches():
    layers = random_net((200, 1000, 900, 10), 0.01, 2)
    assert sum((200, 1000, 900, 10)) > _AUTO_EXACT_MAX_NODES
    _, d1 = spectral_density(layers, method="approximate", random_state=7)
    _, d2 = spectral_density(layers, method="approximate", random_state=7)
    _, d3 = spectral_density(layers, method="auto", random_state=7)
    _, d4 = spectral_density(layers, method="approximate", random_state=8)
    np.testing.assert_array_equal(d1, d2)
    np.testing.assert_array_equal(d1, d3)
    assert not np.array_equal(d1, d4)
    small = random_net((10, 10, 3), 0.5, 0)
    np.testing.assert_array_equal(
        spectral_density(small)[1], spectral_density(small, method="exact")[1]
    )


# ------------------------------------------------------------ inputs
def _reference_layers():
    rng = np.random.default_rng(5)
    # Halves are exact in float32, so torch modules give identical weights.
    return [
        rng.integers(-2, 3, size=shape) / 2.0 for shape in [(4, 6), (6, 5), (5, 3)]
    ]


class _HasCoefs:
    def __init__(self, coefs):
        self.coefs_ = coefs


def _torch_net(layers):
    torch = pytest.importorskip("torch")
    mods = []
    for w in layers:
        lin = torch.nn.Linear(*w.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(w.T))
        mods += [lin, torch.nn.ReLU()]
    return torch.nn.Sequential(*mods[:-1])


@pytest.mark.parametrize("weighted", [False, True])
def test_all_input_types_agree(weighted):
    layers = _reference_layers()
    reference = spectral_density(layers, weighted=weighted)[1]
    variants = [
        tuple(layers),
        _HasCoefs(layers),
        _torch_net(layers),
        [sparse.csr_matrix(w) for w in layers],
        [sparse.coo_array(w) for w in layers],
        [w.tolist() for w in layers],
    ]
    for net in variants:
        got = spectral_density(net, weighted=weighted)[1]
        np.testing.assert_allclose(got, reference, rtol=1e-12, atol=1e-12)


def test_sklearn_mlp():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((20, 4)), np.arange(20) % 3
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    with pytest.raises(NotFittedError, match="MLPClassifier"):
        spectral_density(clf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    got = spectral_density(clf, weighted=True)[1]
    expected = spectral_density(list(clf.coefs_), weighted=True)[1]
    np.testing.assert_array_equal(got, expected)
    assert spectral_similarity(clf, list(clf.coefs_)) == 1.0


def test_torch_module_without_linear():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="nn.Linear"):
        _as_layers(torch.nn.Sequential(torch.nn.ReLU()))


@pytest.mark.parametrize(
    "net",
    [
        3,
        "abc",
        None,
        {"a": 1},
        np.ones((3, 3)),
        [np.array([["a", "b"]])],
        [np.ones((2, 2)) * 1j],
    ],
)
def test_bad_types(net):
    with pytest.raises(TypeError, match=r"got|dtype"):
        _as_layers(net)


def test_type_error_names_type():
    with pytest.raises(TypeError, match="dict"):
        spectral_density({"a": 1})


@pytest.mark.parametrize(
    "net, match",
    [
        ([], "no layers"),
        ([np.ones((3, 4)), np.ones((5, 2))], r"layer 0 .*\(3, 4\).*layer 1 .*\(5, 2\)"),
        (
            _HasCoefs([np.ones((2, 2)), np.ones((2, 2)), np.ones((3, 1))]),
            r"layer 1.*layer 2",
        ),
        ([np.ones((3, 4)), sparse.csr_matrix(np.ones((3, 2)))], "do not chain"),
        ([np.ones(3)], "Layer 0 must be 2-D"),
        ([np.ones((2, 2)), np.ones((2, 2, 2))], "Layer 1 must be 2-D"),
        ([np.array([[1.0, np.nan]])], "Layer 0.*NaN"),
        (
            [np.ones((2, 2)), sparse.csr_matrix(np.array([[np.inf], [1.0]]))],
            "Layer 1.*infinite",
        ),
        ([np.ones((0, 2))], "empty"),
    ],
)
def test_bad_layers(net, match):
    with pytest.raises(ValueError, match=match):
        _as_layers(net)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(bandwidth=0), "bandwidth"),
        (dict(bandwidth=-0.1), "bandwidth"),
        (dict(bandwidth=float("nan")), "bandwidth"),
        (dict(bandwidth="wide"), "bandwidth"),
        (dict(n_points=1), "n_points"),
        (dict(n_points=10.5), "n_points"),
        (dict(method="fast"), r"exact.*approximate"),
        (dict(n_moments=1), "n_moments"),
        (dict(n_vectors=0), "n_vectors"),
    ],
)
def test_bad_parameters(kwargs, match):
    net = random_net((3, 3), 1.0, 0)
    with pytest.raises(ValueError, match=match):
        spectral_density(net, **kwargs)
    with pytest.raises(ValueError, match=match):
        spectral_similarity(net, net, **kwargs)
    with pytest.raises(ValueError, match=match):
        pairwise_spectral_similarity([net, net], **kwargs)


def test_bad_metric():
    net = random_net((3, 3), 1.0, 0)
    with pytest.raises(ValueError, match="jensen-shannon"):
        spectral_similarity(net, net, metric="cosine")
    with pytest.raises(ValueError, match="wasserstein"):
        pairwise_spectral_similarity([net], metric="kl")


def test_module_does_not_import_torch():
    # Load the file on its own so the package __init__ cannot interfere.
    path = Path(__file__).resolve().parents[1] / "sk_weightfree" / "_spectral.py"
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('alone', {str(path)!r})\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        "mod.spectral_density([[[1.0]]])\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
