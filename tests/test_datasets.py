"""Tests for sk_weightfree.datasets (tiny synthetic IDX files, no real data)."""

import gzip
import io
import os
import struct
from pathlib import Path

import numpy as np
import pytest

import sk_weightfree.datasets as ds
from sk_weightfree.datasets import _read_idx, load_fashion_mnist

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
    assert set(data) >= {
        "X_train", "y_train", "X_test", "y_test",
        "target_names", "images_shape", "DESCR",
    }
    assert data.X_train.shape == (N_TRAIN, 784)
    assert data.X_test.shape == (N_TEST, 784)
    assert data.X_train.dtype == np.float32
    assert data.y_train.dtype == np.int64
    assert data.y_train.shape == (N_TRAIN,)
    np.testing.assert_array_equal(
        data.X_train, arrays["X_train"].reshape(N_TRAIN, -1)
    )
    np.testing.assert_array_equal(
        data.X_test, arrays["X_test"].reshape(N_TEST, -1)
    )
    np.testing.assert_array_equal(data.y_train, [0, 9, 3, 3, 7])
    np.testing.assert_array_equal(data.y_test, [1, 0, 8])
    # raw values, row-major flattening
    assert data.X_train[0, 0] == 255.0
    assert data.X_train[0, 1] == 0.0
    assert data.X_train[4, 783] == 17.0
    assert data.X_train.max() <= 255 and data.X_train.min() >= 0
    assert data.images_shape == (28, 28)
    assert len(data.target_names) == 10
    assert data.target_names[0] == "T-shirt/top"
    assert data.target_names[9] == "Ankle boot"
    assert "Fashion-MNIST" in data.DESCR


def test_return_X_y(fake_data):
    path, arrays = fake_data
    out = load_fashion_mnist(path, return_X_y=True)
    assert isinstance(out, tuple) and len(out) == 4
    X_train, y_train, X_test, y_test = out
    assert X_train.shape == (N_TRAIN, 784) and y_train.shape == (N_TRAIN,)
    assert X_test.shape == (N_TEST, 784) and y_test.shape == (N_TEST,)
    np.testing.assert_array_equal(y_test, arrays["y_test"])


@pytest.mark.parametrize("subset, n", [("train", N_TRAIN), ("test", N_TEST)])
def test_subset(fake_data, subset, n):
    path, arrays = fake_data
    data = load_fashion_mnist(path, subset=subset)
    other = "test" if subset == "train" else "train"
    assert f"X_{other}" not in data and f"y_{other}" not in data
    assert data[f"X_{subset}"].shape == (n, 784)
    X, y = load_fashion_mnist(path, subset=subset, return_X_y=True)
    np.testing.assert_array_equal(X, arrays[f"X_{subset}"].reshape(n, -1))
    np.testing.assert_array_equal(y, arrays[f"y_{subset}"])


def test_subset_only_needs_its_files(fake_data):
    path, _ = fake_data
    for name in TEST_NAMES:
        (path / f"{name}.gz").unlink()
    assert load_fashion_mnist(path, subset="train").X_train.shape[0] == N_TRAIN
    with pytest.raises(FileNotFoundError):
        load_fashion_mnist(path)


def test_invalid_subset(fake_data):
    with pytest.raises(ValueError, match="subset"):
        load_fashion_mnist(fake_data[0], subset="validation")


@pytest.mark.parametrize("dtype", [np.uint8, np.float64, np.int32])
def test_dtype(fake_data, dtype):
    path, arrays = fake_data
    data = load_fashion_mnist(path, dtype=dtype)
    assert data.X_train.dtype == dtype
    assert data.X_train.flags.writeable
    np.testing.assert_array_equal(
        data.X_train, arrays["X_train"].reshape(N_TRAIN, -1)
    )


def test_uncompressed_variant(tmp_path):
    X_tr, X_te = make_images(N_TRAIN, 3), make_images(N_TEST, 4)
    y_tr = np.arange(N_TRAIN, dtype=np.uint8)
    y_te = np.arange(N_TEST, dtype=np.uint8)
    write_idx(tmp_path / TRAIN_NAMES[0], X_tr, compress=False)
    write_idx(tmp_path / TRAIN_NAMES[1], y_tr, compress=False)
    # mix: compressed test images, uncompressed test labels
    write_idx(tmp_path / f"{TEST_NAMES[0]}.gz", X_te)
    write_idx(tmp_path / TEST_NAMES[1], y_te, compress=False)
    X_train, y_train, X_test, y_test = load_fashion_mnist(
        tmp_path, return_X_y=True
    )
    np.testing.assert_array_equal(X_train, X_tr.reshape(N_TRAIN, -1))
    np.testing.assert_array_equal(y_train, y_tr)
    np.testing.assert_array_equal(X_test, X_te.reshape(N_TEST, -1))
    np.testing.assert_array_equal(y_test, y_te)


def test_path_from_env(fake_data, monkeypatch):
    path, _ = fake_data
    monkeypatch.setenv(ds.FASHION_MNIST_ENV, str(path))
    assert load_fashion_mnist().X_train.shape == (N_TRAIN, 784)


def test_default_path(fake_data, monkeypatch):
    path, _ = fake_data
    monkeypatch.delenv(ds.FASHION_MNIST_ENV, raising=False)
    monkeypatch.setattr(ds, "_DEFAULT_FASHION_MNIST_PATH", str(path))
    assert load_fashion_mnist().X_test.shape == (N_TEST, 784)


def test_missing_folder(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as exc:
        load_fashion_mnist(missing)
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
        load_fashion_mnist(path)


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
        load_fashion_mnist(path)


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
    X_train, y_train, X_test, y_test = load_fashion_mnist(
        _REAL, return_X_y=True, dtype=np.uint8
    )
    assert X_train.shape == (60000, 784) and y_train.shape == (60000,)
    assert X_test.shape == (10000, 784) and y_test.shape == (10000,)
    assert X_train.max() == 255 and X_train.min() == 0
    np.testing.assert_array_equal(np.bincount(y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(y_test), [1000] * 10)
