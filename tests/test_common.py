"""scikit-learn's estimator checks over every public estimator, with default parameters."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

import sk_weightfree
from conftest import ALL_ESTIMATORS, ESTIMATORS

# No expected failures: every check passes for every estimator.
EXPECTED_FAILURES = {}


@parametrize_with_checks([cls(random_state=0) for cls in ALL_ESTIMATORS],
                         expected_failed_checks=lambda est: EXPECTED_FAILURES)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_public_api_is_complete():
    public = set(sk_weightfree.__all__)
    assert {cls.__name__ for cls in ALL_ESTIMATORS} <= public
    assert {"spectral_similarity", "spectral_density"} <= public
    for name in public:
        assert hasattr(sk_weightfree, name), name
        assert not name.startswith("Base"), name


@pytest.mark.parametrize("cls", ALL_ESTIMATORS)
def test_shared_hyper_parameters(cls):
    params = cls().get_params()
    shared = {"hidden_layer_sizes": (300, 100), "activation": "relu", "batch_size": 128,
              "device": "auto", "random_state": None, "verbose": 0}
    for name, default in shared.items():
        assert params[name] == default, name
    assert {"max_epochs", "lr", "optimizer"} <= set(params)
