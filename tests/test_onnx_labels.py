"""sk_weightfree.io.to_onnx: classifier graphs output ``label`` (in ``classes_``'s type,
strings included) and ``probabilities``; regressor graphs only ``predictions``."""

import copy
import functools

import numpy as np
import pytest
from sklearn.datasets import load_digits

import sk_weightfree
from sk_weightfree import io as skio
from sk_weightfree.nn import SmallCNN

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

TINY = dict(hidden_layer_sizes=(16,), max_epochs=3, batch_size=32, device="cpu",
            random_state=0)
TINY_CNN = dict(module=functools.partial(SmallCNN, channels=(2, 4), hidden=8),
                input_shape=(1, 8, 8), max_epochs=2, batch_size=32, device="cpu",
                random_state=0)
NAMES = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                  "nine"])
# y from the digits' labels: each kind of class the label output must hold
LABELS = {
    "int-multiclass": lambda d: d,
    "int-binary": lambda d: np.where(d < 5, 3, 7),
    "str-multiclass": lambda d: NAMES[d],
    "str-binary": lambda d: np.where(d < 5, "low", "high"),
    "object-str": lambda d: NAMES[d % 3].astype(object),
    "float-multiclass": lambda d: (d % 3).astype(np.float64) * 2.0 - 1.0,
    "bool-binary": lambda d: d % 2 == 1,
}
LABEL_TYPES = {"int": "INT64", "str": "STRING", "object": "STRING", "float": "DOUBLE",
               "bool": "BOOL"}

_FITTED = {}


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:150] / 16.0, y[:150]


def fitted(name, params, X, y):
    """Fit once per case (the fits are the slow part)."""
    key = (name, repr(sorted(params.items())), np.asarray(y).tobytes(),
           np.asarray(y).dtype.str)
    if key not in _FITTED:
        _FITTED[key] = getattr(sk_weightfree, name)(**params).fit(X, y)
    return _FITTED[key]


def run(est, tmp_path, X, dtype):
    """``(output names, {name: value})`` of the exported graph on ``X`` in ``dtype``."""
    path = skio.to_onnx(est, tmp_path / f"model-{dtype}.onnx", dtype=dtype)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    values = session.run(None, {"X": X.astype(dtype)})
    return names, dict(zip(names, values)), onnx.load(path)


def output_type(model, name):
    (output,) = [o for o in model.graph.output if o.name == name]
    tensor = output.type.tensor_type
    return (onnx.TensorProto.DataType.Name(tensor.elem_type),
            [d.dim_param or d.dim_value for d in tensor.shape.dim])


def assert_labels_equal(labels, expected):
    """Exactly ``predict``'s labels, of the same kind (numbers as numbers, strings as
    strings)."""
    assert labels.shape == expected.shape
    if expected.dtype.kind in "UO":
        assert labels.dtype == object and all(isinstance(v, str) for v in labels.ravel())
        assert labels.tolist() == expected.tolist()
    else:
        assert labels.dtype.kind == expected.dtype.kind
        np.testing.assert_array_equal(labels, expected)


# ---------------------------------------------------------------------------- label kinds
@pytest.mark.parametrize("kind", LABELS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_label_output_equals_predict(kind, dtype, digits, tmp_path):
    X, digit = digits
    est = fitted("DenseClassifier", TINY, X, LABELS[kind](digit))
    names, out, model = run(est, tmp_path, X, dtype)
    assert names == ["label", "probabilities"]  # skl2onnx's names and order (zipmap=False)
    Xd = X.astype(dtype)
    assert_labels_equal(out["label"], est.predict(Xd))
    assert output_type(model, "label") == (LABEL_TYPES[kind.split("-")[0]], ["n_samples"])
    assert output_type(model, "probabilities") == (
        {"float32": "FLOAT", "float64": "DOUBLE"}[dtype], ["n_samples", len(est.classes_)])
    tolerance = 1e-6 if dtype == "float64" else 1e-4
    np.testing.assert_allclose(out["probabilities"], est.predict_proba(Xd), rtol=tolerance,
                               atol=tolerance)


def test_float32_classes_keep_their_type(digits, tmp_path):
    X, digit = digits
    est = fitted("DenseClassifier", TINY, X, (digit % 3).astype(np.float32) + 0.0)
    _, out, model = run(est, tmp_path, X, "float32")
    assert output_type(model, "label")[0] == (
        "FLOAT" if est.classes_.dtype == np.float32 else "DOUBLE")
    assert_labels_equal(out["label"], est.predict(X.astype(np.float32)))


# ---------------------------------------------------------------------------- families
@pytest.mark.parametrize("name, params", [
    ("WeightFreeClassifier", TINY),
    ("PrunedClassifier", {**TINY, "finetune_epochs": 1}),
    ("RandomNetworkClassifier", TINY),
    ("WeightAgnosticClassifier", {**TINY, "ensemble": False}),
    ("WeightAgnosticClassifier", {**TINY, "ensemble": True}),
    ("WeightFreeClassifier", TINY_CNN),
], ids=["weight-free", "pruned", "random", "weight-agnostic", "weight-agnostic-ensemble",
        "weight-free-cnn"])
@pytest.mark.parametrize("labels", ["int-multiclass", "str-binary"])
def test_every_family_labels_like_predict(name, params, labels, digits, tmp_path):
    X, digit = digits
    est = fitted(name, params, X, LABELS[labels](digit))
    # onnxruntime has no float64 Conv on the CPU: convolutional graphs in float32 only
    for dtype in ["float32"] if "module" in params else ["float32", "float64"]:
        names, out, _ = run(est, tmp_path, X, dtype)
        assert names == ["label", "probabilities"]
        assert_labels_equal(out["label"], est.predict(X.astype(dtype)))


def test_ensemble_labels_are_its_mean_probability_argmax(digits, tmp_path):
    """An ensemble's label is the class of highest mean probability over its members,
    the same rule as ``predict`` (not a vote, nor the first member's)."""
    X, digit = digits
    est = fitted("WeightAgnosticClassifier", {**TINY, "ensemble": True}, X, NAMES[digit])
    _, out, _ = run(est, tmp_path, X, "float64")
    np.testing.assert_array_equal(out["label"],
                                  est.classes_[np.argmax(out["probabilities"], axis=1)])
    assert_labels_equal(out["label"], est.predict(X))


# ---------------------------------------------------------------------------- multilabel
@pytest.mark.parametrize("name, params", [
    ("DenseClassifier", TINY),
    ("WeightAgnosticClassifier", {**TINY, "ensemble": True}),
], ids=["dense", "weight-agnostic-ensemble"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_multilabel_label_is_the_indicator_matrix(name, params, dtype, digits, tmp_path):
    X, digit = digits
    y = np.stack([digit % 2, digit > 4, np.isin(digit, [1, 4, 7])], axis=1).astype(int)
    est = fitted(name, params, X, y)
    names, out, model = run(est, tmp_path, X, dtype)
    assert names == ["label", "probabilities"]
    assert output_type(model, "label") == ("INT64", ["n_samples", 3])
    expected = est.predict(X.astype(dtype))
    assert_labels_equal(out["label"], expected)
    assert set(np.unique(out["label"])) <= {0, 1}
    # the indicator is "probability above one half" (away from rounding at one half)
    clear = np.abs(out["probabilities"] - 0.5) > 1e-3
    np.testing.assert_array_equal(out["label"][clear], (out["probabilities"] > 0.5)[clear])


# ---------------------------------------------------------------------------- regressors
def test_regressor_graph_is_unchanged(digits, tmp_path):
    X, digit = digits
    est = fitted("DenseRegressor", TINY, X, digit * 1.5 + 2.0)
    names, out, model = run(est, tmp_path, X, "float64")
    assert names == ["predictions"]
    assert output_type(model, "predictions") == ("DOUBLE", ["n_samples", 1])
    np.testing.assert_allclose(out["predictions"].ravel(), est.predict(X), rtol=1e-6,
                               atol=1e-6)


# ---------------------------------------------------------------------------- the graph
def test_labels_are_a_constant_of_the_default_domain(digits, tmp_path):
    """The labels are looked up in a constant of the classes (ArgMax, Gather): no
    ``ai.onnx.ml`` operator, so any ONNX runtime runs the graph."""
    X, digit = digits
    est = fitted("DenseClassifier", TINY, X, NAMES[digit])
    _, _, model = run(est, tmp_path, X, "float32")
    assert {node.domain for node in model.graph.node} <= {""}
    assert {o.domain for o in model.opset_import} <= {""}
    constants = [onnx.numpy_helper.to_array(attribute.t) for node in model.graph.node
                 if node.op_type == "Constant" for attribute in node.attribute]
    stored = [c for c in constants if c.dtype == object]
    assert [s.astype(str).tolist() for s in stored] == [est.classes_.tolist()]


@pytest.mark.parametrize("opset", [7, 9, 13])
def test_older_opsets_hold_the_labels(opset, digits, tmp_path):
    X, digit = digits
    est = fitted("DenseClassifier", TINY, X, NAMES[digit])
    path = skio.to_onnx(est, tmp_path / "m.onnx", opset_version=opset)
    assert onnx.load(path).opset_import[0].version == opset
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    (labels,) = session.run(["label"], {"X": X.astype(np.float32)})
    assert_labels_equal(labels, est.predict(X.astype(np.float32)))


def test_opset_version_must_be_an_integer(digits, tmp_path):
    X, digit = digits
    est = fitted("DenseClassifier", TINY, X, digit)
    for bad in ["17", 17.0, True]:
        with pytest.raises(TypeError, match="opset_version must be an integer"):
            skio.to_onnx(est, tmp_path / "m.onnx", opset_version=bad)
    assert not (tmp_path / "m.onnx").exists()


def test_unsupported_labels_are_refused_before_writing(digits, tmp_path):
    X, digit = digits
    est = copy.deepcopy(fitted("DenseClassifier", TINY, X, np.where(digit < 5, 3, 7)))
    est._chain.classes = np.array([(0, 1), "b"], dtype=object)  # a tuple: no ONNX type
    with pytest.raises(ValueError, match="class labels"):
        skio.to_onnx(est, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
    est._chain.classes = np.array([0, 2**64 - 1], dtype=np.uint64)  # beyond int64
    with pytest.raises(ValueError, match="int64"):
        skio.to_onnx(est, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("kind", [*LABELS, "multilabel"])
def test_compact_file_predictor_gives_the_same_labels(kind, digits, tmp_path):
    """``io.load(...).predict``, the ONNX graph and ``predict`` label alike (strings stay
    strings)."""
    X, digit = digits
    y = (np.stack([digit % 2, digit > 4], axis=1).astype(int) if kind == "multilabel"
         else LABELS[kind](digit))
    est = fitted("DenseClassifier", TINY, X, y)
    skio.dump(est, tmp_path / "m.npz")
    predictor = skio.load(tmp_path / "m.npz")
    _, out, _ = run(est, tmp_path, X, "float64")
    expected = est.predict(X)
    assert_labels_equal(out["label"], expected)
    assert predictor.predict(X).tolist() == expected.tolist()


@pytest.mark.parametrize("multilabel", [False, True], ids=["binary", "multilabel"])
def test_labels_decide_on_logits_not_rounded_probabilities(multilabel, digits, tmp_path):
    """Logits a hair apart give float32 probabilities that round to a tie (softmax) or to
    exactly one half (logistic); the label still follows the logits, as ``predict``."""
    X, digit = digits
    y = (np.stack([digit % 2, digit > 4], axis=1).astype(int) if multilabel
         else np.where(digit < 5, "low", "high"))
    est = copy.deepcopy(fitted("DenseClassifier", TINY, X, y))
    # the output layer ignores its input: logits are its intercepts for every row
    last, bias = est._chain.ops[-2:]  # the chain is the fitted form: edit it
    last.weight[:] = 0.0
    bias.offset = np.array([0.0, 1e-8])
    est._chain._plans.clear()
    _, out, _ = run(est, tmp_path, X, "float32")
    expected = est.predict(X.astype(np.float32))
    if multilabel:
        assert (out["probabilities"][:, 1] == 0.5).all()
        assert (expected == [0, 1]).all()
    else:
        assert (out["probabilities"][:, 0] == out["probabilities"][:, 1]).all()
        assert (expected == est.classes_[1]).all()
    assert_labels_equal(out["label"], expected)
