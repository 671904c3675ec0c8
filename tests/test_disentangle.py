"""The disentangling experiment (issue 30): :func:`sk_weightfree.disentangle` and
``sk-weightfree disentangle`` -- architecture sources crossed with weight regimes."""

import csv
import json
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_friedman1

import sk_weightfree
from sk_weightfree import architecture_of
from sk_weightfree._disentangle import REGIMES, SOURCES
from sk_weightfree.cli import main
from test_cli import spy_fits  # records every fit

TINY = {"hidden_layer_sizes": (8,), "epochs": 3, "device": "cpu"}


def digits(n=400):
    X, y = load_digits(return_X_y=True)
    return X[:n], y[:n]


def run(X, y, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of 3-epoch fits
        return sk_weightfree.disentangle(X, y, **{**TINY, **kwargs})


@pytest.fixture(scope="module")
def two_seeds():
    return run(*digits(), seeds=2)


def test_the_table_has_every_source_times_every_regime_with_per_seed_scores(two_seeds,
                                                                            tmp_path):
    result = two_seeds
    assert [(c["source"], c["regime"]) for c in result.cells] == \
           [(s, r) for s in SOURCES for r in REGIMES]
    assert len(result.cells) == 4 * 4
    for cell in result.cells:
        assert len(cell["scores"]) == 2 and cell["seeds"] == [0, 1]
        assert all(0.0 <= s <= 1.0 for s in cell["scores"])
        assert cell["mean"] == pytest.approx(np.mean(cell["scores"]))
        assert cell["std"] == pytest.approx(np.std(cell["scores"], ddof=1))
        low, high = cell["ci95"]
        assert low <= cell["mean"] <= high
        assert len(cell["density"]) == 2 and all(0 < d <= 1 for d in cell["density"])
        assert len(cell["connections"]) == 2
        # the weight-agnostic classifier on a given architecture only chooses its value
        assert cell["epochs"] == ([0, 0] if cell["regime"] == "weight-agnostic" else [3, 3])
        assert cell["threads"] == 1  # what its fits used: one thread for a small network
    # the similarity of the sources: symmetric, 1 on the diagonal, each in [0, 1]
    sim = result.similarity
    assert sim.shape == (4, 4) and np.allclose(sim, sim.T) and np.allclose(np.diag(sim), 1)
    assert ((0 <= sim) & (sim <= 1)).all()
    mean, low, high = result.difference("rewired", "dense")
    paired = np.subtract(result.cell("rewired", "dense")["scores"],
                         result.cell("learned", "dense")["scores"])
    assert mean == pytest.approx(paired.mean()) and low <= mean <= high
    table = result.table()
    assert all(s in table for s in SOURCES) and "{0,1} signs" in table and " ± " in table
    saved = json.loads(result.to_json(tmp_path / "r.json").read_text())
    assert [c["scores"] for c in saved["cells"]] == [c["scores"] for c in result.cells]
    with open(result.to_csv(tmp_path / "r.csv")) as handle:
        lines = list(csv.DictReader(handle))
    assert len(lines) == 16 and json.loads(lines[5]["scores"]) == result.cells[5]["scores"]
    assert result.plot(tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_two_seeds_are_reproducible(two_seeds):
    again = run(*digits(), seeds=2)
    assert [c["scores"] for c in again.cells] == [c["scores"] for c in two_seeds.cells]
    assert np.array_equal(again.similarity, two_seeds.similarity)


def test_every_cell_keeps_its_edges_inside_its_source_architecture(two_seeds):
    architectures = two_seeds.architectures_
    learned = architectures["learned"]
    for source, architecture in architectures.items():
        # the null sources keep the learned one's per-layer edge counts, the pruned one
        # its overall density (global pruning: layers may differ)
        counts = [int(a.sum()) for a in architecture]
        if source in ("rewired", "random"):
            assert counts == [int(a.sum()) for a in learned]
            assert any((a != b).any() for a, b in zip(architecture, learned))
        elif source == "pruned":
            assert abs(sum(counts) - sum(int(a.sum()) for a in learned)) <= len(counts)
    assert set(two_seeds.estimators_) == {(s, r) for s in SOURCES for r in REGIMES}
    for (source, regime), estimator in two_seeds.estimators_.items():
        assert estimator.architecture is not None
        edges = architecture_of(estimator)
        for layer, (got, allowed) in enumerate(zip(edges, architectures[source])):
            assert not (got & ~allowed).any(), \
                f"{regime} on the {source} architecture has an edge outside it (layer {layer})"


def test_the_test_part_is_read_once_per_seed_after_every_fit(monkeypatch):
    X, y = digits(300)
    X_test = np.full((40, X.shape[1]), 1e6)  # standardised: far beyond any training row
    y_test = np.arange(40) % 10
    events = []
    for cls in sk_weightfree._study.family_classes("classification").values():
        original_fit, original_predict = cls.fit, cls.predict

        def fit(self, X, y, *args, _fit=original_fit, **kwargs):
            assert np.abs(X).max() < 1e3, "a fit saw the test part"
            events.append("fit")
            return _fit(self, X, y, *args, **kwargs)

        def predict(self, X, _predict=original_predict):
            if np.abs(X).max() > 1e3:
                events.append("test")
            return _predict(self, X)

        monkeypatch.setattr(cls, "fit", fit)
        monkeypatch.setattr(cls, "predict", predict)
    run(X, y, X_test=X_test, y_test=y_test, seeds=2, tune=2, epochs=1)
    # per seed: 2 sources + 16 cells, each 2 tuning trials and a refit; then 16 test reads
    per_seed = ["fit"] * (18 * 3) + ["test"] * 16
    assert events == per_seed * 2


def test_python_and_the_command_line_give_the_same_cells(tmp_path):
    X, y = load_digits(return_X_y=True)
    result = run(X, y, seeds=1, random_state=2, train_size=300)
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["disentangle", "--hidden-layer-sizes", "8", "--epochs", "3",
                     "--seeds", "1", "--seed", "2", "--train-size", "300", "--device",
                     "cpu", "--quiet", "--out", str(out)]) == 0
    saved = json.loads((out / "results.json").read_text())
    same = ("source", "regime", "scores", "seeds", "density", "connections", "epochs")
    assert [{k: c[k] for k in same} for c in saved["cells"]] == \
           [{k: json.loads(json.dumps(c[k])) for k in same} for c in result.cells]
    assert saved["command"][:2] == ["sk-weightfree", "disentangle"]
    assert saved["dataset"]["name"] == "digits" and saved["versions"]["torch"]
    assert sorted(p.name for p in out.iterdir()) == ["disentangle.png", "results.csv",
                                                     "results.json"]


def test_the_command_prints_the_table_and_the_similarity(tmp_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["disentangle", "--hidden-layer-sizes", "8", "--epochs", "3",
                     "--seeds", "1", "--train-size", "200", "--device", "cpu", "--quiet",
                     "--no-output"]) == 0
    printed = capsys.readouterr().out.splitlines()
    rows = [line for line in printed if line.split(" ")[0] in SOURCES]
    assert len(rows) == 4 + 4  # the table's rows and the similarity matrix's
    assert all(len(line.split()) == 1 + 4 + 1 for line in rows[:4])  # 4 regimes, density
    assert any(line.startswith("spectral similarity") for line in printed)


def test_regression_runs_every_cell_with_r2():
    X, y = make_friedman1(n_samples=200, random_state=0)
    result = run(X, y, seeds=1)
    assert result.results["task"] == "regression" and result.results["metric"] == "test_r2"
    assert len(result.cells) == 16 and all(np.isfinite(c["mean"]) for c in result.cells)
    assert type(result.estimators_["learned", "dense"]).__name__ == "DenseRegressor"


@pytest.mark.parametrize("args, message", [
    (["--seeds", "0"], "--seeds must be a positive integer"),
    (["--tune", "-1"], "--tune must be an integer >= 0"),
    (["--device", "tpu"], "device"),
    (["--dataset", "no-such-file.csv"], "no-such-file.csv"),
    (["--train-size", "5000"], "--train-size 5000"),
    (["--tune", "2", "--train-size", "12"], "--tune needs a validation split"),
])
def test_bad_input_is_one_line_exit_2_before_any_fit_and_nothing_written(
        args, message, tmp_path, capsys, monkeypatch):
    calls = spy_fits(monkeypatch)
    out = tmp_path / "out"
    status = main(["disentangle", "--hidden-layer-sizes", "8", "--epochs", "1", "--device",
                   "cpu", "--out", str(out), *args])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1 and message in err
    assert calls == [] and not out.exists()


def test_bad_widths_on_the_command_line_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["disentangle", "--hidden-layer-sizes", "0", "--out", str(tmp_path / "o")])
    assert exit_.value.code == 2 and "positive integer" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("bad, message", [
    ({"seeds": 0}, "--seeds"), ({"tune": -1}, "--tune"),
    ({"hidden_layer_sizes": (0,)}, "hidden_layer_sizes"),
    ({"hidden_layer_sizes": "8"}, "hidden_layer_sizes"),
    ({"task": "classification", "y": np.linspace(0, 1, 100)}, "continuous"),
])
def test_bad_input_in_python_is_a_value_error_before_any_fit(bad, message, monkeypatch):
    calls = spy_fits(monkeypatch)
    X, y = digits(100)
    y = bad.pop("y", y)
    with pytest.raises(ValueError, match=message):
        sk_weightfree.disentangle(X, y, **{**TINY, **bad})
    assert calls == []
