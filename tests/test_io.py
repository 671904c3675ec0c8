"""sk_weightfree.io: the compact file, the numpy-only predictor, hostile files, ONNX."""

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.datasets import make_regression
from sklearn.exceptions import NotFittedError
from sklearn.metrics import r2_score

import sk_weightfree
from sk_weightfree import io as skio
from conftest import case_id

PACKAGE_ROOT = Path(sk_weightfree.__file__).parent.parent
# a version-1 file (multilayer network as layers) written by 0.2.0
LAYERS_FILE = Path(__file__).parent / "data" / "v0_2_0_weight_free_mlp.npz"
TINY = dict(hidden_layer_sizes=(16,), max_epochs=2, batch_size=32, device="cpu", random_state=0)
CLASSIFIER_CASES = [
    ("DenseClassifier", {}),
    ("WeightFreeClassifier", {}),
    ("PrunedClassifier", {"finetune_epochs": 1}),
    ("WeightAgnosticClassifier", {"ensemble": False}),
    ("WeightAgnosticClassifier", {"ensemble": True}),
    ("RandomNetworkClassifier", {}),
]
REGRESSOR_CASES = [(name.replace("Classifier", "Regressor"), params)
                   for name, params in CLASSIFIER_CASES]


_FITTED = {}


def fitted(name, params, X, y, **extra):
    """Fit once per module and case (the fits are the slow part)."""
    key = (name, tuple(sorted({**params, **extra}.items())), X.tobytes(),
           np.asarray(y).tobytes(), np.asarray(y).dtype.str)
    if key not in _FITTED:
        cls = getattr(sk_weightfree, name)
        _FITTED[key] = cls(**{**TINY, **params, **extra}).fit(X, y)
    return _FITTED[key]


def assert_same_labels(labels, expected, logits):
    """Labels agree wherever the estimator's top two logits differ (exact ties, frequent
    in weight-agnostic networks, fall either way at rounding level)."""
    top2 = np.sort(logits, axis=1)[:, -2:]
    decided = top2[:, 1] - top2[:, 0] > 1e-9 * (1 + np.abs(top2[:, 1]))
    assert decided.mean() > 0.5
    np.testing.assert_array_equal(labels[decided], expected[decided])


@pytest.fixture(scope="module")
def valid_file(tmp_path_factory, digits_small):
    """A small valid file (weight-free, paired inputs) and data to predict."""
    X, y = digits_small
    est = fitted("WeightFreeClassifier", {}, X, y)
    path = tmp_path_factory.mktemp("io") / "model.npz"
    skio.dump(est, path)
    return path, X[:20]


@pytest.fixture(scope="module")
def layers_file(digits_small):
    """The stored version-1 file of 0.2.0 (weight-free, paired inputs), and data."""
    X, _ = digits_small
    return LAYERS_FILE, X[:20]


# ---------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("case", CLASSIFIER_CASES, ids=case_id)
def test_round_trip_classifier(case, digits_small, tmp_path):
    X, y = digits_small
    labels = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven",
                       "eight", "nine"])[y]
    est = fitted(*case, X, labels)
    path = tmp_path / "model.npz"
    size = skio.dump(est, path)
    assert size == path.stat().st_size
    predictor = skio.load(path)
    np.testing.assert_array_equal(predictor.classes_, est.classes_)
    assert predictor.n_features_in_ == est.n_features_in_
    assert predictor.n_outputs_ == est.n_outputs_
    assert predictor.estimator_name_ == case[0]
    np.testing.assert_allclose(predictor.predict_proba(X), est.predict_proba(X),
                               rtol=0, atol=1e-6)
    logits = est.predict_log_proba(X)
    assert_same_labels(predictor.predict(X), est.predict(X), logits)
    np.testing.assert_allclose(np.exp(predictor.predict_log_proba(X)), est.predict_proba(X),
                               atol=1e-6)
    assert abs(predictor.score(X, labels) - est.score(X, labels)) <= 2 / len(X)
    for method in ("sum", "blas"):
        np.testing.assert_allclose(skio.load(path, inference=method).predict_proba(X),
                                   est.predict_proba(X), rtol=0, atol=1e-6)


def test_binary_decision_function_and_weights(digits_small, tmp_path):
    X, y = digits_small
    est = fitted("DenseClassifier", {}, X, y % 2)
    skio.dump(est, tmp_path / "m.npz")
    predictor = skio.load(tmp_path / "m.npz")
    np.testing.assert_allclose(predictor.decision_function(X), est.decision_function(X),
                               atol=1e-6)
    w = np.linspace(0, 1, len(X))
    assert predictor.score(X, y % 2, sample_weight=w) == pytest.approx(
        est.score(X, y % 2, sample_weight=w))


@pytest.mark.parametrize("case", REGRESSOR_CASES, ids=case_id)
@pytest.mark.parametrize("n_targets", [1, 2])
def test_round_trip_regressor(case, n_targets, tmp_path):
    X, y = make_regression(n_samples=150, n_features=6, n_targets=n_targets, noise=0.1,
                           random_state=0)
    y = y * 10 + 3
    est = fitted(*case, X, y)
    skio.dump(est, tmp_path / "r.npz")
    predictor = skio.load(tmp_path / "r.npz")
    assert not hasattr(predictor, "predict_proba")
    expected = est.predict(X)
    assert predictor.predict(X).shape == expected.shape
    np.testing.assert_allclose(predictor.predict(X), expected, rtol=2e-5, atol=1e-6)
    assert predictor.score(X, y) == pytest.approx(r2_score(y, expected), abs=1e-6)


def test_round_trip_multilabel(digits_small, tmp_path):
    X, y = digits_small
    Y = np.stack([y % 2, y > 4, y == 0], axis=1).astype(int)
    est = fitted("WeightFreeClassifier", {}, X, Y)
    skio.dump(est, tmp_path / "ml.npz")
    predictor = skio.load(tmp_path / "ml.npz")
    np.testing.assert_allclose(predictor.predict_proba(X), est.predict_proba(X), atol=1e-6)
    np.testing.assert_array_equal(predictor.predict(X), est.predict(X))
    assert predictor.score(X, Y) == pytest.approx(est.score(X, Y))


def test_sparse_input_and_validation(valid_file):
    import scipy.sparse as sp

    path, X = valid_file
    predictor = skio.load(path)
    X = X.copy()
    X[np.abs(X) < 0.5] = 0
    np.testing.assert_allclose(predictor.predict_proba(sp.csr_matrix(X)),
                               predictor.predict_proba(X), atol=1e-12)
    with pytest.raises(ValueError, match="features"):
        predictor.predict(X[:, :5])
    with pytest.raises(ValueError, match="NaN"):
        predictor.predict(np.full_like(X, np.nan))
    with pytest.raises(ValueError, match="2-D"):
        predictor.predict(X[0])


def test_file_is_compact_and_float16_is_smaller(digits_small, tmp_path):
    X, y = digits_small
    weight_free = fitted("WeightFreeClassifier", {}, X, y)
    dense = fitted("DenseClassifier", {}, X, y)
    n_edges = sum(c.size for c in weight_free.coefs_)
    size = skio.dump(weight_free, tmp_path / "wf.npz")
    # one bit per possible edge, plus per-unit arrays and a fixed overhead (zip, header)
    assert size < n_edges / 8 + 16 * sum(c.shape[1] for c in weight_free.coefs_) + 3000
    size32 = skio.dump(dense, tmp_path / "d32.npz")
    size16 = skio.dump(dense, tmp_path / "d16.npz", precision="float16")
    assert size16 < 0.75 * size32
    predictor = skio.load(tmp_path / "d16.npz")
    assert predictor.metadata_["dtype"] == "float16"
    assert (predictor.predict(X) == dense.predict(X)).mean() > 0.95


def test_dump_refuses_unfitted_and_bad_precision(digits_small, tmp_path):
    with pytest.raises(NotFittedError):
        skio.dump(sk_weightfree.DenseClassifier(), tmp_path / "x.npz")
    X, y = digits_small
    with pytest.raises(ValueError, match="precision"):
        skio.dump(fitted("DenseClassifier", {}, X, y), tmp_path / "x.npz", precision="int8")


def test_file_objects(valid_file):
    path, X = valid_file
    buffer = io.BytesIO(path.read_bytes())
    np.testing.assert_array_equal(skio.load(buffer).predict(X), skio.load(path).predict(X))


# ---------------------------------------------------------------------------- no torch
LOAD_AND_PREDICT = """
import sys
import numpy as np
{prelude}
from sk_weightfree.io import load
predictor = load({path!r})
X = np.load({data!r})
np.save({out!r}, predictor.predict_proba(X))
banned = [m for m in ("torch", "skorch", "sklearn") if m in sys.modules]
assert not banned, banned
"""
BARE_PACKAGE = """
import types
package = types.ModuleType("sk_weightfree")
package.__path__ = [{package!r}]
sys.modules["sk_weightfree"] = package
"""


def _load_in_fresh_interpreter(valid_file, tmp_path, prelude=""):
    path, X = valid_file
    np.save(tmp_path / "X.npy", X)
    code = LOAD_AND_PREDICT.format(prelude=prelude, path=str(path),
                                   data=str(tmp_path / "X.npy"), out=str(tmp_path / "p.npy"))
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, cwd=PACKAGE_ROOT)
    expected = skio.load(path).predict_proba(X)
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), expected, atol=1e-12)


def test_io_modules_import_no_torch(valid_file, tmp_path):
    """io and _inference alone (a bare package object stands in for __init__)."""
    prelude = BARE_PACKAGE.format(package=str(Path(sk_weightfree.__file__).parent))
    _load_in_fresh_interpreter(valid_file, tmp_path, prelude)


def test_load_imports_no_torch(valid_file, tmp_path):
    _load_in_fresh_interpreter(valid_file, tmp_path)


# ---------------------------------------------------------------------------- hostile files
def read_payload(path):
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    header = json.loads(arrays.pop("header").tobytes())
    return header, arrays


def write_payload(path, header, arrays, header_bytes=None):
    raw = header_bytes if header_bytes is not None else json.dumps(header).encode()
    with open(path, "wb") as f:
        np.savez(f, header=np.frombuffer(raw, dtype=np.uint8), **arrays)


def corrupt_at_random(header, data):
    """Replace one value anywhere in ``header`` (in place) by a random JSON value drawn
    from hypothesis's ``data``; returns the header."""
    target = header
    while True:
        if isinstance(target, dict) and target:
            key = data.draw(st.sampled_from(sorted(target)))
        elif isinstance(target, list) and target:
            key = data.draw(st.integers(0, len(target) - 1))
        else:
            return header
        if not isinstance(target[key], (dict, list)) or data.draw(st.booleans()):
            target[key] = data.draw(JSON_VALUES)
            return header
        target = target[key]


def payload_bytes(header, arrays):
    """A model file's bytes from its header and arrays."""
    buffer = io.BytesIO()
    np.savez(buffer, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
             **arrays)
    return buffer.getvalue()


def _mask_key(header):
    return next(layer["mask"] for layer in header["members"][0] if layer["kind"] == "mask")


def _corruptions(header, arrays):
    """(name, header, arrays) of version-1 files that must be refused."""
    mask = _mask_key(header)
    first = header["members"][0][0]
    unit_key = first["unit_scales"] or first["intercepts"]

    def edit(**changes):
        return {**json.loads(json.dumps(header)), **changes}

    def layer0(**changes):
        h = json.loads(json.dumps(header))
        h["members"][0][0].update(changes)
        return h

    def replaced(key, value):
        return {**arrays, key: value}

    huge = edit(layer_shapes=[[10**9, 10**9]] + header["layer_shapes"][1:])
    yield "newer format version", edit(format_version=99), arrays
    yield "other format", edit(format="something-else"), arrays
    yield "missing key", {k: v for k, v in header.items() if k != "layer_shapes"}, arrays
    yield "missing array", header, {k: v for k, v in arrays.items() if k != mask}
    yield "unknown activation", edit(activation="gelu"), arrays
    yield "huge declared dimensions", huge, arrays
    yield "huge n_features_in", edit(n_features_in=2**40), arrays
    yield "inconsistent shapes", edit(n_features_in=header["n_features_in"] + 1), arrays
    yield "negative dimension", edit(layer_shapes=[[-1, 5]]), arrays
    yield "boolean as integer", edit(n_features_in=True), arrays
    yield "n_outputs too big", edit(n_outputs=10**6), arrays
    yield "too many members", edit(members=header["members"] * 300), arrays
    yield "wrong mask length", header, replaced(mask, arrays[mask][:-1])
    yield "wrong mask dtype", header, replaced(mask, arrays[mask].astype(np.float32))
    yield "2-D mask", header, replaced(mask, arrays[mask].reshape(1, -1))
    yield "object array", header, replaced(mask, arrays[mask].astype(object))
    yield "complex array", header, replaced(unit_key, arrays[unit_key].astype(complex))
    yield "non-finite unit array", header, replaced(unit_key, arrays[unit_key] * np.nan)
    yield "zero shared value", layer0(value=0.0), arrays
    yield "string shared value", layer0(value="1"), arrays
    yield "unknown layer kind", layer0(kind="conv"), arrays
    yield "wrong class count", header, replaced(header["classes"], arrays[header["classes"]][:3])
    yield "regressor with softmax", edit(task="regressor"), arrays
    yield "header not an object", [1, 2, 3], arrays


def test_structured_corruptions_are_refused(layers_file, tmp_path):
    path, _ = layers_file
    header, arrays = read_payload(path)
    for i, (name, bad_header, bad_arrays) in enumerate(_corruptions(header, arrays)):
        target = tmp_path / f"bad{i}.npz"
        write_payload(target, bad_header, bad_arrays)
        with pytest.raises(ValueError):
            skio.load(target)
            pytest.fail(f"{name}: loaded")


@pytest.mark.parametrize("name, make", [
    ("empty file", lambda raw: b""),
    ("not a zip", lambda raw: b"hello world" * 100),
    ("truncated", lambda raw: raw[: len(raw) // 2]),
    ("truncated end", lambda raw: raw[:-10]),
    ("pickle", lambda raw: __import__("pickle").dumps({"coefs_": [1, 2]})),
])
def test_broken_bytes_are_refused(valid_file, tmp_path, name, make):
    path, _ = valid_file
    target = tmp_path / "broken.npz"
    target.write_bytes(make(path.read_bytes()))
    with pytest.raises(ValueError, match="not a valid sk_weightfree model file"):
        skio.load(target)


def test_missing_file_is_not_a_value_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        skio.load(tmp_path / "absent.npz")


def test_json_garbage_and_padding_bits(layers_file, tmp_path):
    path, _ = layers_file
    header, arrays = read_payload(path)
    for raw in (b"{not json", b"\xff\xfe", b"[" * 100_000, b"1e999999"):
        write_payload(tmp_path / "g.npz", header, arrays, header_bytes=raw)
        with pytest.raises(ValueError):
            skio.load(tmp_path / "g.npz")
    # a layer whose edge count is not a multiple of 8 leaves padding bits, which must be 0
    mask = _mask_key(header)
    n_in, n_out = header["layer_shapes"][0]
    if (n_in * n_out) % 8:
        padded = arrays[mask].copy()
        padded[-1] |= 1
        write_payload(tmp_path / "p.npz", header, {**arrays, mask: padded})
        with pytest.raises(ValueError, match="padding"):
            skio.load(tmp_path / "p.npz")


def test_npy_header_declaring_more_than_it_holds(layers_file, tmp_path):
    """An entry whose .npy header declares a huge shape over a few bytes of data."""
    path, _ = layers_file
    header, arrays = read_payload(path)
    lie = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        lie, {"descr": "|u1", "fortran_order": False, "shape": (10**12,)})
    target = tmp_path / "lie.npz"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w") as out:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == _mask_key(header) + ".npy":
                data = lie.getvalue() + b"\0" * 16
            out.writestr(info.filename, data)
    with pytest.raises(ValueError, match="declares shape"):
        skio.load(target)


def test_compressed_entries_are_refused(valid_file, tmp_path):
    """A zip bomb declares little compressed data and much uncompressed data."""
    path, _ = valid_file
    target = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w",
                                                          zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            out.writestr(info.filename, source.read(info))
    with pytest.raises(ValueError, match="compressed"):
        skio.load(target)


def _loads_and_works_or_refuses(raw, X):
    try:
        predictor = skio.load(io.BytesIO(raw))
    except ValueError:
        return
    proba = predictor.predict_proba(X)
    assert proba.shape == (len(X), len(predictor.classes_))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_byte_corruption(valid_file, data):
    path, X = valid_file
    raw = bytearray(path.read_bytes())
    n_flips = data.draw(st.integers(1, 8))
    for _ in range(n_flips):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    _loads_and_works_or_refuses(bytes(raw), X)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
@pytest.mark.parametrize("which", ["chain", "layers"])
def test_random_header_corruption(which, valid_file, layers_file, data, tmp_path_factory):
    """Replace a value anywhere in the header (top level, an operation or a layer, a
    shape) at random, in a file as written now and in a version-1 file."""
    path, X = valid_file if which == "chain" else layers_file
    header, arrays = read_payload(path)
    buffer = io.BytesIO(payload_bytes(corrupt_at_random(header, data), arrays))
    _loads_and_works_or_refuses(buffer.getvalue(), X)


# ---------------------------------------------------------------------------- ONNX
@pytest.mark.parametrize("case", CLASSIFIER_CASES + REGRESSOR_CASES[:2], ids=case_id)
def test_onnx_matches_predict_proba(case, digits_small, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    X, y = digits_small
    if "Regressor" in case[0]:
        X, y = make_regression(n_samples=150, n_features=6, noise=0.1, random_state=0)
    est = fitted(*case, X, y)
    path = skio.to_onnx(est, tmp_path / "model.onnx", dtype="float64")
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    # classifiers' graphs output label, then probabilities (tests/test_onnx_labels.py)
    output_name = "predictions" if "Regressor" in case[0] else "probabilities"
    (output,) = session.run([output_name], {"X": X.astype(np.float64)})
    expected = est.predict(X) if "Regressor" in case[0] else est.predict_proba(X)
    np.testing.assert_allclose(output.reshape(expected.shape), expected, rtol=1e-6, atol=1e-6)
    skio.to_onnx(est, tmp_path / "model32.onnx")
    session = ort.InferenceSession(str(tmp_path / "model32.onnx"),
                                   providers=["CPUExecutionProvider"])
    (output32,) = session.run([output_name], {"X": X.astype(np.float32)})
    np.testing.assert_allclose(output32.reshape(expected.shape), expected, rtol=1e-3,
                               atol=1e-4)


def test_onnx_missing_extra_gives_install_advice(digits_small, tmp_path, monkeypatch):
    X, y = digits_small
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    with pytest.raises(ImportError, match=r"sk-weightfree\[onnx\]"):
        skio.to_onnx(fitted("DenseClassifier", {}, X, y), tmp_path / "m.onnx")


def test_repr_gives_the_networks_own_widths(digits_small, tmp_path):
    """Issue 21, item 11: a paired 64-32-10 network is not shown as 128 -> 64 -> 10."""
    X, y = digits_small
    est = fitted("WeightFreeClassifier", {"hidden_layer_sizes": (32,)}, X, y)
    skio.dump(est, tmp_path / "wf.npz")
    text = repr(skio.load(tmp_path / "wf.npz"))
    assert "64 -> 32 -> 10" in text and "128" not in text and "paired" in text
    assert "64 -> 12 -> 10 (relu, paired)" in repr(skio.load(LAYERS_FILE))  # 0.2.0's file


@pytest.mark.parametrize("write", ["dump", "to_onnx"])
def test_dump_and_onnx_say_what_they_write(tmp_path, write):
    # A fitted pipeline or LogisticRegression was called "not fitted yet" (#33 item 3).
    from sklearn.exceptions import NotFittedError
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sk_weightfree import DenseClassifier
    from sk_weightfree.io import dump, to_onnx

    writer = {"dump": dump, "to_onnx": to_onnx}[write]
    if write == "to_onnx":
        pytest.importorskip("onnx")
    X, y = np.random.default_rng(0).normal(size=(40, 4)), np.arange(40) % 2
    pipe = make_pipeline(StandardScaler(), DenseClassifier(hidden_layer_sizes=(4,),
                                                           max_epochs=1)).fit(X, y)
    path = tmp_path / "model"
    with pytest.raises(TypeError, match=rf"{write}\(pipeline\[-1\], \.\.\.\).*not stored"):
        writer(pipe, path)
    with pytest.raises(TypeError, match="MLPClassifier/MLPRegressor; got a LogisticRegression"):
        writer(LogisticRegression().fit(X, y), path)
    with pytest.raises(NotFittedError, match="DenseClassifier instance is not fitted"):
        writer(DenseClassifier(), path)
    assert not list(tmp_path.iterdir())
    writer(pipe[-1], path)  # the last step is what they write
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
