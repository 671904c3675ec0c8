"""The fitted attributes reproduce the predictions: the formula of the user guide."""

import numpy as np
import pytest
from scipy.special import expit, logsumexp, softmax
from sklearn.datasets import make_friedman1

from sk_weightfree import WeightAgnosticClassifier, WeightAgnosticRegressor
from conftest import ALL_ESTIMATORS, REGRESSORS, small

ACTIVATIONS = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh,
               "logistic": expit, "identity": lambda z: z}


def outputs_from_attributes(est, X, member=None):
    """The user guide's formula, written from the public fitted attributes alone (or from
    one ``(coefs, intercepts, unit_scales)`` member of a weight-agnostic ensemble)."""
    coefs, intercepts, scales = member or (
        est.coefs_, est.intercepts_,
        getattr(est, "unit_scales_", [np.ones(c.shape[1]) for c in est.coefs_]))
    a = X
    for i, W in enumerate(coefs):
        if getattr(est, "paired_inputs_", False):
            a = np.hstack([a, -a])
        z = (a @ W) * scales[i] + intercepts[i]
        if i < len(coefs) - 1:
            a = ACTIVATIONS[est.activation](z)
            if hasattr(est, "unit_signs_"):
                a = a * est.unit_signs_[i]
    return z


@pytest.fixture(scope="module")
def regression_data():
    return make_friedman1(n_samples=200, noise=0.5, random_state=0)


@pytest.mark.parametrize("cls", ALL_ESTIMATORS)
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_formula_reproduces_predictions(cls, activation, digits, regression_data):
    X, y = regression_data if cls in REGRESSORS else digits
    est = small(cls, hidden_layer_sizes=(12, 6), activation=activation).fit(X, y)
    z = outputs_from_attributes(est, X)
    if cls in REGRESSORS:
        np.testing.assert_allclose(z.ravel(), est.predict(X), rtol=1e-6, atol=1e-6)
    else:
        np.testing.assert_allclose(softmax(z, axis=1), est.predict_proba(X), atol=1e-6)
        top2 = np.sort(z, axis=1)[:, -2:]
        clear = top2[:, 1] - top2[:, 0] > 1e-9  # weight-agnostic nets tie often
        assert clear.mean() > 0.25
        np.testing.assert_array_equal(est.classes_[z.argmax(1)][clear], est.predict(X)[clear])


@pytest.mark.parametrize("cls", [WeightAgnosticClassifier, WeightAgnosticRegressor])
def test_weight_agnostic_ensemble_is_the_mean_over_values(cls, digits, regression_data):
    X, y = regression_data if cls is WeightAgnosticRegressor else digits
    est = small(cls, ensemble=True, weight_values=(-1.0, 0.5, 2.0)).fit(X, y)
    members = est._prediction_members()
    assert len(members) == 3
    for (coefs, _, _), value in zip(members, est.weight_values_):
        for coef, mask in zip(coefs, est.masks_):
            np.testing.assert_array_equal(coef, mask * value)
    members = [outputs_from_attributes(est, X, member) for member in members]
    if cls is WeightAgnosticRegressor:
        np.testing.assert_allclose(np.mean(members, axis=0).ravel(), est.predict(X),
                                   rtol=1e-6, atol=1e-6)
    else:
        mean_proba = np.mean([softmax(z, axis=1) for z in members], axis=0)
        np.testing.assert_allclose(est.predict_proba(X), mean_proba, atol=1e-6)
        log_mean = logsumexp([z - logsumexp(z, axis=1, keepdims=True) for z in members],
                             axis=0) - np.log(len(members))
        np.testing.assert_allclose(est.predict_log_proba(X), log_mean, atol=1e-6)
