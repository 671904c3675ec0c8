"""The figure of ``sk-weightfree compare`` (``sk_weightfree._report``)."""

import numpy as np

from sk_weightfree._report import marker_positions, plot_report


def test_markers_at_one_point_are_spread_apart_and_a_lone_one_stays():
    rows = [{"estimator": "dense", "test_accuracy": 0.9, "density": 1.0},
            {"estimator": "pruned", "test_accuracy": 0.9, "density": 1.0},
            {"estimator": "random", "test_accuracy": 0.9, "density": 1.0},
            {"estimator": "weight-free", "test_accuracy": 0.95, "density": 0.3}]
    positions = marker_positions(rows, "test_accuracy")
    xs = [x for x, _, _ in positions[:3]]
    assert len(set(xs)) == 3  # no marker hides another
    assert np.isclose(np.exp(np.mean(np.log(xs))), 1.0)  # centred on the true density
    assert all(y == 0.9 for _, y, _ in positions[:3])  # the score is drawn as it is
    assert [slot for _, _, slot in positions] == [-1, 0, 1, None]
    assert positions[3] == (0.3, 0.95, None)


def test_estimators_sharing_a_score_are_labelled(tmp_path, monkeypatch):
    import matplotlib.axes

    labels = []
    original = matplotlib.axes.Axes.annotate

    def annotate(self, text, *args, **kwargs):
        labels.append(text)
        return original(self, text, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "annotate", annotate)
    grid = np.linspace(0, 2, 50)
    names = ["dense", "pruned", "random"]
    rows = [{"estimator": "dense", "test_accuracy": 0.5, "density": 1.0},
            {"estimator": "pruned", "test_accuracy": 0.5, "density": 1.0},
            {"estimator": "random", "test_accuracy": 0.7, "density": 0.5}]
    path = plot_report(rows, names, np.eye(3), {n: (grid, grid) for n in names},
                       tmp_path / "r.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert labels == ["dense", "pruned"]


def test_rows_over_seeds_get_their_interval_as_an_error_bar(tmp_path, monkeypatch):
    import matplotlib.axes

    bars = []
    original = matplotlib.axes.Axes.errorbar

    def errorbar(self, x, y, *args, yerr=None, **kwargs):
        bars.append((x, y, np.asarray(yerr).ravel().tolist()))
        return original(self, x, y, *args, yerr=yerr, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar", errorbar)
    grid = np.linspace(0, 2, 50)
    rows = [{"estimator": "dense", "test_accuracy": 0.9, "density": 1.0,
             "ci95": [0.85, 0.93]},
            {"estimator": "random", "test_accuracy": 0.7, "density": 0.5, "ci95": None}]
    plot_report(rows, ["dense", "random"], np.eye(2), {n: (grid, grid) for n in
                                                       ["dense", "random"]},
                tmp_path / "r.png")
    assert len(bars) == 1
    x, y, (below, above) = bars[0]
    assert (x, y) == (1.0, 0.9)
    assert np.allclose([below, above], [0.05, 0.03])


def test_the_report_shows_what_the_weight_free_network_learned(tmp_path, monkeypatch,
                                                                 small_data):
    # Issue 31: receptive fields when the data are images, degree distributions otherwise.
    import sk_weightfree.plotting as plotting
    from sk_weightfree import WeightFreeClassifier

    drawn = []
    original = plotting.plot_learned_architecture

    def spy(estimator, ax=None, **kwargs):
        display = original(estimator, ax=ax, **kwargs)
        drawn.append((estimator, kwargs.get("image_shape"), type(display).__name__))
        return display

    monkeypatch.setattr(plotting, "plot_learned_architecture", spy)
    X, y = small_data
    wf = WeightFreeClassifier(hidden_layer_sizes=(8,), max_epochs=1, device="cpu",
                              random_state=0).fit(X, y)
    grid = np.linspace(0, 2, 50)
    rows = [{"estimator": "weight-free", "test_accuracy": 0.9, "density": 0.3}]
    args = (rows, ["weight-free"], np.eye(1), {"weight-free": (grid, grid)})
    plot_report(*args, tmp_path / "images.png", learned=wf, image_shape=(2, 4))
    plot_report(*args, tmp_path / "tabular.png", learned=wf)
    assert [(e is wf, shape, kind) for e, shape, kind in drawn] == [
        (True, (2, 4), "ReceptiveFieldDisplay"), (True, None, "DegreeDisplay")]
    for name in ("images.png", "tabular.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
