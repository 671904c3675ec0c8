"""Estimators predict on the CPU through the numpy chain that io.load predicts with: in the
input's floating type, built once per fitted network, rebuilt when the network changes."""

import functools
import io

import numpy as np
import pytest
import torch
from sklearn.datasets import make_regression

import sk_weightfree
from sk_weightfree._base import BaseNetwork
from sk_weightfree import _inference, _tracing
from sk_weightfree import io as skio
from sk_weightfree.nn import SmallCNN
from test_io_templates import Residual  # x + relu(Wx): not a chain

TINY = dict(hidden_layer_sizes=(16,), max_epochs=2, batch_size=32, device="cpu", random_state=0)
CNN = dict(module=functools.partial(SmallCNN, channels=(2, 4), hidden=8), input_shape=(1, 8, 8),
           max_epochs=1, batch_size=32, device="cpu", random_state=0)
FAMILIES = ["Dense", "WeightFree", "Pruned", "WeightAgnostic", "RandomNetwork"]
# every family as a multilayer network, and the families whose templates are chains
CASES = ([(f"{family}{head}", TINY) for family in FAMILIES for head in ("Classifier", "Regressor")]
         + [("WeightAgnosticClassifier", {**TINY, "ensemble": True})]
         + [(f"{family}{head}", CNN) for family in ("Dense", "WeightFree", "Pruned", "RandomNetwork")
            for head in ("Classifier", "Regressor")])
_FITTED = {}


def case(name, params=TINY, **extra):
    return (name, {**params, **extra})


def case_id(network):
    name, params = network
    return name + ("-cnn" if "module" in params else "") + (
        "-ensemble" if params.get("ensemble") else "")


@pytest.fixture(scope="module")
def data(digits_small):
    X, y = digits_small
    return X, y, y * 10.0 - 3  # unscaled regression targets: the folded map is exercised


def fitted(name, params, data):
    key = (name, repr(sorted(params.items())))
    if key not in _FITTED:
        X, y, target = data
        est = getattr(sk_weightfree, name)(**params)
        _FITTED[key] = est.fit(X, target if "Regressor" in name else y)
    return _FITTED[key]


def outputs(est, X):
    """What the estimator returns, method by method."""
    if "Regressor" in type(est).__name__:
        return {"predict": est.predict(X)}
    return {name: getattr(est, name)(X) for name in
            ("predict_proba", "predict_log_proba", "decision_function")}


@pytest.fixture
def torch_predicts(monkeypatch):
    """Estimators predict through their torch module, as they do off the CPU."""
    monkeypatch.setattr(BaseNetwork, "_chain_outputs", BaseNetwork._module_outputs)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_cpu_prediction_is_the_loaded_files_formula(case, data, monkeypatch):
    X = data[0]
    est = fitted(*case, data)
    buffer = io.BytesIO()
    skio.dump(est, buffer, precision="float32")
    buffer.seek(0)
    predictor = skio.load(buffer)
    # the torch module is not used on the CPU
    monkeypatch.setattr(type(est), "_prediction_module", None)
    for X_typed in (X, X.astype(np.float32)):
        tolerance = 1e-6 if X_typed.dtype == np.float64 else 1e-4
        for name, values in outputs(est, X_typed).items():
            np.testing.assert_allclose(values, getattr(predictor, name)(X_typed),
                                       rtol=tolerance, atol=tolerance, err_msg=name)
        if "Classifier" in case[0]:  # (near-)ties of weight-agnostic sums may fall either way
            assert (est.predict(X_typed) == predictor.predict(X_typed)).mean() > 0.98


@pytest.mark.parametrize("network", [
    case("DenseClassifier"), case("WeightFreeRegressor"),
    case("WeightAgnosticClassifier", ensemble=True), case("WeightFreeClassifier", CNN),
], ids=case_id)
def test_outputs_are_in_the_inputs_floating_type(network, data):
    X = data[0]
    est = fitted(*network, data)
    expected = outputs(est, X)
    for dtype, computed in [(np.float32, np.float32), (np.float64, np.float64),
                            (np.int64, np.float64), (np.float16, np.float64)]:
        X_typed = np.round(X) if dtype in (np.int64, np.float16) else X
        got = outputs(est, X_typed.astype(dtype))
        for name, values in got.items():
            assert values.dtype == computed, (dtype, name)
        if dtype is np.float32:  # float32 rounding, not another network
            for name, values in got.items():
                np.testing.assert_allclose(values, expected[name], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("network", [
    case("DenseRegressor"), case("WeightAgnosticClassifier"),
    case("WeightAgnosticClassifier", ensemble=True), case("WeightFreeClassifier", CNN),
    case("WeightFreeRegressor", CNN),
], ids=case_id)
def test_numpy_chain_matches_the_torch_module(network, data, monkeypatch):
    X = data[0]
    est = fitted(*network, data)
    numpy_outputs = outputs(est, X)
    monkeypatch.setattr(BaseNetwork, "_chain_outputs", BaseNetwork._module_outputs)
    for name, values in outputs(est, X).items():
        np.testing.assert_allclose(numpy_outputs[name], values, rtol=1e-9, atol=1e-9)


def test_float64_rows_do_not_depend_on_their_batch(data):
    X = data[0]
    for network in (case("WeightFreeClassifier"), case("WeightFreeClassifier", CNN)):
        est = fitted(*network, data)
        whole = est.predict_proba(X)
        np.testing.assert_allclose(np.vstack([est.predict_proba(X[i:i + 1]) for i in range(7)]),
                                   whole[:7], rtol=1e-12, atol=1e-15)


def test_chain_is_exported_by_each_fit_and_never_by_predict(data, monkeypatch):
    X, y, _ = data
    builds = []
    build = BaseNetwork._export_chain
    monkeypatch.setattr(BaseNetwork, "_export_chain",
                        lambda est: builds.append(1) or build(est))
    est = sk_weightfree.WeightFreeClassifier(**{**TINY, "warm_start": True}).fit(X, y)
    assert len(builds) == 1
    for _ in range(3):
        est.predict(X)
    assert len(builds) == 1

    def torch_proba():
        with monkeypatch.context() as patch:
            patch.setattr(BaseNetwork, "_chain_outputs", BaseNetwork._module_outputs)
            return est.predict_proba(X)

    for step in (lambda: est.partial_fit(X, y), lambda: est.fit(X, y)):  # and a warm start
        before, chain = est.predict_proba(X), est._chain
        step()
        after = est.predict_proba(X)
        assert est._chain is not chain
        assert np.abs(after - before).max() > 1e-3  # the network changed ...
        np.testing.assert_allclose(after, torch_proba(), rtol=1e-9, atol=1e-9)  # ... and so
    assert len(builds) == 3                                                     # did its chain


def test_a_template_that_is_not_a_chain_predicts_through_torch(data):
    X, y, _ = data
    est = sk_weightfree.DenseClassifier(module=Residual, max_epochs=1, device="cpu",
                                        random_state=0).fit(X, y)
    assert est._chain is None  # decided at fit: no chain, so the module predicts
    with torch.inference_mode():
        logits = est.net_.module_.double()(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(est.predict_log_proba(X),
                               logits - np.log(np.exp(logits).sum(1, keepdims=True)),
                               rtol=1e-9, atol=1e-9)
    assert est.predict_proba(X.astype(np.float32)).dtype == np.float32


def test_the_rows_predicted_are_never_written_to(data):
    """Affine maps and activations work in place: never on the caller's rows."""
    rng = np.random.default_rng(0)
    chain = _inference.Chain([[
        _inference.Affine(rng.random(6) + 0.5, rng.standard_normal(6)),
        _inference.Activation("relu"), _inference.Linear(rng.standard_normal((3, 6)))]],
        6, "identity")
    for dtype in (np.float64, np.float32):
        X = rng.standard_normal((10, 6)).astype(dtype)
        before = X.copy()
        _inference.forward(chain, X)
        _inference.forward(chain, np.asfortranarray(X), batch_size=3)
        np.testing.assert_array_equal(X, before)
    X = data[0].astype(np.float32)
    before = X.copy()
    for network in (case("DenseClassifier"), case("WeightFreeClassifier", CNN)):
        fitted(*network, data).predict_proba(X)
    np.testing.assert_array_equal(X, before)


def test_chains_hold_no_torch(data):
    chain = fitted(*case("WeightFreeClassifier", CNN), data)._chain
    assert isinstance(chain, _inference.Chain)
    arrays = [value for ops in chain.members for op in ops for value in vars(op).values()]
    assert not any(isinstance(value, torch.Tensor) for value in arrays)


def test_regressor_file_and_estimator_agree_on_a_2d_target(tmp_path):
    X, y = make_regression(n_samples=120, n_features=5, n_targets=2, random_state=0)
    est = sk_weightfree.WeightFreeRegressor(**TINY).fit(X, y * 5 + 1)
    skio.dump(est, tmp_path / "r.npz")
    np.testing.assert_allclose(skio.load(tmp_path / "r.npz").predict(X.astype(np.float32)),
                               est.predict(X.astype(np.float32)), rtol=1e-4, atol=1e-4)


def test_out_of_memory_in_the_numpy_chain_gives_advice(data, monkeypatch):
    est = fitted(*case("WeightFreeClassifier"), data)

    def no_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 8.00 GiB for an array")

    monkeypatch.setattr(_inference, "forward", no_memory)
    with pytest.raises(MemoryError, match="on the cpu .*Predict fewer rows"):
        est.predict_proba(data[0])
