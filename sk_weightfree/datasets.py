"""Loaders for the data sets used in the examples and benchmarks.

Nothing is ever downloaded: the loaders only read files that are already on
disk (for instance installed by a system package).
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

__all__ = ["load_fashion_mnist"]

#: Environment variable naming a folder that holds the Fashion-MNIST files.
FASHION_MNIST_ENV = "SK_WEIGHTFREE_FASHION_MNIST"

#: Folder where Debian's ``dataset-fashion-mnist`` package installs the files.
_DEFAULT_FASHION_MNIST_PATH = "/usr/share/datasets/fashion-mnist/"

_FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

_FASHION_MNIST_CLASSES = np.array(
    [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ]
)

_FASHION_MNIST_DESCR = """\
Fashion-MNIST
-------------

Zalando's article images: 70,000 grayscale images of 28x28 pixels in ten
classes (60,000 for training, 10,000 for testing), a drop-in replacement for
MNIST. Each row of ``X_*`` is one image flattened in row-major order
(784 features, raw pixel intensities 0..255, 0 = background). Labels are the
integers 0..9, indexing ``target_names``.

Reference: H. Xiao, K. Rasul and R. Vollgraf, "Fashion-MNIST: a Novel Image
Dataset for Benchmarking Machine Learning Algorithms", arXiv:1708.07747, 2017.
"""

# IDX type code -> big-endian numpy dtype.
_IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"


def _read_idx(file):
    """Read an IDX file (as used by MNIST / Fashion-MNIST) into an array.

    Parameters
    ----------
    file : str, path-like or binary file object
        The IDX file. Gzip compression is detected from the content, not
        from the file name.

    Returns
    -------
    array : ndarray
        A writable array in native byte order whose shape is the one
        declared in the file header.

    Raises
    ------
    ValueError
        If the header is invalid (bad magic number, unknown type code) or
        the data size does not match the declared dimensions.
    """
    if hasattr(file, "read"):
        name = str(getattr(file, "name", repr(file)))
        raw = file.read()
    else:
        name = os.fspath(file)
        with open(name, "rb") as fh:
            raw = fh.read()

    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(
                f"{name}: corrupt or truncated gzip data ({exc})"
            ) from exc

    if len(raw) < 4:
        raise ValueError(f"{name}: file too short for an IDX header")
    zero, code, ndim = raw[0:2], raw[2], raw[3]
    if zero != b"\x00\x00" or code not in _IDX_DTYPES:
        raise ValueError(
            f"{name}: not an IDX file (bad magic number "
            f"0x{int.from_bytes(raw[:4], 'big'):08X})"
        )
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise ValueError(f"{name}: truncated IDX header")
    shape = tuple(
        int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4)
    )
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(raw) - header_size
    if actual != expected:
        raise ValueError(
            f"{name}: IDX data size mismatch: dimensions {shape} need "
            f"{expected} bytes of {dtype.name} data, found {actual} "
            "(file corrupt or truncated?)"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)


def _resolve_fashion_mnist_path(path):
    if path is None:
        path = os.environ.get(FASHION_MNIST_ENV) or _DEFAULT_FASHION_MNIST_PATH
    return Path(path).expanduser()


def _find_files(folder, stems):
    """Map each stem to ``stem.gz`` or ``stem`` in ``folder``; raise if missing."""
    found, missing = {}, []
    for stem in stems:
        for candidate in (folder / f"{stem}.gz", folder / stem):
            if candidate.is_file():
                found[stem] = candidate
                break
        else:
            missing.append(f"{stem}.gz")
    if missing:
        where = (
            f"in {folder}"
            if folder.is_dir()
            else f"because the folder {folder} does not exist"
        )
        raise FileNotFoundError(
            f"Fashion-MNIST file(s) not found {where}: {', '.join(missing)} "
            "(uncompressed files without '.gz' are accepted too). "
            "Nothing is downloaded automatically. Install them with "
            "'apt-get install dataset-fashion-mnist' (Debian/Ubuntu, puts them "
            f"in {_DEFAULT_FASHION_MNIST_PATH}), or pass path= (or set "
            f"${FASHION_MNIST_ENV}) to a folder holding the four files "
            "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
            "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz."
        )
    return found


def _load_pair(images_file, labels_file, dtype):
    images = _read_idx(images_file)
    labels = _read_idx(labels_file)
    if images.ndim != 3:
        raise ValueError(
            f"{images_file}: expected a 3-d image array, got shape {images.shape}"
        )
    if labels.ndim != 1:
        raise ValueError(
            f"{labels_file}: expected a 1-d label array, got shape {labels.shape}"
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{images_file} holds {images.shape[0]} images but {labels_file} "
            f"holds {labels.shape[0]} labels"
        )
    n_classes = len(_FASHION_MNIST_CLASSES)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(
            f"{labels_file}: labels must lie in 0..{n_classes - 1}"
        )
    X = images.reshape(images.shape[0], -1).astype(dtype, copy=False)
    y = labels.astype(np.int64, copy=False)
    return X, y, tuple(int(s) for s in images.shape[1:])


def load_fashion_mnist(
    path=None, *, subset="all", return_X_y=False, dtype=np.float32
):
    """Load the Fashion-MNIST data set from local IDX files.

    The four files ``train-images-idx3-ubyte.gz``,
    ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz`` and
    ``t10k-labels-idx1-ubyte.gz`` (or the same names without ``.gz``,
    uncompressed) are read from ``path``. Nothing is ever downloaded; on
    Debian/Ubuntu ``apt-get install dataset-fashion-mnist`` installs them in
    ``/usr/share/datasets/fashion-mnist/``.

    =================   ==============
    Classes                         10
    Samples (train)             60,000
    Samples (test)              10,000
    Features                       784
    Feature values      integers 0-255
    =================   ==============

    Parameters
    ----------
    path : str or path-like, default=None
        Folder holding the files. If None, the environment variable
        ``SK_WEIGHTFREE_FASHION_MNIST`` is used when set, else
        ``/usr/share/datasets/fashion-mnist/``.
    subset : {"all", "train", "test"}, default="all"
        Which split(s) to load. Only the files of the requested split(s)
        need to exist.
    return_X_y : bool, default=False
        If True, return arrays instead of a :class:`~sklearn.utils.Bunch`
        (see Returns).
    dtype : data-type, default=np.float32
        Data type of the image arrays. Pixel values are kept raw (0 to 255,
        not rescaled), whatever the dtype; use ``np.uint8`` for the most
        compact storage.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes:

        X_train, y_train : ndarray of shape (60000, 784) and (60000,)
            Training images (flattened row-major, given ``dtype``) and
            labels (int64 in 0..9). Present unless ``subset="test"``.
        X_test, y_test : ndarray of shape (10000, 784) and (10000,)
            Test images and labels. Present unless ``subset="train"``.
        target_names : ndarray of shape (10,)
            Class names; label ``k`` is ``target_names[k]``.
        images_shape : tuple of int
            Shape of one image, ``(28, 28)``.
        DESCR : str
            Description of the data set.

    (X_train, y_train, X_test, y_test) : tuple of ndarray
        If ``return_X_y`` is True and ``subset="all"``.

    (X, y) : tuple of ndarray
        If ``return_X_y`` is True and ``subset`` is ``"train"`` or
        ``"test"``: the arrays of that split.

    Raises
    ------
    FileNotFoundError
        If the folder or a needed file is missing; the message names the
        missing files and how to obtain them.
    ValueError
        If a file is not a valid IDX file, is truncated, or the image and
        label counts of a split differ.

    Examples
    --------
    >>> from sk_weightfree.datasets import load_fashion_mnist
    >>> X_train, y_train, X_test, y_test = load_fashion_mnist(
    ...     return_X_y=True)  # doctest: +SKIP
    >>> X_train.shape, X_test.shape  # doctest: +SKIP
    ((60000, 784), (10000, 784))
    """
    if subset not in ("all", "train", "test"):
        raise ValueError(
            f"subset must be 'all', 'train' or 'test', got {subset!r}"
        )
    splits = ("train", "test") if subset == "all" else (subset,)
    folder = _resolve_fashion_mnist_path(path)
    stems = [stem for split in splits for stem in _FASHION_MNIST_FILES[split]]
    files = _find_files(folder, stems)

    result = Bunch()
    for split in splits:
        images_stem, labels_stem = _FASHION_MNIST_FILES[split]
        X, y, image_shape = _load_pair(
            files[images_stem], files[labels_stem], dtype
        )
        result[f"X_{split}"] = X
        result[f"y_{split}"] = y

    if return_X_y:
        return tuple(result[f"{v}_{s}"] for s in splits for v in ("X", "y"))

    result["target_names"] = _FASHION_MNIST_CLASSES.copy()
    result["images_shape"] = image_shape
    result["DESCR"] = _FASHION_MNIST_DESCR
    return result
