"""Input checks (sk_weightfree._data and the predict path): bad ``X``/``y`` gets a clear
``ValueError``/``TypeError``/``NotFittedError`` naming the problem, never a torch/numpy
traceback or a silent NaN; sparse, pandas and every dtype give the same model. Fits are tiny
(``small(...)``: one hidden layer of 16 units, 3 epochs, CPU)."""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError

from sk_weightfree import DenseClassifier, WeightFreeClassifier
from conftest import ESTIMATORS, small
from error_checks import (METHODS, N, assert_fully_fitted, assert_usable_or_unfitted,
                          assert_valid_proba, call, clear_error, fresh)


@pytest.fixture(scope="module")
def int_data():
    X, y = load_digits(n_class=3, return_X_y=True)
    return X[:150].astype(np.int64), y[:150]


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
    assert all(np.array_equal(a, b) for a, b in zip(est.masks_, reference.masks_))


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
