"""The numpy prediction formula (sk_weightfree._inference) against the torch networks."""

import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import softmax
from sklearn.datasets import make_regression

import sk_weightfree
from sk_weightfree._base import BaseNetwork
from sk_weightfree import _tracing
from sk_weightfree._inference import Chain, forward, perceptron_ops, use_sum_of_inputs
from sk_weightfree._tracing import chain_from_estimator
from conftest import case_id

PACKAGE_DIR = Path(sk_weightfree.__file__).parent
TINY = dict(hidden_layer_sizes=(16,), max_epochs=2, batch_size=32, device="cpu", random_state=0)

CLASSIFIER_CASES = [
    ("DenseClassifier", {}),
    ("WeightFreeClassifier", {}),
    ("WeightFreeClassifier", {"unit_signs": "random"}),
    ("PrunedClassifier", {"finetune_epochs": 1}),
    ("WeightAgnosticClassifier", {"ensemble": False}),
    ("WeightAgnosticClassifier", {"ensemble": True}),
    ("RandomNetworkClassifier", {}),
]
REGRESSOR_CASES = [
    (name.replace("Classifier", "Regressor"), params) for name, params in CLASSIFIER_CASES
    if name != "WeightFreeClassifier" or params
]


@pytest.fixture(scope="module")
def regression_data():
    X, y = make_regression(n_samples=200, n_features=6, n_targets=2, noise=0.1, random_state=0)
    return X, y * 10 + 3  # unscaled targets: the folded standardisation is exercised


def assert_same_labels(labels, expected, logits):
    """Labels agree wherever the top two logits differ: exact ties (frequent in
    weight-agnostic networks, whose outputs are sums of equal terms) fall either way at
    rounding level."""
    top2 = np.sort(logits, axis=1)[:, -2:]
    decided = top2[:, 1] - top2[:, 0] > 1e-9 * (1 + np.abs(top2[:, 1]))
    assert decided.mean() > 0.5
    np.testing.assert_array_equal(labels[decided], expected[decided])


def fit(name, params, X, y):
    cls = getattr(sk_weightfree, name)
    return cls(**{**TINY, **params}).fit(X, y)


@pytest.fixture
def torch_predicts(monkeypatch):
    """Estimators predict through their torch module, as they do off the CPU."""
    monkeypatch.setattr(BaseNetwork, "_chain_outputs", BaseNetwork._module_outputs)


@pytest.mark.parametrize("case", CLASSIFIER_CASES, ids=case_id)
def test_formula_reproduces_classifier(case, digits_small, torch_predicts):
    X, y = digits_small
    est = fit(*case, X, y)
    z = forward(chain_from_estimator(est), X)
    np.testing.assert_allclose(softmax(z, axis=1), est.predict_proba(X), rtol=0, atol=1e-6)
    np.testing.assert_allclose(z - z.mean(axis=1, keepdims=True),
                               est.decision_function(X) - est.decision_function(X).mean(
                                   axis=1, keepdims=True), rtol=0, atol=1e-5)
    assert_same_labels(est.classes_[z.argmax(axis=1)], est.predict(X), z)


@pytest.mark.parametrize("case", REGRESSOR_CASES, ids=case_id)
def test_formula_reproduces_regressor(case, regression_data, torch_predicts):
    X, y = regression_data
    est = fit(*case, X, y)
    np.testing.assert_allclose(forward(chain_from_estimator(est), X), est.predict(X),
                               rtol=1e-9, atol=1e-6)


def test_formula_reproduces_multilabel(digits_small, torch_predicts):
    X, y = digits_small
    Y = np.stack([y % 2, y > 4, y == 0], axis=1).astype(int)
    for ensemble in (False, True):
        est = fit("WeightAgnosticClassifier", {"ensemble": ensemble}, X, Y)
        chain = chain_from_estimator(est)
        assert chain.multilabel
        z = forward(chain, X)
        np.testing.assert_allclose(1 / (1 + np.exp(-z)), est.predict_proba(X), atol=1e-6)


def random_layers(rng, sizes=(40, 30, 20, 5), density=0.3, paired=False, n_members=1):
    """Members of a network with {0,1} hidden layers (one shared value per member, the
    masks shared) and a real-weight output layer, as :func:`perceptron_ops` takes them."""
    shapes = list(zip(sizes[:-1], sizes[1:]))
    width = 2 if paired else 1
    masks = [(rng.random((width * n_in, n_out)) < density).astype(float)
             for n_in, n_out in shapes[:-1]]
    readout = rng.standard_normal((width * shapes[-1][0], shapes[-1][1]))
    members = []
    for value in rng.choice([-2.0, 0.5, 1.0], size=n_members, replace=False):
        layers = [dict(weights=m, value=value, intercepts=rng.standard_normal(m.shape[1]),
                       unit_scales=rng.random(m.shape[1]) + 0.5,
                       unit_signs=rng.choice([-1.0, 1.0], m.shape[1])) for m in masks]
        layers.append(dict(weights=readout, intercepts=rng.standard_normal(readout.shape[1])))
        members.append(layers)
    return members


def random_chain(rng, sizes=(40, 30, 20, 5), paired=False, n_members=1):
    members = random_layers(rng, sizes, paired=paired, n_members=n_members)
    return Chain([perceptron_ops(layers, "relu", paired) for layers in members], sizes[0],
                 "softmax", classes=np.arange(sizes[-1]))


@pytest.mark.parametrize("paired", [False, True])
@pytest.mark.parametrize("n_members", [1, 3])
def test_output_does_not_depend_on_batching_or_method(paired, n_members):
    rng = np.random.default_rng(0)
    chain = random_chain(rng, paired=paired, n_members=n_members)
    X = rng.standard_normal((150, 40))
    reference = forward(chain, X, batch_size=150, method="blas")
    for batch_size in (1, 7, 64, 1000):
        for method in ("auto", "sum", "blas"):
            np.testing.assert_allclose(forward(chain, X, batch_size=batch_size, method=method),
                                       reference, rtol=1e-12, atol=1e-12)
    # sparse rows give the same outputs as their dense form
    X[np.abs(X) < 1] = 0
    np.testing.assert_allclose(forward(chain, sp.csr_matrix(X), batch_size=16),
                               forward(chain, X), rtol=1e-12, atol=1e-12)


def test_formula_by_hand():
    """The paired, signed, scaled formula of the contract, written out in numpy."""
    rng = np.random.default_rng(1)
    (layers,) = random_layers(rng, sizes=(6, 5, 4, 3), paired=True)
    X = rng.standard_normal((10, 6))
    a = X
    for i, layer in enumerate(layers):
        a = np.hstack([a, -a])
        z = (a @ (layer["weights"] * layer.get("value", 1.0))) * layer.get("unit_scales", 1.0) \
            + layer["intercepts"]
        if i < 2:
            a = np.maximum(z, 0) * layer["unit_signs"]
    chain = Chain([perceptron_ops(layers, "relu", True)], 6, "identity")
    np.testing.assert_allclose(forward(chain, X), z, rtol=1e-12, atol=1e-12)


def test_sparse_input_is_never_densified():
    rng = np.random.default_rng(0)
    n_samples, n_features = 100_000, 2_000  # 1.6 GB if densified
    X = sp.random(n_samples, n_features, density=1e-3, format="csr", random_state=0)
    chain = Chain([perceptron_ops([dict(weights=rng.random((n_features, 8)) < 0.1),
                                   dict(weights=rng.standard_normal((8, 2)))], "relu", False)],
                  n_features, "identity")
    tracemalloc.start()
    try:
        out = forward(chain, X, batch_size=1000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.shape == (n_samples, 2)
    assert peak < 100 * 2**20, peak


def test_sum_of_inputs_rule():
    # sparse layers and small batches: sums; dense layers, big batches or tiny layers: BLAS
    assert use_sum_of_inputs(0.05, 784 * 300, 1)
    assert use_sum_of_inputs(0.02, 784 * 300, 4096)
    assert not use_sum_of_inputs(0.05, 784 * 300, 4096)
    assert not use_sum_of_inputs(0.5, 784 * 300, 1)
    assert not use_sum_of_inputs(0.01, 100 * 10, 1)


def test_bad_arguments():
    chain = random_chain(np.random.default_rng(0))
    with pytest.raises(ValueError, match="method"):
        forward(chain, np.zeros((2, 40)), method="fast")
    with pytest.raises(ValueError, match="batch_size"):
        forward(chain, np.zeros((2, 40)), batch_size=0)
    with pytest.raises(ValueError, match="activation"):
        perceptron_ops(random_layers(np.random.default_rng(0))[0], "gelu", False)
    with pytest.raises(ValueError, match="out_activation"):
        Chain(chain.members, 40, "sigmoid")


def test_inference_module_imports_no_torch():
    # Import the module on its own: a bare package object stands in for sk_weightfree's
    # __init__ (which imports the estimators), so only _inference's own imports count.
    code = f"""
import sys, types
package = types.ModuleType("sk_weightfree")
package.__path__ = [{str(PACKAGE_DIR)!r}]
sys.modules["sk_weightfree"] = package
import sk_weightfree._inference
banned = [m for m in ("torch", "skorch", "sklearn") if m in sys.modules]
assert not banned, banned
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("shape, axis", [((3, 8), 1), ((8, 3), 0), ((2, 6, 3, 3), 1)])
def test_fold_paired_one_rule_for_numpy_and_torch(shape, axis):
    import torch
    from sk_weightfree._inference import fold_paired

    weight = np.random.default_rng(0).integers(0, 2, shape).astype(np.float64)
    n_in = shape[axis] // 2
    want = np.take(weight, range(n_in), axis) - np.take(weight, range(n_in, 2 * n_in), axis)
    np.testing.assert_array_equal(fold_paired(weight, axis), want)
    np.testing.assert_array_equal(fold_paired(torch.from_numpy(weight), axis).numpy(), want)


def test_scored_mask_folds_its_paired_lines_with_fold_paired(monkeypatch):
    import torch
    from sk_weightfree import nn as wf_nn
    from sk_weightfree._inference import fold_paired

    layer = wf_nn.ScoredMaskLinear(4, 3, signs="paired")
    layer.eval()
    mask = layer.mask()
    assert mask.shape == (3, 8)
    torch.testing.assert_close(layer.effective_weight(), fold_paired(mask))
    calls = []
    monkeypatch.setattr("sk_weightfree.nn._layers.fold_paired",
                        lambda w: calls.append(w.shape) or fold_paired(w))
    layer.signed_weight(mask)
    assert calls == [(3, 8)]
