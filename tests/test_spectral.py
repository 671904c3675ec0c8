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
    assert s_ab < 0.99


def test_single_edge_against_star_by_hand():
    # Full spectra: one edge {0, 2}; the star K_{1,3} {0, 1, 1, 2}. The
    # kernels at 0 and 2 are cut in half by the grid's ends, so after
    # normalisation p puts 1/2, 1/2 at 0, 2 and q puts 1/6, 2/3, 1/6 at
    # 0, 1, 2: JS divergence (log2(3/2) + 1/3) / 2; W1 = 2/3 (a third of the
    # mass moves by 1 from each end, less the half-kernel's mean 0.016).
    edge, star = [np.ones((1, 1))], [np.ones((1, 3))]
    kw = dict(drop_forced_ones=False, n_points=4001)
    js = spectral_similarity(edge, star, **kw)
    assert js == pytest.approx(1 - np.sqrt((np.log2(1.5) + 1 / 3) / 2), abs=0.005)
    w1 = spectral_similarity(edge, star, metric="wasserstein", **kw)
    assert w1 == pytest.approx(1 - (2 / 3) * (1 - 0.02 * np.sqrt(2 / np.pi)) / 2,
                               abs=0.01)
    # Without the forced ones both spectra are {0, 2}.
    assert spectral_similarity(edge, star) == pytest.approx(1.0, abs=1e-12)


def test_structurally_different_networks():
    dense = [np.ones((20, 20)), np.ones((20, 5))]
    sparse_net = random_net((20, 20, 5), 0.05, 0)
    # Measured 0.29 for seed 0 (0.46-0.60 over seeds with the forced ones kept).
    assert spectral_similarity(dense, sparse_net) < 0.8
    assert spectral_similarity(dense, sparse_net, metric="wasserstein") < 0.95


def test_pairwise_matches_pairs():
    nets = [random_net((8, 12, 3), d, s) for s, d in enumerate((0.2, 0.5, 0.9))]
    mat = pairwise_spectral_similarity(nets)
    assert mat.shape == (3, 3)
    np.testing.assert_array_equal(mat, mat.T)
    np.testing.assert_array_equal(np.diag(mat), 1.0)
    for i, j in [(0, 1), (0, 2), (1, 2)]:
        assert mat[i, j] == pytest.approx(
            spectral_similarity(nets[i], nets[j]), abs=1e-12
        )
    # Densities 0.2 and 0.9 are further apart than 0.5 and 0.9.
    assert mat[0, 2] < mat[1, 2] < 1.0


def test_wasserstein_metric():
    a, b = random_net((10, 10, 3), 0.3, 0), random_net((10, 10, 3), 0.9, 1)
    assert spectral_similarity(a, a, metric="wasserstein") == pytest.approx(1.0)
    assert spectral_similarity(a, b, metric="wasserstein") < 0.99


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
    has_edges = any(np.any(w) for w in layers)
    for drop in (True, False)[not has_edges:]:
        sim = spectral_similarity(layers, permuted, method="exact",
                                  weighted=weighted, drop_forced_ones=drop)
        assert sim == pytest.approx(1.0, abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(nets_and_permutation(), st.integers(0, 2**32 - 1), st.booleans())
def test_symmetry_and_self_similarity(data, seed, drop):
    a = data[0]
    sizes = [a[0].shape[0]] + [w.shape[1] for w in a]
    b = random_net(sizes, 0.5, seed)
    kw = dict(drop_forced_ones=drop, method="exact")
    if not all(any(np.any(w) for w in net) for net in (a, b)) and drop:
        return  # an edgeless net has no spectrum left (tested elsewhere)
    assert spectral_similarity(a, b, **kw) == spectral_similarity(b, a, **kw)
    assert spectral_similarity(a, a, **kw) == 1.0


# -------------------------------------------------------- exact spectra
def test_single_edge_eigenvalues():
    eig = _laplacian_eigenvalues([np.ones((1, 1))])
    np.testing.assert_allclose(eig, [0, 2], atol=1e-12)


@pytest.mark.parametrize("m, n", [(1, 3), (3, 4), (5, 5), (4, 2)])
def test_complete_bipartite_eigenvalues(m, n):
    # K_{m,n}: C = J / sqrt(mn) has one singular value 1 and min(m, n) - 1
    # zeros, so L has 0, 2, 2 (min - 1) ones and |m - n| forced ones.
    expected = [0.0] + [1.0] * (m + n - 2) + [2.0]
    without_forced = [0.0] + [1.0] * (2 * min(m, n) - 2) + [2.0]
    for weighted, w in [(False, np.ones((m, n))), (True, np.full((m, n), -3.0))]:
        eig = _laplacian_eigenvalues([w], weighted=weighted)
        np.testing.assert_allclose(eig, expected, atol=1e-12)
        eig = _laplacian_eigenvalues([w], weighted=weighted, drop_forced_ones=True)
        np.testing.assert_allclose(eig, without_forced, atol=1e-12)


def test_path_and_isolated_node_eigenvalues():
    # 1-1-1-1 chain is the path P4: eigenvalues 1 - cos(pi k / 3).
    path = [np.ones((1, 1))] * 3
    expected = 1 - np.cos(np.pi * np.arange(4) / 3)
    np.testing.assert_allclose(_laplacian_eigenvalues(path), expected, atol=1e-12)
    # An isolated unit contributes eigenvalue 1.
    eig = _laplacian_eigenvalues([np.array([[1.0, 0.0]])])
    np.testing.assert_allclose(eig, [0, 1, 2], atol=1e-12)
    eig = _laplacian_eigenvalues([np.array([[1.0, 0.0]])], drop_forced_ones=True)
    np.testing.assert_allclose(eig, [0, 2], atol=1e-12)


def test_forced_ones_are_the_same_for_every_network_of_a_shape():
    # 30-4-1: sides of 31 and 4 units, so at least 27 of 35 eigenvalues are
    # forced to 1 whatever the wiring. Keeping them pulls every similarity
    # towards 1; dropping them compares the 8 informative eigenvalues.
    a, b = random_net((30, 4, 1), 0.5, 0), random_net((30, 4, 1), 0.5, 1)
    a[0][:, 0] = 1.0
    kept = spectral_similarity(a, b, drop_forced_ones=False)
    dropped = spectral_similarity(a, b)
    assert dropped < kept - 0.2


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
    # Lanczos quadrature error is left.
    layers = random_net((40, 300, 200, 5), 0.05, 1)
    _, exact = spectral_density(layers, method="exact")
    _, approx = spectral_density(
        layers, method="approximate", n_steps=60, n_vectors=10_000
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


class _Paired:
    """Stands in for an estimator fitted with paired (twin) inputs."""

    paired_inputs_ = True

    def __init__(self, coefs):
        self.coefs_ = coefs


def test_paired_inputs_fold_into_one_node_per_unit():
    rng = np.random.default_rng(0)
    # Each layer sees [h, -h]: rows [:n] excitatory lines, rows [n:] twins.
    coefs = [(rng.random((2 * n_in, n_out)) < 0.4).astype(float)
             for n_in, n_out in [(5, 7), (7, 3)]]
    coefs[0][0, :] = 1.0
    coefs[0][5, :] = 1.0  # unit 0 and its twin both on: they cancel
    folded = [c[: c.shape[0] // 2] - c[c.shape[0] // 2 :] for c in coefs]
    layers = _as_layers(_Paired(coefs))
    assert [w.shape for w in layers] == [(5, 7), (7, 3)]
    for got, want in zip(layers, folded):
        np.testing.assert_array_equal(got.toarray(), want)
    assert layers[0][0].nnz == 0  # cancelled lines leave no edge
    for weighted in (False, True):
        np.testing.assert_array_equal(
            spectral_density(_Paired(coefs), weighted=weighted)[1],
            spectral_density(folded, weighted=weighted)[1],
        )
    # Without the flag the twin rows are separate nodes (and do not chain).
    with pytest.raises(ValueError, match="do not chain"):
        _as_layers(_HasCoefs(coefs))
    with pytest.raises(ValueError, match="even number of rows"):
        _as_layers(_Paired([np.ones((3, 2))]))


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
        (dict(n_steps=0), "n_steps"),
        (dict(drop_forced_ones=None), "drop_forced_ones"),
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
    # A bare package object stands in for sk_weightfree's __init__ (which imports the
    # estimators), so only _spectral's own imports (and the numpy _inference) count.
    package_dir = Path(__file__).resolve().parents[1] / "sk_weightfree"
    code = (
        "import sys, types\n"
        "package = types.ModuleType('sk_weightfree')\n"
        f"package.__path__ = [{str(package_dir)!r}]\n"
        "sys.modules['sk_weightfree'] = package\n"
        "import sk_weightfree._spectral as mod\n"
        "mod.spectral_density([[[1.0]]])\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
