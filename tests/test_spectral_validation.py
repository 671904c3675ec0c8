"""Bad input to the spectral functions gets a clear error; odd networks get known values.

Moved from tests/test_reliability.py. Every case either raises a ``ValueError``,
``TypeError`` or ``NotFittedError`` that names the problem (never a numpy/scipy
traceback from deep inside) or returns a value that can be checked by hand.
"""

import contextlib
import os

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import NotFittedError
from sklearn.neural_network import MLPClassifier

from conftest import ESTIMATORS
from sk_weightfree import DenseClassifier, spectral_density, spectral_similarity

CLEAR = (ValueError, TypeError)  # NotFittedError is a ValueError
# Paths an error must not be raised from: the user should see our message.
DEEP = tuple(f"{os.sep}{name}{os.sep}" for name in ("numpy", "scipy"))


@contextlib.contextmanager
def clear_error(match, types=CLEAR):
    """Expect ``types`` whose message matches ``match``, raised outside numpy/scipy."""
    with pytest.raises(types, match=match) as info:
        yield info
    tb = info.tb
    while tb.tb_next is not None:
        tb = tb.tb_next
    where = tb.tb_frame.f_code.co_filename
    assert not any(part in where for part in DEEP), (
        f"{type(info.value).__name__} raised from deep inside {where}: {info.value}"
    )


def _layers(seed=0, sizes=(6, 5, 3)):
    rng = np.random.RandomState(seed)
    return [rng.randn(a, b) * (rng.rand(a, b) < 0.6) for a, b in zip(sizes[:-1], sizes[1:])]


class _Thing:
    pass


BAD_NETS = [
    ("none", None, TypeError, "NoneType"),
    ("string", "abc", TypeError, "str"),
    ("int", 3, TypeError, "int"),
    ("object", _Thing(), TypeError, "_Thing"),
    ("empty_list", [], ValueError, "no layers|empty"),
    ("1d_layer", [np.ones(3)], ValueError, "2-D"),
    ("3d_layer", [np.ones((2, 2, 2))], ValueError, "2-D"),
    ("no_chain", [np.ones((3, 4)), np.ones((5, 2))], ValueError, "chain"),
    ("nan", [np.array([[np.nan, 1.0], [1.0, 0.0]])], ValueError, "NaN"),
    ("inf", [np.array([[np.inf, 1.0], [1.0, 0.0]])], ValueError, "infinite"),
    ("sparse_nan", [sp.csr_matrix(np.array([[np.nan, 1.0], [0.0, 2.0]]))], ValueError, "NaN"),
    ("strings", [np.array([["a", "b"], ["c", "d"]])], TypeError, "real|dtype"),
    ("complex", [np.ones((2, 2)) * 1j], TypeError, "real|dtype|complex"),
    ("object_layer", [np.array([[None, 1]], dtype=object)], TypeError, "real|dtype"),
    ("ragged", [[[1.0, 2.0], [3.0]]], TypeError, "array|ragged|shape"),
    ("empty_dim", [np.zeros((0, 3))], ValueError, "empty"),
    ("unfitted_ours", DenseClassifier(), NotFittedError, "fit"),
    ("unfitted_mlp", MLPClassifier(), NotFittedError, "fit"),
]


@pytest.mark.parametrize("name, net, exc, match", BAD_NETS, ids=[b[0] for b in BAD_NETS])
@pytest.mark.parametrize("func", ["similarity_first", "similarity_second", "density"])
def test_spectral_bad_networks(func, name, net, exc, match):
    with clear_error(match, types=exc):
        if func == "similarity_first":
            spectral_similarity(net, _layers())
        elif func == "similarity_second":
            spectral_similarity(_layers(), net)
        else:
            spectral_density(net)


BAD_SPECTRAL_PARAMS = [
    ({"bandwidth": 0}, "bandwidth"), ({"bandwidth": -0.1}, "bandwidth"),
    ({"bandwidth": np.nan}, "bandwidth"), ({"bandwidth": np.inf}, "bandwidth"),
    ({"bandwidth": "0.1"}, "bandwidth"), ({"bandwidth": True}, "bandwidth"),
    ({"bandwidth": None}, "bandwidth"),
    # far below the grid spacing 2 / 511: every network scores 1.0 (exact) or the
    # approximate method asks for ~10 / bandwidth grid nodes
    ({"bandwidth": 1e-9}, "bandwidth"),
    ({"bandwidth": 1e-15, "method": "approximate"}, "bandwidth"),
    ({"n_points": 1}, "n_points"), ({"n_points": 0}, "n_points"),
    ({"n_points": 2.5}, "n_points"), ({"n_points": True}, "n_points"),
    ({"n_points": None}, "n_points"),
    ({"method": "fast"}, "method"), ({"method": None}, "method"),
    ({"method": "approximate", "n_steps": 0}, "n_steps"),
    ({"method": "approximate", "n_steps": 2.5}, "n_steps"),
    ({"method": "approximate", "n_vectors": 0}, "n_vectors"),
    ({"method": "approximate", "n_vectors": -4}, "n_vectors"),
    ({"metric": "cosine"}, "metric"), ({"metric": None}, "metric"),
    ({"weighted": "yes"}, "weighted"), ({"weighted": None}, "weighted"),
    ({"drop_forced_ones": "no"}, "drop_forced_ones"),
    ({"drop_forced_ones": 0}, "drop_forced_ones"),
    ({"method": "approximate", "random_state": "abc"}, "random_state|seed"),
    ({"bandwidth": "silverman"}, "bandwidth must be 'auto' or a real number"),
    ({"signed": "yes"}, "signed must be True or False"),
    ({"paired": "yes"}, "paired must be None, True or False"),
    ({"calibrate": 1}, "calibrate must be True or False"),
    ({"calibrate": True, "n_rewirings": 0}, "n_rewirings must be >= 1"),
]


@pytest.mark.parametrize("kwargs, match", BAD_SPECTRAL_PARAMS,
                         ids=[str(k) for k, _ in BAD_SPECTRAL_PARAMS])
def test_spectral_bad_parameters(kwargs, match):
    with clear_error(match):
        spectral_similarity(_layers(0), _layers(1), **kwargs)


def test_spectral_unknown_option():
    with pytest.raises(TypeError, match="bogus"):
        spectral_similarity(_layers(0), _layers(1), bogus=1)


@pytest.mark.parametrize("method", ["exact", "approximate"])
@pytest.mark.parametrize("weighted", [False, True])
def test_spectral_extreme_weights_known_values(method, weighted):
    # The normalised Laplacian does not change when all weights are scaled,
    # so 1e300 and 1e-300 times a network is that network.
    base = _layers(0)
    kw = dict(weighted=weighted, method=method, random_state=0)
    for scale in (1e300, 1e-300):
        net = [w * scale for w in base]
        assert spectral_similarity(net, base, **kw) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("method", ["exact", "approximate"])
def test_spectral_one_edge_network_is_a_single_edge(method):
    # One edge among 14 units: with the forced ones dropped its spectrum is
    # {0, 2}, that of the 1-1 network; the 13 isolated units are forced ones.
    net = [np.zeros((6, 5)), np.zeros((5, 3))]
    net[0][0, 0] = 1.0
    kw = dict(method=method, random_state=0)
    assert spectral_similarity(net, [[[1.0]]], **kw) == pytest.approx(1.0, abs=1e-12)
    kept = spectral_similarity(net, [[[1.0]]], drop_forced_ones=False, **kw)
    assert kept < 0.5


@pytest.mark.parametrize("method", ["exact", "approximate"])
def test_spectral_network_without_edges(method):
    empty = [np.zeros_like(w) for w in _layers(0)]
    with clear_error("no edges.*drop_forced_ones=False"):
        spectral_similarity(empty, _layers(0), method=method)
    # Its full spectrum is 14 eigenvalues at 1, like any other edgeless net.
    other = [np.zeros((3, 2))]
    assert spectral_similarity(empty, other, drop_forced_ones=False,
                               method=method) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("dtype", [np.int32, np.bool_, np.float16, np.float32, "F",
                                   "sparse_int"])
def test_spectral_accepts_any_numeric_layer_dtype(dtype):
    binary = [(w != 0) for w in _layers(0)]
    reference = spectral_similarity([b.astype(float) for b in binary], _layers(1))
    if dtype == "F":
        net = [np.asfortranarray(b.astype(float)) for b in binary]
    elif dtype == "sparse_int":
        net = [sp.csr_matrix(b.astype(np.int64)) for b in binary]
    else:
        net = [b.astype(dtype) for b in binary]
    assert spectral_similarity(net, _layers(1)) == pytest.approx(reference, abs=1e-12)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_spectral_on_fitted_estimators(cls, fitted):
    est = fitted(cls)
    coefs = [np.array(c) for c in est.coefs_]
    if getattr(est, "paired_inputs_", False):  # a plain list: the twins folded by hand
        coefs = [c[: len(c) // 2] - c[len(c) // 2:] for c in coefs]
    perm = np.random.RandomState(0).permutation(coefs[0].shape[1])
    permuted = [coefs[0][:, perm], coefs[1][perm]] + coefs[2:]
    for weighted in (False, True):
        assert spectral_similarity(est, permuted, weighted=weighted) == pytest.approx(
            1.0, abs=1e-9)
    # Same probes for both (int random_state): the approximation is exact here.
    assert spectral_similarity(est, coefs, method="approximate",
                               random_state=0) == pytest.approx(1.0, abs=1e-12)
    # Perturbing one unit's wiring changes the spectrum.
    cut = [c.copy() for c in coefs]
    cut[0][:, 0] = 0.0
    cut[0][:, 1] = 1.0
    assert spectral_similarity(est, cut) < 1.0 - 1e-6


@settings(max_examples=20, deadline=None, derandomize=True)
@given(sizes=st.lists(st.integers(1, 6), min_size=2, max_size=4),
       seed=st.integers(0, 1000), poison=st.sampled_from([None, np.nan, np.inf, -np.inf]))
def test_property_spectral_similarity_is_symmetric_or_clear_error(sizes, seed, poison):
    rng = np.random.RandomState(seed)
    net = [rng.randn(a, b) * (rng.rand(a, b) < 0.5) for a, b in zip(sizes[:-1], sizes[1:])]
    if poison is not None:
        layer = net[rng.randint(len(net))]
        layer[rng.randint(layer.shape[0]), rng.randint(layer.shape[1])] = poison
        with clear_error("NaN|infinite"):
            spectral_similarity(net, _layers(0))
        return
    if not any(np.any(w) for w in net):
        with clear_error("no edges"):
            spectral_similarity(net, _layers(0))
        return
    value = spectral_similarity(net, _layers(0))
    assert value == spectral_similarity(_layers(0), net)
    assert spectral_similarity(net, net) == 1.0
