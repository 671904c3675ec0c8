"""sk_weightfree.io with module templates: chain files (CNNs), the numpy convolution, what
is refused, hostile chain headers, ONNX of template networks."""

import functools
import io
import json
import pickle
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import is_classifier
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F

import sk_weightfree
from sk_weightfree import io as skio
from sk_weightfree._inference import (Activation, Affine, Chain, Conv2d, Linear, Paired, Pool2d,
                                      Reshape, forward)
from sk_weightfree._tracing import chain_from_estimator
from sk_weightfree.nn import SmallCNN
from test_io import corrupt_at_random, payload_bytes, read_payload, write_payload

PACKAGE_ROOT = Path(sk_weightfree.__file__).parent.parent
TINY_CNN = functools.partial(SmallCNN, channels=(4, 8), hidden=16)
SHAPE = (1, 8, 8)
FAMILIES = {
    "weight-free": ("WeightFreeClassifier", {}),
    "random": ("RandomNetworkClassifier", {}),
    "dense": ("DenseClassifier", {}),
    "dense-batch-norm": ("DenseClassifier",
                         {"module": functools.partial(TINY_CNN, batch_norm=True)}),
    "pruned": ("PrunedClassifier", {"finetune_epochs": 1}),
}
LABELS = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                   "nine"])


@pytest.fixture(scope="module")
def images():
    X, y = load_digits(return_X_y=True)
    return X[:240] / 16.0, y[:240]


_FITTED = {}


def fitted(name, params, X, y):
    """Fit once per module and case (the fits are the slow part)."""
    key = (name, repr(sorted(params.items())), X.tobytes(), np.asarray(y).tobytes())
    if key not in _FITTED:
        options = dict(module=TINY_CNN, input_shape=SHAPE, max_epochs=2, batch_size=32,
                       device="cpu", random_state=0)
        _FITTED[key] = getattr(sk_weightfree, name)(**{**options, **params}).fit(X, y)
    return _FITTED[key]


def weight_free_cnn(images):
    X, y = images
    return fitted("WeightFreeClassifier", {}, X, LABELS[y])


def assert_same_labels(labels, expected, proba):
    """Labels agree wherever the top two probabilities differ beyond rounding."""
    top2 = np.sort(proba, axis=1)[:, -2:]
    decided = top2[:, 1] - top2[:, 0] > 1e-9
    assert decided.mean() > 0.5
    np.testing.assert_array_equal(labels[decided], expected[decided])


@pytest.fixture(scope="module")
def chain_file(images, tmp_path_factory):
    """A weight-free CNN's file, and rows to predict."""
    X, _ = images
    path = tmp_path_factory.mktemp("chain") / "cnn.npz"
    skio.dump(weight_free_cnn(images), path)
    return path, X[:20]


# ---------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("family", FAMILIES)
def test_round_trip_cnn_classifier(family, images, tmp_path):
    X, y = images
    name, params = FAMILIES[family]
    est = fitted(name, params, X, LABELS[y])
    path = tmp_path / "model.npz"
    assert skio.dump(est, path) == path.stat().st_size
    header, _ = read_payload(path)
    assert (header["format_version"], header["network"]) == (2, "chain")
    predictor = skio.load(path)
    np.testing.assert_array_equal(predictor.classes_, est.classes_)
    assert (predictor.n_features_in_, predictor.n_outputs_, predictor.n_layers_) == (
        est.n_features_in_, est.n_outputs_, est.n_layers_)
    assert predictor.estimator_name_ == name
    expected = est.predict_proba(X)
    np.testing.assert_allclose(predictor.predict_proba(X), expected, rtol=0, atol=1e-6)
    assert_same_labels(predictor.predict(X), est.predict(X), expected)
    for method in ("sum", "blas"):  # {0,1} linear layers as sums of inputs, or BLAS
        np.testing.assert_allclose(skio.load(path, inference=method).predict_proba(X),
                                   expected, rtol=0, atol=1e-6)
    # outputs do not depend on the batch size (1 row: the smallest batches)
    np.testing.assert_allclose(skio.load(path, batch_size=1).predict_proba(X[:7]),
                               expected[:7], rtol=0, atol=1e-6)


@pytest.mark.parametrize("n_targets", [1, 2])
def test_round_trip_weight_free_cnn_regressor(n_targets, images, tmp_path):
    X, y = images
    target = np.stack([y * 10.0 + 3, (y % 3) * -5.0], axis=1)[:, :n_targets]
    target = target.ravel() if n_targets == 1 else target
    est = fitted("WeightFreeRegressor", {}, X, target)
    skio.dump(est, tmp_path / "r.npz")
    predictor = skio.load(tmp_path / "r.npz")
    assert not hasattr(predictor, "predict_proba")
    expected = est.predict(X)
    assert expected.std() > 1  # the target's scale is restored, not the network's
    assert predictor.predict(X).shape == expected.shape
    np.testing.assert_allclose(predictor.predict(X), expected, rtol=1e-6, atol=1e-6)


class Assorted(nn.Module):
    """Layers SmallCNN does not use: stride, dilation, 'same' padding, average pooling,
    functional activations, dropout, batch norm, view(x.size(0), -1)."""

    def __init__(self, n_outputs):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 3, 3, stride=(2, 1), padding=(1, 2))
        self.norm = nn.BatchNorm2d(3)
        self.conv2 = nn.Conv2d(3, 4, (2, 3), dilation=(1, 2), padding="same", bias=False)
        self.pool = nn.AvgPool2d((2, 3), stride=(1, 2))
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(4 * 3 * 4, 12)
        self.out = nn.Linear(12, n_outputs)

    def forward(self, x):
        x = torch.tanh(self.norm(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = x.view(x.size(0), -1)
        x = torch.sigmoid(self.drop(self.fc(x)))
        return self.out(torch.flatten(x, 1))


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("name", ["DenseClassifier", "WeightFreeClassifier"])
def test_round_trip_assorted_layers(name, images, tmp_path):
    X, y = images
    est = fitted(name, {"module": Assorted}, X, y)
    skio.dump(est, tmp_path / "a.npz")
    predictor = skio.load(tmp_path / "a.npz")
    assert "avgpool" in repr(predictor) and "tanh" in repr(predictor)
    np.testing.assert_allclose(predictor.predict_proba(X), est.predict_proba(X), rtol=0,
                               atol=1e-6)


@pytest.mark.parametrize("stride, padding, dilation", [
    ((1, 1), ((0, 0), (0, 0)), (1, 1)),
    ((2, 1), ((1, 1), (2, 2)), (1, 2)),
    ((1, 3), ((0, 1), (1, 0)), (2, 1)),  # asymmetric, as padding="same" with even kernels
])
@pytest.mark.parametrize("method", ["auto", "sum"])
def test_numpy_chain_matches_torch(stride, padding, dilation, method):
    """Paired {0,1} kernels times a shared value, pooling, a {0,1} linear layer: the numpy
    chain against torch's functions."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 2, 9, 10))
    kernel = (rng.random((4, 4, 3, 2)) < 0.5).astype(float)  # 2 channels, paired: 4 lines
    xt = torch.as_tensor(x)
    (top, bottom), (left, right) = padding
    z = F.conv2d(F.pad(torch.cat([xt, -xt], 1), (left, right, top, bottom)),
                 torch.as_tensor(2.5 * kernel), stride=stride, dilation=dilation)
    z = F.avg_pool2d(F.max_pool2d(torch.tanh(z), (2, 2), (2, 1)), (1, 2), (1, 2))
    n_flat = z[0].numel()
    mask = (rng.random((3, 2 * n_flat)) < 0.3).astype(float)
    z = F.linear(torch.cat([z.flatten(1), -z.flatten(1)], 1), torch.as_tensor(mask))
    z = z * torch.tensor([1.0, 2.0, 3.0]) + 0.5
    chain = Chain([[
        Reshape((2, 9, 10)), Paired(), Conv2d(kernel, stride, padding, dilation, value=2.5),
        Activation("tanh"), Pool2d("max", (2, 2), (2, 1)), Pool2d("avg", (1, 2), (1, 2)),
        Reshape((n_flat,)), Paired(), Linear(mask), Affine([1.0, 2.0, 3.0], [0.5] * 3),
    ]], n_features_in=180, out_activation="identity")
    np.testing.assert_allclose(forward(chain, x.reshape(5, -1), method=method), z.numpy(),
                               rtol=1e-12, atol=1e-12)


def test_weight_free_cnn_file_is_bits_and_much_smaller_than_pickle(images, tmp_path):
    est = weight_free_cnn(images)
    size = skio.dump(est, tmp_path / "wf.npz")
    header, arrays = read_payload(tmp_path / "wf.npz")
    weight_ops = [op for op in header["ops"] if op["op"] in ("conv2d", "linear")]
    assert [op["kind"] for op in weight_ops] == ["mask"] * 4
    n_taps = sum(m.size for m in est.masks_)
    for op, mask in zip(weight_ops, est.masks_):  # one bit per kernel tap or edge
        assert arrays[op["mask"]].dtype == np.uint8
        assert arrays[op["mask"]].size == (mask.size + 7) // 8
    assert sum(a.nbytes for a in arrays.values()) < n_taps / 8 + 16 * sum(
        m.shape[0] for m in est.masks_)
    assert size < len(pickle.dumps(est)) / 10


def test_mlp_files_are_chains_of_version_2_and_ensembles_version_3(images, tmp_path):
    """A multilayer network is a chain file of version 2, which 0.2.0 reads too; only an
    ensemble (one chain per member) needs version 3."""
    X, y = images
    options = dict(hidden_layer_sizes=(8,), max_epochs=1, device="cpu", random_state=0)
    for est, version in [(sk_weightfree.WeightFreeClassifier(**options), 2),
                         (sk_weightfree.WeightAgnosticClassifier(ensemble=True, **options), 3)]:
        skio.dump(est.fit(X, y), tmp_path / "mlp.npz")
        header, _ = read_payload(tmp_path / "mlp.npz")
        assert (header["format_version"], header["network"]) == (version, "chain")
        assert ("members" in header) == (version == 3)


# ---------------------------------------------------------------------------- no torch
LOAD_AND_PREDICT = """
import sys
import numpy as np
from sk_weightfree.io import load
predictor = load({path!r})
np.save({out!r}, predictor.predict_proba(np.load({data!r})))
banned = [m for m in ("torch", "skorch", "sklearn") if m in sys.modules]
assert not banned, banned
"""


def test_load_and_predict_a_cnn_without_torch(chain_file, tmp_path):
    path, X = chain_file
    np.save(tmp_path / "X.npy", X)
    code = LOAD_AND_PREDICT.format(path=str(path), data=str(tmp_path / "X.npy"),
                                   out=str(tmp_path / "p.npy"))
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, cwd=PACKAGE_ROOT)
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), skio.load(path).predict_proba(X),
                               atol=1e-12)


# ---------------------------------------------------------------------------- refusals
def test_weight_agnostic_template_is_refused(images, tmp_path):
    X, y = images
    est = fitted("WeightAgnosticClassifier", {"max_epochs": 1}, X, y)
    with pytest.raises(ValueError, match="weight-agnostic template"):
        skio.dump(est, tmp_path / "wa.npz")
    assert not (tmp_path / "wa.npz").exists()
    pytest.importorskip("onnx")
    with pytest.raises(ValueError, match="weight-agnostic template"):
        skio.to_onnx(est, tmp_path / "wa.onnx")


class Residual(nn.Module):
    def __init__(self, n_outputs):
        super().__init__()
        self.hidden = nn.Linear(64, 64)
        self.out = nn.Linear(64, n_outputs)

    def forward(self, x):
        return self.out(x + F.relu(self.hidden(x)))


class WithConv1d(nn.Module):
    def __init__(self, n_outputs):
        super().__init__()
        self.conv = nn.Conv1d(1, 2, 3)
        self.out = nn.Linear(2 * 62, n_outputs)

    def forward(self, x):
        return self.out(torch.flatten(F.relu(self.conv(x)), 1))


class CeilPool(nn.Module):
    def __init__(self, n_outputs):
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(4, ceil_mode=True),
                                    nn.Flatten(), nn.Linear(8, n_outputs))

    def forward(self, x):
        return self.layers(x)


RESIDUAL = (Residual, None, r"add does not take the previous operation's output alone")
CEIL_POOL = (CeilPool, SHAPE, r"MaxPool2d \(layers\.1\) uses options .*'ceil_mode': True")


@pytest.mark.parametrize("name, module, input_shape, match", [
    ("DenseClassifier", *RESIDUAL),
    ("WeightFreeClassifier", *RESIDUAL),
    # (the weight-free families refuse a Conv1d template at fit already)
    ("DenseClassifier", WithConv1d, (1, 64), r"Conv1d \(conv\) is not a supported layer"),
    ("DenseClassifier", *CEIL_POOL),
    ("WeightFreeClassifier", *CEIL_POOL),
], ids=["residual-dense", "residual-weight-free", "conv1d-dense", "ceil-mode-dense",
        "ceil-mode-weight-free"])
def test_unsupported_template_is_refused(name, module, input_shape, match, images, tmp_path):
    X, y = images
    est = fitted(name, {"module": module, "input_shape": input_shape, "max_epochs": 1}, X, y)
    with pytest.raises(ValueError, match=match):
        skio.dump(est, tmp_path / "x.npz")


# ---------------------------------------------------------------------------- hostile files
def _op_index(header, kind):
    return next(i for i, op in enumerate(header["ops"]) if op["op"] == kind)


def _chain_corruptions(header, arrays):
    """(name, header, arrays, message) of chain files that must be refused."""
    conv = _op_index(header, "conv2d")
    affine = _op_index(header, "affine")
    pool = _op_index(header, "pool")

    def edit(**changes):
        return {**json.loads(json.dumps(header)), **changes}

    def op(i, **changes):
        h = json.loads(json.dumps(header))
        h["ops"][i].update(changes)
        return h

    shape = header["ops"][conv]["shape"]
    yield "huge conv", op(conv, shape=[10**5, shape[1], 3000, 3000]), arrays, "operation"
    # consistent geometry whose arrays would not fit in memory: refused before any read
    side = 8 + 2 * 10**4 - 2
    yield "huge padding", edit(ops=[
        {"op": "reshape", "shape": [1, 8, 8]},
        {**header["ops"][conv], "shape": [4, 1, 3, 3], "padding": [10**4] * 4},
        {"op": "reshape", "shape": [4 * side * side]},
        {"op": "linear", "shape": [10, 4 * side * side], "kind": "mask", "mask": "a0",
         "value": 1.0}]), arrays, "would need about"
    yield "wrong in-channels", op(conv, shape=[shape[0], shape[1] + 1, *shape[2:]]), arrays, \
        r"operation \d+ \(conv2d\)"
    yield "kernel larger than image", op(conv, shape=[*shape[:2], 20, 20]), arrays, \
        "does not fit"
    yield "zero stride", op(conv, stride=[0, 1]), arrays, "'stride'"
    yield "padding of 3 numbers", op(conv, padding=[1, 1, 1]), arrays, "'padding'"
    yield "pool larger than image", op(pool, kernel=[50, 50]), arrays, r"\(pool\)"
    yield "unknown pool", op(pool, mode="median"), arrays, "'mode'"
    yield "bad reshape", op(0, shape=[1, 9, 9]), arrays, "cannot reshape"
    yield "reshape with 9 axes", op(0, shape=[1] * 9 + [64]), arrays, "'shape'"
    yield "unknown op", op(1, op="attention"), arrays, "'op'"
    yield "chain ends with images", edit(ops=header["ops"][:conv + 2]), arrays, \
        "not one value per output"
    yield "too many ops", edit(ops=[{"op": "paired"}] * 1001), arrays, "'ops'"
    yield "version 1 chain", edit(format_version=1), arrays, "'network'"
    yield "unknown network", edit(network="graph"), arrays, "'network'"
    key = header["ops"][affine]["offset"] or header["ops"][affine]["scale"]
    yield "short per-unit array", header, {**arrays, key: arrays[key][:-1]}, "shape"
    mask = header["ops"][conv]["mask"]
    yield "short mask", header, {**arrays, mask: arrays[mask][:-1]}, "shape"
    yield "wrong class count", edit(ops=header["ops"][:-2] + [header["ops"][-1]]), arrays, \
        r"operation|classes|shape"


def test_corrupted_chain_headers_are_refused(chain_file, tmp_path):
    path, _ = chain_file
    header, arrays = read_payload(path)
    cases = list(_chain_corruptions(header, arrays))
    for i, (name, bad_header, bad_arrays, message) in enumerate(cases):
        target = tmp_path / f"bad{i}.npz"
        write_payload(target, bad_header, bad_arrays)
        tracemalloc.start()
        try:
            with pytest.raises(ValueError, match=message):
                skio.load(target)
                pytest.fail(f"{name}: loaded")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 64 * 2**20, f"{name}: {peak / 2**20:.0f} MiB allocated before refusing"


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_chain_header_corruption(chain_file, data):
    """A value replaced anywhere in the header: the file loads and predicts, or ValueError."""
    path, X = chain_file
    header, arrays = read_payload(path)
    buffer = io.BytesIO(payload_bytes(corrupt_at_random(header, data), arrays))
    try:
        predictor = skio.load(io.BytesIO(buffer.getvalue()))
    except ValueError:
        return
    assert predictor.predict_proba(X).shape == (len(X), len(predictor.classes_))


# ---------------------------------------------------------------------------- ONNX
class TwoLayers(nn.Module):
    def __init__(self, n_outputs):
        super().__init__()
        self.hidden = nn.Linear(64, 16)
        self.out = nn.Linear(16, n_outputs)

    def forward(self, x):
        return self.out(F.relu(self.hidden(x)))


@pytest.mark.parametrize("name, params, dtype", [
    ("WeightFreeClassifier", {}, "float32"),
    ("PrunedClassifier", {"finetune_epochs": 1}, "float32"),
    ("WeightFreeRegressor", {}, "float32"),
    # onnxruntime has no float64 Conv on the CPU: float64 with a linear template
    ("WeightFreeClassifier", {"module": TwoLayers, "input_shape": None}, "float64"),
], ids=["weight-free", "pruned", "regressor", "float64-linear"])
def test_onnx_of_a_template_matches_predict(name, params, dtype, images, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    X, y = images
    regressor = "Regressor" in name
    est = fitted(name, params, X, y * 10.0 + 3 if regressor else y)
    path = skio.to_onnx(est, tmp_path / "m.onnx", dtype=dtype)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    # classifiers' graphs output label, then probabilities (tests/test_onnx_labels.py)
    (output,) = session.run(["predictions" if regressor else "probabilities"],
                            {"X": X.astype(dtype)})
    expected = est.predict(X) if regressor else est.predict_proba(X)
    tolerance = dict(rtol=1e-6, atol=1e-6) if dtype == "float64" else dict(rtol=1e-4,
                                                                           atol=1e-5)
    np.testing.assert_allclose(output.reshape(expected.shape), expected, **tolerance)
    assert is_classifier(est) != regressor


def test_chain_of_a_template_names_its_operations(images):
    chain = chain_from_estimator(weight_free_cnn(images))
    assert chain.describe().startswith("reshape(1, 8, 8) -> paired -> conv2d(2 -> 4, 3x3)")
    # torch layout (out, in, ...); masks_ gives linear layers as (n_in, n_out)
    masks = weight_free_cnn(images).masks_
    assert chain.layer_shapes == [m.shape if m.ndim == 4 else m.T.shape for m in masks]
