"""The ``sk-weightfree compare`` command."""

import csv
import gzip
import json
import signal
import struct
import subprocess
import sys

import numpy as np
import pytest

import sk_weightfree
from sk_weightfree import cli
from sk_weightfree.cli import main

FAMILIES = ("dense", "weight-free", "pruned", "weight-agnostic", "random")


def tiny(*names, hidden="[8]"):
    """Arguments for a quick run of ``names``: small networks, CPU, one epoch."""
    sets = [arg for name in names for arg in ("--set", f"{name}.hidden_layer_sizes={hidden}")]
    return ["compare", "--estimators", *names, "--epochs", "1", "--device", "cpu", *sets]


def spy_fits(monkeypatch, task="classification"):
    """Record ``(family, n_rows)`` of every fit, in order, without changing what it does."""
    calls = []
    for family, cls in cli._estimator_classes(task).items():
        original = cls.fit

        def fit(self, X, y, *args, _family=family, _original=original, **kwargs):
            calls.append((_family, len(X)))
            return _original(self, X, y, *args, **kwargs)

        monkeypatch.setattr(cls, "fit", fit)
    return calls


def test_compare_writes_table_json_csv_and_figure(tmp_path, capsys):
    out = tmp_path / "out"
    args = [*tiny("dense", "weight-free", "random"), "--out", str(out), "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "test acc" in printed and "spectral similarity" in printed  # results still print
    assert "data:" not in printed and "wrote" not in printed  # no status lines
    results = json.loads((out / "results.json").read_text())
    assert [r["estimator"] for r in results["results"]] == ["dense", "weight-free", "random"]
    for row in results["results"]:
        assert 0.0 <= row["test_accuracy"] <= 1.0 and 0.0 < row["density"] <= 1.0
        assert row["connections"] > 0 and row["fit_seconds"] > 0 and row["epochs"] == 1
    matrix = np.array(results["spectral_similarity"]["matrix"])
    assert matrix.shape == (3, 3)
    np.testing.assert_allclose(np.diag(matrix), 1.0, atol=1e-6)
    np.testing.assert_allclose(matrix, matrix.T)
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in tmp_path.iterdir() if p.name != "out"]  # no staging left behind


def test_results_json_is_enough_to_reproduce_the_run(tmp_path):
    out = tmp_path / "out"
    args = [*tiny("dense", "pruned"), "--set", "dense.activation=tanh", "--seed", "3",
            "--out", str(out), "--quiet"]
    assert main(args) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["command"] == ["sk-weightfree", *args]
    assert {"sk_weightfree", "torch", "scikit-learn", "skorch", "numpy", "scipy",
            "python"} <= set(results["versions"])
    assert results["seed"] == 3 and results["device"] == "cpu" and results["device_name"]
    assert results["dataset"]["source"] == "sklearn.datasets.load_digits"
    assert "random_state=3" in results["dataset"]["split"]
    estimators = {e["name"]: e for e in results["estimators"]}
    assert estimators["dense"]["class"] == "sk_weightfree.DenseClassifier"
    for name, cls in [("dense", sk_weightfree.DenseClassifier),
                      ("pruned", sk_weightfree.PrunedClassifier)]:
        params = estimators[name]["params"]
        assert set(params) == set(cls().get_params())  # every parameter, not a few
        assert params["random_state"] == 3 and params["device"] == "cpu"
    assert estimators["dense"]["params"]["activation"] == "tanh"
    assert estimators["dense"]["params"]["hidden_layer_sizes"] == [8]
    # rebuilt from the JSON alone, the estimator is the one that ran
    rebuilt = sk_weightfree.DenseClassifier(**estimators["dense"]["params"])
    assert rebuilt.get_params()["max_epochs"] == 1


def test_csv_holds_only_per_estimator_rows(tmp_path):
    out = tmp_path / "out"
    assert main([*tiny("dense", "random"), "--out", str(out), "--quiet"]) == 0
    with open(out / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["estimator"] for r in rows] == ["dense", "random"]
    assert not {"dataset", "device", "seed"} & set(rows[0])
    assert {"test_accuracy", "similarity_dense", "similarity_random"} <= set(rows[0])


def test_compare_prints_an_aligned_table(capsys):
    assert main([*tiny("dense", "pruned"), "--no-output"]) == 0
    out = capsys.readouterr().out
    assert "test acc" in out and "spectral similarity" in out
    lines = [line for line in out.splitlines() if line.startswith(("dense ", "pruned "))]
    assert len(lines) == 4  # table rows and matrix rows
    assert len(lines[0]) == len(lines[1])


def test_no_output_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([*tiny("dense"), "--no-output", "--quiet"]) == 0
    assert list(tmp_path.iterdir()) == []


def test_duplicate_estimators_are_refused_before_anything(tmp_path, capsys, monkeypatch):
    calls = spy_fits(monkeypatch)
    out = tmp_path / "out"
    assert main([*tiny("dense", "dense"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "dense more than once" in err
    assert calls == [] and not out.exists()


def test_compare_reads_npz_and_csv(tmp_path):
    rng = np.random.RandomState(0)
    X = rng.randn(60, 4)
    y = (X[:, 0] > 0).astype(int)
    np.savez(tmp_path / "data.npz", X=X, y=y)
    assert main([*tiny("dense"), "--dataset", str(tmp_path / "data.npz"), "--no-output",
                 "--quiet"]) == 0
    lines = ["a,b,c,label"] + [f"{r[0]},{r[1]},{r[2]},{'yes' if t else 'no'}"
                                for r, t in zip(X, y)]
    (tmp_path / "data.csv").write_text("\n".join(lines))
    assert main([*tiny("dense"), "--dataset", str(tmp_path / "data.csv"), "--target", "label",
                 "--no-output", "--quiet"]) == 0


def _bad_data_sets(tmp_path):
    rng = np.random.RandomState(0)
    X = rng.randn(30, 3)
    y = np.arange(30) % 2
    rows = lambda X, y: "a,b,c,label\n" + "\n".join(  # noqa: E731
        ",".join(str(v) for v in [*r, t]) for r, t in zip(X, y))
    with_nan = X.copy()
    with_nan[4, 1] = np.nan
    (tmp_path / "nan.csv").write_text(rows(with_nan, y))
    (tmp_path / "one-class.csv").write_text(rows(X, np.zeros(30, int)))
    np.savez(tmp_path / "strings.npz", X=X.astype(str), y=y)
    np.savez(tmp_path / "objects.npz", X=X.astype(object), y=y)
    np.savez(tmp_path / "inf.npz", X=np.where(X > 2, np.inf, X), y=y)
    np.savez(tmp_path / "one-row.npz", X=X[:1], y=y[:1])
    np.savez(tmp_path / "nan-target.npz", X=X, y=np.where(y == 1, np.nan, 0.5))
    (tmp_path / "garbage.npz").write_text("not a zip")


@pytest.mark.parametrize("args, message", [
    (["--dataset", "mnist-but-not-really"], "neither"),
    (["--dataset", "missing.npz"], "neither"),
    (["--dataset", "{tmp}/data.csv"], "--target"),
    (["--dataset", "{tmp}/data.csv", "--target", "nope"], "no column 'nope'"),
    (["--dataset", "{tmp}/nan.csv", "--target", "label"], "missing (NaN)"),
    (["--dataset", "{tmp}/one-class.csv", "--target", "label"], "only one class"),
    (["--dataset", "{tmp}/strings.npz"], "must be numeric"),
    (["--dataset", "{tmp}/objects.npz"], "object arrays"),
    (["--dataset", "{tmp}/inf.npz"], "infinite"),
    (["--dataset", "{tmp}/one-row.npz"], "cannot split"),
    (["--dataset", "{tmp}/nan-target.npz"], "target has missing"),
    (["--dataset", "{tmp}/garbage.npz"], "not an .npz archive"),
    (["--dataset", "digits", "--target", "label"], "--target"),
    (["--estimators", "dense", "svm"], "unknown estimator"),
    (["--device", "tpu"], "device"),
    (["--set", "dense.activation"], "FAMILY.PARAM=VALUE"),
    (["--set", "activation=tanh"], "FAMILY.PARAM=VALUE"),
    (["--set", "svm.C=1"], "unknown estimator 'svm'"),
    (["--set", "pruned.density=0.5"], "not among the estimators"),
    (["--set", "dense.colour=red"], "no parameter 'colour'"),
    (["--set", "dense.activation=sigmoidish"], "activation"),
    (["--set", "dense.lr=-1"], "lr"),
    (["--set", "dense.hidden_layer_sizes=[0]"], "hidden_layer_sizes"),
])
def test_bad_input_is_one_line_and_exit_status_2(args, message, tmp_path, capsys, monkeypatch):
    (tmp_path / "data.csv").write_text("a,b\n1,0\n2,1\n")
    _bad_data_sets(tmp_path)
    calls = spy_fits(monkeypatch)
    out = tmp_path / "out"
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main([*tiny("dense"), "--quiet", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err
    assert calls == [] and not out.exists()  # refused before any fit, nothing written


def test_a_failing_fit_leaves_the_output_folder_untouched(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text("{}")  # from an earlier run

    def refuse(self, X, y, *args, **kwargs):
        if len(X) > cli._WARMUP_ROWS:
            raise ValueError("the data cannot be\nlearned")
        return self

    monkeypatch.setattr(sk_weightfree.RandomNetworkClassifier, "fit", refuse)
    assert main([*tiny("dense", "random"), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "random could not be fitted" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in out.iterdir()) == ["results.json"]
    assert (out / "results.json").read_text() == "{}"


def test_set_reaches_the_estimator(tmp_path):
    out = tmp_path / "out"
    args = [*tiny("weight-free", "pruned"), "--set", "weight-free.activation=tanh",
            "--set", "pruned.density=0.25", "--set", 'weight-free.mask_rule="supermask"',
            "--set", "pruned.rewind=false", "--out", str(out), "--quiet"]
    assert main(args) == 0
    params = {e["name"]: e["params"]
              for e in json.loads((out / "results.json").read_text())["estimators"]}
    assert params["weight-free"]["activation"] == "tanh"
    assert params["weight-free"]["mask_rule"] == "supermask"
    assert params["pruned"]["density"] == 0.25 and params["pruned"]["rewind"] is False


@pytest.mark.parametrize("epochs, settings, finetune", [
    (6, [], 2),
    (9, ["--set", "pruned.n_rounds=2"], 1),
    (6, ["--set", "pruned.finetune_epochs=1"], 1),
    (2, [], 0),
])
def test_pruned_retraining_counts_inside_the_epoch_budget(epochs, settings, finetune,
                                                          tmp_path):
    out = tmp_path / "out"
    args = [*tiny("dense", "pruned"), "--epochs", str(epochs), *settings,
            "--out", str(out), "--quiet"]
    assert main(args) == 0
    results = json.loads((out / "results.json").read_text())
    params = {e["name"]: e["params"] for e in results["estimators"]}
    assert params["pruned"]["max_epochs"] == epochs  # max_epochs is the whole budget
    assert params["pruned"]["finetune_epochs"] == finetune
    assert params["dense"]["max_epochs"] == epochs == results["epoch_budget"]
    assert [r["epochs"] for r in results["results"]] == [epochs, epochs]


def test_a_pruned_budget_that_does_not_fit_is_refused(capsys):
    args = [*tiny("pruned"), "--epochs", "4", "--set", "pruned.finetune_epochs=4",
            "--no-output"]
    assert main(args) == 2
    assert "budget of 4 epochs" in capsys.readouterr().err


def test_every_estimator_is_warmed_up_before_the_timed_fits(monkeypatch):
    calls = spy_fits(monkeypatch)
    assert main([*tiny("dense", "weight-free"), "--no-output", "--quiet"]) == 0
    n_train = 1257  # 70% of digits
    assert calls == [("dense", cli._WARMUP_ROWS), ("weight-free", cli._WARMUP_ROWS),
                     ("dense", n_train), ("weight-free", n_train)]


def test_one_ctrl_c_stops_the_whole_run(tmp_path, capsys, monkeypatch):
    calls = spy_fits(monkeypatch)
    original = sk_weightfree.WeightFreeClassifier.fit

    def interrupted(self, X, y, *args, **kwargs):
        # what skorch and the estimator do on Ctrl-C: keep the last epoch, flag the net
        original(self, X, y, *args, **kwargs)
        if len(X) > cli._WARMUP_ROWS:
            self.net_.interrupted_ = True
        return self

    monkeypatch.setattr(sk_weightfree.WeightFreeClassifier, "fit", interrupted)
    out = tmp_path / "out"
    status = main([*tiny("dense", "weight-free", "random"), "--out", str(out), "--quiet"])
    assert status == 130
    assert ("random", 1257) not in calls  # stopped after the interrupted estimator
    assert not out.exists() and list(tmp_path.iterdir()) == []
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "interrupted" in err and "'weight-free'" in err


def test_a_ctrl_c_the_training_loop_swallows_still_stops_the_run(tmp_path, capsys,
                                                                  monkeypatch):
    calls = spy_fits(monkeypatch)
    original = sk_weightfree.DenseClassifier.fit

    def swallowed(self, X, y, *args, **kwargs):
        original(self, X, y, *args, **kwargs)
        if len(X) > cli._WARMUP_ROWS:
            try:  # a press between two epochs: skorch swallows it, no flag is set
                signal.raise_signal(signal.SIGINT)
            except KeyboardInterrupt:
                pass
        return self

    monkeypatch.setattr(sk_weightfree.DenseClassifier, "fit", swallowed)
    out = tmp_path / "out"
    assert main([*tiny("dense", "random"), "--out", str(out), "--quiet"]) == 130
    assert ("random", 1257) not in calls and not out.exists()
    assert "interrupted by the user while fitting 'dense'" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_ctrl_c_outside_a_fit_also_stops_cleanly(tmp_path, capsys, monkeypatch):
    def press(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sk_weightfree, "pairwise_spectral_similarity", press)
    out = tmp_path / "out"
    assert main([*tiny("dense"), "--out", str(out), "--quiet"]) == 130
    assert not out.exists()
    assert "interrupted" in capsys.readouterr().err


def test_help_documents_devices_interrupts_and_budgets():
    text = cli.build_parser()._subparsers._group_actions[0].choices["compare"].format_help()
    flat = " ".join(text.split())
    assert "mps" in flat and "130" in flat and "--no-output" in flat and "--set" in flat
    assert "finetune_epochs" in flat and "warm-up" in flat


def test_python_dash_m_and_argument_errors():
    done = subprocess.run([sys.executable, "-m", "sk_weightfree", "compare", "--help"],
                          capture_output=True, text=True, check=True)
    assert "--estimators" in done.stdout and "--dataset" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "sk_weightfree", "compare", "--epochs", "0"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def _write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def fake_fashion_mnist(folder, monkeypatch, n_train=20, n_test=10):
    """Random images in the four IDX files, labels 0..9 in turn; the loader reads them."""
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(folder / f"{prefix}-images-idx3-ubyte.gz",
                   rng.integers(0, 256, size=(n, 28, 28)))
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    monkeypatch.setenv("SK_WEIGHTFREE_FASHION_MNIST", str(folder))


def test_fashion_mnist_is_read_as_its_official_split(tmp_path, monkeypatch):
    fake_fashion_mnist(tmp_path, monkeypatch)
    data = cli.prepare_dataset("fashion-mnist")
    assert data["X_train"].shape == (20, 784) and data["X_test"].shape == (10, 784)
    assert data["task"] == "classification"


# ------------------------------------------------------------------ regression
# These wait for the regressors (DenseRegressor, ... in sk_weightfree); until they
# exist the first three fail with "regression needs DenseRegressor, ...".

def _continuous_csv(path):
    rng = np.random.RandomState(0)
    X = rng.randn(80, 3)
    y = X @ [1.5, -2.0, 0.5] + 0.1 * rng.randn(80)
    path.write_text("a,b,c,price\n" + "\n".join(
        ",".join(f"{v:.6f}" for v in [*r, t]) for r, t in zip(X, y)))


@pytest.mark.parametrize("dataset", ["diabetes", "friedman1", "{tmp}/prices.csv"])
def test_regression_data_runs_the_five_regressors(dataset, tmp_path, capsys):
    _continuous_csv(tmp_path / "prices.csv")
    out = tmp_path / "out"
    target = ["--target", "price"] if dataset.endswith(".csv") else []
    args = [*tiny(*FAMILIES), "--dataset", dataset.replace("{tmp}", str(tmp_path)), *target,
            "--out", str(out), "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "test R²" in printed and "test acc" not in printed
    results = json.loads((out / "results.json").read_text())
    assert results["task"] == "regression" and results["metric"] == "test_r2"
    assert [e["class"] for e in results["estimators"]] == [
        "sk_weightfree.DenseRegressor", "sk_weightfree.WeightFreeRegressor",
        "sk_weightfree.PrunedRegressor", "sk_weightfree.WeightAgnosticRegressor",
        "sk_weightfree.RandomNetworkRegressor"]
    for row in results["results"]:
        assert np.isfinite(row["test_r2"]) and row["test_r2"] <= 1.0
        assert "test_accuracy" not in row
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("dataset, n_train, n_features", [
    ("diabetes", 309, 10), ("friedman1", 1400, 10), ("{tmp}/prices.csv", 56, 3)])
def test_regression_data_sets_are_detected(dataset, n_train, n_features, tmp_path):
    _continuous_csv(tmp_path / "prices.csv")
    data = cli.prepare_dataset(dataset.replace("{tmp}", str(tmp_path)),
                               "price" if dataset.endswith(".csv") else None)
    assert data["task"] == "regression"
    assert data["X_train"].shape == (n_train, n_features)
    assert data["y_train"].dtype == np.float64


def test_integer_targets_are_labels_unless_told(tmp_path):
    X = np.random.RandomState(0).randn(40, 2)
    np.savez(tmp_path / "d.npz", X=X, y=np.arange(40) % 3)
    assert cli.prepare_dataset(str(tmp_path / "d.npz"))["task"] == "classification"
    forced = cli.prepare_dataset(str(tmp_path / "d.npz"), task="regression")
    assert forced["task"] == "regression"


def test_report_figure_shows_r2_for_any_subset(tmp_path):
    from sk_weightfree._report import plot_report

    grid = np.linspace(0, 2, 50)
    rows = [{"estimator": "pruned", "test_r2": -0.3, "density": 0.1}]
    path = plot_report(rows, ["pruned"], np.ones((1, 1)), {"pruned": (grid, grid)},
                       tmp_path / "r.png", score_key="test_r2", score_label="test R²")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="distinct"):
        plot_report(rows * 2, ["pruned", "pruned"], np.ones((1, 1)), {}, tmp_path / "x.png")


def test_model_cnn_runs_the_families_as_cnns(tmp_path):
    out = tmp_path / "out"
    args = ["compare", "--model", "cnn", "--estimators", "weight-free", "pruned",
            "--epochs", "2", "--device", "cpu", "--out", str(out), "--quiet"]
    assert main(args) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["model"] == "cnn"
    params = {e["name"]: e["params"] for e in results["estimators"]}
    assert params["weight-free"]["module"] == repr(sk_weightfree.nn.SmallCNN)
    assert "batch_norm=True" in params["pruned"]["module"]
    assert all(p["input_shape"] == [1, 8, 8] for p in params.values())
    rows = {r["estimator"]: r for r in results["results"]}
    assert rows["weight-free"]["test_accuracy"] > 0.5  # chance is 0.1
    np.testing.assert_allclose(np.diag(results["spectral_similarity"]["matrix"]), 1.0,
                               atol=1e-6)


def test_model_cnn_needs_images(capsys):
    assert main(["compare", "--model", "cnn", "--dataset", "diabetes", "--quiet",
                 "--no-output"]) == 2
    assert "--model cnn needs an image data set" in capsys.readouterr().err


# ------------------------------------------------------------------ stored bytes (issue 25)
def test_results_carry_each_models_file_bytes_and_its_dense_float32_size(tmp_path, capsys):
    out = tmp_path / "out"
    assert main([*tiny("dense", "weight-free"), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "file kB" in printed and "f32 dense kB" in printed
    rows = {r["estimator"]: r for r in json.loads((out / "results.json").read_text())["results"]}
    dense, weight_free = rows["dense"], rows["weight-free"]
    assert weight_free["file_bytes"] < dense["file_bytes"]  # bits, not float32 weights
    # the reference of a dense network is its own file, up to the header's few bytes
    assert abs(dense["dense_float32_bytes"] - dense["file_bytes"]) <= 16
    assert weight_free["dense_float32_bytes"] > weight_free["file_bytes"] + 3 * 592
    assert dense["file_note"] is None and weight_free["file_note"] is None
    with open(out / "results.csv") as handle:
        csv_rows = {r["estimator"]: r for r in csv.DictReader(handle)}
    assert int(csv_rows["weight-free"]["file_bytes"]) == weight_free["file_bytes"]
    assert int(csv_rows["dense"]["dense_float32_bytes"]) == dense["dense_float32_bytes"]


def test_file_bytes_are_what_io_dump_writes(tmp_path):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    estimator = sk_weightfree.PrunedClassifier(hidden_layer_sizes=(8,), max_epochs=2,
                                               finetune_epochs=1, random_state=0).fit(X, y)
    sizes = cli.stored_bytes(estimator)
    assert sizes["file_bytes"] == sk_weightfree.io.dump(estimator, tmp_path / "m.npz")
    assert sizes["file_bytes"] == (tmp_path / "m.npz").stat().st_size


def test_paired_inputs_are_folded_in_the_dense_reference(tmp_path):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    estimator = sk_weightfree.WeightFreeClassifier(hidden_layer_sizes=(8,), max_epochs=1,
                                                   random_state=0).fit(X, y)
    sk_weightfree.io.dump(estimator, tmp_path / "m.npz")
    seen = []

    def record(entry, shape, input_axis, paired, arrays):
        seen.append((shape, paired))
        return cli._as_dense_float32(entry, shape, input_axis, paired, arrays)

    cli.rewritten_file_bytes(tmp_path / "m.npz", record)
    # stored paired: 2 x 64 inputs to 8 units, 2 x 8 inputs to 10 units
    assert [(sorted(shape), paired) for shape, paired in seen] == [([8, 128], True),
                                                                  ([10, 16], True)]
    with np.load(tmp_path / "m.npz") as archive:
        mask_bytes = sum(archive[k].nbytes for k in archive.files if archive[k].dtype == np.uint8
                         and k != "header")
    sizes = cli.stored_bytes(estimator)
    # 64-8-10 in float32 (592 weights, not 2 x 592) in place of the bits, header aside
    added = sizes["dense_float32_bytes"] - sizes["file_bytes"]
    assert abs(added - (4 * 592 - mask_bytes)) <= 64


def test_a_model_io_dump_refuses_gets_no_size_and_the_reason(tmp_path, capsys, monkeypatch):
    def refuse(estimator, path, **kwargs):
        raise ValueError("cannot write this template")

    monkeypatch.setattr(sk_weightfree.io, "dump", refuse)
    out = tmp_path / "out"
    assert main([*tiny("dense"), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "n/a" in printed and "cannot write this template" in printed
    row = json.loads((out / "results.json").read_text())["results"][0]
    assert row["file_bytes"] is None and row["dense_float32_bytes"] is None
    assert "cannot write this template" in row["file_note"]


# ------------------------------------------------------------------ issue 21: CLI items
def test_an_unavailable_device_in_set_is_refused_before_any_fit(tmp_path, capsys,
                                                                 monkeypatch):
    calls = spy_fits(monkeypatch)
    out = tmp_path / "out"
    # cuda:99 is unavailable on any machine (no CUDA, or fewer devices)
    args = [*tiny("dense", "weight-free"), "--set", "weight-free.device=cuda:99",
            "--out", str(out), "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "weight-free" in err and "cuda:99" in err
    assert calls == [] and not out.exists()


def test_a_budget_without_fine_tuning_after_pruning_is_warned(tmp_path, capsys):
    out = tmp_path / "out"
    args = [*tiny("pruned"), "--epochs", "2", "--out", str(out), "--quiet"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "no fine-tuning after pruning" in err and "--epochs >= 3" in err
    assert any("--epochs >= 3" in w for w in json.loads(
        (out / "results.json").read_text())["warnings"])
    assert main([*tiny("pruned"), "--epochs", "5", "--set", "pruned.n_rounds=2",
                 "--no-output", "--quiet"]) == 0
    assert "--epochs >= 6" in capsys.readouterr().err
    assert main([*tiny("pruned"), "--epochs", "3", "--no-output", "--quiet"]) == 0
    assert "warning" not in capsys.readouterr().err  # 2 + 1 fine-tune epoch


@pytest.mark.parametrize("seed", ["-1", str(2**32), "one"])
def test_a_bad_seed_is_refused_saying_what_a_seed_must_be(seed, capsys, monkeypatch):
    calls = spy_fits(monkeypatch)
    with pytest.raises(SystemExit) as stopped:
        main([*tiny("dense"), "--seed", seed, "--no-output"])
    assert stopped.value.code == 2 and calls == []
    err = capsys.readouterr().err
    assert "--seed" in err and ("must be >= 0" in err or "must be an integer" in err)
    assert "train_test_split" not in err and "Traceback" not in err


def test_the_header_says_one_epoch_not_one_epochs(capsys):
    assert main([*tiny("dense"), "--no-output"]) == 0
    printed = capsys.readouterr().out
    assert "; 1 epoch each" in printed and "1 epochs" not in printed


def test_threads_sets_torch_threads_for_the_fits_and_restores_them(tmp_path, monkeypatch):
    import torch

    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    seen = []
    original = sk_weightfree.DenseClassifier.fit

    def fit(self, X, y, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(self, X, y, *args, **kwargs)

    monkeypatch.setattr(sk_weightfree.DenseClassifier, "fit", fit)
    out = tmp_path / "out"
    assert main([*tiny("dense"), "--threads", str(wanted), "--out", str(out), "--quiet"]) == 0
    assert seen == [wanted, wanted]  # warm-up and timed fit
    results = json.loads((out / "results.json").read_text())
    assert results["threads"] == wanted
    assert [row["threads"] for row in results["results"]] == [1]  # a tiny network: one
    assert torch.get_num_threads() == before


def test_train_size_draws_a_stratified_seeded_subset_of_the_training_part(tmp_path,
                                                                          monkeypatch):
    fake_fashion_mnist(tmp_path, monkeypatch, n_train=40)
    data = cli.prepare_dataset("fashion-mnist", seed=0, train_size=20)
    assert data["X_train"].shape == (20, 784) and data["X_test"].shape == (10, 784)
    assert np.bincount(data["y_train"]).tolist() == [2] * 10  # stratified
    assert data["info"]["train_size"] == 20
    again = cli.prepare_dataset("fashion-mnist", seed=0, train_size=20)
    other = cli.prepare_dataset("fashion-mnist", seed=1, train_size=20)
    np.testing.assert_array_equal(again["X_train"], data["X_train"])
    assert not np.array_equal(other["X_train"], data["X_train"])


def test_train_size_reaches_the_run_and_a_too_large_one_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    assert main([*tiny("dense"), "--train-size", "300", "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["dataset"]["n_train"] == 300 and results["dataset"]["train_size"] == 300
    assert main([*tiny("dense"), "--train-size", "5000", "--no-output", "--quiet"]) == 2
    assert "--train-size 5000" in capsys.readouterr().err


# ------------------------------------------------------------------ mask rules side by side
class _RuledClassifier(sk_weightfree.DenseClassifier):
    """A stand-in with a ``mask_rule`` parameter (the rule is only recorded)."""

    def __init__(self, mask_rule="threshold", **params):
        super().__init__(**params)
        self.mask_rule = mask_rule

    @classmethod
    def _get_param_names(cls):
        return sorted({*sk_weightfree.DenseClassifier._get_param_names(), "mask_rule"})


def _with_ruled_weight_free(monkeypatch):
    classes = cli._estimator_classes()
    monkeypatch.setattr(cli, "_estimator_classes",
                        lambda task="classification": {**classes,
                                                       "weight-free": _RuledClassifier})


def test_family_colon_rule_builds_a_row_per_rule(tmp_path, monkeypatch):
    _with_ruled_weight_free(monkeypatch)
    out = tmp_path / "out"
    args = [*tiny("weight-free", "weight-free:edge-popup", "weight-free:supermask"),
            "--set", "weight-free:edge-popup.lr=0.1", "--out", str(out), "--quiet"]
    assert main(args) == 0
    results = json.loads((out / "results.json").read_text())
    names = ["weight-free", "weight-free:edge-popup", "weight-free:supermask"]
    assert [r["estimator"] for r in results["results"]] == names
    assert results["spectral_similarity"]["estimators"] == names
    params = {e["name"]: e["params"] for e in results["estimators"]}
    assert [params[n]["mask_rule"] for n in names] == ["threshold", "edge-popup", "supermask"]
    assert params["weight-free:edge-popup"]["lr"] == 0.1
    assert params["weight-free"]["lr"] == params["weight-free:supermask"]["lr"] != 0.1
    # every row is sized by io.dump like any other
    assert all(r["file_bytes"] for r in results["results"])


@pytest.mark.parametrize("args, message", [
    (["--estimators", "weight-free:"], "no mask rule after ':'"),
    (["--estimators", "svm:edge-popup"], "unknown estimator"),
    (["--estimators", "dense:edge-popup"], "no mask_rule parameter"),
    (["--estimators", "weight-free:supermask", "weight-free:supermask"], "more than once"),
    (["--estimators", "weight-free", "--set", "weight-free:supermask.lr=0.1"],
     "not among the estimators"),
    (["--estimators", "weight-free:supermask", "--set",
      "weight-free:supermask.mask_rule=threshold"], "already sets mask_rule"),
])
def test_bad_rule_names_are_refused_before_any_fit(args, message, capsys, monkeypatch):
    _with_ruled_weight_free(monkeypatch)
    calls = spy_fits(monkeypatch)
    assert main(["compare", "--epochs", "1", "--device", "cpu", "--no-output", "--quiet",
                 *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert calls == []


def test_the_weight_free_rules_run_side_by_side_and_a_bad_rule_is_refused(tmp_path, capsys,
                                                                           monkeypatch):
    out = tmp_path / "out"
    assert main([*tiny("weight-free", "weight-free:edge-popup"), "--out", str(out),
                 "--quiet"]) == 0
    params = {e["name"]: e["params"]
              for e in json.loads((out / "results.json").read_text())["estimators"]}
    assert params["weight-free:edge-popup"]["mask_rule"] == "edge-popup"
    assert params["weight-free"]["mask_rule"] == "threshold"
    calls = spy_fits(monkeypatch)
    assert main([*tiny("weight-free", "weight-free:no-such-rule"), "--no-output",
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "weight-free:no-such-rule" in err and "mask_rule" in err and calls == []
