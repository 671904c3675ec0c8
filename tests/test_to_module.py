"""to_module(): every family's fitted network as plain torch layers that predict alike."""

import numpy as np
import pytest
import torch
from sklearn.base import is_classifier
from sklearn.exceptions import NotFittedError
from torch import nn

import sk_weightfree
from conftest import ALL_ESTIMATORS, small

# What a plain module may hold besides torch's own layers: fixed, parameter-free maps and
# the head (the same rules as the estimators': members combined, targets un-scaled).
PLAIN_EXTRAS = (sk_weightfree.nn.PairedInput, sk_weightfree.nn.UnitSigns,
                sk_weightfree.nn.OutputAffine, sk_weightfree.nn.ValueEnsemble)


class _Template(nn.Module):
    def __init__(self, n_outputs):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 12), nn.ReLU(), nn.Linear(12, n_outputs))

    def forward(self, x):
        return self.body(x)


class _Residual(nn.Module):
    """Not a chain: predicts with its torch module, through the same head."""

    def __init__(self, n_outputs):
        super().__init__()
        self.hidden, self.out = nn.Linear(8, 8), nn.Linear(8, n_outputs)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)) + x)


def _data(cls, small_data):
    X, y = small_data
    return (X, y) if is_classifier(cls()) else (X, X[:, 0] * 3.0 + 10.0)


def _module_outputs(est, X):
    with torch.no_grad():
        return est.to_module().double()(torch.as_tensor(X, dtype=torch.float64)).numpy()


def _assert_plain(module):
    assert not module.training
    for m in module.modules():
        assert not hasattr(m, "scores"), type(m).__name__
        assert not m._forward_pre_hooks, type(m).__name__  # no pruning hook
        assert not type(m).__module__.startswith("sk_weightfree") or isinstance(
            m, PLAIN_EXTRAS) or type(m).__module__ == "sk_weightfree._tracing", type(m).__name__


def _answers(est, X):
    """predict_proba and predict (classifiers) or predict (regressors)."""
    if is_classifier(est):
        return est.predict_proba(X), est.predict(X)
    return (est.predict(X),)


def _module_answers(est, z):
    """The same answers from the module's output ``z`` by the documented rules."""
    if not is_classifier(est):
        return (z,)
    if est.out_activation_ == "logistic":
        return 1 / (1 + np.exp(-z)), (z > 0).astype(int)
    proba = torch.softmax(torch.as_tensor(z), dim=1).numpy()
    return proba, est.classes_[z.argmax(axis=1)]


@pytest.mark.parametrize("template", [None, _Template, _Residual],
                         ids=["mlp", "template", "residual"])
@pytest.mark.parametrize("cls", ALL_ESTIMATORS, ids=lambda c: c.__name__)
def test_estimator_file_and_module_agree(cls, template, small_data, tmp_path):
    """The bar of issue 29: predict_proba/predict of the estimator, of its io.dump file
    (to 1e-12 in float64) and of its to_module() (to 1e-5) agree."""
    X, y = _data(cls, small_data)
    est = small(cls, module=template).fit(X, y)
    expected = _answers(est, X)
    module = est.to_module()
    _assert_plain(module)
    z = _module_outputs(est, X)
    assert z.shape == (len(X), est.n_outputs_)
    np.testing.assert_allclose(z, est._forward_outputs(X), rtol=1e-5, atol=1e-5)
    for got, want in zip(_module_answers(est, z), expected):
        np.testing.assert_allclose(got, np.reshape(want, got.shape), rtol=1e-5, atol=1e-5)
    if est._chain is None:  # a template that is not a chain has no compact file
        assert template is not None
        with pytest.raises(ValueError, match="not supported|cannot be written as a chain"):
            sk_weightfree.io.dump(est, tmp_path / "m.npz")
        return
    sk_weightfree.io.dump(est, tmp_path / "m.npz", precision="float32")
    loaded = sk_weightfree.io.load(tmp_path / "m.npz")
    got = (loaded.predict_proba(X), loaded.predict(X)) if is_classifier(est) else (
        loaded.predict(X),)
    for got, want in zip(got, expected):
        if want.dtype.kind in "fc":
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        else:
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("cls", [sk_weightfree.WeightAgnosticClassifier,
                                 sk_weightfree.WeightAgnosticRegressor])
def test_weight_agnostic_ensemble_module_combines_the_values(cls, small_data):
    X, y = _data(cls, small_data)
    est = small(cls, ensemble=True).fit(X, y)
    z = _module_outputs(est, X)
    assert z.shape == (len(X), est.n_outputs_)  # one output: the members combined
    for got, want in zip(_module_answers(est, z), _answers(est, X)):
        np.testing.assert_allclose(got, np.reshape(want, got.shape), rtol=1e-6, atol=1e-8)


def test_pruned_module_holds_the_pruned_weights(small_data):
    X, y = small_data
    est = small(sk_weightfree.PrunedClassifier, density=0.3, max_epochs=4).fit(X, y)
    weights = [m.weight.detach().numpy().T for m in est.to_module().modules()
               if isinstance(m, nn.Linear)]
    for weight, coef, mask in zip(weights, est.coefs_, est.masks_):
        np.testing.assert_allclose(weight, coef, rtol=1e-6)
        assert not weight[~mask].any()


def test_float64_network_gives_a_float64_module(small_data):
    X, y = small_data
    est = small(sk_weightfree.WeightFreeClassifier, precision="float64").fit(X, y)
    module = est.to_module()
    assert {t.dtype for t in module.state_dict().values() if t.is_floating_point()} == {
        torch.float64}
    module(torch.as_tensor(X))  # runs without a dtype mismatch
    plain = sk_weightfree.nn.WeightFreeMLP(4, (3,), 2).double().to_module()  # nn level too
    plain(torch.zeros(2, 4, dtype=torch.float64))


@pytest.mark.parametrize("cls", ALL_ESTIMATORS, ids=lambda c: c.__name__)
def test_unfitted_to_module_raises_not_fitted(cls):
    with pytest.raises(NotFittedError):
        cls().to_module()
