"""What a new user of ``sk-weightfree`` meets (issue 33): the task checked before any fit,
docs that match the program, a closed pipe, ``--version``."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

import sk_weightfree
from sk_weightfree import cli
from sk_weightfree.cli import main
from test_cli import spy_fits  # records every fit

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "docs" / "quickstart.md"
SAMPLE = ROOT / "docs" / "_static" / "compare_output.txt"


def test_task_classification_of_a_continuous_target_is_refused_before_any_fit(
        tmp_path, capsys, monkeypatch):
    rng = np.random.RandomState(0)
    rows = ["size,price"] + [f"{rng.rand():.4f},{10 + 90 * rng.rand():.2f}" for _ in range(300)]
    (tmp_path / "shop.csv").write_text("\n".join(rows) + "\n")
    calls = spy_fits(monkeypatch)
    out = tmp_path / "out"
    status = main(["compare", "--dataset", str(tmp_path / "shop.csv"), "--target", "price",
                   "--task", "classification", "--estimators", "dense", "--epochs", "1",
                   "--device", "cpu", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1
    assert "--task classification needs class labels, but the target is continuous" in err
    assert calls == [] and not out.exists()


def test_task_classification_of_integer_valued_floats_still_runs(tmp_path, capsys):
    rng = np.random.RandomState(0)
    X = rng.randn(200, 3)
    np.savez(tmp_path / "d.npz", X=X, y=(X[:, 0] > 0).astype(float) * 3.0 + 1.5 * 0)
    assert main(["compare", "--dataset", str(tmp_path / "d.npz"), "--task", "classification",
                 "--estimators", "dense", "--epochs", "1", "--set",
                 "dense.hidden_layer_sizes=[4]", "--device", "cpu", "--no-output",
                 "--quiet"]) == 0


def test_version():
    result = subprocess.run([sys.executable, "-m", "sk_weightfree", "--version"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert result.stdout.strip() == f"sk-weightfree {sk_weightfree.__version__}"


def test_a_closed_pipe_ends_quietly_with_pythons_status():
    # `sk-weightfree compare | head -1`: the reader leaves after the first line
    process = subprocess.Popen(
        [sys.executable, "-m", "sk_weightfree", "compare", "--estimators", "dense",
         "--epochs", "1", "--set", "dense.hidden_layer_sizes=[4]", "--device", "cpu",
         "--no-output"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().startswith("data:")
    process.stdout.close()
    err = process.stderr.read()
    assert process.wait(timeout=300) == cli.EXIT_BROKEN_PIPE == 1
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception" not in err


# ---------------------------------------------------------------------------- the docs
def _options_table(text):
    section = text.split("## Options", 1)[1].split("\n## ", 1)[0]
    return "\n".join(line for line in section.splitlines() if line.startswith("| `"))


def test_every_option_of_compare_is_in_the_quick_start_options_table():
    parser = cli.build_parser()
    compare = next(a for a in parser._subparsers._group_actions[0].choices.values()
                   if a.prog.endswith("compare"))
    options = {s for action in compare._actions for s in action.option_strings
               if s.startswith("--") and s != "--help"}
    table = _options_table(QUICKSTART.read_text())
    missing = sorted(o for o in options if f"`{o}" not in table)
    assert not missing, f"options missing from docs/quickstart.md's table: {missing}"
    assert "FAMILY:RULE" in table  # the rule-row syntax of --estimators


def _columns(header):
    return re.split(r"\s{2,}", header.strip())


def test_the_sample_output_in_the_docs_has_the_programs_format(capsys):
    """The quick start shows docs/_static/compare_output.txt, written by
    docs/sample_output.py from a real run; its first line and columns are the program's."""
    assert "_static/compare_output.txt" in QUICKSTART.read_text()
    sample = SAMPLE.read_text().splitlines()
    sample = [line for line in sample if not line.startswith("#")]  # the command, machine
    assert main(["compare", "--estimators", "dense", "weight-free", "--epochs", "1", "--set",
                 "dense.hidden_layer_sizes=[4]", "--set", "weight-free.hidden_layer_sizes=[4]",
                 "--device", "cpu", "--no-output"]) == 0
    printed = capsys.readouterr().out.splitlines()
    mask = lambda line: re.sub(r"\d[\d,.]*", "N", line)  # noqa: E731
    assert mask(sample[0]).replace("30 epochs", "N epoch") .split(";")[0] == \
        mask(printed[0]).split(";")[0]
    assert [part.split(" ")[0] for part in mask(sample[0]).split("; ")] == \
        [part.split(" ")[0] for part in mask(printed[0]).split("; ")]
    assert _columns(sample[1]) == _columns(printed[1])
    assert "spectral similarity (1 = identical spectra)" in sample
