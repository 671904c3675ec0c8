"""Reliability: bad input gets a clear error, faults and round trips leave a usable model.

Every estimator and ``spectral_similarity`` must answer bad input with a ``ValueError``,
``TypeError`` or ``NotFittedError`` that names the problem -- never a torch/numpy traceback
from deep inside, a silent NaN, or a model in a broken state. Fits here are tiny
(``small(...)``: one hidden layer of 16 units, 3 epochs, CPU).
"""

import contextlib
import copy
import os
import pickle
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

import sk_weightfree
import sk_weightfree._inference
from conftest import ESTIMATORS, small
from sk_weightfree import (
    DenseClassifier,
    PrunedClassifier,
    RandomNetworkClassifier,
    WeightAgnosticClassifier,
    WeightFreeClassifier,
)

CLEAR = (ValueError, TypeError)  # NotFittedError is a ValueError
METHODS = ["predict", "predict_proba", "predict_log_proba", "score"]
# Paths an error must not be raised from: the user should see our (or sklearn's) message.
# the packages' own folders (site-packages/torch/...), not any path that holds the word
# (a Python installed under /opt/torch/ is not "inside torch")
DEEP = tuple(f"site-packages{os.sep}{name}{os.sep}"
             for name in ("torch", "skorch", "numpy", "scipy"))
# Estimators that run a training loop with default small() parameters.
TRAINED = ESTIMATORS
BATCHES_PER_EPOCH = 4  # 120 samples, batch_size=32 -> 32, 32, 32, 24
N = 120


# ---------------------------------------------------------------------------- helpers
def _innermost_file(info):
    tb = info.tb
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename


@contextlib.contextmanager
def clear_error(match, types=CLEAR):
    """Expect ``types`` whose message matches ``match``, raised outside torch/numpy."""
    with pytest.raises(types, match=match) as info:
        yield info
    where = _innermost_file(info)
    assert not any(part in where for part in DEEP), (
        f"{type(info.value).__name__} raised from deep inside {where}: {info.value}"
    )


def call(est, method, X, y):
    if method == "score":
        return est.score(X, y)
    return getattr(est, method)(X)


def assert_valid_proba(proba, n_rows, n_classes):
    assert proba.shape == (n_rows, n_classes)
    assert np.isfinite(proba).all(), f"non-finite probabilities: {proba[~np.isfinite(proba).all(axis=1)][:3]}"
    assert (proba >= 0).all() and (proba <= 1).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)


def assert_fully_fitted(est, X):
    """Every fitted attribute is set and consistent, and predictions on ``X`` are sane."""
    check_is_fitted(est)
    for name in ("classes_", "n_features_in_", "coefs_", "masks_", "density_",
                 "n_connections_", "history_", "n_iter_"):
        assert hasattr(est, name), name
    assert est.n_features_in_ == X.shape[1]
    lines = 2 * est.n_features_in_ if getattr(est, "paired_inputs_", False) else est.n_features_in_
    assert est.coefs_[0].shape[0] == lines, (
        f"coefs_ expects {est.coefs_[0].shape[0]} inputs but n_features_in_ is "
        f"{est.n_features_in_} (old and new fits mixed)"
    )
    for coef, mask in zip(est.coefs_, est.masks_):
        assert coef.shape == mask.shape and mask.dtype == bool
        assert np.isfinite(coef).all(), "non-finite coefs_"
    assert len(est.history_) == est.n_iter_
    for row in est.history_:
        assert np.isfinite(row["train_loss"]), f"non-finite loss in history_: {row}"
    proba = est.predict_proba(X)
    assert_valid_proba(proba, X.shape[0], len(est.classes_))
    assert set(np.unique(est.predict(X))) <= set(est.classes_)


def assert_usable_or_unfitted(est):
    """After a failed fit: either unfitted (NotFittedError) or every part agrees."""
    try:
        check_is_fitted(est)
    except NotFittedError:
        return
    left = sorted(k for k in vars(est) if k.endswith("_") and not k.startswith("_"))
    assert hasattr(est, "n_features_in_") and hasattr(est, "coefs_"), (
        f"the failed fit left a half-fitted estimator: check_is_fitted passes "
        f"(attributes {left}) but it cannot predict"
    )
    X = np.random.RandomState(1).randn(5, est.n_features_in_)
    assert_fully_fitted(est, X)


def fresh(cls, **kw):
    return small(cls, **kw)


@pytest.fixture(scope="module")
def int_data():
    X, y = load_digits(n_class=3, return_X_y=True)
    return X[:150].astype(np.int64), y[:150]


def _step_raiser(monkeypatch, exc_factory, at_call, optimizer=torch.optim.Adam):
    """Make ``optimizer.step`` raise ``exc_factory()`` on call number ``at_call`` (1-based)."""
    original = optimizer.step
    state = {"calls": 0, "raised": False}

    def step(self, *args, **kwargs):
        state["calls"] += 1
        if state["calls"] == at_call and not state["raised"]:
            state["raised"] = True
            raise exc_factory()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(optimizer, "step", step)
    return state


def _oom():
    return torch.OutOfMemoryError(
        "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.10 GiB total capacity)"
    )


# ============================================================================ not fitted
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_unfitted_estimator_raises_not_fitted(cls, method, small_data):
    X, y = small_data
    with clear_error("not fitted|fit", types=NotFittedError):
        call(cls(), method, X, y)


def test_unfitted_to_module_raises_not_fitted():
    with clear_error("not fitted|fit", types=NotFittedError):
        WeightFreeClassifier().to_module()


# ============================================================================ non-finite input
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("value, match", [(np.nan, "NaN"), (np.inf, "infinity"),
                                          (-np.inf, "infinity")],
                         ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_fit_rejects_non_finite_X(cls, value, match, sparse, small_data):
    X, y = small_data
    X = X.copy()
    X[3, 2] = value
    if sparse:
        X = sp.csr_matrix(X)
    est = fresh(cls)
    with clear_error(match):
        est.fit(X, y)
    assert_usable_or_unfitted(est)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("value, match", [(np.nan, "NaN"), (np.inf, "infinity"),
                                          (-np.inf, "infinity")],
                         ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_predict_rejects_non_finite_X(cls, value, match, method, fitted, small_data):
    X, y = small_data
    X = X[:10].copy()
    X[4, 0] = value
    with clear_error(match):
        call(fitted(cls), method, X, y[:10])


@pytest.mark.parametrize("value, match", [(np.nan, "NaN"), (np.inf, "infinity")],
                         ids=["nan", "inf"])
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_fit_rejects_non_finite_y(cls, value, match, small_data):
    X, y = small_data
    y = y.astype(float)
    y[7] = value
    est = fresh(cls)
    with clear_error(match):
        est.fit(X, y)
    assert_usable_or_unfitted(est)


@pytest.mark.parametrize("value, match", [(np.nan, "NaN"), (np.inf, "infinity")],
                         ids=["nan", "inf"])
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_score_rejects_non_finite_y(cls, value, match, fitted, small_data):
    X, y = small_data
    y = y[:10].astype(float)
    y[2] = value
    with clear_error(match):
        fitted(cls).score(X[:10], y)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_pandas_missing_values_are_rejected(cls, small_data):
    X, y = small_data
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    df["f0"] = pd.array(np.arange(N) % 5, dtype="Int64")
    df.loc[3, "f0"] = pd.NA
    with clear_error("NaN"):
        fresh(cls).fit(df, y)


# ============================================================================ shapes
@pytest.mark.parametrize("case", ["X_1d", "X_3d", "X_scalar", "y_2d"])
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_fit_rejects_wrong_dimensionality(cls, case, small_data):
    X, y = small_data
    if case == "X_1d":
        X = X[:, 0]
    elif case == "X_3d":
        X = X.reshape(N, 2, 4)
    elif case == "X_scalar":
        X = np.float64(3.0)
    else:
        y = np.stack([y, y], axis=1)
    est = fresh(cls)
    with clear_error(r"2D|1d|dim|shape|scalar"):
        est.fit(X, y)
    assert_usable_or_unfitted(est)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", ["X_1d", "X_3d"])
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_predict_rejects_wrong_dimensionality(cls, case, method, fitted, small_data):
    X, y = small_data
    X = X[0] if case == "X_1d" else X[:10].reshape(10, 2, 4)
    with clear_error(r"2D|dim|shape"):
        call(fitted(cls), method, X, y[: len(X)])


@pytest.mark.parametrize("case, match", [
    ("no_samples", "0 sample"), ("no_features", "0 feature"), ("one_sample", "sample"),
])
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_fit_rejects_empty_input(cls, case, match, small_data):
    X, y = small_data
    if case == "no_samples":
        X, y = X[:0], y[:0]
    elif case == "no_features":
        X = X[:, :0]
    else:
        X, y = X[:1], y[:1]
    est = fresh(cls)
    with clear_error(match):
        est.fit(X, y)
    assert_usable_or_unfitted(est)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_predict_rejects_empty_input(cls, method, fitted, small_data):
    X, y = small_data
    with clear_error("0 sample"):
        call(fitted(cls), method, X[:0], y[:0])


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_fit_rejects_length_mismatch(cls, small_data):
    X, y = small_data
    est = fresh(cls)
    with clear_error("inconsistent numbers of samples"):
        est.fit(X, y[:-1])
    assert_usable_or_unfitted(est)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_score_rejects_length_mismatch(cls, fitted, small_data):
    X, y = small_data
    with clear_error("inconsistent numbers of samples"):
        fitted(cls).score(X, y[:-3])


@pytest.mark.parametrize("n_features", [7, 9, 1])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_feature_count_must_match_at_predict(cls, method, n_features, fitted, small_data):
    X, y = small_data
    X_other = np.random.RandomState(0).randn(10, n_features)
    with clear_error(r"features"):
        call(fitted(cls), method, X_other, y[:10])


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_feature_count_must_match_for_sparse_at_predict(cls, fitted):
    X_other = sp.random(10, 9, density=0.3, format="csr", random_state=0)
    with clear_error(r"features"):
        fitted(cls).predict(X_other)


# ============================================================================ labels
@pytest.mark.parametrize("label", [0, "only"])
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_single_class_is_rejected(cls, label, small_data):
    X, _ = small_data
    est = fresh(cls)
    with clear_error("class") as info:
        est.fit(X, np.full(N, label))
    assert f"got 1 class ({label!r})" in str(info.value)  # the label, not np.int64(0)
    assert_usable_or_unfitted(est)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_classes_with_one_or_two_samples_are_learned(cls, small_data):
    X, y = small_data
    y = y.copy()
    y[5] = 7           # class 7: one sample
    y[[11, 12]] = 9    # class 9: two samples
    est = fresh(cls).fit(X, y)
    np.testing.assert_array_equal(est.classes_, [0, 1, 2, 7, 9])
    assert_fully_fitted(est, X)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_one_sample_class_with_early_stopping_falls_back_to_an_unstratified_split(cls, small_data):
    X, y = small_data
    y = y.copy()
    y[5] = 7
    est = fresh(cls, early_stopping=True)
    # a stratified split needs 2 of each class: the split falls back, and says so
    with pytest.warns(UserWarning, match="not stratified"):
        est.fit(X, y)
    assert_fully_fitted(est, X)


@pytest.mark.parametrize("kind", ["str", "bool", "minus_one_one", "float", "big_int",
                                  "object", "categorical"])
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_label_types(cls, kind, small_data):
    X, y = small_data
    y2 = (y > 0).astype(int)
    labels = {
        "str": np.array(["cat", "dog", "emu"])[y],
        "bool": y2.astype(bool),
        "minus_one_one": 2 * y2 - 1,
        "float": y.astype(float) * 2.0 - 1.0,
        "big_int": y.astype(np.int64) * 10**12,
        "object": np.array(["a", "b", "c"], dtype=object)[y],
        "categorical": pd.Series(pd.Categorical(np.array(["x", "y", "z"])[y])),
    }[kind]
    est = fresh(cls).fit(X, labels)
    expected = np.unique(np.asarray(labels))
    np.testing.assert_array_equal(est.classes_, expected)
    pred = est.predict(X)
    assert set(np.unique(pred)) <= set(expected)
    if kind in ("bool", "minus_one_one", "float", "big_int"):
        assert pred.dtype == np.asarray(labels).dtype
    assert_valid_proba(est.predict_proba(X), N, len(expected))
    assert 0.0 <= est.score(X, labels) <= 1.0


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_continuous_labels_are_rejected(cls, small_data):
    X, _ = small_data
    est = fresh(cls)
    with clear_error("continuous|label"):
        est.fit(X, np.linspace(0, 1, N))
    assert_usable_or_unfitted(est)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_mixed_label_types_are_rejected(cls, small_data):
    X, y = small_data
    labels = np.array([1 if v else "one" for v in y], dtype=object)
    with clear_error("str|type|[Mm]ix"):
        fresh(cls).fit(X, labels)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_column_vector_y_works(cls, small_data):
    X, y = small_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = fresh(cls).fit(X, y.reshape(-1, 1))
    assert_fully_fitted(est, X)


# ============================================================================ non-numeric X
@pytest.mark.parametrize("case, match", [
    ("strings", "string|float|numeric"),
    ("dicts", "float|dict|numeric|real number"),
    ("complex", "[Cc]omplex"),
    ("df_text_column", "string|float|numeric"),
])
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_non_numeric_X_is_rejected_at_fit(cls, case, match, small_data):
    X, y = small_data
    if case == "strings":
        X = np.array([["a", "b"]] * N)
    elif case == "dicts":
        X = np.array([[{"a": 1}, {"b": 2}]] * N, dtype=object)
    elif case == "complex":
        X = X + 1j
    else:
        X = pd.DataFrame({"num": X[:, 0], "text": np.array(["u", "v"])[y % 2]})
    est = fresh(cls)
    with clear_error(match):
        est.fit(X, y)
    assert_usable_or_unfitted(est)


@pytest.mark.parametrize("case, match", [
    ("strings", "string|float|numeric"), ("complex", "[Cc]omplex"),
])
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_non_numeric_X_is_rejected_at_predict(cls, case, match, fitted, small_data):
    X, _ = small_data
    X = np.full((4, 8), "a") if case == "strings" else X[:4] + 1j
    with clear_error(match):
        fitted(cls).predict_proba(X)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_object_array_of_numbers_works(cls, fitted, small_data):
    X, y = small_data
    est = fresh(cls).fit(X.astype(object), y)
    assert_fully_fitted(est, X)
    np.testing.assert_array_equal(fitted(cls).predict(X.astype(object)),
                                  fitted(cls).predict(X))


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


# ============================================================================ sparse
@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "lil", "dok", "csr_array"])
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_sparse_input_matches_dense(cls, fmt, fitted, small_data):
    X, y = small_data
    X = np.where(np.abs(X) < 0.5, 0.0, X)
    dense = fresh(cls).fit(X, y)
    if fmt == "csr_array":
        Xs = sp.csr_array(X)
    else:
        Xs = sp.csr_matrix(X).asformat(fmt)
    est = fresh(cls).fit(Xs, y)
    assert_fully_fitted(est, X)
    np.testing.assert_allclose(est.predict_proba(Xs), dense.predict_proba(X), atol=1e-5)
    assert est.score(Xs, y) == pytest.approx(dense.score(X, y))


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_sparse_int_and_explicit_zeros(cls, small_data):
    X, y = small_data
    Xi = sp.csr_matrix(np.round(np.abs(X)).astype(np.int32))
    Xi.data[::3] = 0  # explicit zeros stay stored
    est = fresh(cls).fit(Xi, y)
    assert_valid_proba(est.predict_proba(Xi), N, 3)


# ============================================================================ pandas
def _frame(X, names=None):
    names = names or [f"f{i}" for i in range(X.shape[1])]
    return pd.DataFrame(X, columns=names)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_dataframe_feature_names_are_kept_and_checked(cls, small_data):
    X, y = small_data
    df = _frame(X)
    est = fresh(cls).fit(df, pd.Series(y, name="target"))
    np.testing.assert_array_equal(est.feature_names_in_, df.columns)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same names: no warning
        proba = est.predict_proba(df)
    assert_valid_proba(proba, N, 3)
    with pytest.warns(UserWarning, match="feature names"):
        np.testing.assert_allclose(est.predict_proba(X), proba)
    with clear_error("feature names"):
        est.predict(_frame(X, [f"g{i}" for i in range(8)]))
    with clear_error("feature names"):
        est.predict(df[df.columns[::-1]])
    with clear_error("feature names"):
        est.score(_frame(X, [f"g{i}" for i in range(8)]), y)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_fit_without_names_predict_with_names_warns(cls, fitted, small_data):
    X, _ = small_data
    with pytest.warns(UserWarning, match="feature names"):
        fitted(cls).predict(_frame(X))


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_dataframe_mixed_dtypes_and_refit_without_names(cls, small_data):
    X, y = small_data
    df = pd.DataFrame({
        "a": X[:, 0], "b": (X[:, 1] * 10).astype(np.int16), "c": X[:, 2] > 0,
        "d": X[:, 3].astype(np.float32),
    })
    est = fresh(cls).fit(df, y)
    assert list(est.feature_names_in_) == ["a", "b", "c", "d"]
    assert_valid_proba(est.predict_proba(df), N, 3)
    est.fit(X, y)
    assert not hasattr(est, "feature_names_in_")


# ============================================================================ dtypes, layout
DTYPES = [np.int8, np.int32, np.int64, np.uint8, np.float16, np.float32, np.float64, "F"]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name if d != "F"
                         else "fortran")
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_dtype_and_memory_layout_do_not_change_the_model(cls, dtype, int_data):
    X, y = int_data  # integer-valued, exactly representable in every dtype above
    reference = fresh(cls).fit(X.astype(np.float64), y)
    Xd = np.asfortranarray(X.astype(np.float64)) if dtype == "F" else X.astype(dtype)
    est = fresh(cls).fit(Xd, y)
    np.testing.assert_allclose(est.predict_proba(Xd), reference.predict_proba(X), atol=1e-6)
    np.testing.assert_array_equal(reference.predict(Xd), reference.predict(X))
    for a, b in zip(est.masks_, reference.masks_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_bool_X_works(cls, small_data):
    X, y = small_data
    est = fresh(cls).fit(X > 0, y)
    assert_valid_proba(est.predict_proba(X > 0), N, 3)


@pytest.mark.parametrize("cls", [DenseClassifier, WeightFreeClassifier])
def test_fit_does_not_modify_the_input(cls, small_data):
    X, y = small_data
    X32 = np.ascontiguousarray(X, dtype=np.float32)  # the zero-copy path
    X_before, y_before = X32.copy(), y.copy()
    fresh(cls).fit(X32, y).predict(X32)
    np.testing.assert_array_equal(X32, X_before)
    np.testing.assert_array_equal(y, y_before)


# ============================================================================ magnitudes
@pytest.mark.parametrize("scale", [1e6, 1e-6])
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_extreme_feature_magnitudes_fit_to_finite_probabilities(cls, scale, small_data):
    X, y = small_data
    est = fresh(cls).fit(X * scale, y)
    assert_fully_fitted(est, X * scale)


@pytest.mark.parametrize("scale", [1e6, 1e-6, 1e30, 1e39])
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_extreme_magnitudes_at_predict_give_finite_probabilities(cls, scale, fitted,
                                                                 small_data):
    """MLPClassifier gives finite probabilities for all of these (float64 throughout)."""
    X, _ = small_data
    proba = fitted(cls).predict_proba(X[:20] * scale)
    assert_valid_proba(proba, 20, 3)
    assert np.isfinite(fitted(cls).predict_log_proba(X[:20] * scale)).all()


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_values_overflowing_float32_at_fit_are_clear(cls, small_data):
    """1e39 is finite in float64 but not in float32: fit it or say so; never keep NaN."""
    X, y = small_data
    X = X.copy()
    X[0, 0] = 1e39
    est = fresh(cls)
    with clear_error("float32"):
        est.fit(X, y)
    with pytest.raises(NotFittedError):
        est.predict(X)


# ============================================================================ batch sizes
BATCH_NORM_ESTIMATORS = (WeightFreeClassifier, RandomNetworkClassifier)


@pytest.mark.parametrize("batch_size", [1, 119, 10_000])
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_any_valid_batch_size_works(cls, batch_size, small_data):
    X, y = small_data
    if batch_size == 1 and cls in BATCH_NORM_ESTIMATORS:
        # Batch normalisation needs two samples per batch: a clear parameter error instead.
        with pytest.raises(ValueError, match="batch_size"):
            fresh(cls, batch_size=1).fit(X, y)
        return
    est = fresh(cls, batch_size=batch_size, max_epochs=2).fit(X, y)
    assert_fully_fitted(est, X)
    if cls is not RandomNetworkClassifier:
        assert est.n_iter_ == 2  # the pruned family's retraining counts inside max_epochs


def test_tiny_data_smaller_than_batch(small_data):
    X, y = small_data
    for cls in ESTIMATORS:
        est = fresh(cls, batch_size=512).fit(X[:3], y[:3])  # 3 samples, 3 classes
        assert_fully_fitted(est, X[:3])


# ============================================================================ round trips
@pytest.mark.parametrize("how", ["pickle", "joblib", "deepcopy"])
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_round_trips_give_identical_predictions(cls, how, fitted, small_data, tmp_path):
    X, y = small_data
    est = fitted(cls)
    if how == "pickle":
        other = pickle.loads(pickle.dumps(est, protocol=pickle.HIGHEST_PROTOCOL))
    elif how == "joblib":
        joblib.dump(est, tmp_path / "m.joblib")
        other = joblib.load(tmp_path / "m.joblib")
    else:
        other = copy.deepcopy(est)
    np.testing.assert_array_equal(other.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(other.predict(X), est.predict(X))
    for a, b in zip(other.masks_, est.masks_):
        np.testing.assert_array_equal(a, b)
    # The copy is independent: refitting it on other data leaves the original alone.
    before = est.predict_proba(X)
    other.fit(X[:, :5], (y > 0).astype(int))
    np.testing.assert_array_equal(est.predict_proba(X), before)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_pickle_with_verbose_progress_bar(cls, small_data, capsys):
    X, y = small_data
    est = fresh(cls, verbose=1).fit(X, y)
    other = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(other.predict_proba(X), est.predict_proba(X))


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_clone_of_fitted_estimator_is_unfitted(cls, fitted, small_data):
    X, _ = small_data
    est = fitted(cls)
    cloned = clone(est)
    assert cloned.get_params() == est.get_params() or all(
        np.array_equal(np.asarray(a), np.asarray(b))
        for a, b in zip(cloned.get_params().values(), est.get_params().values())
    )
    with pytest.raises(NotFittedError):
        check_is_fitted(cloned)
    assert not [k for k in vars(cloned) if k.endswith("_") and not k.startswith("_")]
    with pytest.raises(NotFittedError):
        cloned.predict(X)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_refit_on_data_of_another_shape(cls, small_data):
    X, y = small_data
    rng = np.random.RandomState(0)
    est = fresh(cls).fit(X, y)
    X2 = rng.randn(60, 5)
    y2 = np.array(["no", "yes"])[(X2[:, 0] > 0).astype(int)]
    est.fit(X2, y2)
    assert est.n_features_in_ == 5
    np.testing.assert_array_equal(est.classes_, ["no", "yes"])
    assert_fully_fitted(est, X2)
    assert est.n_iter_ <= 3 + (1 if cls is PrunedClassifier else 0)  # history restarted
    with clear_error("features"):
        est.predict(X)
    X3 = rng.randn(80, 12)
    y3 = rng.randint(0, 4, 80)
    est.set_params(hidden_layer_sizes=(6, 5)).fit(X3, y3)
    assert est.n_features_in_ == 12 and len(est.classes_) == 4
    assert [c.shape[1] for c in est.coefs_[:-1]] == [6, 5]
    assert_fully_fitted(est, X3)


# ============================================================================ failed refits
def _refit_failure_cases():
    cases = [
        ("single_class", {}, lambda X, y: (X[:, :5], np.zeros(len(X)))),
        ("float32_overflow", {}, lambda X, y: (np.where(np.arange(5) == 0, 1e39, X[:, :5]),
                                               y)),
    ]
    if not torch.cuda.is_available():
        cases.append(("cuda_unavailable", {"device": "cuda"}, lambda X, y: (X[:, :5], y)))
    return cases


REFIT_FAILURES = _refit_failure_cases()


@pytest.mark.parametrize("case, params, make", REFIT_FAILURES,
                         ids=[c[0] for c in REFIT_FAILURES])
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_failed_refit_leaves_a_consistent_estimator(cls, case, params, make, small_data):
    """A fitted estimator whose next fit fails must not mix old and new parts."""
    X, y = small_data
    est = fresh(cls).fit(X, y)
    before = est.predict_proba(X)
    est.set_params(**params)
    X_bad, y_bad = make(X, y)
    with pytest.raises(CLEAR):
        est.fit(X_bad, y_bad)
    assert_fully_fitted(est, X)  # still the previous model, whole
    np.testing.assert_array_equal(est.predict_proba(X), before)


# ============================================================================ interrupts
def test_interrupt_with_early_stopping_restores_the_best_epoch(small_data, monkeypatch):
    X, y = small_data
    # lr 0.05: the validation score fluctuates, so the best epoch is not the last one
    params = dict(early_stopping=True, n_iter_no_change=50, lr=0.05)
    clf = small(DenseClassifier, max_epochs=20, **params)
    steps = {"n": 0}
    original = torch.optim.Adam.step

    def step(self, *args, **kwargs):
        steps["n"] += 1
        if steps["n"] == 17 * 4 + 2:  # 4 batches of 32 per epoch: inside epoch 18
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    with pytest.warns(UserWarning, match="interrupted"):
        clf.fit(X, y)
    monkeypatch.undo()
    assert clf.n_iter_ == 17
    stopper = dict(clf.net_.callbacks_)["stopping"]
    assert stopper.best_epoch_ == int(np.argmax(clf.validation_scores_)) + 1
    # the weights are those of the best epoch: the same as an uninterrupted 17-epoch fit,
    # which restores its best epoch too
    reference = small(DenseClassifier, max_epochs=17, **params).fit(X, y)
    for got, expected in zip(clf.coefs_, reference.coefs_):
        np.testing.assert_array_equal(got, expected)


def test_interrupt_restores_the_optimizer_state(small_data, monkeypatch):
    X, y = small_data
    clf = small(DenseClassifier, max_epochs=5)
    steps = {"n": 0}
    original = torch.optim.Adam.step

    def step(self, *args, **kwargs):
        steps["n"] += 1
        if steps["n"] == 2 * 4 + 2:  # inside epoch 3
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    with pytest.warns(UserWarning, match="interrupted"):
        clf.fit(X, y)
    monkeypatch.undo()
    state = clf.net_.optimizer_.state_dict()["state"]
    assert all(float(s["step"]) == 2 * 4 for s in state.values())  # two whole epochs
    reference = small(DenseClassifier, max_epochs=2).fit(X, y)
    for got, expected in zip(state.values(),
                             reference.net_.optimizer_.state_dict()["state"].values()):
        torch.testing.assert_close(got["exp_avg"], expected["exp_avg"], rtol=0, atol=0)


def test_read_only_input_gives_no_warning(small_data, recwarn):
    X, y = small_data
    X = np.array(X, dtype=np.float32)
    X.flags.writeable = False
    small(DenseClassifier).fit(X, y).predict(X)
    assert not [w for w in recwarn if "writable" in str(w.message)]


@pytest.mark.parametrize("cls", TRAINED)
def test_keyboard_interrupt_keeps_completed_epochs(cls, monkeypatch, small_data):
    X, y = small_data
    # Interrupt in the first batch of epoch 3: epochs 1 and 2 are complete.
    _step_raiser(monkeypatch, KeyboardInterrupt, 2 * BATCHES_PER_EPOCH + 1)
    est = fresh(cls, max_epochs=5)
    with pytest.warns(UserWarning, match="interrupted by the user after 2 complete"):
        est.fit(X, y)
    assert_fully_fitted(est, X)
    assert est.n_iter_ == 2
    assert [row["epoch"] for row in est.history_] == [1, 2]
    monkeypatch.undo()
    est.fit(X, y)  # and a later, uninterrupted fit is complete
    assert est.n_iter_ == 5


@pytest.mark.parametrize("cls", TRAINED)
def test_keyboard_interrupt_in_first_batch_still_usable(cls, monkeypatch, small_data):
    X, y = small_data
    _step_raiser(monkeypatch, KeyboardInterrupt, 1)
    est = fresh(cls)
    try:
        est.fit(X, y)
    except KeyboardInterrupt:
        pass
    assert_fully_fitted(est, X)
    assert est.n_iter_ == 0 and est.history_ == []


@pytest.mark.parametrize("n_rounds", [1, 2])
def test_keyboard_interrupt_during_pruning_finetune(n_rounds, monkeypatch, small_data):
    X, y = small_data
    # 3 training epochs (12 steps), then interrupt in the 2nd batch of the first finetune.
    _step_raiser(monkeypatch, KeyboardInterrupt, 3 * BATCHES_PER_EPOCH + 2)
    est = fresh(PrunedClassifier, finetune_epochs=3, n_rounds=n_rounds)
    try:
        est.fit(X, y)
    except KeyboardInterrupt:
        pass
    assert_fully_fitted(est, X)
    assert est.n_iter_ == 3  # training stops: no further rounds or finetune epochs


@pytest.mark.parametrize("cls", TRAINED)
def test_keyboard_interrupt_from_module_forward(cls, monkeypatch, small_data):
    """Raised from the network's own forward, during a training batch of epoch 2."""
    X, y = small_data
    module_cls = {
        DenseClassifier: sk_weightfree.nn.DenseMLP,
        PrunedClassifier: sk_weightfree.nn.DenseMLP,
        WeightFreeClassifier: sk_weightfree.nn.WeightFreeMLP,
        RandomNetworkClassifier: sk_weightfree.nn.WeightFreeMLP,
        WeightAgnosticClassifier: sk_weightfree.nn.SharedWeightMLP,
    }[cls]
    original = module_cls.forward
    state = {"train_calls": 0}

    def forward(self, x):
        if self.training and torch.is_grad_enabled():
            state["train_calls"] += 1
            if state["train_calls"] == BATCHES_PER_EPOCH + 2:
                raise KeyboardInterrupt
        return original(self, x)

    monkeypatch.setattr(module_cls, "forward", forward)
    est = fresh(cls, max_epochs=4)
    try:
        est.fit(X, y)
    except KeyboardInterrupt:
        pass
    assert_fully_fitted(est, X)
    assert est.n_iter_ == 1


# ============================================================================ out of memory
@pytest.mark.parametrize("cls", TRAINED)
def test_out_of_memory_in_training_gives_advice(cls, monkeypatch, small_data):
    X, y = small_data
    _step_raiser(monkeypatch, _oom, 3)
    est = fresh(cls)
    with pytest.raises(Exception) as info:
        est.fit(X, y)
    message = str(info.value)
    assert "batch_size" in message and "cpu" in message, message
    assert "memory" in message.lower()


@pytest.mark.parametrize("cls", TRAINED)
def test_out_of_memory_in_training_leaves_fresh_estimator_unfitted(cls, monkeypatch,
                                                                   small_data):
    X, y = small_data
    _step_raiser(monkeypatch, _oom, 3)
    est = fresh(cls)
    with pytest.raises(Exception, match="batch_size"):
        est.fit(X, y)
    with pytest.raises(NotFittedError):
        est.predict(X)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_out_of_memory_moving_data_to_device_gives_advice(cls, monkeypatch, small_data):
    from sk_weightfree._training import ResidentData

    def no_memory(self, *args, **kwargs):
        raise _oom()

    monkeypatch.setattr(ResidentData, "__init__", no_memory)
    X, y = small_data
    est = fresh(cls)
    with pytest.raises(Exception) as info:
        est.fit(X, y)
    message = str(info.value)
    assert "batch_size" in message and "cpu" in message, message
    with pytest.raises(NotFittedError):
        est.predict(X)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score"])
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_out_of_memory_at_predict_gives_advice(cls, method, monkeypatch, small_data):
    X, y = small_data
    est = fresh(cls).fit(X, y)

    def no_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 3.2 GiB for an array")

    # on the CPU the estimators predict through the numpy chain
    monkeypatch.setattr(sk_weightfree._inference, "forward", no_memory)
    with pytest.raises(Exception) as info:
        call(est, method, X, y)
    message = str(info.value)
    assert "memory" in message.lower() and "cpu" in message, message
    assert type(info.value) is not torch.OutOfMemoryError or "device=" in message


# ============================================================================ reproducibility
REPRO = [(cls, {}) for cls in ESTIMATORS] + [
    (WeightFreeClassifier, {"mask_rule": "supermask"}),
    (WeightFreeClassifier, {"density": 0.3}),
    (WeightAgnosticClassifier, {"sampling": "bernoulli", "ensemble": True}),
    (PrunedClassifier, {"n_rounds": 2, "rewind": True, "pruning": "layer"}),
    (RandomNetworkClassifier, {"train_readout": False}),
    (DenseClassifier, {"early_stopping": True, "lr_schedule": "cosine"}),
]


@pytest.mark.parametrize("cls, params", REPRO,
                         ids=[f"{c.__name__}-{p}" for c, p in REPRO])
def test_same_random_state_same_masks_and_predictions(cls, params, small_data):
    X, y = small_data
    torch.manual_seed(123)  # global torch state must not matter
    a = fresh(cls, **params).fit(X, y)
    torch.manual_seed(456)
    np.random.seed(7)
    b = fresh(cls, **params).fit(X, y)
    for ma, mb in zip(a.masks_, b.masks_):
        np.testing.assert_array_equal(ma, mb)
    for ca, cb in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(ca, cb)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert [r["train_loss"] for r in a.history_] == [r["train_loss"] for r in b.history_]
    b.fit(X, y)  # refitting the same object reproduces it too
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_random_state_instance_is_reproducible(cls, small_data):
    X, y = small_data
    a = fresh(cls, random_state=np.random.RandomState(3)).fit(X, y)
    b = fresh(cls, random_state=np.random.RandomState(3)).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    for ma, mb in zip(a.masks_, b.masks_):
        np.testing.assert_array_equal(ma, mb)


# ============================================================================ CUDA only
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.gpu
@needs_cuda
def test_cuda_index_out_of_range_is_clear(small_data):
    X, y = small_data
    est = fresh(DenseClassifier, device=f"cuda:{torch.cuda.device_count()}")
    with clear_error("device"):
        est.fit(X, y)
    with pytest.raises(NotFittedError):
        est.predict(X)


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_extreme_magnitudes_on_cuda_give_finite_probabilities(cls, small_data):
    X, y = small_data
    est = fresh(cls, device="cuda").fit(X * 1e6, y)
    assert_fully_fitted(est, X * 1e6)
    assert_valid_proba(est.predict_proba(X[:20] * 1e30), 20, 3)


# ============================================================================ hypothesis
LABEL_KINDS = {
    "int": lambda k: np.arange(k),
    "neg": lambda k: np.arange(k) * 2 - 1,
    "str": lambda k: np.array([f"c{i}" for i in range(k)]),
    "bool": lambda k: np.array([False, True]),
    "float": lambda k: np.arange(k) * 2.0 - 1.0,
}
HYP_DTYPES = [np.float64, np.float32, np.float16, np.int64, np.int16, np.uint8]


@st.composite
def problems(draw):
    kind = draw(st.sampled_from(sorted(LABEL_KINDS)))
    n_classes = 2 if kind == "bool" else draw(st.integers(2, 4))
    n_samples = draw(st.integers(n_classes, 40))
    n_features = draw(st.integers(1, 5))
    rng = np.random.RandomState(draw(st.integers(0, 2**16)))
    X = rng.uniform(0, 10, size=(n_samples, n_features))
    codes = np.concatenate([np.arange(n_classes),
                            rng.randint(0, n_classes, n_samples - n_classes)])
    labels = LABEL_KINDS[kind](n_classes)[rng.permutation(codes)]
    dtype = draw(st.sampled_from(HYP_DTYPES))
    X = np.round(X).astype(dtype)
    if draw(st.booleans()):
        X = np.asfortranarray(X)
    return X, labels


@settings(max_examples=30, deadline=None, derandomize=True)
@given(cls=st.sampled_from(ESTIMATORS), problem=problems(), batch_size=st.integers(2, 64))
def test_property_any_shape_dtype_and_label_set(cls, problem, batch_size):
    X, y = problem
    est = small(cls, hidden_layer_sizes=(4,), max_epochs=2, batch_size=batch_size)
    est.fit(X, y)
    np.testing.assert_array_equal(est.classes_, np.unique(y))
    assert est.n_features_in_ == X.shape[1]
    proba = est.predict_proba(X)
    assert_valid_proba(proba, X.shape[0], len(np.unique(y)))
    pred = est.predict(X)
    assert pred.dtype == y.dtype and set(pred) <= set(y)
    assert len(est.history_) == est.n_iter_


@settings(max_examples=15, deadline=None, derandomize=True)
@given(cls=st.sampled_from(ESTIMATORS), n_features=st.integers(1, 20).filter(lambda n: n != 8),
       method=st.sampled_from(METHODS))
def test_property_wrong_feature_count_is_always_clear(cls, n_features, method):
    est = _fitted_for_property(cls)
    X = np.ones((3, n_features))
    with clear_error("features"):
        call(est, method, X, np.array([0, 1, 2]))


_PROPERTY_CACHE = {}


def _fitted_for_property(cls):
    if cls not in _PROPERTY_CACHE:
        rng = np.random.RandomState(0)
        _PROPERTY_CACHE[cls] = small(cls, hidden_layer_sizes=(4,), max_epochs=1).fit(
            rng.randn(30, 8), np.arange(30) % 3)
    return _PROPERTY_CACHE[cls]

