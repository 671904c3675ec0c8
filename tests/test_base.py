"""What every estimator shares (sk_weightfree._base, _params): parameter validation as data,
the public validation path, and what validation leaves behind (nothing)."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

import sk_weightfree
from conftest import ALL_ESTIMATORS, small

TEMPLATE_FAMILIES = [cls for cls in ALL_ESTIMATORS if "Agnostic" not in cls.__name__]


def _variants(cls):
    """Default, with a template, and (weight-free, weight-agnostic) with the deprecated
    rule spellings that build a rule."""
    yield cls()
    yield cls(module=lambda n_outputs: torch.nn.Linear(8, n_outputs))
    if "WeightFree" in cls.__name__:
        yield cls(temperature=2.0)


@pytest.mark.parametrize("cls", ALL_ESTIMATORS, ids=lambda c: c.__name__)
def test_validation_leaves_an_unfitted_estimator_unfitted(cls):
    from sk_weightfree import cli

    for est in _variants(cls):
        before = dict(vars(est))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            assert est.validate_params() is est
            cli._validate(est)  # the command line's path
        assert vars(est).keys() == before.keys()
        with pytest.raises(NotFittedError):
            check_is_fitted(est)


@pytest.mark.parametrize("cls", ALL_ESTIMATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("params, match", [
    (dict(hidden_layer_sizes=(4, 0)), "hidden_layer_sizes.*positive integers"),
    (dict(hidden_layer_sizes=(4, True)), "hidden_layer_sizes.*positive integers"),
    (dict(hidden_layer_sizes="16"), "hidden_layer_sizes.*positive integers"),
    (dict(device="gpu"), "device.*'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"),
    (dict(device=0), "device"),
    (dict(input_shape=(1, 2)), "needs module"),
    (dict(module=torch.nn.Linear, input_shape=(1, -2)), "input_shape.*positive integers"),
    (dict(module=torch.nn.Linear, input_shape=()), "input_shape.*not empty"),
])
def test_parameter_errors_name_the_parameter_once(cls, params, match):
    est = cls(**params)
    with pytest.raises(ValueError, match=match):
        est.validate_params()
    with pytest.raises(ValueError, match=match):
        est.fit(np.zeros((4, 8)), [0, 1, 0, 1])


@pytest.mark.parametrize("values", [(), [], [1.0, np.inf], [[np.nan]], [0.5, 0.0], "ab", 2.0])
def test_weight_values_are_a_declared_constraint(values):
    est = sk_weightfree.WeightAgnosticClassifier(weight_values=values)
    with pytest.raises(ValueError, match="weight_values.*none of them 0"):
        est.validate_params()


def test_unavailable_device_is_refused_by_validation():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="CUDA is not available"):
        sk_weightfree.DenseClassifier(device="cuda").validate_params()


def test_fit_sets_the_state_validation_computes(small_data):
    est = small(sk_weightfree.WeightFreeClassifier, hidden_layer_sizes=[16]).fit(*small_data)
    assert est._hidden_sizes == (16,)
    assert type(est.mask_rule_).__name__ == "ThresholdRule"
