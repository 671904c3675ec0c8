"""Categorical (text) feature columns of a CSV data set: read, one-hot encoded, reported."""

import json

import numpy as np
import pytest

from sk_weightfree import cli
from sk_weightfree.cli import main
from sk_weightfree.datasets import load_csv

from test_cli import spy_fits, tiny

COLOURS = ("red", "green", "blue")


def write_csv(path, columns, n=30):
    """A CSV of ``columns`` (name -> function of the row number) and a 0/1 ``label``."""
    names = [*columns, "label"]
    lines = [",".join(names)]
    for i in range(n):
        lines.append(",".join([*(str(f(i)) for f in columns.values()), str(i % 2)]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def mixed(path, **extra):
    """One numeric column ``size``, one text column ``colour`` and the given ``extra``."""
    return write_csv(path, {"size": lambda i: 0.1 * i, "colour": lambda i: COLOURS[i % 3],
                            **extra})


def test_load_csv_reads_text_columns_as_categories(tmp_path):
    path = write_csv(tmp_path / "d.csv", {"size": lambda i: i, "colour": lambda i: COLOURS[i % 3],
                                          "code": lambda i: i % 4}, n=6)
    data = load_csv(path, "label", categorical=["code"], return_X_y=False)
    assert list(data.feature_names) == ["size", "colour", "code"]
    assert data.categorical.tolist() == [False, True, True]
    assert data.data.dtype == object and data.data[1].tolist() == [1.0, "green", "1"]
    one = load_csv(path, "label", categorical="code", return_X_y=False)  # a single name
    assert one.categorical.tolist() == [False, True, True]
    X, y = load_csv(path, "label")  # the pair, as before; "code" is numeric unless told
    assert X.dtype == object and X[1].tolist() == [1.0, "green", 1.0]
    assert y.tolist() == [0, 1, 0, 1, 0, 1]


def test_a_text_column_is_one_hot_encoded_and_the_width_reported(tmp_path, capsys):
    path = mixed(tmp_path / "d.csv")
    out = tmp_path / "out"
    assert main([*tiny("dense", "weight-free"), "--dataset", str(path), "--target", "label",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "one-hot: colour (3) = 3 of the 4 inputs" in printed
    dataset = json.loads((out / "results.json").read_text())["dataset"]
    assert dataset["categorical"] == {"colour": ["blue", "green", "red"]}
    assert dataset["one_hot_width"] == 3 and dataset["n_features"] == 4
    assert "OneHotEncoder(handle_unknown='ignore')" in dataset["preprocessing"]


def test_the_encoding_is_fitted_on_the_training_part_only(tmp_path):
    # "violet" is on one row: whenever that row lands in the test part, the encoder has
    # not seen it, so it adds no input and the row is counted as unseen
    path = mixed(tmp_path / "d.csv", shade=lambda i: "violet" if i == 7 else "grey")
    seen_in_test = 0
    for seed in range(8):
        data = cli.prepare_dataset(str(path), "label", seed=seed)
        shades = data["info"]["categorical"]["shade"]
        unseen = data["info"]["test_rows_with_unseen_categories"]
        assert data["X_train"].shape[1] == 1 + 3 + len(shades)
        assert (shades == ["grey"]) == (unseen == 1)
        seen_in_test += unseen
        if unseen:  # that test row has no one-hot input for shade at all
            assert (data["X_test"][:, -1] == 0).sum() == 1
    assert seen_in_test > 0


def test_categorical_option_one_hot_encodes_integer_codes(tmp_path):
    path = mixed(tmp_path / "d.csv", region=lambda i: i % 5 + 1)
    plain = cli.prepare_dataset(str(path), "label")
    assert plain["X_train"].shape[1] == 1 + 3 + 1 and plain["info"]["one_hot_width"] == 3
    coded = cli.prepare_dataset(str(path), "label", categorical=["region"])
    assert coded["info"]["categorical"]["region"] == ["1", "2", "3", "4", "5"]
    assert coded["X_train"].shape[1] == 1 + 3 + 5 and coded["info"]["one_hot_width"] == 8


def test_numeric_columns_are_standardised_and_one_hot_inputs_kept_0_1(tmp_path):
    path = mixed(tmp_path / "d.csv")
    X = cli.prepare_dataset(str(path), "label")["X_train"]
    np.testing.assert_allclose([X[:, 0].mean(), X[:, 0].std()], [0, 1], atol=1e-6)
    assert set(np.unique(X[:, 1:])) == {0.0, 1.0} and (X[:, 1:].sum(axis=1) == 1).all()


def test_an_empty_field_of_a_text_column_is_a_category_of_its_own(tmp_path):
    path = mixed(tmp_path / "d.csv", shape=lambda i: "" if i % 4 == 0 else "round")
    data = cli.prepare_dataset(str(path), "label")
    assert data["info"]["categorical"]["shape"] == ["", "round"]


@pytest.mark.parametrize("columns", [
    {"colour": lambda i: COLOURS[i % 3], "tint": lambda i: "même"},  # one value only
    {"ville": lambda i: ("Zürich", "Genève", "東京")[i % 3], "size": lambda i: i},
])
def test_text_only_constant_and_unicode_columns_run(columns, tmp_path):
    path = write_csv(tmp_path / "d.csv", columns)
    out = tmp_path / "out"
    assert main([*tiny("dense"), "--dataset", str(path), "--target", "label", "--quiet",
                 "--out", str(out)]) == 0
    dataset = json.loads((out / "results.json").read_text(encoding="utf-8"))["dataset"]
    categories = {name: sorted({f(i) for i in range(30)}) for name, f in columns.items()
                  if name != "size"}
    assert dataset["categorical"] == categories


def test_max_categories_caps_a_column_and_can_be_raised(tmp_path, capsys):
    path = mixed(tmp_path / "d.csv", customer=lambda i: f"C{i:04d}")
    assert main([*tiny("dense"), "--dataset", str(path), "--target", "label",
                 "--max-categories", "20", "--no-output"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'customer' has 30 distinct values" in err
    assert "--max-categories 20" in err
    data = cli.prepare_dataset(str(path), "label", max_categories=30)
    assert data["info"]["one_hot_width"] == 3 + len(data["info"]["categorical"]["customer"])


def test_the_default_cap_refuses_an_identifier_column(tmp_path, capsys):
    path = mixed(tmp_path / "d.csv", customer=lambda i: f"C{i:04d}")
    path.write_text(path.read_text() + "".join(f"0.5,red,C{i:04d},{i % 2}\n"
                                               for i in range(30, 200)))
    with pytest.raises(cli.UsageError, match="'customer' has 200 distinct values, more than "
                                             "--max-categories 100"):
        cli.prepare_dataset(str(path), "label")


def _broken_files(tmp_path):
    mixed(tmp_path / "empty-column.csv", notes=lambda i: "")
    mixed(tmp_path / "typo.csv", weight=lambda i: "n/a" if i == 5 else i)
    mixed(tmp_path / "number-in-text.csv", grade=lambda i: "7" if i == 3 else "high")
    (tmp_path / "header-only.csv").write_text("size,colour,label\n")
    write_csv(tmp_path / "nan.csv", {"colour": lambda i: COLOURS[i % 3],
                                     "size": lambda i: "nan" if i == 4 else i})
    mixed(tmp_path / "ok.csv")


@pytest.mark.parametrize("args, message", [
    (["empty-column.csv"], "column 'notes' is empty on every line"),
    (["typo.csv"], "line 7, column 'weight' has a non-numeric ('n/a') value among numbers"),
    (["typo.csv"], "--categorical weight"),
    (["number-in-text.csv"], "line 5, column 'grade' has a number ('7') among text values"),
    (["header-only.csv", "--categorical", "colour"], "has a header but no data rows"),
    (["ok.csv", "--categorical", "shape"], "no column 'shape'"),
    (["ok.csv", "--categorical", "label"], "'label' is the target"),
    (["ok.csv", "--max-categories", "2"], "'colour' has 3 distinct values"),
    (["nan.csv"], "missing (NaN) or infinite values (first at row 4, feature 1)"),
])
def test_broken_categorical_files_are_one_line_and_exit_status_2(args, message, tmp_path,
                                                                  capsys, monkeypatch):
    _broken_files(tmp_path)
    calls = spy_fits(monkeypatch)
    out = tmp_path / "out"
    assert main([*tiny("dense"), "--quiet", "--out", str(out), "--target", "label",
                 "--dataset", str(tmp_path / args[0]), *args[1:]]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err
    assert calls == [] and not out.exists()


@pytest.mark.parametrize("dataset", ["digits", "{tmp}/d.npz"])
def test_categorical_names_columns_of_a_csv_only(dataset, tmp_path, capsys):
    np.savez(tmp_path / "d.npz", X=np.zeros((4, 2)), y=np.arange(4) % 2)
    assert main([*tiny("dense"), "--dataset", dataset.replace("{tmp}", str(tmp_path)),
                 "--categorical", "a", "--no-output"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--categorical names" in err
