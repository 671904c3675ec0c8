"""What every estimator shares (sk_weightfree._base, _params): parameter validation as data,
the public validation path, and what validation leaves behind (nothing)."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

import sk_weightfree
from sk_weightfree import (PrunedClassifier, RandomNetworkClassifier, WeightAgnosticClassifier,
                           WeightFreeClassifier)
from conftest import ALL_ESTIMATORS, ESTIMATORS, small
from error_checks import clear_error, fresh

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
    from sk_weightfree._study import validate_params

    for est in _variants(cls):
        before = dict(vars(est))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            assert est.validate_params() is est
            validate_params(est)  # the command line's path
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


# ============================================================================ hyper-parameters
SHARED_INVALID = [
    ("hidden_layer_sizes", (10, 0)), ("hidden_layer_sizes", (-3,)),
    ("hidden_layer_sizes", (2.5,)), ("hidden_layer_sizes", "abc"),
    ("hidden_layer_sizes", None), ("hidden_layer_sizes", (True,)),
    ("hidden_layer_sizes", 0), ("hidden_layer_sizes", ((4, 4),)),
    ("activation", "elu"), ("activation", None),
    ("max_epochs", 0), ("max_epochs", -1), ("max_epochs", 2.5), ("max_epochs", "3"),
    ("max_epochs", None), ("max_epochs", np.inf),
    ("batch_size", 0), ("batch_size", -8), ("batch_size", 2.5), ("batch_size", None),
    ("batch_size", "32"),
    ("lr", 0.0), ("lr", -1.0), ("lr", np.nan), ("lr", np.inf), ("lr", "0.1"), ("lr", None),
    ("optimizer", "lbfgs"), ("optimizer", None),
    ("lr_schedule", "step"),
    ("device", "gpu"), ("device", "tpu"), ("device", ""), ("device", "cuda:x"),
    ("device", "CPU"), ("device", None), ("device", 0), ("device", "meta"),
    ("random_state", "abc"), ("random_state", -1), ("random_state", 2**40),
    ("verbose", -1), ("verbose", "loud"),
    ("early_stopping", "yes"), ("early_stopping", None),
    ("validation_fraction", 0.0), ("validation_fraction", 1.0),
    ("validation_fraction", -0.1), ("validation_fraction", np.nan),
    ("n_iter_no_change", 0), ("n_iter_no_change", 1.5),
    ("tol", -1.0), ("tol", np.nan),
]
if not torch.cuda.is_available():
    SHARED_INVALID += [("device", "cuda"), ("device", "cuda:0"), ("device", "cuda:99")]
if not torch.backends.mps.is_available():
    SHARED_INVALID += [("device", "mps")]

SPECIFIC_INVALID = [
    (WeightFreeClassifier, "sampling", "gumbel"),
    (WeightFreeClassifier, "temperature", 0.0), (WeightFreeClassifier, "temperature", -1.0),
    (WeightFreeClassifier, "temperature", np.nan), (WeightFreeClassifier, "temperature", np.inf),
    (WeightFreeClassifier, "final_temperature", 0.0),
    (WeightFreeClassifier, "final_temperature", -2.0),
    (WeightFreeClassifier, "final_temperature", np.inf),
    (WeightFreeClassifier, "density", 0.0), (WeightFreeClassifier, "density", -0.1),
    (WeightFreeClassifier, "density", 1.5), (WeightFreeClassifier, "density", np.nan),
    (WeightFreeClassifier, "density", "half"),
    (WeightFreeClassifier, "init_density", 0.0), (WeightFreeClassifier, "init_density", 1.0),
    (WeightFreeClassifier, "init_density", 1.5),
    (WeightFreeClassifier, "unit_signs", "yes"),
    (PrunedClassifier, "density", 0.0), (PrunedClassifier, "density", 1.5),
    (PrunedClassifier, "density", None), (PrunedClassifier, "density", np.nan),
    (PrunedClassifier, "pruning", "random"),
    (PrunedClassifier, "n_rounds", 0), (PrunedClassifier, "n_rounds", 1.5),
    (PrunedClassifier, "finetune_epochs", -1), (PrunedClassifier, "rewind", "yes"),
    (WeightAgnosticClassifier, "weight_values", []),
    (WeightAgnosticClassifier, "weight_values", [np.nan, 1.0]),
    (WeightAgnosticClassifier, "weight_values", [np.inf]),
    (WeightAgnosticClassifier, "weight_values", "abc"),
    (WeightAgnosticClassifier, "weight_values", None),
    (WeightAgnosticClassifier, "weight_values", [1.0, "a"]),
    (WeightAgnosticClassifier, "weight_values", 2.0),
    (WeightAgnosticClassifier, "ensemble", "yes"),
    (WeightAgnosticClassifier, "sampling", "gumbel"),
    (WeightAgnosticClassifier, "temperature", 0.0),
    (WeightAgnosticClassifier, "temperature", np.inf),
    (WeightAgnosticClassifier, "final_temperature", -1.0),
    (RandomNetworkClassifier, "density", 0.0), (RandomNetworkClassifier, "density", -1.0),
    (RandomNetworkClassifier, "density", 1.5), (RandomNetworkClassifier, "density", None),
    (RandomNetworkClassifier, "density", np.nan),
    (RandomNetworkClassifier, "train_readout", "yes"),
]
# Options that newer versions add to every estimator (checked where they exist).
SHARED_INVALID += [("precision", "float16"), ("precision", "fp64"), ("precision", None),
                   ("torch_compile", "yes"), ("torch_compile", None),
                   ("alpha", -1e-4), ("alpha", np.nan), ("alpha", "0.1"), ("alpha", None),
                   ("shuffle", "yes"), ("shuffle", None)]
INVALID = [(cls, p, v) for cls in ESTIMATORS for p, v in SHARED_INVALID] + SPECIFIC_INVALID


@pytest.mark.parametrize(
    "cls, param, value", INVALID,
    ids=[f"{c.__name__}-{p}={v!r}" for c, p, v in INVALID],
)
def test_invalid_hyper_parameter_is_a_clear_error_at_fit(cls, param, value, small_data):
    X, y = small_data
    assert param in cls().get_params(), f"{cls.__name__} has no parameter {param!r}"
    est = fresh(cls, **{param: value})       # nothing is validated in __init__ ...
    assert est.get_params()[param] is value  # ... and the value is stored unchanged
    with clear_error(param):
        est.fit(X, y)
    with pytest.raises(NotFittedError):      # no half-built model is left behind
        est.predict(X)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_unknown_option_is_rejected(cls):
    with pytest.raises(TypeError, match="bogus"):
        cls(bogus=1)
    with clear_error("bogus"):
        cls().set_params(bogus=1)


@pytest.mark.parametrize("cls", [PrunedClassifier, RandomNetworkClassifier])
@pytest.mark.parametrize("density", [0.0, -0.1, 1.01])
def test_invalid_density_is_rejected(cls, density, small_data):
    X, y = small_data
    with pytest.raises(ValueError, match="density"):
        small(cls, density=density).fit(X, y)


def test_the_base_class_is_abstract():
    from sk_weightfree._base import BaseNetwork

    with pytest.raises(TypeError, match="abstract"):
        BaseNetwork()
