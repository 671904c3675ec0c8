"""A compact, pickle-free model file, the numpy-only predictor read back from it, and ONNX.

:func:`dump` writes a fitted estimator's network as one ``.npz`` file: a JSON header and
plain arrays, the {0,1} masks bit-packed (one bit per possible edge). :func:`load` reads it
back without unpickling anything (``allow_pickle`` never enters) and without importing
torch, skorch or scikit-learn, checks every declared size against the data before it
allocates, and returns a :class:`CompactPredictor` that predicts with numpy and scipy
alone. :func:`to_onnx` exports the same network through ``torch.onnx``.

Every network is written as a *chain* of operations (reshape, ``[h, -h]``, linear, 2-D
convolution, per-unit affine maps, activations, pooling), one writer and one reader per
operation; a weight-agnostic ensemble as one chain per member, sharing their masks. A
network fitted from a ``module`` template must be such a chain, which is checked by tracing
it with ``torch.fx`` at dump time. Files of version 1 (multilayer networks as layers, as
0.2.0 wrote them) are read as the same chains.

The file format is described in the "Deploying a weight-free network" page of the docs.
"""

import json
import os
import warnings
import zipfile
from io import BytesIO

import numpy as np
import scipy.sparse as sp

from ._inference import (ACTIVATIONS, CHAIN_OPS, DEFAULT_BATCH_SIZE, METHODS, OUT_ACTIVATIONS,
                         POOL_MODES, Activation, Affine, Chain, Conv2d, Linear, Paired, Pool2d,
                         Reshape, _prod, compute_dtype, decision, forward, labels,
                         log_probabilities, predictions, probabilities)

__all__ = ["CompactPredictor", "dump", "load", "to_onnx"]

FORMAT_NAME = "sk_weightfree-compact"
# Version 1 (read only): multilayer networks as layers. Version 2: "network": "chain", one
# chain of "ops" (0.2.0 reads these). Version 3: "members", one chain per member of an
# ensemble. A file is written with the lowest version that holds it.
FORMAT_VERSION = 3
CHAIN_FORMAT_VERSION = 2
MAX_OPS = 1000
MAX_SAMPLE_DIMS = 8
PRECISIONS = {"float32": np.float32, "float16": np.float16}
MAX_HEADER_BYTES = 1 << 20
MAX_ENTRIES = 100_000
MAX_DIMENSION = 2**31 - 1
MAX_LABEL_CHARS = 1024
MAX_MEMBERS = 256
# A loaded network may hold at most this much memory per byte of file (bits -> float64 is
# 64x, plus the sum-of-inputs form), or MIN_MEMORY_BUDGET for small files: declared sizes
# cannot make load allocate more than the file justifies.
MEMORY_PER_FILE_BYTE = 160
MIN_MEMORY_BUDGET = 256 * 2**20
_HEADER_KEY = "header"


# ---------------------------------------------------------------------------- dump
def _check_network(estimator, function):
    """What :func:`dump`/:func:`to_onnx` write: a fitted network (see
    :func:`~sk_weightfree._architecture.check_network`)."""
    from ._architecture import check_network

    check_network(estimator, function, pipeline_advice=(
        f"pass its last step ({function}(pipeline[-1], ...)); the steps before it are not "
        "stored, so apply them to X yourself before predicting with what is read back."))


def dump(estimator, path, *, precision="float32"):
    """Write a fitted estimator to a compact, pickle-free ``.npz`` file.

    Parameters
    ----------
    estimator : fitted estimator of sk_weightfree, or MLPClassifier/MLPRegressor
        Any of the package's classifiers or regressors, or a fitted scikit-learn
        ``MLPClassifier``/``MLPRegressor``. With a ``module`` template: the
        dense, pruned, weight-free and random families, when the template is a chain of
        supported layers (``ValueError`` names the piece that is not).
    path : str, path-like or writable binary file
        Where to write (the name is used as given; ``.npz`` is not appended).
    precision : {"float32", "float16"}, default="float32"
        Storage type of real numbers: real weights and per-unit arrays. With "float32"
        the file reproduces a network trained in float32 exactly (per-unit arrays that
        float32 would round are kept in float64); "float16" halves the real-weight part
        and rounds (predictions change slightly). {0,1} masks are one bit per edge either
        way.

    Returns
    -------
    size : int
        Bytes written.

    Raises
    ------
    TypeError
        For what is not such a network: a pipeline (pass its last step; the
        preprocessing is not stored) or another kind of model.
    NotFittedError
        For an estimator not fitted yet.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}; got {precision!r}.")
    _check_network(estimator, "dump")
    from ._tracing import chain_from_estimator  # torch: the estimator is here, so is torch

    chain = chain_from_estimator(estimator)
    arrays = _Arrays(PRECISIONS[precision])
    ensemble = len(chain.members) > 1
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION if ensemble else CHAIN_FORMAT_VERSION,
        "package_version": _package_version(),
        "estimator": type(estimator).__name__,
        "task": "classifier" if chain.is_classifier else "regressor",
        "network": "chain",
        "out_activation": chain.out_activation,
        "n_features_in": chain.n_features_in,
        "n_outputs": chain.n_outputs,
        # regressors: predict returns shape (n_samples,) when fitted on a 1-D y
        "single_output": bool(getattr(estimator, "_single_output", chain.n_outputs == 1)),
        "dtype": precision,
        "classes": None if chain.classes is None else arrays.add(_label_array(chain.classes)),
    }
    members = [[_dump_op(op, arrays) for op in ops] for ops in chain.members]
    if ensemble:
        header["members"] = members
    else:
        header["ops"] = members[0]
    payload = {_HEADER_KEY: np.frombuffer(
        json.dumps(header, allow_nan=False).encode("utf-8"), dtype=np.uint8)}
    payload.update(arrays.arrays)
    if hasattr(path, "write"):
        start = path.tell() if path.seekable() else 0
        np.savez(path, **payload)
        return path.tell() - start if path.seekable() else None
    path = os.fspath(path)
    partial = path + ".partial"
    with open(partial, "wb") as f:
        np.savez(f, **payload)
    os.replace(partial, path)  # a reader never sees half a file
    return os.path.getsize(path)


def _package_version():
    try:
        from importlib.metadata import version

        return version("sk-weightfree")
    except Exception:  # not installed (source checkout): the package's own constant
        import sk_weightfree

        return getattr(sk_weightfree, "__version__", "unknown")


class _Arrays:
    """The arrays of a file, named a0, a1, ...; identical arrays are stored once."""

    def __init__(self, real_dtype):
        self.real_dtype = real_dtype
        self.arrays = {}
        self._seen = {}

    def add(self, array):
        array = np.ascontiguousarray(array)
        fingerprint = (array.dtype.str, array.shape, array.tobytes())
        if fingerprint not in self._seen:
            key = f"a{len(self.arrays)}"
            self.arrays[key] = array
            self._seen[fingerprint] = key
        return self._seen[fingerprint]

    def add_real(self, values, *, exact=False):
        """Real values in the file's precision; with ``exact``, in float64 where float32
        would round them (per-unit arrays: a few numbers per unit, not per edge)."""
        values = np.asarray(values, dtype=np.float64)
        stored = values.astype(self.real_dtype)
        if exact and self.real_dtype == np.float32 and not np.array_equal(stored, values):
            stored = values
        return self.add(stored)

    def add_optional(self, values, default):
        if np.all(values == default):
            return None
        return self.add_real(values, exact=True)


def _label_array(classes, where="stored without pickling"):
    """Class labels as numbers or a unicode array; anything else (labels that are other
    Python objects) raises ValueError saying they cannot be ``where``."""
    classes = np.asarray(classes)
    if classes.dtype.kind in "biuf":
        return classes
    if classes.dtype.kind == "U":
        return classes
    if all(isinstance(c, str) for c in classes):
        return classes.astype(str)
    raise ValueError(
        f"class labels of type {sorted({type(c).__name__ for c in classes})} cannot be "
        f"{where}; use numeric or string labels."
    )


def _dump_weights(coefs, value, arrays):
    """The weight part of a layer entry: ``mask`` (one value times {0,1}), ``sparse``
    (kept positions as bits, kept values) or ``dense``; arrays row-major in ``coefs``'s
    layout."""
    mask = coefs != 0
    entry = {}
    itemsize = np.dtype(arrays.real_dtype).itemsize
    if value is not None:
        entry.update(kind="mask", mask=arrays.add(np.packbits(mask, axis=None)), value=value)
    elif mask.size / 8 + itemsize * mask.sum() < itemsize * mask.size:
        # pruned layers: the kept positions as bits, the kept values in row-major order
        entry.update(kind="sparse", mask=arrays.add(np.packbits(mask, axis=None)),
                     values=arrays.add_real(coefs[mask]))
    else:
        entry.update(kind="dense", weights=arrays.add_real(coefs))
    return entry


def _dump_op(op, arrays):
    """One operation of a chain file (see the format section of the docs)."""
    entry = {"op": op.op}
    if isinstance(op, Reshape):
        entry["shape"] = list(op.shape)
    elif isinstance(op, (Linear, Conv2d)):
        entry["shape"] = [int(n) for n in op.weight.shape]
        entry.update(_dump_weights(op.weights, op.shared_value, arrays))
        if isinstance(op, Conv2d):
            entry.update(stride=list(op.stride), padding=[p for pair in op.padding for p in pair],
                         dilation=list(op.dilation))
    elif isinstance(op, Affine):
        entry["scale"] = None if op.scale is None else arrays.add_optional(op.scale, 1.0)
        entry["offset"] = None if op.offset is None else arrays.add_optional(op.offset, 0.0)
    elif isinstance(op, Activation):
        entry["name"] = op.name
    elif isinstance(op, Pool2d):
        entry.update(mode=op.mode, kernel=list(op.kernel), stride=list(op.stride))
    elif not isinstance(op, Paired):
        raise TypeError(f"cannot write {type(op).__name__}")
    return entry


# ---------------------------------------------------------------------------- load
def load(path, *, inference="auto", batch_size=DEFAULT_BATCH_SIZE):
    """Read a file written by :func:`dump` into a numpy-only :class:`CompactPredictor`.

    Safe on files from an untrusted source: nothing is unpickled or executed, every
    declared size is checked against the data before anything is allocated, and any
    malformed, truncated or inconsistent file raises ``ValueError``. Imports neither torch
    nor skorch nor scikit-learn.

    Parameters
    ----------
    path : str, path-like or readable binary file
    inference : {"auto", "sum", "blas"}, default="auto"
        How {0,1} layers are computed: sums of selected inputs or BLAS products, chosen
        per layer and batch size ("auto"), or always one of the two.
    batch_size : int, default=16384
        Rows per batch at prediction (bounds memory; outputs do not depend on it).

    Returns
    -------
    predictor : CompactPredictor
    """
    if inference not in METHODS:
        raise ValueError(f"inference must be one of {METHODS}; got {inference!r}.")
    if hasattr(path, "read"):
        return _load_file(path, "<file object>", inference, batch_size)
    with open(path, "rb") as f:  # a missing file is FileNotFoundError, not a broken file
        return _load_file(f, os.fspath(path), inference, batch_size)


class _Invalid(ValueError):
    pass


def _load_file(f, name, inference, batch_size):
    try:
        header, chain = _read(f)
    except _Invalid as exc:
        raise ValueError(f"{name} is not a valid sk_weightfree model file: {exc}") from None
    except Exception as exc:  # zipfile, zlib, struct, numpy header parsing, ...
        raise ValueError(
            f"{name} is not a valid sk_weightfree model file "
            f"({type(exc).__name__}: {exc})."
        ) from None
    return CompactPredictor(chain, header, inference=inference, batch_size=batch_size)


def _read(f):
    f.seek(0, os.SEEK_END)
    file_size = f.tell()
    f.seek(0)
    if not zipfile.is_zipfile(f):
        raise _Invalid("not a zip (.npz) archive")
    f.seek(0)
    with zipfile.ZipFile(f) as archive:
        entries = archive.infolist()
        if len(entries) > MAX_ENTRIES:
            raise _Invalid(f"{len(entries)} entries")
        declared = 0
        for info in entries:
            if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
                raise _Invalid(f"entry {info.filename!r} is compressed; entries are stored")
            declared += info.file_size
        if declared > file_size:
            raise _Invalid(f"entries declare {declared} bytes in a {file_size}-byte file")
        reader = _EntryReader(archive, file_size)
        raw = reader.read(_HEADER_KEY, kinds="u", shape=None)
        if raw.ndim != 1 or raw.size > MAX_HEADER_BYTES:
            raise _Invalid("the header is not a 1-D byte array of at most 1 MiB")
        try:
            header = json.loads(raw.tobytes().decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise _Invalid(f"the header is not JSON ({exc})") from None
        chain = _chain_from_header(header, reader)
    return header, chain


class _EntryReader:
    """Reads ``.npy`` entries of the archive, checking dtype and shape before the data."""

    def __init__(self, archive, file_size):
        self.archive = archive
        self.file_size = file_size
        self.names = set(archive.namelist())

    def header(self, key):
        """``(shape, dtype)`` of an entry, from its ``.npy`` header alone."""
        handle, shape, dtype, _ = self._open(key)
        handle.close()
        return shape, dtype

    def _open(self, key):
        if not isinstance(key, str) or f"{key}.npy" not in self.names:
            raise _Invalid(f"missing array {key!r}")
        info = self.archive.getinfo(f"{key}.npy")
        handle = self.archive.open(info)
        try:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
            else:
                raise _Invalid(f"array {key!r}: unsupported .npy version {version}")
            if fortran and len(shape) > 1:
                raise _Invalid(f"array {key!r} is in Fortran order")
            if dtype.hasobject or dtype.names is not None or dtype.subdtype is not None:
                raise _Invalid(f"array {key!r} has dtype {dtype}; only plain numbers and "
                               f"strings are allowed")
            n_items = 1
            for n in shape:
                n_items *= n
            n_bytes = n_items * dtype.itemsize
            if n_bytes != info.file_size - handle.tell():
                raise _Invalid(f"array {key!r} declares shape {shape} of {dtype} "
                               f"({n_bytes} bytes) but holds {info.file_size - handle.tell()}")
        except BaseException:
            handle.close()
            raise
        return handle, shape, dtype, n_bytes

    def read(self, key, *, kinds, shape, max_itemsize=8):
        """The array ``key``: dtype kind in ``kinds``, ``shape`` (None: any), native order."""
        handle, actual_shape, dtype, n_bytes = self._open(key)
        with handle:
            if dtype.kind not in kinds or (dtype.kind != "U" and dtype.itemsize > max_itemsize):
                raise _Invalid(f"array {key!r} has dtype {dtype}")
            if dtype.kind == "U" and dtype.itemsize > 4 * MAX_LABEL_CHARS:
                raise _Invalid(f"array {key!r}: labels longer than {MAX_LABEL_CHARS} characters")
            if shape is not None and tuple(actual_shape) != tuple(shape):
                raise _Invalid(f"array {key!r} has shape {actual_shape}, expected {tuple(shape)}")
            data = handle.read(n_bytes)
            if len(data) != n_bytes or handle.read(1):  # reading to the end checks the CRC
                raise _Invalid(f"array {key!r} is truncated")
        array = np.frombuffer(data, dtype=dtype).reshape(actual_shape)
        return array.astype(dtype.newbyteorder("="))  # a writable, native-order copy


def _require(condition, message):
    if not condition:
        raise _Invalid(message)


def _int(header, key, low=1, high=MAX_DIMENSION):
    value = header.get(key)
    _require(isinstance(value, int) and not isinstance(value, bool) and low <= value <= high,
             f"{key!r} must be an integer in [{low}, {high}]; got {value!r}")
    return value


def _choice(header, key, options):
    value = header.get(key)
    _require(isinstance(value, str) and value in options,
             f"{key!r} must be one of {tuple(options)}; got {value!r}")
    return value


def _chain_from_header(header, reader):
    """The :class:`Chain` of a file of any version, its geometry checked and the memory it
    needs bounded before any weight is read."""
    _require(isinstance(header, dict), "the header is not a JSON object")
    _require(header.get("format") == FORMAT_NAME, f"format is {header.get('format')!r}")
    version = header.get("format_version")
    _require(isinstance(version, int) and not isinstance(version, bool) and version >= 1,
             f"format_version {version!r}")
    if version > FORMAT_VERSION:
        raise _Invalid(
            f"it has format version {version}, newer than this sk_weightfree reads "
            f"(up to {FORMAT_VERSION}); upgrade sk_weightfree"
        )
    network = header.get("network", "mlp")
    _require(network in ("mlp", "chain") and (network == "mlp") == (version == 1),
             f"'network' is {network!r} in a version {version} file")
    if network == "mlp":
        return _read_chain(header, _layer_members(header), reader, transposed=True)
    if version >= 3 and "members" in header:
        members = header["members"]
        _require(isinstance(members, list) and 1 <= len(members) <= MAX_MEMBERS,
                 f"'members' must be a list of 1 to {MAX_MEMBERS} chains")
    else:
        members = [header.get("ops")]
    return _read_chain(header, members, reader, transposed=False)


def _layer_members(header):
    """A version-1 file's members (layers of a multilayer network) as the entries of their
    chains' operations; linear weights stay in the file's (n_in, n_out) layout."""
    activation = _choice(header, "activation", ACTIVATIONS)
    _require(isinstance(header.get("paired_inputs"), bool), "'paired_inputs' must be a boolean")
    paired = header["paired_inputs"]
    shapes = header.get("layer_shapes")
    _require(isinstance(shapes, list) and 1 <= len(shapes) <= MAX_OPS,
             f"'layer_shapes' must be a list of 1 to {MAX_OPS} [n_in, n_out] pairs")
    for i, shape in enumerate(shapes):
        _require(isinstance(shape, list) and len(shape) == 2 and all(
            isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= MAX_DIMENSION
            for n in shape), f"layer_shapes[{i}] is {shape!r}")
    members = header.get("members")
    _require(isinstance(members, list) and 1 <= len(members) <= MAX_MEMBERS,
             f"'members' must be a list of 1 to {MAX_MEMBERS} networks")
    chains = []
    for m, member in enumerate(members):
        _require(isinstance(member, list) and len(member) == len(shapes),
                 f"member {m} does not have {len(shapes)} layers")
        ops = []
        for i, (layer, shape) in enumerate(zip(member, shapes)):
            _require(isinstance(layer, dict), f"layer {m}.{i} is not a JSON object")
            if paired:
                ops.append({"op": "paired"})
            weights = {key: layer[key] for key in ("kind", "mask", "weights", "values", "value")
                       if key in layer}
            ops.append({"op": "linear", "shape": shape[::-1], **weights})
            ops.append({"op": "affine", "scale": layer.get("unit_scales"),
                        "offset": layer.get("intercepts")})
            if i < len(shapes) - 1:
                ops.append({"op": "activation", "name": activation})
                if layer.get("unit_signs") is not None:
                    ops.append({"op": "affine", "scale": layer["unit_signs"], "offset": None})
        chains.append(ops)
    return chains


def _read_chain(header, members, reader, *, transposed):
    """A :class:`Chain` from its members' operation entries. ``transposed``: linear weights
    are stored (in, out), as version 1 stored them, instead of (out, in)."""
    task = _choice(header, "task", ("classifier", "regressor"))
    out_activation = _choice(header, "out_activation", OUT_ACTIVATIONS)
    _choice(header, "dtype", PRECISIONS)
    n_features = _int(header, "n_features_in")
    # 1. geometry alone: weight layers get zero-stride stand-ins (no memory) of their shape
    chains, ends = [], set()
    weight_entries, n_unit_values, per_row = set(), 0, n_features
    for m, entries in enumerate(members):
        _require(isinstance(entries, list) and 1 <= len(entries) <= MAX_OPS,
                 f"'ops' must be a list of 1 to {MAX_OPS} operations")
        ops, shape = [], (n_features,)
        for i, entry in enumerate(entries):
            where = f"{m}.{i}" if len(members) > 1 else str(i)
            op = _standin_op(entry, shape, where)
            if isinstance(op, (Linear, Conv2d)):
                # members share masks: each distinct weight array counts once
                weight_entries.add((op.weight.shape, json.dumps(
                    {k: entry.get(k) for k in ("kind", "mask", "weights", "values")})))
            elif isinstance(op, Affine):
                n_unit_values += shape[0]
            try:
                per_row = max(per_row, op.values_per_row(shape))
                shape = tuple(op.out_shape(shape))
            except ValueError as exc:
                raise _Invalid(f"operation {where} ({op.op}): {exc}") from None
            _require(1 <= len(shape) <= MAX_SAMPLE_DIMS and all(
                1 <= n <= MAX_DIMENSION for n in shape),
                f"operation {where} ({op.op}) gives samples of shape {shape}")
            ops.append(op)
        chains.append(ops)
        ends.add(shape)
    _require(len(ends) == 1 and len(next(iter(ends))) == 1,
             f"the chains end with samples of shape(s) {sorted(ends)}, not one value per "
             f"output")
    n_last = next(iter(ends))[0]
    n_outputs = _int(header, "n_outputs", 1, n_last)
    # the predictor holds each weight as float64 (plus a signed and a sparse copy) and runs
    # batches of at most max(MAX_BATCH_VALUES, per_row) values per array
    n_weight_values = sum(_prod(shape) for shape, _ in weight_entries)
    planned = 8 * (3 * n_weight_values + 2 * n_unit_values + 4 * per_row)
    budget = max(MIN_MEMORY_BUDGET, MEMORY_PER_FILE_BYTE * reader.file_size)
    _require(planned <= budget,
             f"its network would need about {planned / 2**20:.0f} MiB, more than "
             f"{budget / 2**20:.0f} MiB for a file of {reader.file_size} bytes")
    classes = _classes_from_header(header, reader, task, out_activation, n_last, n_outputs)
    # 2. the arrays
    cache = {}
    for m, (entries, ops) in enumerate(zip(members, chains)):
        shape = (n_features,)
        for i, (entry, op) in enumerate(zip(entries, ops)):
            _read_arrays(op, entry, shape, reader, cache, f"{m}.{i}" if len(members) > 1
                         else str(i), transposed)
            shape = op.out_shape(shape)
    return Chain(members=chains, n_features_in=n_features, out_activation=out_activation,
                 classes=classes, n_outputs=n_outputs,
                 estimator=str(header.get("estimator", "")))


def _standin_op(entry, shape, where):
    """The operation of ``entry`` with stand-in arrays (no memory): geometry only."""
    _require(isinstance(entry, dict), f"operation {where} is not a JSON object")
    kind = _choice(entry, "op", CHAIN_OPS)
    if kind == "reshape":
        return Reshape(_int_list(entry, "shape", range(1, MAX_SAMPLE_DIMS + 1), 1, where))
    if kind == "paired":
        return Paired()
    if kind == "linear":
        return Linear(np.broadcast_to(np.float64(0.0), _int_list(entry, "shape", (2,), 1,
                                                                  where)))
    if kind == "conv2d":
        dims = _int_list(entry, "shape", (4,), 1, where)
        top, bottom, left, right = _int_list(entry, "padding", (4,), 0, where)
        return Conv2d(np.broadcast_to(np.float64(0.0), dims),
                      _int_list(entry, "stride", (2,), 1, where), ((top, bottom), (left, right)),
                      _int_list(entry, "dilation", (2,), 1, where))
    if kind == "affine":
        _require(len(shape) >= 1, f"operation {where}: affine on a scalar")
        return Affine(None, np.broadcast_to(np.float64(0.0), shape[:1]))
    if kind == "activation":
        return Activation(_choice(entry, "name", ACTIVATIONS))
    return Pool2d(_choice(entry, "mode", POOL_MODES), _int_list(entry, "kernel", (2,), 1, where),
                  _int_list(entry, "stride", (2,), 1, where))


def _read_arrays(op, entry, shape, reader, cache, where, transposed):
    """Fill a stand-in operation with its arrays from the file."""
    if isinstance(op, Linear) and transposed:
        coefs, op.value = _load_weights(entry, op.weight.shape[::-1], reader, cache, where)
        op.weight = coefs.T
    elif isinstance(op, (Linear, Conv2d)):
        op.weight, op.value = _load_weights(entry, op.weight.shape, reader, cache, where)
    elif isinstance(op, Affine):
        for key in ("scale", "offset"):
            _require(key in entry, f"operation {where}: affine without {key!r}")
            values = None
            if entry[key] is not None:
                values = _finite(_cached_read(reader, cache, entry[key], "f", shape[:1]),
                                 f"operation {where} {key}")
            setattr(op, key, values)


def _finite(array, what):
    _require(np.isfinite(array).all(), f"{what} holds non-finite values")
    return array


def _cached(cache, key, make):
    # members of an ensemble share their masks and per-unit arrays: read and build once
    if key not in cache:
        cache[key] = make()
    return cache[key]


def _cached_read(reader, cache, key, kinds, shape, max_itemsize=8):
    return _cached(cache, ("array", str(key), kinds, shape),
                   lambda: reader.read(key, kinds=kinds, shape=shape, max_itemsize=max_itemsize))


def _load_weights(entry, shape, reader, cache, where):
    """``(coefs, value)`` of a layer entry's weight part, ``coefs`` shaped ``shape``."""
    shape = tuple(shape)
    n_edges = 1
    for n in shape:
        n_edges *= n

    def cached(key, make):
        return _cached(cache, key, make)

    def read(key, kinds, shape, max_itemsize=8):
        return _cached_read(reader, cache, key, kinds, shape, max_itemsize)

    def mask():
        key = entry.get("mask")

        def unpack():
            packed = read(key, "u", ((n_edges + 7) // 8,), max_itemsize=1)
            bits = np.unpackbits(packed)
            _require(not bits[n_edges:].any(), f"layer {where}: mask padding bits are set")
            return bits[:n_edges].reshape(shape).astype(np.float64)

        return cached(("mask", str(key), shape), unpack)

    kind = _choice(entry, "kind", ("mask", "sparse", "dense"))
    value = None
    if kind == "mask":
        value = entry.get("value")
        _require(isinstance(value, (int, float)) and not isinstance(value, bool)
                 and np.isfinite(value) and value != 0,
                 f"layer {where}: 'value' must be a finite nonzero number; got {value!r}")
        value = float(value)
        coefs = mask()
    elif kind == "sparse":
        def scatter():
            keep = mask() != 0
            n_kept = int(keep.sum())
            shape_values, _ = reader.header(entry.get("values"))
            _require(tuple(shape_values) == (n_kept,),
                     f"layer {where}: {n_kept} kept edges but values of shape {shape_values}")
            values = _finite(read(entry.get("values"), "f", (n_kept,)), f"layer {where} weights")
            coefs = np.zeros(shape)
            coefs[keep] = values
            return coefs

        coefs = cached(("sparse", str(entry.get("mask")), str(entry.get("values")), shape),
                       scatter)
    else:
        coefs = _finite(read(entry.get("weights"), "f", shape), f"layer {where} weights")
    return coefs, value


def _int_list(entry, key, length, low, where):
    values = entry.get(key)
    _require(isinstance(values, list) and (len(values) in length) and all(
        isinstance(n, int) and not isinstance(n, bool) and low <= n <= MAX_DIMENSION
        for n in values),
        f"operation {where}: {key!r} must be a list of "
        f"{f'{length[0]} to {length[-1]}' if len(length) > 1 else length[0]} integers "
        f"in [{low}, {MAX_DIMENSION}]; got {values!r}")
    return tuple(values)


def _classes_from_header(header, reader, task, out_activation, n_last, n_outputs):
    if task == "classifier":
        _require(out_activation in ("softmax", "logistic"),
                 f"a classifier's out_activation is {out_activation!r}")
        classes = reader.read(header.get("classes"), kinds="biufU", shape=(n_last,))
        _require(classes.dtype.kind != "f" or np.isfinite(classes).all(),
                 "class labels are not finite")
        return classes
    _require(out_activation == "identity",
             f"a regressor's out_activation is {out_activation!r}")
    _require(header.get("classes") is None, "a regressor has classes")
    _require(isinstance(header.get("single_output", False), bool),
             "'single_output' must be a boolean")
    _require(not header.get("single_output") or n_outputs == 1,
             f"'single_output' with {n_outputs} outputs")
    return None


# ---------------------------------------------------------------------------- predictor
class _ClassifierOnly:
    """A method that exists only on predictors of classifiers (``hasattr`` is False else)."""

    def __init__(self, method):
        self.method = method
        self.__doc__ = method.__doc__

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        if obj.classes_ is None:
            raise AttributeError(f"a regressor's predictor has no {self.name}")
        return self.method.__get__(obj, objtype)


class CompactPredictor:
    """A fitted network read by :func:`load`: predicts with numpy and scipy alone.

    Parameters
    ----------
    chain : Chain
        The network (see :mod:`sk_weightfree._inference`).
    metadata : dict
        The file's header.
    inference : {"auto", "sum", "blas"}, default="auto"
    batch_size : int, default=16384

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,) or None
        Class labels (None for a regressor).
    n_features_in_ : int
    n_outputs_ : int
    n_layers_ : int
        Layers including input and output, as in ``MLPClassifier`` (for a template
        network: weight layers + 1, as the estimator's ``n_layers_``).
    activation, out_activation_ : str
        ``activation`` is the hidden layers' one activation, None when the layers use
        several (a template network's may).
    estimator_name_ : str
        Class name of the estimator that was dumped.
    metadata_ : dict
        The file's JSON header (format and package versions, shapes, ...).
    """

    def __init__(self, chain, metadata=None, *, inference="auto", batch_size=DEFAULT_BATCH_SIZE):
        if inference not in METHODS:
            raise ValueError(f"inference must be one of {METHODS}; got {inference!r}.")
        self.chain = chain
        self.metadata_ = dict(metadata or {})
        self.inference = inference
        self.batch_size = batch_size
        self.classes_ = chain.classes
        self.n_features_in_ = chain.n_features_in
        self.n_outputs_ = chain.n_outputs
        self.n_layers_ = len(chain.layer_shapes) + 1
        self.activation = chain.activation
        self.out_activation_ = chain.out_activation
        self.estimator_name_ = chain.estimator

    def __repr__(self):
        members = len(self.chain.members)
        ensemble = f", {members} members" if members > 1 else ""
        return f"CompactPredictor({self.estimator_name_}, {self.chain.describe()}{ensemble})"

    def _validate(self, X):
        if sp.issparse(X):
            if X.ndim != 2:
                raise ValueError(f"Expected a 2-D matrix; got {X.ndim} dimensions.")
            X = X.tocsr().astype(compute_dtype(X.dtype))
            values = X.data
        else:
            X = np.asarray(X)
            if X.dtype.kind == "c":
                raise ValueError("Complex data not supported.")
            try:
                X = X.astype(compute_dtype(X.dtype), copy=False)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"X cannot be converted to numbers: {exc}") from None
            if X.ndim != 2:
                raise ValueError(
                    f"Expected a 2-D array; got {X.ndim} dimensions. Reshape a single "
                    f"sample with X.reshape(1, -1)."
                )
            values = X
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but this predictor expects "
                f"{self.n_features_in_}."
            )
        if not np.isfinite(values).all():
            raise ValueError("Input X contains NaN or infinity.")
        return X

    def _output(self, X):
        return forward(self.chain, self._validate(X), batch_size=self.batch_size,
                       method=self.inference)

    def decision_function(self, X):
        """The network's output: logits (binary: their difference, shape (n_samples,)),
        or for a regressor the prediction itself."""
        return decision(self._output(X), self.out_activation_)

    def predict(self, X):
        """Class labels (multilabel: indicator matrix) or regression outputs."""
        z = self._output(X)
        if self.classes_ is None:
            return predictions(z, self.metadata_.get("single_output", z.shape[1] == 1))
        return labels(z, self.out_activation_, self.classes_)

    def _predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns in ``classes_`` order."""
        return probabilities(self._output(X), self.out_activation_)

    predict_proba = _ClassifierOnly(_predict_proba)

    def _predict_log_proba(self, X):
        """Log of :meth:`predict_proba`."""
        return log_probabilities(self._output(X), self.out_activation_)

    predict_log_proba = _ClassifierOnly(_predict_log_proba)

    def score(self, X, y, sample_weight=None):
        """Accuracy (classifiers; subset accuracy for multilabel) or R² (regressors,
        averaged over outputs), as the estimator's ``score``."""
        prediction = self.predict(X)
        y = np.asarray(y)
        if y.shape[0] != prediction.shape[0]:
            raise ValueError(f"X has {prediction.shape[0]} samples but y has {y.shape[0]}.")
        weights = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
        if self.classes_ is not None:
            correct = prediction == y
            if correct.ndim > 1:
                correct = correct.all(axis=1)
            return float(np.average(correct, weights=weights))
        return _r2(y.astype(float), prediction, weights)


def _r2(y, prediction, weights):
    y = y.reshape(len(y), -1)
    prediction = prediction.reshape(len(prediction), -1)
    w = np.ones(len(y)) if weights is None else weights
    w = w[:, None]
    residual = (w * (y - prediction) ** 2).sum(axis=0)
    mean = (w * y).sum(axis=0) / w.sum()
    total = (w * (y - mean) ** 2).sum(axis=0)
    # as sklearn.metrics.r2_score: a constant target scores 1 if predicted exactly, else 0
    scores = np.where(total > 0, 1.0 - residual / np.where(total > 0, total, 1.0),
                      np.where(residual == 0, 1.0, 0.0))
    return float(scores.mean())


# ---------------------------------------------------------------------------- ONNX
def to_onnx(estimator, path, *, dtype="float32", opset_version=None):
    """Export a fitted estimator's network to ONNX through ``torch.onnx``.

    The graph is the chain that :func:`dump` writes, as plain torch layers: reshapes,
    ``[h, -h]`` concatenations (paired inputs), ``Linear``/``Conv2d`` without bias holding
    the weights (the {0,1} masks for weight-free networks), per-unit affine maps (biases,
    unit scales and signs, batch norms, a regressor's target scale), activations and
    pooling, followed by the output function. A network fitted from a ``module`` template
    must be a chain of supported layers, as for :func:`dump`. Its input is ``X`` (any
    number of rows).

    Outputs, as skl2onnx names a classifier's without its ZipMap:

    - classifiers: ``label`` then ``probabilities``. ``label`` is what ``predict``
      returns: shape (n_samples,), in the type of ``classes_`` (int64 for integer
      classes, string for string classes, float or double for float classes, bool),
      looked up with ``ArgMax`` and ``Gather`` in a constant of the classes; for
      multilabel ``y`` the indicator matrix, int64 of shape (n_samples, n_labels).
      ``probabilities`` is what ``predict_proba`` returns, shape (n_samples,
      n_classes) (softmax; logistic per column for multilabel; an ensemble averages its
      members' probabilities).
    - regressors: ``predictions``, shape (n_samples, n_outputs).

    Only operators of the default ONNX domain are used (no ``ai.onnx.ml``).
    Needs the optional extra: ``pip install "sk-weightfree[onnx]"``.

    Parameters
    ----------
    estimator : fitted estimator of sk_weightfree, or MLPClassifier/MLPRegressor
        What :func:`dump` accepts (not a pipeline: pass its last step).
    path : str or path-like
    dtype : {"float32", "float64"}, default="float32"
        Type of the graph's input, weights and probabilities or predictions (not of
        ``label``, which has the classes' type).
    opset_version : int, optional
        ONNX opset (torch's default when None).

    Returns
    -------
    path : str

    Raises
    ------
    TypeError
        For what is not such a network (a pipeline, another kind of model).
    NotFittedError
        For an estimator not fitted yet.
    ValueError
        For a network that is not a chain of supported layers, or class labels that no
        ONNX tensor holds (Python objects other than strings; unsigned integers beyond
        int64; float types wider than float64). Nothing is written then.
    """
    try:
        import onnx
    except ImportError:
        raise ImportError(
            'to_onnx needs the optional ONNX packages: pip install "sk-weightfree[onnx]"'
        ) from None
    import torch

    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64'; got {dtype!r}.")
    if opset_version is not None and (not isinstance(opset_version, (int, np.integer))
                                      or isinstance(opset_version, bool)):
        raise TypeError(f"opset_version must be an integer or None; got {opset_version!r}.")
    _check_network(estimator, "to_onnx")
    from ._tracing import chain_from_estimator, chain_module

    chain = chain_from_estimator(estimator)  # refuses what the compact file cannot hold
    path = os.fspath(path)
    classes = None  # the constant labels are gathered from (not for multilabel)
    if not chain.is_classifier:
        outputs = ["predictions"]
    elif chain.multilabel:
        outputs = ["label", "probabilities"]
    else:
        classes = _onnx_classes(chain.classes)
        outputs = ["class_index", "probabilities"]
    torch_dtype = getattr(torch, dtype)
    module = chain_module(chain, labels=True).to(torch_dtype)
    example = torch.zeros(2, chain.n_features_in, dtype=torch_dtype)
    exported = BytesIO()
    with warnings.catch_warnings():
        # torch >= 2.9 prefers the dynamo exporter, which needs onnxscript; the TorchScript
        # exporter handles these plain layers and needs nothing beyond torch
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX",
                                category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
        torch.onnx.export(
            module, (example,), exported, dynamo=False, input_names=["X"],
            output_names=outputs, opset_version=opset_version,
            dynamic_axes={name: {0: "n_samples"} for name in ["X", *outputs]},
        )
    model = onnx.load_from_string(exported.getvalue())
    if classes is not None:
        _gather_labels(model, classes)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def _onnx_classes(classes):
    """``classes_`` as the constant the ``label`` output is gathered from: integers as
    int64, strings as objects (an ONNX string tensor), floats and bools as they are."""
    where = "held by an ONNX tensor"
    classes = _label_array(classes, where)
    kind = classes.dtype.kind
    if kind == "U":
        return classes.astype(object)
    if kind in "iu":
        if classes.size and classes.max() > np.iinfo(np.int64).max:
            raise ValueError(f"class labels up to {classes.max()} cannot be {where} of "
                             f"int64, the type of integer labels in the ONNX graph.")
        return classes.astype(np.int64)
    if kind == "f" and classes.dtype.itemsize > 8:
        raise ValueError(f"class labels of type {classes.dtype} cannot be {where}; use "
                         f"float64 labels.")
    return classes


def _gather_labels(model, classes):
    """Replace the graph's first output, the predicted class's index, by ``label``: that
    class looked up (Gather) in a Constant of ``classes``; a node, not an initializer, so
    that graphs of every opset hold it (IR version 3 lists initializers as inputs)."""
    from onnx import helper, numpy_helper

    graph = model.graph
    index, rest = graph.output[0], list(graph.output[1:])
    names = {t.name for t in graph.initializer} | {n for node in graph.node
                                                    for n in node.output}
    constant = "classes"
    while constant in names:
        constant += "_"
    graph.node.extend([
        helper.make_node("Constant", [], [constant], name=constant,
                         value=numpy_helper.from_array(classes, constant)),
        helper.make_node("Gather", [constant, index.name], ["label"], axis=0, name="label"),
    ])
    label = helper.make_tensor_value_info(
        "label", helper.np_dtype_to_tensor_dtype(classes.dtype), ["n_samples"])
    del graph.output[:]
    graph.output.extend([label, *rest])
