"""The displays of sk_weightfree.plotting: what they draw is the fitted network's edges."""

import functools
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sk_weightfree import DenseClassifier, WeightFreeClassifier  # noqa: E402
from sk_weightfree.nn import SmallCNN  # noqa: E402
from sk_weightfree.plotting import (NEGATIVE, POSITIVE, DegreeDisplay,  # noqa: E402
                                    NetworkDisplay, ReceptiveFieldDisplay,
                                    plot_learned_architecture)
from sk_weightfree.plotting import _degree_bins  # noqa: E402

FAST = dict(hidden_layer_sizes=(8,), max_epochs=2, batch_size=32, device="cpu",
            random_state=0)
SIGN_VARIANTS = ["paired", "fixed", "random", "none"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def nets(digits_small):
    X, y = digits_small
    fitted = {f"wf-{signs}": WeightFreeClassifier(unit_signs=signs, **FAST).fit(X, y)
              for signs in SIGN_VARIANTS}
    fitted["dense"] = DenseClassifier(**FAST).fit(X, y)
    with pytest.warns(Warning):  # 5 iterations do not converge
        fitted["mlp"] = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5,
                                      random_state=0).fit(X, y)
    cnn = functools.partial(SmallCNN, channels=(4, 8), hidden=16)
    fitted["wf-cnn"] = WeightFreeClassifier(module=cnn, input_shape=(1, 8, 8),
                                            **{**FAST, "max_epochs": 1}).fit(X, y)
    fitted["dense-cnn"] = DenseClassifier(module=cnn, input_shape=(1, 8, 8),
                                          **{**FAST, "max_epochs": 1}).fit(X, y)
    return fitted


@pytest.fixture(scope="module")
def iris_net():
    X, y = load_iris(return_X_y=True)
    return WeightFreeClassifier(**{**FAST, "hidden_layer_sizes": (16,), "max_epochs": 5}
                                ).fit(StandardScaler().fit_transform(X), y)


def signed(est, i):
    """Layer ``i``'s edges with the twin lines folded, written out here on purpose
    (not through the package's fold) so that the test checks it."""
    w = np.asarray(est.coefs_[i], dtype=float)
    if not getattr(est, "paired_inputs_", False):
        return w
    if w.ndim == 2:
        half = w.shape[0] // 2
        return w[:half] - w[half:]
    half = w.shape[1] // 2
    return w[:, :half] - w[:, half:]


# --------------------------------------------------------------------------
# ReceptiveFieldDisplay
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name", [f"wf-{s}" for s in SIGN_VARIANTS] + ["dense", "mlp"])
def test_receptive_fields_are_the_signed_first_layer(nets, name):
    est = nets[name]
    display = ReceptiveFieldDisplay.from_estimator(est, image_shape=(8, 8), n_units=5)
    first = signed(est, 0)
    degrees = np.count_nonzero(first, axis=0)
    assert len(display.units) == 5
    # the most connected units first, and those are the most connected of all
    assert np.all(np.diff(display.degrees) <= 0)
    assert display.degrees[-1] >= np.sort(degrees)[::-1][4]
    for k, unit in enumerate(display.units):
        expected = first[:, unit].reshape(8, 8)
        np.testing.assert_array_equal(display.fields[k], expected)
        np.testing.assert_array_equal(display.images_[k].get_array(), expected)
        assert display.degrees[k] == degrees[unit]
        assert f"degree {degrees[unit]}" in display.axes_.flat[k].get_title()
    assert display.signs == name.startswith("wf")
    if name.startswith("wf"):
        values = set(np.unique(display.fields))
        assert values <= {-1.0, 0.0, 1.0}
        # paired lines give inhibitory edges; a single {0,1} line cannot
        assert (-1.0 in values) == (name in ("wf-paired", "wf-fixed"))


def test_signs_use_three_colours_and_weights_a_diverging_map(nets):
    signs = ReceptiveFieldDisplay.from_estimator(nets["wf-paired"], image_shape=(8, 8),
                                                 n_units=2)
    image = signs.images_[0]
    colour = image.cmap(image.norm(np.array([-1.0, 0.0, 1.0])))
    assert np.allclose(colour[0], to_rgba(NEGATIVE))
    assert np.allclose(colour[2], to_rgba(POSITIVE))
    assert len({tuple(c) for c in colour}) == 3
    weights = ReceptiveFieldDisplay.from_estimator(nets["dense"], image_shape=(8, 8),
                                                   n_units=2)
    image = weights.images_[0]
    assert image.norm.vmin == -image.norm.vmax  # centred at 0
    assert image.norm.vmax == pytest.approx(np.abs(weights.fields).max())


def test_cmap_of_real_weights(nets):
    display = ReceptiveFieldDisplay.from_estimator(nets["dense"], image_shape=(8, 8),
                                                   n_units=1, cmap="PuOr")
    assert display.images_[0].cmap.name.startswith("PuOr")


def test_a_regressor_is_drawn(digits_small):
    from sk_weightfree import WeightFreeRegressor

    X, y = digits_small
    est = WeightFreeRegressor(**FAST).fit(X, y.astype(float))
    display = DegreeDisplay.from_estimator(est)
    np.testing.assert_array_equal(display.in_degrees[1], (signed(est, 1) != 0).sum(axis=0))
    assert ReceptiveFieldDisplay.from_estimator(est, image_shape=(8, 8)).signs


def test_units_chosen_by_the_user(nets):
    est = nets["wf-paired"]
    display = ReceptiveFieldDisplay.from_estimator(est, image_shape=(8, 8), units=[3, 0])
    np.testing.assert_array_equal(display.units, [3, 0])
    np.testing.assert_array_equal(display.fields[0], signed(est, 0)[:, 3].reshape(8, 8))


@pytest.mark.parametrize("name", ["wf-cnn", "dense-cnn"])
def test_receptive_fields_of_a_cnn_are_its_first_kernels(nets, name):
    est = nets[name]
    display = ReceptiveFieldDisplay.from_estimator(est)  # kernels need no image_shape
    kernels = signed(est, 0)[:, 0]  # (4, 3, 3): one input channel
    assert display.unit_name == "channel"
    assert display.fields.shape == (4, 3, 3)
    for k, channel in enumerate(display.units):
        np.testing.assert_array_equal(display.fields[k], kernels[channel])
        np.testing.assert_array_equal(display.images_[k].get_array(), kernels[channel])
    assert display.signs == (name == "wf-cnn")


def test_receptive_fields_with_channels_are_tiled(nets):
    # (channels, height, width): each channel drawn beside the next, a blank between
    est = nets["wf-none"]
    display = ReceptiveFieldDisplay.from_estimator(est, image_shape=(4, 4, 4), n_units=1)
    drawn = display.images_[0].get_array()
    assert drawn.shape == (4, 4 * 4 + 3)
    field = signed(est, 0)[:, display.units[0]].reshape(4, 4, 4)
    np.testing.assert_array_equal(drawn[:, 5:9], field[1])
    assert np.ma.is_masked(drawn[0, 4]) or np.isnan(drawn[0, 4])


# --------------------------------------------------------------------------
# DegreeDisplay
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["wf-paired", "wf-none", "dense"])
def test_degrees_count_the_edges(nets, name):
    est = nets[name]
    display = DegreeDisplay.from_estimator(est)
    assert len(display.in_degrees) == len(est.coefs_)
    for i in range(len(est.coefs_)):
        edges = signed(est, i) != 0
        if name == "wf-none":
            edges = est.masks_[i]  # one line per edge: the masks themselves
        np.testing.assert_array_equal(display.in_degrees[i], edges.sum(axis=0))
        np.testing.assert_array_equal(display.out_degrees[i], edges.sum(axis=1))
        # the null: the same number of edges, among the same units
        assert display.null_in_degrees[i].sum() == edges.sum()
        assert display.null_out_degrees[i].sum() == edges.sum()
        assert display.null_in_degrees[i].shape == (edges.shape[1],)
        # the bars drawn are the histograms of those degrees
        for panel, learned, null in (
                (display.axes_[i, 0], display.in_degrees[i], display.null_in_degrees[i]),
                (display.axes_[i, 1], display.out_degrees[i], display.null_out_degrees[i])):
            bins = _degree_bins(learned, null)
            drawn = [[bar.get_height() for bar in c] for c in panel.containers]
            np.testing.assert_array_equal(drawn[0], np.histogram(learned, bins)[0])
            np.testing.assert_array_equal(drawn[1], np.histogram(null, bins)[0])


def test_degree_null_is_seeded(nets):
    est = nets["wf-paired"]
    a = DegreeDisplay.from_estimator(est, random_state=1)
    b = DegreeDisplay.from_estimator(est, random_state=1)
    c = DegreeDisplay.from_estimator(est, random_state=2)
    np.testing.assert_array_equal(a.null_out_degrees[0], b.null_out_degrees[0])
    assert not np.array_equal(a.null_out_degrees[0], c.null_out_degrees[0])


def test_degrees_of_a_cnn_count_channel_links(nets):
    est = nets["wf-cnn"]
    display = DegreeDisplay.from_estimator(est)
    kernels = signed(est, 1)  # (8, 4, 3, 3): channel c -> d when any tap is on
    linked = np.abs(kernels).sum(axis=(2, 3)) != 0
    np.testing.assert_array_equal(display.in_degrees[1], linked.sum(axis=1))
    assert "channels" in display.layer_names[0]


# --------------------------------------------------------------------------
# NetworkDisplay
# --------------------------------------------------------------------------
def test_network_draws_every_signed_edge_of_a_small_network(iris_net):
    display = NetworkDisplay.from_estimator(iris_net)
    assert display.layer_sizes == [4, 16, 3]
    for i, lines in enumerate(display.edges_):
        w = signed(iris_net, i)
        np.testing.assert_array_equal(display.weights[i], w)
        colours = lines.get_colors()
        assert len(lines.get_segments()) == np.count_nonzero(w)
        n_positive = np.isclose(colours[:, :3], to_rgba(POSITIVE)[:3]).all(axis=1).sum()
        assert n_positive == (w > 0).sum()
        assert len(colours) - n_positive == (w < 0).sum() > 0
    assert [len(nodes.get_offsets()) for nodes in display.nodes_] == [4, 16, 3]
    texts = [t.get_text() for t in display.ax_.texts]
    assert "hidden 1\n16 units" in texts
    assert "shown" not in display.ax_.get_title()  # nothing left out


def test_network_subsamples_wide_layers_with_a_note(nets):
    est = nets["wf-paired"]
    display = NetworkDisplay.from_estimator(est, max_units=6)
    assert [len(u) for u in display.units] == [6, 6, 6]
    degree = (signed(est, 0) != 0).sum(axis=1)  # the inputs' out-degree
    left_out = np.setdiff1d(np.arange(64), display.units[0])
    assert degree[display.units[0]].min() >= degree[left_out].max()
    np.testing.assert_array_equal(
        display.weights[0], signed(est, 0)[np.ix_(display.units[0], display.units[1])])
    assert "6 most connected" in display.ax_.get_title()
    assert "input\n6 of 64 units shown" in [t.get_text() for t in display.ax_.texts]


def test_network_of_a_cnn_links_channels(nets):
    display = NetworkDisplay.from_estimator(nets["wf-cnn"])
    # two convolutions and the linear layer reading their flattened output
    assert display.channel_links == [True, True, True, False]
    texts = [t.get_text() for t in display.ax_.texts]
    assert "conv 1\n4 channels" in texts and "input\n1 channel" in texts


# --------------------------------------------------------------------------
# The Display API: ax given or not
# --------------------------------------------------------------------------
DRAW = {
    "fields": lambda est, ax: ReceptiveFieldDisplay.from_estimator(
        est, image_shape=(8, 8), n_units=4, ax=ax),
    "degrees": lambda est, ax: DegreeDisplay.from_estimator(est, ax=ax),
    "network": lambda est, ax: NetworkDisplay.from_estimator(est, ax=ax),
}


@pytest.mark.parametrize("kind", DRAW)
def test_display_draws_on_the_ax_given(nets, kind):
    fig, (other, ax) = plt.subplots(1, 2)
    display = DRAW[kind](nets["wf-paired"], ax)
    assert display.figure_ is fig
    assert display.ax_ is ax
    panels = [a for a in getattr(display, "axes_", np.array([ax])).flat if a is not None]
    assert all(a.figure is fig for a in panels)
    assert not other.has_data()
    # plot() again on a fresh figure returns the display itself
    assert display.plot() is display and display.figure_ is not fig


@pytest.mark.parametrize("kind", DRAW)
def test_display_makes_a_figure_without_ax(nets, kind):
    before = set(plt.get_fignums())
    display = DRAW[kind](nets["wf-paired"], None)
    assert set(plt.get_fignums()) - before == {display.figure_.number}


def test_display_on_an_array_of_axes(nets):
    fig, axes = plt.subplots(2, 2)
    display = ReceptiveFieldDisplay.from_estimator(nets["wf-paired"], image_shape=(8, 8),
                                                   n_units=4, ax=axes)
    assert display.ax_ is None and display.figure_ is fig
    assert all(a is b for a, b in zip(display.axes_.flat, axes.flat))
    with pytest.raises(ValueError, match="Expected ax to hold 4 axes"):
        ReceptiveFieldDisplay.from_estimator(nets["wf-paired"], image_shape=(8, 8),
                                             n_units=4, ax=axes[0])


def test_plot_learned_architecture_chooses_by_data(nets):
    fig, (a, b, c) = plt.subplots(1, 3)
    assert isinstance(plot_learned_architecture(nets["wf-paired"], a, image_shape=(8, 8)),
                      ReceptiveFieldDisplay)
    assert isinstance(plot_learned_architecture(nets["wf-paired"], b), DegreeDisplay)
    assert isinstance(plot_learned_architecture(nets["wf-cnn"], c), ReceptiveFieldDisplay)


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", DRAW)
def test_unfitted_estimator_is_refused(kind):
    with pytest.raises(NotFittedError):
        DRAW[kind](WeightFreeClassifier(), None)


@pytest.mark.parametrize("kind", DRAW)
def test_other_estimators_are_refused(digits_small, kind):
    X, y = digits_small
    with pytest.raises(TypeError, match="LogisticRegression"):
        DRAW[kind](LogisticRegression(max_iter=50).fit(X, y), None)


def test_a_pipeline_is_refused_with_a_hint(nets):
    with pytest.raises(TypeError, match=r"pipe\[-1\]"):
        DegreeDisplay.from_estimator(make_pipeline(StandardScaler(), nets["wf-paired"]))


def test_image_shape_must_match_the_input(nets):
    with pytest.raises(ValueError, match=r"image_shape=\(8, 9\) holds 72 .* reads 64"):
        ReceptiveFieldDisplay.from_estimator(nets["wf-paired"], image_shape=(8, 9))
    with pytest.raises(ValueError, match="image_shape is required"):
        ReceptiveFieldDisplay.from_estimator(nets["wf-paired"])
    for bad in ("8x8", (8.7, 8), (True, 8)):  # was a raw int() error, or truncated to (8, 8)
        with pytest.raises(ValueError, match="image_shape must be .* positive integers"):
            ReceptiveFieldDisplay.from_estimator(nets["wf-paired"], image_shape=bad)
    with pytest.raises(ValueError, match="units must lie in"):
        ReceptiveFieldDisplay.from_estimator(nets["wf-paired"], image_shape=(8, 8),
                                             units=[8])
    with pytest.raises(ValueError, match="max_units"):
        NetworkDisplay.from_estimator(nets["wf-paired"], max_units=1)


def test_importing_the_module_leaves_matplotlib_alone():
    code = ("import sys, sk_weightfree; sk_weightfree.plotting; "
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
