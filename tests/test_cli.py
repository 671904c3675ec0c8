"""The ``sk-weightfree compare`` command."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from sk_weightfree.cli import main


def test_compare_writes_table_json_csv_and_figure(tmp_path, capsys):
    out = tmp_path / "out"
    status = main(["compare", "--estimators", "dense", "weight-free", "random",
                   "--epochs", "2", "--out", str(out), "--quiet", "--device", "cpu"])
    assert status == 0
    assert capsys.readouterr().out == ""  # --quiet
    results = json.loads((out / "results.json").read_text())
    assert [r["estimator"] for r in results["results"]] == ["dense", "weight-free", "random"]
    for row in results["results"]:
        assert 0.0 <= row["test_accuracy"] <= 1.0 and 0.0 < row["density"] <= 1.0
        assert row["connections"] > 0 and row["fit_seconds"] > 0 and row["epochs"] == 2
    matrix = np.array(results["spectral_similarity"]["matrix"])
    assert matrix.shape == (3, 3)
    np.testing.assert_allclose(np.diag(matrix), 1.0, atol=1e-6)
    np.testing.assert_allclose(matrix, matrix.T)
    assert {"torch", "scikit-learn", "skorch"} <= set(results["versions"])
    assert results["seed"] == 0 and results["device"] == "cpu"
    with open(out / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["estimator"] for r in rows] == ["dense", "weight-free", "random"]
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_prints_an_aligned_table(tmp_path, capsys):
    main(["compare", "--estimators", "dense", "pruned", "--epochs", "1", "--out", "",
          "--device", "cpu"])
    out = capsys.readouterr().out
    assert "test acc" in out and "spectral similarity" in out
    lines = [line for line in out.splitlines() if line.startswith(("dense ", "pruned "))]
    assert len(lines) == 4  # table rows and matrix rows
    assert len(lines[0]) == len(lines[1])


def test_compare_reads_npz_and_csv(tmp_path):
    rng = np.random.RandomState(0)
    X = rng.randn(60, 4)
    y = (X[:, 0] > 0).astype(int)
    np.savez(tmp_path / "data.npz", X=X, y=y)
    assert main(["compare", "--dataset", str(tmp_path / "data.npz"), "--estimators", "dense",
                 "--epochs", "1", "--out", "", "--quiet"]) == 0
    lines = ["a,b,c,label"] + [f"{r[0]},{r[1]},{r[2]},{'yes' if t else 'no'}"
                                for r, t in zip(X, y)]
    (tmp_path / "data.csv").write_text("\n".join(lines))
    assert main(["compare", "--dataset", str(tmp_path / "data.csv"), "--target", "label",
                 "--estimators", "dense", "--epochs", "1", "--out", "", "--quiet"]) == 0


@pytest.mark.parametrize("args, message", [
    (["--dataset", "mnist-but-not-really"], "neither"),
    (["--dataset", "missing.npz"], "neither"),
    (["--dataset", "{tmp}/data.csv"], "--target"),
    (["--dataset", "{tmp}/data.csv", "--target", "nope"], "no column 'nope'"),
    (["--estimators", "dense", "svm"], "unknown estimator"),
    (["--device", "tpu"], "device"),
])
def test_bad_input_is_one_line_and_exit_status_2(args, message, tmp_path, capsys):
    (tmp_path / "data.csv").write_text("a,b\n1,0\n2,1\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(["compare", "--quiet", "--out", "", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err


def test_python_dash_m_and_argument_errors():
    done = subprocess.run([sys.executable, "-m", "sk_weightfree", "compare", "--help"],
                          capture_output=True, text=True, check=True)
    assert "--estimators" in done.stdout and "--dataset" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "sk_weightfree", "compare", "--epochs", "0"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
