"""Spectral comparison of convolutional networks: channels are the nodes.

A kernel ``(out, in, kh, kw)`` becomes an ``(in, out)`` channel matrix with
entries ``sum |w|`` over the taps; a linear layer reading the flattened
``(C, H, W)`` output of a convolution becomes ``(C, n_out)`` with entries
``sum |w|`` over each channel's ``H * W`` rows (docs/spectral.md).
"""

import time

import numpy as np
import pytest
from scipy import sparse

from sk_weightfree._spectral import (
    _as_layers,
    pairwise_spectral_similarity,
    spectral_density,
    spectral_similarity,
)


class _HasCoefs:
    """Stands in for a fitted estimator (``coefs_`` mixing 4-D and 2-D)."""

    def __init__(self, coefs, paired=False):
        self.coefs_ = coefs
        self.paired_inputs_ = paired


def _dense(layers):
    return [w.toarray() for w in layers]


def _random_conv_net(seed, channels=(2, 5, 6), k=4, n_out=3, density=0.4,
                     binary=True):
    """Kernels ``(out, in, 3, 3)`` then a linear layer on ``k`` positions."""
    rng = np.random.default_rng(seed)
    layers = []
    for c_in, c_out in zip(channels[:-1], channels[1:]):
        shape = (c_out, c_in, 3, 3)
        values = np.ones(shape) if binary else rng.standard_normal(shape)
        layers.append(values * (rng.random(shape) < density))
    shape = (channels[-1] * k, n_out)
    values = np.ones(shape) if binary else rng.standard_normal(shape)
    layers.append(values * (rng.random(shape) < density))
    return layers


# ------------------------------------------------------- collapse by hand
def test_conv_kernel_collapses_to_channel_matrix_by_hand():
    conv = np.zeros((2, 1, 2, 2))  # (out, in, kh, kw)
    conv[0, 0] = [[1.0, 0.0], [0.0, -2.0]]  # 1 -> 0: |1| + |-2| = 3
    # out channel 1 has all taps zero: no edge
    conv2 = np.zeros((3, 2, 1, 2))
    conv2[0, 0] = [1.0, 0.0]  # 0 -> 0: 1
    conv2[0, 1] = [0.5, 0.0]  # 1 -> 0: 0.5
    conv2[2, 0] = [-1.0, 4.0]  # 0 -> 2: 5
    conv2[2, 1] = [0.0, 3.0]  # 1 -> 2: 3
    # out channel 1: explicit zero taps, no edge
    layers = _as_layers([conv, conv2])
    assert [w.shape for w in layers] == [(1, 2), (2, 3)]
    np.testing.assert_array_equal(layers[0].toarray(), [[3.0, 0.0]])
    np.testing.assert_array_equal(layers[1].toarray(), [[1.0, 0.0, 5.0],
                                                        [0.5, 0.0, 3.0]])
    assert [w.nnz for w in layers] == [1, 4]  # zero channel pairs: no edge
    # The spectrum is that of the channel graph: unweighted uses presence,
    # weighted uses sum |w| over the taps.
    collapsed = _dense(layers)
    presence = [(w != 0).astype(float) for w in collapsed]
    for weighted, same in ((False, presence), (True, collapsed)):
        np.testing.assert_array_equal(
            spectral_density([conv, conv2], weighted=weighted)[1],
            spectral_density(same, weighted=weighted)[1],
        )
    assert spectral_similarity([conv, conv2], presence, weighted=True) < 1 - 1e-6


def test_paired_conv_folds_twins_and_cancels():
    # in = 2 channels seen as [h, -h]: input channels 0, 1 excitatory and
    # 2, 3 their inhibitory twins. {0, 1} taps, as the estimators export.
    conv = np.zeros((2, 4, 2, 2), dtype=np.float32)
    conv[0, 0] = [[1, 1], [0, 0]]
    conv[0, 2] = [[1, 0], [0, 0]]  # 0 -> 0: one tap left after cancelling
    conv[0, 1] = [[1, 1], [1, 1]]  # 1 -> 0: four taps
    conv[1, 0] = [[1, 0], [1, 0]]
    conv[1, 2] = [[1, 0], [1, 0]]  # 0 -> 1: every tap cancels, no edge
    conv[1, 3] = [[0, 1], [1, 1]]  # 1 -> 1: three inhibitory taps
    # The linear layer after it: 2 channels x 2 positions = 4 rows, twice.
    lin = np.zeros((8, 1), dtype=np.float32)
    lin[[0, 1, 2], 0] = 1  # excitatory rows 0, 1, 2
    lin[[4, 6], 0] = 1  # twins of rows 0 and 2: folded rows [0, 1, 0, 0]
    layers = _as_layers(_HasCoefs([conv, lin], paired=True))
    assert [w.shape for w in layers] == [(2, 2), (2, 1)]
    np.testing.assert_array_equal(layers[0].toarray(), [[1, 0], [4, 3]])
    np.testing.assert_array_equal(layers[1].toarray(), [[1], [0]])
    assert [w.nnz for w in layers] == [3, 1]  # cancelled pairs leave no edge
    # Without the flag the twins are separate channels: another graph.
    unpaired = _as_layers(_HasCoefs([conv, lin]))
    assert [w.shape for w in unpaired] == [(4, 2), (2, 1)]
    # Bool and unsigned masks fold like floats (no wrap-around at 0 - 1).
    for dtype in (np.bool_, np.uint8):
        got = _as_layers(_HasCoefs([conv.astype(dtype), lin.astype(dtype)],
                                   paired=True))
        for a, b in zip(got, layers):
            np.testing.assert_array_equal(a.toarray(), b.toarray())


def test_linear_after_conv_sums_each_channels_rows_by_hand():
    conv = np.ones((2, 1, 1, 1))  # 2 channels, then flattened (2, 1, 3)
    lin = np.zeros((6, 2))
    lin[0, 0] = 1.0
    lin[1, 1] = 2.0
    lin[4, 0] = -4.0
    # Channel-major: rows 0-2 are channel 0, rows 3-5 channel 1.
    expected = [[1.0, 2.0], [4.0, 0.0]]  # channel-last would give [[5, 0], [0, 2]]
    for net in ([conv, lin], [conv, sparse.csr_matrix(lin)],
                [sparse.coo_array(conv), lin], _HasCoefs([conv, lin])):
        layers = _as_layers(net)
        assert [w.shape for w in layers] == [(1, 2), (2, 2)]
        np.testing.assert_array_equal(layers[1].toarray(), expected)
    # A channel whose rows are all zero has no edge to that unit.
    assert _as_layers([conv, lin])[1].nnz == 3
    # One row per channel (after global pooling): the layer is kept as is.
    lin1 = np.array([[0.5, 0.0], [0.0, -3.0]])
    np.testing.assert_array_equal(_as_layers([conv, lin1])[1].toarray(), lin1)
    # A linear layer after a linear layer is never collapsed.
    tail = np.array([[1.0, 0.0, -1.0], [0.0, 2.0, 0.0]])
    np.testing.assert_array_equal(_as_layers([conv, lin1, tail])[2].toarray(), tail)


def test_conv_after_conv_chains_on_channels():
    net = _random_conv_net(0, channels=(3, 4, 5, 2), k=9)
    layers = _as_layers(net)
    assert [w.shape for w in layers] == [(3, 4), (4, 5), (5, 2), (2, 3)]
    for got, kernel in zip(layers[:3], net[:3]):
        np.testing.assert_array_equal(
            got.toarray(), np.abs(kernel).sum(axis=(2, 3)).T)


# --------------------------------------------------- input types agree
def _torch_convnet():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(4 * 13 * 13, 10),
    )
    conv = rng.integers(-2, 3, size=(4, 1, 3, 3)) / 2.0  # exact in float32
    conv[1] = 0.0  # a channel with no input
    lin = (rng.integers(-2, 3, size=(4 * 13 * 13, 10)) / 2.0
           * (rng.random((4 * 13 * 13, 10)) < 0.01))
    with torch.no_grad():
        model[0].weight.copy_(torch.as_tensor(conv))
        model[4].weight.copy_(torch.as_tensor(lin.T))
    assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)
    return model, [conv, lin]


def test_torch_flatten_is_channel_major():
    # The flatten junction assumes row r of the linear layer reads channel
    # r // (H * W); that is how torch flattens (N, C, H, W).
    torch = pytest.importorskip("torch")
    x = torch.zeros(1, 4, 13, 13)
    x[0, 2] = 1.0
    rows = torch.nn.Flatten()(x)[0].nonzero().ravel().numpy()
    np.testing.assert_array_equal(rows, np.arange(2 * 169, 3 * 169))


@pytest.mark.parametrize("weighted", [False, True])
def test_list_module_and_estimator_agree(weighted):
    model, lists = _torch_convnet()
    expected = _as_layers(lists)
    assert [w.shape for w in expected] == [(1, 4), (4, 10)]
    for net in (model, tuple(lists), _HasCoefs(lists)):
        for got, want in zip(_as_layers(net), expected):
            np.testing.assert_array_equal(got.toarray(), want.toarray())
    assert spectral_similarity(model, lists, weighted=weighted) == 1.0
    np.testing.assert_array_equal(
        spectral_density(model, weighted=weighted)[1],
        spectral_density(lists, weighted=weighted)[1],
    )
    matrix = pairwise_spectral_similarity([model, lists, _HasCoefs(lists)],
                                          weighted=weighted)
    np.testing.assert_array_equal(matrix, np.ones((3, 3)))


def test_torch_grouped_conv_connects_channels_within_groups():
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3),
                                torch.nn.Conv2d(4, 6, 3, groups=2))
    with torch.no_grad():
        model[1].weight.fill_(1.0)  # shape (6, 2, 3, 3)
        model[1].weight[4, 1] = 0.0  # channel 3 -> 4: no edge
    layers = _as_layers(model)
    assert [w.shape for w in layers] == [(2, 4), (4, 6)]
    block = np.kron(np.eye(2), np.ones((2, 3))) * 9  # 9 taps per pair
    block[3, 4] = 0.0
    np.testing.assert_array_equal(layers[1].toarray(), block)
    assert layers[1].nnz == 11


def test_conversion_is_fast():
    rng = np.random.default_rng(0)
    net = [(rng.random((64, 32, 3, 3)) < 0.5).astype(np.float32),
           (rng.random((3136, 128)) < 0.2).astype(np.float32)]
    times = []
    for _ in range(3):
        start = time.perf_counter()
        layers = _as_layers(net)
        times.append(time.perf_counter() - start)
    assert [w.shape for w in layers] == [(32, 64), (64, 128)]
    # About 10 ms on a busy 2-core machine; a dense expansion over the
    # spatial positions or a Python loop over rows would take far longer.
    assert min(times) < 0.25, times


# ---------------------------------------------------------- invariants
@pytest.mark.parametrize("seed", range(4))
def test_random_conv_nets_invariants(seed):
    a = _random_conv_net(seed, binary=seed % 2 == 0)
    b = _random_conv_net(seed + 10, binary=seed % 2 == 0)
    for weighted in (False, True):
        s_ab = spectral_similarity(a, b, weighted=weighted)
        assert 0.0 <= s_ab <= 1.0
        assert s_ab == spectral_similarity(b, a, weighted=weighted)
        assert spectral_similarity(a, a, weighted=weighted) == 1.0
        # Permuting the hidden channels is a relabelling of the nodes.
        perm = np.random.default_rng(seed).permutation(a[0].shape[0])
        permuted = [a[0][perm], a[1][:, perm]] + a[2:]
        assert spectral_similarity(a, permuted, weighted=weighted) == (
            pytest.approx(1.0, abs=1e-9))
    matrix = pairwise_spectral_similarity([a, b, a])
    np.testing.assert_array_equal(np.diag(matrix), 1.0)
    np.testing.assert_array_equal(matrix, matrix.T)
    assert matrix[0, 2] == 1.0


def test_rewired_conv_kernels_differ():
    rng = np.random.default_rng(0)
    first = (rng.random((8, 3, 3, 3)) < 0.5) * 1.0
    # Two groups of four channels, each wired only within its group.
    second = np.zeros((8, 8, 3, 3))
    for g in range(2):
        block = slice(4 * g, 4 * g + 4)
        second[block, block] = rng.random((4, 4, 3, 3)) < 0.5
    head = (rng.random((8 * 4, 5)) < 0.5) * 1.0
    original = [first, second, head]
    # Rewired: every output channel keeps its kernels (and in-degree), but
    # they are moved to random input channels across both groups.
    shift = np.array([rng.permutation(8) for _ in range(8)])
    rewired = [first, second[np.arange(8)[:, None], shift], head]
    assert np.count_nonzero(rewired[1]) == np.count_nonzero(second)
    assert spectral_similarity(original, rewired) < 1.0 - 1e-3
    # Moving taps inside one channel pair does not change the channel graph.
    flipped = [first, second[:, :, ::-1, ::-1], head]
    assert spectral_similarity(original, flipped) == 1.0
    # Dropping one of several taps of a channel pair keeps the unweighted
    # graph and changes the weighted one (sum |w| over the taps).
    thinned = second.copy()
    o, c = np.argwhere(np.count_nonzero(second, axis=(2, 3)) >= 2)[0]
    thinned[o, c][np.nonzero(thinned[o, c])[0][0], np.nonzero(thinned[o, c])[1][0]] = 0
    assert np.count_nonzero(thinned) == np.count_nonzero(second) - 1
    thinned = [first, thinned, head]
    assert spectral_similarity(original, thinned) == 1.0
    assert spectral_similarity(original, thinned, weighted=True) < 1.0 - 1e-6


# -------------------------------------------------------------- errors
BAD_CONV_NETS = [
    ("3d", [np.ones((2, 1, 3)), np.ones((2, 2))], ValueError,
     r"Layer 0 must be 2-D .* or 4-D .*got shape \(2, 1, 3\)"),
    ("5d", [np.ones((2, 1, 3, 3)), np.ones((3, 2, 1, 1, 1))], ValueError,
     r"Layer 1 must be 2-D .* or 4-D .*got shape \(3, 2, 1, 1, 1\)"),
    ("nan", [np.full((2, 1, 2, 2), np.nan)], ValueError,
     r"Layer 0 \(shape \(2, 1, 2, 2\)\) contains NaN"),
    ("inf", [np.ones((2, 1, 2, 2)), np.full((3, 2, 1, 1), -np.inf)], ValueError,
     r"Layer 1 \(shape \(3, 2, 1, 1\)\) contains NaN or infinite"),
    ("empty_channels", [np.ones((2, 0, 3, 3))], ValueError,
     r"Layer 0 has an empty dimension: shape \(2, 0, 3, 3\)"),
    ("empty_taps", [np.ones((2, 1, 3, 3)), np.ones((4, 2, 0, 3))], ValueError,
     r"Layer 1 has an empty dimension: shape \(4, 2, 0, 3\)"),
    ("strings", [np.full((2, 1, 2, 2), "a")], TypeError, "Layer 0 must hold real"),
    ("complex", [np.ones((2, 1, 2, 2)) * 1j], TypeError, "Layer 0 must hold real"),
    ("object", [np.full((2, 1, 2, 2), None)], TypeError, "Layer 0 must hold real"),
    ("conv_conv", [np.ones((4, 1, 3, 3)), np.ones((2, 3, 3, 3))], ValueError,
     r"do not chain: layer 0 has shape \(4, 1, 3, 3\) but layer 1 has shape "
     r"\(2, 3, 3, 3\); expected layer 1 to have 4 input channels"),
    ("conv_linear", [np.ones((4, 1, 3, 3)), np.ones((10, 2))], ValueError,
     r"do not chain: layer 0 is a convolution with 4 output channels .*"
     r"layer 1 has 10 rows .*not a multiple of 4"),
    ("linear_conv", [np.ones((3, 5)), np.ones((2, 4, 1, 1))], ValueError,
     r"do not chain.*expected layer 1 to have 5 input channels"),
    ("overflow", [np.full((2, 1, 2, 2), 1e308)], ValueError, "overflows"),
    ("flatten_overflow", [np.ones((2, 1, 1, 1)), np.full((4, 1), 1e308)],
     ValueError, "Layer 1 .*overflows"),
    ("paired_odd_channels", _HasCoefs([np.ones((2, 3, 2, 2))], paired=True),
     ValueError, r"Layer 0 .*paired inputs .*even number of input channels.*"
     r"\(2, 3, 2, 2\)"),
    ("paired_3d", _HasCoefs([np.ones((2, 2)), np.ones((2, 4, 2))], paired=True),
     ValueError, r"Layer 1 must be 2-D .* or 4-D"),
    ("paired_strings", _HasCoefs([np.full((2, 2, 1, 1), "a")], paired=True),
     TypeError, "Layer 0 must hold real"),
]


@pytest.mark.parametrize("net, exc, match", [b[1:] for b in BAD_CONV_NETS],
                         ids=[b[0] for b in BAD_CONV_NETS])
def test_bad_conv_networks(net, exc, match):
    with pytest.raises(exc, match=match):
        _as_layers(net)
    with pytest.raises(exc, match=match):
        spectral_similarity(net, [np.ones((2, 2))])


def test_torch_module_without_linear_or_conv():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match=r"no nn\.Linear or nn\.Conv2d"):
        _as_layers(torch.nn.Sequential(torch.nn.ReLU(), torch.nn.MaxPool2d(2)))
