"""Loaders for the data sets used in the examples, benchmarks and ``sk-weightfree compare``.

Nothing is ever downloaded: the loaders only read files that are already on
disk (for instance installed by a system package). Every loader raises
``FileNotFoundError`` for a missing file and ``ValueError`` with a one-line
message naming the file for content it cannot use.
"""

from __future__ import annotations

import csv
import gzip
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

__all__ = ["load_csv", "load_fashion_mnist", "load_npz"]

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
    path=None, *, subset="train", return_X_y=False, dtype=np.float32
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
    subset : {"train", "test", "all"}, default="train"
        Which split to load, as in :func:`sklearn.datasets.fetch_20newsgroups`:
        the official training split (60,000 images), the official test split
        (10,000), or both concatenated (70,000; the 60,000 training rows
        first). Only the files of the requested split(s) need to exist.
    return_X_y : bool, default=False
        If True, return ``(X, y)`` instead of a :class:`~sklearn.utils.Bunch`.
    dtype : data-type, default=np.float32
        Data type of the image arrays. Pixel values are kept raw (0 to 255,
        not rescaled), whatever the dtype; use ``np.uint8`` for the most
        compact storage.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes:

        data : ndarray of shape (n_samples, 784)
            Images of the requested subset, flattened row-major, of the given
            ``dtype``.
        target : ndarray of shape (n_samples,)
            Labels, int64 in 0..9.
        target_names : ndarray of shape (10,)
            Class names; label ``k`` is ``target_names[k]``.
        images_shape : tuple of int
            Shape of one image, ``(28, 28)``.
        DESCR : str
            Description of the data set.

    (X, y) : tuple of ndarray
        If ``return_X_y`` is True: ``data`` and ``target``.

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
    >>> X_train, y_train = load_fashion_mnist(return_X_y=True)  # doctest: +SKIP
    >>> X_test, y_test = load_fashion_mnist(
    ...     subset="test", return_X_y=True)  # doctest: +SKIP
    >>> X_train.shape, X_test.shape  # doctest: +SKIP
    ((60000, 784), (10000, 784))
    """
    if subset not in ("train", "test", "all"):
        raise ValueError(
            f"subset must be 'train', 'test' or 'all', got {subset!r}"
        )
    splits = ("train", "test") if subset == "all" else (subset,)
    folder = _resolve_fashion_mnist_path(path)
    stems = [stem for split in splits for stem in _FASHION_MNIST_FILES[split]]
    files = _find_files(folder, stems)

    parts = []
    for split in splits:
        images_stem, labels_stem = _FASHION_MNIST_FILES[split]
        parts.append(_load_pair(files[images_stem], files[labels_stem], dtype))
    X = parts[0][0] if len(parts) == 1 else np.concatenate([p[0] for p in parts])
    y = parts[0][1] if len(parts) == 1 else np.concatenate([p[1] for p in parts])
    if return_X_y:
        return X, y
    return Bunch(
        data=X,
        target=y,
        target_names=_FASHION_MNIST_CLASSES.copy(),
        images_shape=parts[0][2],
        DESCR=_FASHION_MNIST_DESCR,
    )


# --------------------------------------------------------------------------
# Tabular files: CSV and .npz
# --------------------------------------------------------------------------


def load_csv(path, target, *, categorical=(), return_X_y=True):
    """Read a CSV file with a header row into a feature matrix and a target.

    Every column but the target is a feature. A feature column is *numeric* when
    each of its values is a number, and *categorical* when none of them is (text
    such as ``red``/``green``; empty fields do not count either way), or when it
    is named in ``categorical`` (integer codes, for instance). A column that mixes
    numbers and text is refused: it is usually a typo, and naming it in
    ``categorical`` reads it as categories instead.

    Parameters
    ----------
    path : str or path-like
        The file: comma-separated, a header row of column names, one sample per
        line (blank lines are skipped; a UTF-8 byte-order mark is accepted).
    target : str
        Name of the target column.
    categorical : str or sequence of str, default=()
        Feature column(s) to read as categories whatever their values: each value
        is kept as the text written in the file (stripped), so ``1`` and
        ``1.0`` are two categories.
    return_X_y : bool, default=True
        If True, return ``(X, y)``; if False, a :class:`~sklearn.utils.Bunch`
        that also names the columns and says which are categorical.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        If ``return_X_y`` is False, with the attributes:

        data : ndarray of shape (n_samples, n_features)
            ``X`` below.
        target : ndarray of shape (n_samples,)
            ``y`` below.
        feature_names : ndarray of shape (n_features,)
            The feature columns' names, in file order.
        categorical : ndarray of shape (n_features,), bool
            True for the categorical columns.
        target_name : str
            ``target``.

    (X, y) : tuple of ndarray
        If ``return_X_y`` is True (the default):

        ``X``, of shape (n_samples, n_features), holds the feature columns in
        file order: float64 when every column is numeric, else an object array
        whose numeric columns hold floats and whose categorical columns hold
        strings (an empty field is the category ``""``: missing is a category of
        its own). ``nan``/``inf`` spelled out in a numeric column are kept (as in
        :func:`numpy.loadtxt`); an empty field of a numeric column is an error.

        ``y``, of shape (n_samples,), is the target column: float64 when every
        value is a number, else the strings as written (class labels). An empty
        target field is an error (as ``nan`` in a target is for the estimators):
        it would otherwise turn a numeric target into text or add a class ``""``;
        so is a text (``NA``, ``?``) among a target's numbers when numbers are the
        majority.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is empty, has no data rows, lacks ``target`` or a column of
        ``categorical`` (or has one twice), names the target in
        ``categorical``, has a line whose number of fields differs from the
        header, a feature column that is empty on every line, an empty field in
        a numeric column or in the target, or a column that mixes numbers and
        text; the message names the file, and the line where there is one.

    Examples
    --------
    >>> from sk_weightfree.datasets import load_csv
    >>> data = load_csv("shop.csv", target="bought", categorical=["region"],
    ...                 return_X_y=False)  # doctest: +SKIP
    >>> data.feature_names[data.categorical]  # doctest: +SKIP
    array(['colour', 'region'], dtype=object)
    """
    path = Path(path)
    with open(path, newline="", encoding="utf-8-sig") as handle:
        try:
            rows = list(csv.reader(handle))
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: not a readable CSV file ({exc})") from None
    if not rows:
        raise ValueError(f"{path} is empty")
    header = [name.strip() for name in rows[0]]
    column = _column_index(path, header, target)
    if isinstance(categorical, str):
        categorical = [categorical]
    forced = {_column_index(path, header, name) for name in categorical}
    if column in forced:
        raise ValueError(f"{path}: column {target!r} is the target; it cannot be a "
                         "categorical feature too")
    # keep the file's line numbers for the messages; blank lines are skipped
    body = [(number, row) for number, row in enumerate(rows[1:], start=2) if row]
    if not body:
        raise ValueError(f"{path} has a header but no data rows")
    for number, row in body:
        if len(row) != len(header):
            raise ValueError(
                f"{path}: line {number} has {len(row)} fields, the header has "
                f"{len(header)}"
            )
    lines = [number for number, _ in body]
    features = [i for i in range(len(header)) if i != column]
    columns = [
        _read_column(path, header[i], lines, [row[i].strip() for _, row in body],
                     i in forced)
        for i in features
    ]
    is_categorical = np.array([values.dtype == object for values in columns], dtype=bool)
    X = np.empty((len(body), len(features)),
                 dtype=object if is_categorical.any() else np.float64)
    for c, values in enumerate(columns):
        X[:, c] = values
    labels = [row[column].strip() for _, row in body]
    if not all(labels):
        # an empty cell would silently make a numeric target text (a classification)
        # or add a class "" of its own: refused like a NaN
        line = lines[labels.index("")]
        raise ValueError(
            f"{path}: line {line}, target column {target!r} is empty; fill it in or "
            "drop the line (missing targets are not allowed)")
    numbers = [_number(v) for v in labels]
    texts = [k for k, x in enumerate(numbers) if x is None]
    if texts and len(texts) < len(labels) - len(texts):
        # mostly numbers: a text among them is a missing-value marker ("NA", "?") or a
        # typo, which would otherwise turn a numeric target into class labels
        k = texts[0]
        raise ValueError(
            f"{path}: line {lines[k]}, target column {target!r} has a non-numeric value "
            f"({labels[k]!r}) among numbers; missing targets are not allowed: fill it in or "
            "drop the line")
    y = np.array(labels) if texts else np.array(numbers, dtype=np.float64)
    if return_X_y:
        return X, y
    return Bunch(data=X, target=y, feature_names=np.array([header[i] for i in features],
                                                          dtype=object),
                 categorical=is_categorical, target_name=target)


def _column_index(path, header, name):
    """Index of the one column called ``name``; ValueError naming the file otherwise."""
    if header.count(name) != 1:
        problem = "no column" if name not in header else "more than one column"
        raise ValueError(f"{path} has {problem} {name!r}; columns are {header}")
    return header.index(name)


def _number(text):
    try:
        return float(text)
    except ValueError:
        return None


def _read_column(path, name, lines, values, categorical):
    """One feature column: float64 when numeric, an object array of strings when
    categorical (``categorical=True``, or not a single number among its values).

    ``values`` are the stripped fields, ``lines`` their line numbers in the file.
    """
    if not any(values):
        raise ValueError(f"{path}: column {name!r} is empty on every line; drop it")
    if categorical:
        return np.array(values, dtype=object)
    numbers = [_number(v) for v in values]
    texts = [k for k, (v, x) in enumerate(zip(values, numbers)) if v and x is None]
    if len(texts) == sum(map(bool, values)):
        return np.array(values, dtype=object)
    if texts:
        found = [k for k, x in enumerate(numbers) if x is not None]
        # the rarer kind is the likely mistake; a tie blames the text
        blame_text = len(found) >= len(texts)
        odd, other = (texts[0], found[0]) if blame_text else (found[0], texts[0])
        what = ("a non-numeric ({!r}) value among numbers" if blame_text
                else "a number ({!r}) among text values").format(values[odd])
        raise ValueError(
            f"{path}: line {lines[odd]}, column {name!r} has {what} (line "
            f"{lines[other]}: {values[other]!r}); correct it, or read the column as "
            f"categories (categorical=[{name!r}]; --categorical {name} in "
            "sk-weightfree compare)"
        )
    if "" in values:
        raise ValueError(
            f"{path}: line {lines[values.index('')]}, column {name!r} has an empty "
            "value; a numeric column needs a number on every line"
        )
    return np.array(numbers, dtype=np.float64)


def load_npz(path):
    """Read arrays ``X`` and ``y`` from a NumPy ``.npz`` archive.

    Parameters
    ----------
    path : str or path-like
        An archive written by :func:`numpy.savez` (or ``savez_compressed``)
        holding at least the arrays ``X`` (2-D, numeric) and ``y`` (one row per
        row of ``X``: labels of any type, or numeric targets, 1-D or 2-D).
        Pickled object arrays are refused.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a readable ``.npz`` archive, lacks ``X`` or ``y``,
        holds object arrays, a non-numeric or non-2-D ``X``, or ``X`` and ``y``
        of different lengths.
    """
    path = Path(path)
    with open(path, "rb") as handle:  # FileNotFoundError as is
        magic = handle.read(6)
    if magic == b"\x93NUMPY":
        raise ValueError(f"{path} holds a single .npy array, not an .npz archive")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not an .npz archive (the zip file numpy.savez writes)")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = {"X", "y"} - set(data.files)
            if missing:
                raise ValueError(
                    f"{path} lacks array(s) {sorted(missing)}; it needs 'X' and 'y'"
                )
            X, y = data["X"], data["y"]
    except ValueError as exc:
        if str(exc).startswith(str(path)):
            raise
        if "allow_pickle" in str(exc):
            raise ValueError(
                f"{path} holds object arrays (pickled data), which are refused; "
                "save X as a numeric array and y as numbers or fixed-width strings"
            ) from None
        raise ValueError(f"{path}: not a readable .npz archive ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: not a readable .npz archive ({exc})") from None
    if X.dtype.kind not in "biuf":
        raise ValueError(
            f"{path}: X must be numeric, got dtype {X.dtype} (strings or other "
            "non-numbers)"
        )
    if X.ndim != 2:
        raise ValueError(f"{path}: X must be 2-D (samples x features), got shape {X.shape}")
    if y.ndim not in (1, 2) or len(y) != len(X):
        raise ValueError(
            f"{path}: y must hold one label or target row per row of X; got X {X.shape}, "
            f"y {y.shape}"
        )
    return X, y
