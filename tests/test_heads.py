"""The classifier head (sk_weightfree._heads): labels of any type, too few classes, and the
forms of ``y`` it accepts or refuses with a clear error."""

import warnings

import numpy as np
import pandas as pd
import pytest

from conftest import ESTIMATORS
from error_checks import (N, assert_fully_fitted, assert_usable_or_unfitted,
                          assert_valid_proba, clear_error, fresh)


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
