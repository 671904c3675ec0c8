"""to_module(): every family's fitted network as plain torch layers that predict alike."""

import numpy as np
import pytest
import torch
from sklearn.base import is_classifier
from sklearn.exceptions import NotFittedError
from torch import nn

import sk_weightfree
from conftest import ALL_ESTIMATORS, small

# What a plain module may hold besides torch's own layers: fixed, parameter-free maps.
PLAIN_EXTRAS = (sk_weightfree.nn.PairedInput, sk_weightfree.nn.UnitSigns)


class _Template(nn.Module):
    def __init__(self, n_outputs):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 12), nn.ReLU(), nn.Linear(12, n_outputs))

    def forward(self, x):
        return self.body(x)


def _data(cls, small_data):
    X, y = small_data
    return (X, y) if is_classifier(cls()) else (X, X[:, 0] * 3.0 + 10.0)


def _raw_outputs(est, X):
    with torch.no_grad():
        return est.to_module().double()(torch.as_tensor(X, dtype=torch.float64)).numpy()


def _assert_plain(module):
    assert not module.training
    for m in module.modules():
        assert not hasattr(m, "scores"), type(m).__name__
        assert not m._forward_pre_hooks, type(m).__name__  # no pruning hook
        assert not type(m).__module__.startswith("sk_weightfree") or isinstance(
            m, PLAIN_EXTRAS + (sk_weightfree.nn.OutputAffine, sk_weightfree.nn.ValueEnsemble)
        ), type(m).__name__


def _predicted(est, raw, X):
    """What the estimator predicts, from the module's raw outputs."""
    if raw.ndim == 3:  # a weight-agnostic ensemble: the mean of the members' probabilities
        return torch.softmax(torch.as_tensor(raw), dim=-1).mean(dim=0).numpy()
    if is_classifier(est):
        return torch.softmax(torch.as_tensor(raw), dim=1).numpy()
    return raw[:, 0] * est._target_scale[0] + est._target_mean[0]


def _expected(est, X):
    return est.predict_proba(X) if is_classifier(est) else est.predict(X)


@pytest.mark.parametrize("template", [False, True], ids=["mlp", "template"])
@pytest.mark.parametrize("cls", ALL_ESTIMATORS, ids=lambda c: c.__name__)
def test_to_module_predicts_as_the_estimator(cls, template, small_data):
    X, y = _data(cls, small_data)
    params = {"module": _Template} if template else {}
    est = small(cls, **params).fit(X, y)
    module = est.to_module()
    _assert_plain(module)
    np.testing.assert_allclose(_predicted(est, _raw_outputs(est, X), X), _expected(est, X),
                               rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("cls", [sk_weightfree.WeightAgnosticClassifier,
                                 sk_weightfree.WeightAgnosticRegressor])
def test_weight_agnostic_ensemble_module_stacks_the_values(cls, small_data):
    X, y = _data(cls, small_data)
    est = small(cls, ensemble=True).fit(X, y)
    raw = _raw_outputs(est, X)
    assert raw.shape == (len(est.weight_values_), len(X), est.n_outputs_)
    if is_classifier(est):
        np.testing.assert_allclose(_predicted(est, raw, X), est.predict_proba(X), rtol=1e-6)
    else:
        mean = raw.mean(axis=0)[:, 0] * est._target_scale[0] + est._target_mean[0]
        np.testing.assert_allclose(mean, est.predict(X), rtol=1e-6)


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
