"""Tests for sk_weightfree.datasets (tiny synthetic IDX files, no real data)."""

import gzip
import io
import os
import re
import struct
from pathlib import Path

import numpy as np
import pytest

import sk_weightfree.datasets as ds
from sk_weightfree.datasets import _read_idx, load_csv, load_fashion_mnist, load_npz

_CODES = {
    np.dtype("u1"): 0x08,
    np.dtype("i1"): 0x09,
    np.dtype(">i2"): 0x0B,
    np.dtype(">i4"): 0x0C,
    np.dtype(">f4"): 0x0D,
    np.dtype(">f8"): 0x0E,
}

N_TRAIN, N_TEST = 5, 3
TRAIN_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
TEST_NAMES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_bytes(array, dtype=None):
    """Serialise ``array`` to IDX bytes (big-endian data)."""
    array = np.asarray(array)
    dt = np.dtype(dtype or array.dtype).newbyteorder(">")
    if dt.itemsize == 1:
        dt = dt.newbyteorder("=")
    header = bytes([0, 0, _CODES[dt], array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(dt).tobytes()


def write_idx(path, array, *, compress=True, dtype=None):
    data = idx_bytes(array, dtype)
    Path(path).write_bytes(gzip.compress(data) if compress else data)
    return path


def make_images(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


@pytest.fixture
def fake_data(tmp_path):
    """Write tiny Fashion-MNIST files into tmp_path; return the arrays."""
    arrays = {
        "X_train": make_images(N_TRAIN, 0),
        "y_train": np.array([0, 9, 3, 3, 7], dtype=np.uint8),
        "X_test": make_images(N_TEST, 1),
        "y_test": np.array([1, 0, 8], dtype=np.uint8),
    }
    # make a few pixel values fully known
    arrays["X_train"][0, 0, 0] = 255
    arrays["X_train"][0, 0, 1] = 0
    arrays["X_train"][4, 27, 27] = 17
    write_idx(tmp_path / f"{TRAIN_NAMES[0]}.gz", arrays["X_train"])
    write_idx(tmp_path / f"{TRAIN_NAMES[1]}.gz", arrays["y_train"])
    write_idx(tmp_path / f"{TEST_NAMES[0]}.gz", arrays["X_test"])
    write_idx(tmp_path / f"{TEST_NAMES[1]}.gz", arrays["y_test"])
    return tmp_path, arrays


# --------------------------------------------------------------------------
# _read_idx
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dtype", ["u1", "i1", ">i2", ">i4", ">f4", ">f8"]
)
@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_all_dtypes(tmp_path, dtype, compress):
    rng = np.random.default_rng(42)
    arr = (rng.standard_normal((2, 3, 4)) * 100).astype(np.dtype(dtype))
    f = write_idx(tmp_path / "a.idx", arr, compress=compress)
    out = _read_idx(f)
    assert out.shape == (2, 3, 4)
    assert out.dtype == np.dtype(dtype).newbyteorder("=")
    assert out.dtype.isnative
    assert out.flags.writeable
    np.testing.assert_array_equal(out, arr)


def test_read_idx_file_object_and_str(tmp_path):
    arr = np.arange(6, dtype=np.uint8)
    f = write_idx(tmp_path / "lab.gz", arr)
    np.testing.assert_array_equal(_read_idx(str(f)), arr)
    np.testing.assert_array_equal(_read_idx(io.BytesIO(f.read_bytes())), arr)


def test_read_idx_bad_magic(tmp_path):
    good = idx_bytes(np.zeros(4, dtype=np.uint8))
    f = tmp_path / "bad.gz"
    f.write_bytes(gzip.compress(b"\x01" + good[1:]))
    with pytest.raises(ValueError, match="bad.gz.*magic"):
        _read_idx(f)
    f.write_bytes(gzip.compress(good[:2] + b"\x07" + good[3:]))  # type code
    with pytest.raises(ValueError, match="magic"):
        _read_idx(f)


def test_read_idx_truncated_data(tmp_path):
    data = idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8))
    f = tmp_path / "short.gz"
    f.write_bytes(gzip.compress(data[:-10]))
    with pytest.raises(ValueError, match="short.gz.*mismatch"):
        _read_idx(f)
    f.write_bytes(gzip.compress(data + b"\x00"))  # trailing garbage
    with pytest.raises(ValueError, match="mismatch"):
        _read_idx(f)


def test_read_idx_truncated_header(tmp_path):
    data = idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8))
    f = tmp_path / "hdr"
    f.write_bytes(data[:8])
    with pytest.raises(ValueError, match="hdr.*header"):
        _read_idx(f)
    f.write_bytes(data[:2])
    with pytest.raises(ValueError, match="hdr"):
        _read_idx(f)


def test_read_idx_truncated_gzip(tmp_path):
    comp = gzip.compress(idx_bytes(make_images(3, 0)))
    f = tmp_path / "cut.gz"
    f.write_bytes(comp[: len(comp) // 2])
    with pytest.raises(ValueError, match="cut.gz"):
        _read_idx(f)


# --------------------------------------------------------------------------
# load_fashion_mnist
# --------------------------------------------------------------------------


def test_load_bunch(fake_data):
    path, arrays = fake_data
    data = load_fashion_mnist(path)
    assert set(data) == {"data", "target", "target_names", "images_shape", "DESCR"}
    assert data.data.shape == (N_TRAIN, 784)  # the training split by default
    assert data.data.dtype == np.float32
    assert data.target.dtype == np.int64
    assert data.target.shape == (N_TRAIN,)
    np.testing.assert_array_equal(data.data, arrays["X_train"].reshape(N_TRAIN, -1))
    np.testing.assert_array_equal(data.target, [0, 9, 3, 3, 7])
    # raw values, row-major flattening
    assert data.data[0, 0] == 255.0
    assert data.data[0, 1] == 0.0
    assert data.data[4, 783] == 17.0
    assert data.data.max() <= 255 and data.data.min() >= 0
    assert data.images_shape == (28, 28)
    assert len(data.target_names) == 10
    assert data.target_names[0] == "T-shirt/top"
    assert data.target_names[9] == "Ankle boot"
    assert "Fashion-MNIST" in data.DESCR


def test_return_X_y_is_a_pair_as_in_scikit_learn(fake_data):
    path, arrays = fake_data
    out = load_fashion_mnist(path, return_X_y=True)
    assert isinstance(out, tuple) and len(out) == 2
    X, y = out
    np.testing.assert_array_equal(X, arrays["X_train"].reshape(N_TRAIN, -1))
    np.testing.assert_array_equal(y, arrays["y_train"])


@pytest.mark.parametrize("subset, n", [("train", N_TRAIN), ("test", N_TEST)])
def test_subset(fake_data, subset, n):
    path, arrays = fake_data
    data = load_fashion_mnist(path, subset=subset)
    assert data.data.shape == (n, 784)
    X, y = load_fashion_mnist(path, subset=subset, return_X_y=True)
    np.testing.assert_array_equal(X, arrays[f"X_{subset}"].reshape(n, -1))
    np.testing.assert_array_equal(y, arrays[f"y_{subset}"])


def test_subset_all_concatenates_train_then_test(fake_data):
    path, arrays = fake_data
    X, y = load_fashion_mnist(path, subset="all", return_X_y=True)
    np.testing.assert_array_equal(
        X, np.concatenate([arrays["X_train"], arrays["X_test"]]).reshape(N_TRAIN + N_TEST, -1)
    )
    np.testing.assert_array_equal(y, np.concatenate([arrays["y_train"], arrays["y_test"]]))


def test_subset_only_needs_its_files(fake_data):
    path, _ = fake_data
    for name in TEST_NAMES:
        (path / f"{name}.gz").unlink()
    assert load_fashion_mnist(path, subset="train").data.shape[0] == N_TRAIN
    with pytest.raises(FileNotFoundError):
        load_fashion_mnist(path, subset="test")
    with pytest.raises(FileNotFoundError):
        load_fashion_mnist(path, subset="all")


def test_invalid_subset(fake_data):
    with pytest.raises(ValueError, match="subset"):
        load_fashion_mnist(fake_data[0], subset="validation")


@pytest.mark.parametrize("dtype", [np.uint8, np.float64, np.int32])
def test_dtype(fake_data, dtype):
    path, arrays = fake_data
    data = load_fashion_mnist(path, dtype=dtype)
    assert data.data.dtype == dtype
    assert data.data.flags.writeable
    np.testing.assert_array_equal(data.data, arrays["X_train"].reshape(N_TRAIN, -1))


def test_uncompressed_variant(tmp_path):
    X_tr, X_te = make_images(N_TRAIN, 3), make_images(N_TEST, 4)
    y_tr = np.arange(N_TRAIN, dtype=np.uint8)
    y_te = np.arange(N_TEST, dtype=np.uint8)
    write_idx(tmp_path / TRAIN_NAMES[0], X_tr, compress=False)
    write_idx(tmp_path / TRAIN_NAMES[1], y_tr, compress=False)
    # mix: compressed test images, uncompressed test labels
    write_idx(tmp_path / f"{TEST_NAMES[0]}.gz", X_te)
    write_idx(tmp_path / TEST_NAMES[1], y_te, compress=False)
    X_train, y_train = load_fashion_mnist(tmp_path, return_X_y=True)
    X_test, y_test = load_fashion_mnist(tmp_path, subset="test", return_X_y=True)
    np.testing.assert_array_equal(X_train, X_tr.reshape(N_TRAIN, -1))
    np.testing.assert_array_equal(y_train, y_tr)
    np.testing.assert_array_equal(X_test, X_te.reshape(N_TEST, -1))
    np.testing.assert_array_equal(y_test, y_te)


def test_path_from_env(fake_data, monkeypatch):
    path, _ = fake_data
    monkeypatch.setenv(ds.FASHION_MNIST_ENV, str(path))
    assert load_fashion_mnist().data.shape == (N_TRAIN, 784)


def test_default_path(fake_data, monkeypatch):
    path, _ = fake_data
    monkeypatch.delenv(ds.FASHION_MNIST_ENV, raising=False)
    monkeypatch.setattr(ds, "_DEFAULT_FASHION_MNIST_PATH", str(path))
    assert load_fashion_mnist(subset="test").data.shape == (N_TEST, 784)


def test_missing_folder(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as exc:
        load_fashion_mnist(missing, subset="all")
    msg = str(exc.value)
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "path=" in msg
    assert str(missing) in msg
    for name in TRAIN_NAMES + TEST_NAMES:
        assert f"{name}.gz" in msg


def test_missing_single_file(fake_data):
    path, _ = fake_data
    (path / f"{TRAIN_NAMES[1]}.gz").unlink()
    with pytest.raises(FileNotFoundError) as exc:
        load_fashion_mnist(path)
    msg = str(exc.value)
    assert "train-labels-idx1-ubyte.gz" in msg
    assert "apt-get install dataset-fashion-mnist" in msg
    # the files that are present are not reported missing
    listed = msg.split(f"not found in {path}: ", 1)[1].split(" (")[0]
    assert listed == "train-labels-idx1-ubyte.gz"


def test_mismatched_counts(fake_data):
    path, _ = fake_data
    write_idx(path / f"{TEST_NAMES[1]}.gz", np.zeros(N_TEST + 1, np.uint8))
    with pytest.raises(ValueError, match="3 images.*4 labels"):
        load_fashion_mnist(path, subset="test")


def test_corrupt_file_in_loader(fake_data):
    path, _ = fake_data
    data = idx_bytes(make_images(N_TRAIN, 0))
    (path / f"{TRAIN_NAMES[0]}.gz").write_bytes(gzip.compress(data[:-1]))
    with pytest.raises(ValueError, match="train-images-idx3-ubyte"):
        load_fashion_mnist(path)
    (path / f"{TRAIN_NAMES[0]}.gz").write_bytes(gzip.compress(b"junk" * 10))
    with pytest.raises(ValueError, match="magic"):
        load_fashion_mnist(path)


def test_wrong_ndim(fake_data):
    path, _ = fake_data
    write_idx(path / f"{TRAIN_NAMES[0]}.gz", np.zeros((N_TRAIN, 784), np.uint8))
    with pytest.raises(ValueError, match="3-d"):
        load_fashion_mnist(path)


def test_label_out_of_range(fake_data):
    path, _ = fake_data
    write_idx(path / f"{TEST_NAMES[1]}.gz", np.array([0, 10, 1], np.uint8))
    with pytest.raises(ValueError, match="labels"):
        load_fashion_mnist(path, subset="test")


# --------------------------------------------------------------------------
# load_csv, load_npz
# --------------------------------------------------------------------------


def test_load_csv_labels_and_numeric_targets(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("\ufeffa, label ,b\n1,yes,2.5\n\n3,no,-4\n")
    X, y = load_csv(f, "label")
    np.testing.assert_array_equal(X, [[1.0, 2.5], [3.0, -4.0]])
    assert X.dtype == np.float64 and list(y) == ["yes", "no"]
    f.write_text("a,price\n1,2.5\n2,3.25\n")
    X, y = load_csv(f, "price")
    assert y.dtype == np.float64 and list(y) == [2.5, 3.25]


@pytest.mark.parametrize("text, target, message", [
    ("", "y", "empty"),
    ("a,y\n", "y", "no data rows"),
    ("a,b\n1,2\n", "y", "no column 'y'"),
    ("y,a,y\n1,2,3\n", "y", "more than one column 'y'"),
    ("a,y\n1,2\n3\n", "y", "line 3 has 1 fields"),
    ("a,y\n1,2\n,3\n", "y", "line 3, column 'a' has an empty value"),
    ("a,y\n1,2\nx,3\n", "y", "line 3, column 'a' has a non-numeric ('x') value"),
])
def test_load_csv_errors_name_the_file_and_line(tmp_path, text, target, message):
    f = tmp_path / "d.csv"
    f.write_text(text)
    with pytest.raises(ValueError, match="d.csv") as exc:
        load_csv(f, target)
    assert message in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("values", [
    [f"{1.5 + 0.37 * i:.2f}" for i in range(300)],          # a continuous target
    ["yes" if i % 2 else "no" for i in range(300)],         # class labels
])
def test_load_csv_refuses_an_empty_target_cell(tmp_path, values):
    # An empty target cell once made a regression target text (299 classes) and a text
    # target gained a class '' of one row; it is refused like NaN, naming the line.
    values = list(values)
    values[41] = " "
    f = tmp_path / "shop.csv"
    f.write_text("x,price\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values)))
    with pytest.raises(ValueError, match=r"shop.csv: line 43, target column 'price' "
                                         r"is empty") as exc:
        load_csv(f, "price")
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("marker", ["NA", "N/A", "?", "null", "-"])
def test_load_csv_refuses_a_missing_value_marker_among_numeric_targets(tmp_path, marker):
    # "NA" in a price column turned the regression into a 60-class classification.
    values = [f"{1.5 + 0.37 * i:.2f}" for i in range(60)]
    values[9] = marker
    f = tmp_path / "na.csv"
    f.write_text("x,price\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values)))
    with pytest.raises(ValueError, match=rf"na.csv: line 11, target column 'price' has a "
                                         rf"non-numeric value \('{re.escape(marker)}'\)"):
        load_csv(f, "price")
    f.write_text("x,label\n1,yes\n2,3\n3,no\n")  # labels that happen to hold a number
    assert list(load_csv(f, "label")[1]) == ["yes", "3", "no"]


def test_compare_refuses_an_empty_target_cell_before_any_fit(tmp_path, capsys):
    from sk_weightfree.cli import main

    f = tmp_path / "shop.csv"
    f.write_text("x,price\n" + "".join(f"{i},{'' if i == 7 else 2.5 * i}\n"
                                      for i in range(300)))
    out = tmp_path / "out"
    code = main(["compare", "--dataset", str(f), "--target", "price",
                 "--estimators", "dense", "--epochs", "1", "--out", str(out)])
    assert code == 2
    assert "line 9, target column 'price' is empty" in capsys.readouterr().err
    assert not out.exists()


def test_load_npz(tmp_path):
    X, y = np.arange(6.0).reshape(3, 2), np.array(["a", "b", "a"])
    np.savez(tmp_path / "d.npz", X=X, y=y, extra=np.zeros(1))
    X_read, y_read = load_npz(tmp_path / "d.npz")
    np.testing.assert_array_equal(X_read, X)
    np.testing.assert_array_equal(y_read, y)


@pytest.mark.parametrize("arrays, message", [
    ({"X": np.zeros((2, 2))}, "lacks array(s) ['y']"),
    ({"X": np.array([["a", "b"]]), "y": np.array([1])}, "X must be numeric"),
    ({"X": np.array([[1, 2]], dtype=object), "y": np.array([1])}, "object arrays"),
    ({"X": np.zeros(3), "y": np.zeros(3)}, "X must be 2-D"),
    ({"X": np.zeros((3, 2)), "y": np.zeros(2)}, "one label or target row per row"),
])
def test_load_npz_errors(tmp_path, arrays, message):
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(ValueError, match="d.npz") as exc:
        load_npz(tmp_path / "d.npz")
    assert message in str(exc.value)


def test_load_npz_refuses_what_is_not_an_archive(tmp_path):
    np.save(tmp_path / "d.npy", np.zeros(3))
    with pytest.raises(ValueError, match="single .npy array"):
        load_npz(tmp_path / "d.npy")
    (tmp_path / "d.npz").write_text("X,y\n")
    with pytest.raises(ValueError, match="not an .npz archive"):
        load_npz(tmp_path / "d.npz")
    with pytest.raises(FileNotFoundError):
        load_npz(tmp_path / "missing.npz")


# --------------------------------------------------------------------------
# real data (only where installed)
# --------------------------------------------------------------------------

_REAL = "/usr/share/datasets/fashion-mnist/"


@pytest.mark.slow
@pytest.mark.skipif(
    not all(
        os.path.exists(os.path.join(_REAL, f"{n}.gz"))
        for n in TRAIN_NAMES + TEST_NAMES
    ),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
)
def test_real_fashion_mnist():
    X_train, y_train = load_fashion_mnist(_REAL, return_X_y=True, dtype=np.uint8)
    X_test, y_test = load_fashion_mnist(_REAL, subset="test", return_X_y=True,
                                        dtype=np.uint8)
    assert X_train.shape == (60000, 784) and y_train.shape == (60000,)
    assert X_test.shape == (10000, 784) and y_test.shape == (10000,)
    assert X_train.max() == 255 and X_train.min() == 0
    np.testing.assert_array_equal(np.bincount(y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(y_test), [1000] * 10)
