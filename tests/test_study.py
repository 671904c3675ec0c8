"""The comparison study (``sk_weightfree._study``): one recipe, equal tuning budgets,
seeds and intervals, in Python (:func:`sk_weightfree.compare`) and on the command line."""

import json

import numpy as np
import pytest
from sklearn.datasets import load_digits

import sk_weightfree
from sk_weightfree import _study
from sk_weightfree.cli import main
from test_cli import spy_fits  # records every fit

FAMILIES = ("dense", "weight-free", "pruned", "weight-agnostic", "random")
SMALL = {"hidden_layer_sizes": [8]}


def small(*names):
    return {name: dict(SMALL) for name in {n.partition(":")[0] for n in names}}


def digits(n=None):
    X, y = load_digits(return_X_y=True)
    return (X, y) if n is None else (X[:n], y[:n])


# ---------------------------------------------------------------------------- one recipe
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_every_family_defaults_to_the_one_shared_schedule(task):
    # a family whose default schedule is changed alone breaks this
    defaults = {family: cls().lr_schedule for family, cls in
                _study.family_classes(task).items()}
    assert set(defaults.values()) == {_study.SHARED_SCHEDULE}, defaults


def test_default_compare_gives_every_row_the_same_recipe(tmp_path):
    out = tmp_path / "out"
    sets = [a for f in FAMILIES for a in ("--set", f"{f}.hidden_layer_sizes=[8]")]
    assert main(["compare", "--epochs", "1", "--device", "cpu", "--quiet", "--out", str(out),
                 *sets]) == 0
    results = json.loads((out / "results.json").read_text())
    schedules = {e["name"]: e["params"]["lr_schedule"] for e in results["estimators"]}
    assert set(schedules.values()) == {_study.SHARED_SCHEDULE}, schedules
    assert {e["params"]["max_epochs"] for e in results["estimators"]} == {1}
    assert all(r["recipe_differs"] == [] for r in results["results"])
    assert results["recipe"]["lr_schedule"] == _study.SHARED_SCHEDULE


def test_a_family_setting_reaches_its_rule_rows_and_a_differing_row_is_flagged(tmp_path,
                                                                                capsys):
    out = tmp_path / "out"
    args = ["compare", "--estimators", "weight-free", "weight-free:edge-popup",
            "weight-free:signed-supermask", "--epochs", "1", "--device", "cpu", "--quiet",
            "--out", str(out), "--set", "weight-free.hidden_layer_sizes=[8]",
            "--set", "weight-free:edge-popup.lr_schedule=constant"]
    other = "constant" if _study.SHARED_SCHEDULE == "cosine" else "cosine"
    args[-1] = f"weight-free:edge-popup.lr_schedule={other}"
    assert main(args) == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    params = {e["name"]: e["params"] for e in results["estimators"]}
    assert {tuple(p["hidden_layer_sizes"]) for p in params.values()} == {(8,)}
    assert [p["mask_rule"] for p in params.values()] == ["threshold", "edge-popup",
                                                        "signed-supermask"]
    flagged = {r["estimator"]: r["recipe_differs"] for r in results["results"]}
    assert flagged == {"weight-free": [], "weight-free:edge-popup": ["lr_schedule"],
                       "weight-free:signed-supermask": []}
    assert "weight-free:edge-popup †" in printed
    assert f"† weight-free:edge-popup: its recipe differs from the others' in " \
           f"lr_schedule={other}" in printed


def test_row_settings_reach_the_family_unless_a_row_is_named():
    names = ["weight-free", "weight-free:edge-popup", "dense"]
    rows = _study.row_settings({"weight-free": {"lr": 0.1, "mask_rule": "supermask"},
                                "weight-free:edge-popup": {"lr": 0.2}}, names)
    assert rows == {"weight-free": {"lr": 0.1, "mask_rule": "supermask"},
                    "weight-free:edge-popup": {"lr": 0.2}, "dense": {}}
    with pytest.raises(ValueError, match="not among the estimators"):
        _study.row_settings({"weight-free:supermask": {"lr": 0.1}}, names)


# ---------------------------------------------------------------------------- statistics
def test_interval_and_paired_difference_on_a_hand_computed_example():
    # t(0.975, 2) = 4.302652729911275; s = 0.02; half = 4.3026527 * 0.02 / sqrt(3)
    mean, low, high = _study.mean_interval([0.80, 0.82, 0.84])
    assert mean == pytest.approx(0.82)
    assert (low, high) == pytest.approx((0.82 - 0.0496828, 0.82 + 0.0496828), abs=1e-6)
    # differences 0.02, 0.02, 0.01: mean 0.0166667, s 0.0057735, half 0.0143422
    mean, low, high = _study.paired_difference([0.90, 0.92, 0.91], [0.88, 0.90, 0.90])
    assert mean == pytest.approx(0.0166667, abs=1e-6)
    assert (low, high) == pytest.approx((0.0023245, 0.0310088), abs=1e-6)
    assert np.isnan(_study.mean_interval([0.5])[1])
    with pytest.raises(ValueError, match="one per seed"):
        _study.paired_difference([0.1, 0.2], [0.1])


def test_the_table_marks_differences_whose_interval_excludes_zero():
    row = {"estimator": "x", "test_accuracy": 0.9, "scores": [0.9, 0.9], "std": 0.0,
           "ci95": [0.9, 0.9], "density": 1.0, "connections": 1, "epochs": 1,
           "fit_seconds": 1.0, "predict_seconds": 0.1, "recipe_differs": []}
    rows = [{**row, "estimator": "dense", "difference": None},
            {**row, "estimator": "a", "difference": {"baseline": "dense", "mean": 0.02,
                                                     "ci95": [0.01, 0.03],
                                                     "excludes_zero": True}},
            {**row, "estimator": "b", "difference": {"baseline": "dense", "mean": 0.02,
                                                     "ci95": [-0.01, 0.05],
                                                     "excludes_zero": False}}]
    lines = _study.format_table(rows).splitlines()
    assert "vs dense (95% CI)" in lines[0]
    assert "+0.0200 [+0.0100, +0.0300]*" in lines[3]
    assert "+0.0200 [-0.0100, +0.0500]" in lines[4] and "*" not in lines[4]


# ---------------------------------------------------------------------------- compare in Python
def test_compare_in_python_returns_a_row_per_estimator_with_a_score_per_seed():
    X, y = digits()
    result = sk_weightfree.compare(X, y, estimators=["dense", "weight-free"], epochs=2,
                                   seeds=2, device="cpu")
    assert [r["estimator"] for r in result.rows] == ["dense", "weight-free"]
    for row in result.rows:
        assert len(row["scores"]) == 2 and row["seeds"] == [0, 1]
        assert row["test_accuracy"] == pytest.approx(np.mean(row["scores"]))
        low, high = row["ci95"]
        assert low <= row["test_accuracy"] <= high
    assert result.rows[0]["difference"] is None
    difference = result.rows[1]["difference"]
    assert difference["baseline"] == "dense"
    assert difference["mean"] == pytest.approx(result.rows[1]["test_accuracy"]
                                               - result.rows[0]["test_accuracy"])


def test_seeds_are_reproducible_and_each_repeat_is_its_own():
    X, y = digits(600)
    run = lambda: sk_weightfree.compare(  # noqa: E731
        X, y, estimators=["dense", "random"], epochs=2, seeds=2, settings=small("dense",
                                                                               "random"),
        device="cpu")
    first, second = run(), run()
    assert [r["scores"] for r in first.rows] == [r["scores"] for r in second.rows]
    assert first.rows[0]["scores"][0] != first.rows[0]["scores"][1]  # another split and init


def test_python_and_the_command_line_give_the_same_rows(tmp_path):
    X, y = digits()
    settings = small("dense", "weight-free")
    result = sk_weightfree.compare(X, y, estimators=["dense", "weight-free"], epochs=2,
                                   seeds=2, settings=settings, random_state=3,
                                   device="cpu")
    out = tmp_path / "out"
    assert main(["compare", "--estimators", "dense", "weight-free", "--epochs", "2",
                 "--seeds", "2", "--seed", "3", "--device", "cpu", "--quiet", "--out",
                 str(out), "--set", "dense.hidden_layer_sizes=[8]",
                 "--set", "weight-free.hidden_layer_sizes=[8]"]) == 0
    rows = json.loads((out / "results.json").read_text())["results"]
    same = ("estimator", "test_accuracy", "scores", "seeds", "density", "connections",
            "epochs", "difference", "recipe", "recipe_differs", "file_bytes")
    assert [{k: r[k] for k in same} for r in rows] == \
           [{k: json.loads(json.dumps(r[k])) for k in same} for r in result.rows]


def test_to_json_and_plot_write_the_results(tmp_path):
    X, y = digits(400)
    result = sk_weightfree.compare(X, y, estimators=["dense", "random"], epochs=1, seeds=2,
                                   settings=small("dense", "random"), device="cpu")
    result.to_json(tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["results"][1]["scores"] == \
        result.rows[1]["scores"]
    assert result.plot(tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------- tuning
def test_tuning_never_reads_the_test_part(monkeypatch):
    X, y = digits(500)
    X_test = np.full((50, X.shape[1]), 1e6)  # standardised: far beyond any training row
    y_test = np.arange(50) % 10
    fits, predictions = [], []
    for cls in (sk_weightfree.DenseClassifier, sk_weightfree.WeightFreeClassifier):
        original_fit, original_predict = cls.fit, cls.predict

        def fit(self, X, y, *args, _fit=original_fit, **kwargs):
            assert np.abs(X).max() < 1e3, "a fit saw the test part"
            fits.append(len(X))
            return _fit(self, X, y, *args, **kwargs)

        def predict(self, X, _predict=original_predict):
            predictions.append(bool(np.abs(X).max() > 1e3))
            return _predict(self, X)

        monkeypatch.setattr(cls, "fit", fit)
        monkeypatch.setattr(cls, "predict", predict)
    result = sk_weightfree.compare(X, y, X_test=X_test, y_test=y_test,
                                   estimators=["dense", "weight-free"], epochs=1, tune=2,
                                   seeds=2, settings=small("dense", "weight-free"),
                                   device="cpu")
    # per row and seed: 2 trials on 400 rows, a refit on all 500, one test read
    assert fits.count(400) == 2 * 2 * 2 and fits.count(500) == 2 * 2
    assert predictions.count(True) == 2 * 2  # the test part, once per row and seed
    for row in result.rows:
        assert len(row["trials"]) == 2 * 2 and len(row["chosen"]) == 2
        assert all(0 <= t["validation_score"] <= 1 and t["seconds"] > 0
                   for t in row["trials"])


def test_tune_2_records_two_trials_per_row_with_validation_scores(tmp_path):
    out = tmp_path / "out"
    assert main(["compare", "--estimators", "dense", "pruned", "--epochs", "3", "--tune", "2",
                 "--device", "cpu", "--quiet", "--out", str(out),
                 "--set", "dense.hidden_layer_sizes=[8]",
                 "--set", "pruned.hidden_layer_sizes=[8]"]) == 0
    results = json.loads((out / "results.json").read_text())
    for row in results["results"]:
        assert len(row["trials"]) == 2
        assert all(set(t) == {"seed", "params", "validation_score", "seconds"}
                   for t in row["trials"])
        assert row["chosen"][0] in [t["params"] for t in row["trials"]]
    assert set(results["results"][1]["trials"][0]["params"]) == {"lr", "lr_schedule",
                                                                  "density"}
    assert results["tune"] == 2


def test_every_family_has_a_search_space_its_estimator_accepts():
    for name in [*FAMILIES, "weight-free:edge-popup", "weight-free:supermask",
                 "weight-free:signed-supermask"]:
        estimator = _study.build_estimators([name], _study.family_classes(), {}, budget=2,
                                            seed=0, device="cpu", verbose=0)[0][name]
        space = _study.search_space(name)
        assert {"lr", "lr_schedule"} <= set(space)
        _study.check_search_space(name, estimator, space, 4)


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("args, message", [
    (["--seeds", "0"], "--seeds must be a positive integer (the number of repeats); got 0"),
    (["--tune", "-1"], "--tune must be an integer >= 0"),
    (["--tune", "2", "--search", "dense.lr_schedule=[\"step\"]"],
     "dense refuses lr_schedule='step' of its search space"),
    (["--tune", "2", "--search", "dense.lr=0.1"], "needs a non-empty JSON list"),
    (["--tune", "3", "--search", "dense.lr=[0.1]", "--search",
      "dense.lr_schedule=[\"constant\"]"], "only 1 distinct configurations"),
    (["--baseline", "pruned"], "--baseline 'pruned' is not among"),
])
def test_bad_study_options_are_one_line_exit_2_before_any_fit(args, message, tmp_path,
                                                              capsys, monkeypatch):
    calls = spy_fits(monkeypatch)
    out = tmp_path / "out"
    status = main(["compare", "--estimators", "dense", "--epochs", "1", "--device", "cpu",
                   "--out", str(out), *args])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1 and message in err
    assert calls == [] and not out.exists()


def test_seeds_and_tune_are_checked_in_python_too():
    X, y = digits(100)
    for bad in ({"seeds": 0}, {"seeds": 1.5}, {"tune": -1}):
        with pytest.raises(ValueError, match="--seeds|--tune"):
            sk_weightfree.compare(X, y, estimators=["dense"], device="cpu", **bad)


@pytest.mark.parametrize("test_part, message", [
    (lambda X, y: {"X_test": X[:20]}, "X_test and y_test go together"),
    (lambda X, y: {"X_test": X[:20], "y_test": y[:15]}, "one target per row"),
    (lambda X, y: {"X_test": X[:20, :10], "y_test": y[:20]}, "64 features"),
    (lambda X, y: {"X_test": X[:20], "y_test": np.full(20, np.nan)}, "missing .NaN."),
])
def test_a_bad_test_part_is_refused_before_any_fit(test_part, message, monkeypatch):
    # A test part without targets, of another length or width, or with NaN targets was
    # found only after every row had been fitted (a raw scikit-learn error).
    X, y = digits(100)
    fits = spy_fits(monkeypatch)
    with pytest.raises(ValueError, match=message):
        sk_weightfree.compare(X, y, estimators="dense", device="cpu", **test_part(X, y))
    assert fits == []


def test_tune_on_data_too_small_for_a_validation_split_is_refused(tmp_path, capsys,
                                                                    monkeypatch):
    rng = np.random.RandomState(0)
    X, y = rng.randn(40, 3), np.repeat([0, 1, 2, 3], 10)
    np.savez(tmp_path / "small.npz", X=X, y=y)
    calls = spy_fits(monkeypatch)
    out = tmp_path / "out"
    status = main(["compare", "--dataset", str(tmp_path / "small.npz"), "--estimators",
                   "dense", "--epochs", "1", "--tune", "2", "--device", "cpu",
                   "--train-size", "12", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1
    assert "--tune needs a validation split (20% of the training part, stratified): at " \
           "least 20 training rows and 2 of every class for 4 classes; the training part " \
           "has 12 rows" in err
    assert calls == [] and not out.exists()
    with pytest.raises(ValueError, match="at least 20 training rows"):
        sk_weightfree.compare(X, y, estimators=["dense"], tune=2, train_size=12,
                              device="cpu")


def test_convergence_warnings_are_counted_per_row_not_printed_per_fit(tmp_path, capsys):
    # Every fit printed a two-line ConvergenceWarning, --quiet or not.
    code = main(["compare", "--estimators", "dense", "weight-free", "--epochs", "1",
                 "--seeds", "2", "--device", "cpu", "--quiet", "--out", str(tmp_path / "out"),
                 "--set", "dense.hidden_layer_sizes=[8]",
                 "--set", "weight-free.hidden_layer_sizes=[8]"])
    assert code == 0
    err = capsys.readouterr().err
    assert "ConvergenceWarning" not in err
    assert err.count("sk-weightfree: note: fits that ended at the epoch budget") == 1
    rows = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    assert [row["not_converged"] for row in rows] == [2, 2]
