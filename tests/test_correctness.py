"""Correctness pass 3 (issue 21): the weight-agnostic regressor's output scale and the
defects a new user hit."""

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.preprocessing import StandardScaler

from conftest import ALL_ESTIMATORS, ESTIMATORS, small
from sk_weightfree import (PrunedClassifier, PrunedRegressor, WeightAgnosticClassifier,
                           WeightAgnosticRegressor, io)


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _formula(est, X):
    """The prediction of the exported arrays, by the attribute documentation's formula."""
    a = X
    for i, coef in enumerate(est.coefs_):
        a = (a @ coef) * est.unit_scales_[i] + est.intercepts_[i]
        if i < len(est.coefs_) - 1:
            a = np.maximum(a, 0) * est.unit_signs_[i]
    return a.ravel()


def test_weight_agnostic_regressor_shrinks_to_a_constant_target(diabetes):
    # Before the learned output scale, the standardised outputs always had y's variance
    # (here: predictions from 3.22 to 8.74 for a target that is 5.0 everywhere).
    X, _ = diabetes
    est = WeightAgnosticRegressor(hidden_layer_sizes=(16,), max_epochs=30, random_state=0,
                                  device="cpu").fit(X, np.full(len(X), 5.0))
    predictions = est.predict(X)
    assert np.abs(predictions - 5.0).max() < 0.1
    assert np.all(est.coefs_[0][est.masks_[0]] == est.shared_weight_)  # coefs_ unchanged


@pytest.mark.parametrize("ensemble", [False, True])
def test_weight_agnostic_regressor_exports_its_output_scale_exactly(diabetes, tmp_path,
                                                                     ensemble):
    X, y = diabetes
    est = small(WeightAgnosticRegressor, max_epochs=5, ensemble=ensemble).fit(X, y)
    scale = est.net_.module_.output_scale.detach().numpy()
    assert not np.allclose(scale, 1.0)  # it was trained, so the export must fold it
    predictions = est.predict(X)
    assert predictions.std() < y.std()
    if not ensemble:
        np.testing.assert_allclose(_formula(est, X), predictions, rtol=1e-10, atol=1e-9)
    io.dump(est, tmp_path / "wa.npz")
    np.testing.assert_allclose(io.load(tmp_path / "wa.npz").predict(X), predictions,
                               rtol=1e-10, atol=1e-9)
    # the torch path (through the same head) agrees with the arrays
    np.testing.assert_allclose(est._module_outputs(X).ravel(), predictions, rtol=1e-10,
                               atol=1e-9)


# ------------------------------------------------------------------ huge features (9)
@pytest.mark.parametrize("cls", ALL_ESTIMATORS, ids=lambda c: c.__name__)
def test_features_too_large_for_float32_training_are_refused_by_every_family(cls,
                                                                             small_data):
    # DenseClassifier trained silently to chance on X * 1e30, where the weight-free and
    # random families raised after training.
    X, y = small_data
    est = small(cls)
    with pytest.raises(ValueError, match="float32.*scale the features"):
        est.fit(X * 1e30, y)
    assert not hasattr(est, "coefs_")
    small(cls, max_epochs=1).fit(X * 1e6, y)  # large but safe values still train


# ------------------------------------------------------------------ weight_values (8)
@pytest.mark.parametrize("cls", [WeightAgnosticClassifier, WeightAgnosticRegressor])
@pytest.mark.parametrize("values", [(0.0,), (0.0, 1.0), [-0.0, 2.0]])
def test_a_weight_value_that_zeroes_every_edge_is_refused(cls, values, small_data):
    # weight_values=(0.0,) trained a chance-level classifier silently.
    X, y = small_data
    est = small(cls, weight_values=values)
    with pytest.raises(ValueError, match="weight_values.*none of them 0"):
        est.fit(X, y)
    assert not hasattr(est, "coefs_")


# ------------------------------------------------------------------ warm start (5)
@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_warm_start_on_a_subset_of_the_classes_is_refused(cls, small_data):
    # Accepted silently before, where MLPClassifier raises.
    X, y = small_data
    est = small(cls, max_epochs=1, warm_start=True).fit(X, y)
    coefs = [c.copy() for c in est.coefs_]
    with pytest.raises(ValueError, match=r"same classes .* lacks \[2\]"):
        est.fit(X[y < 2], y[y < 2])
    assert all(np.array_equal(a, b) for a, b in zip(coefs, est.coefs_))  # model kept
    est.fit(X, y)  # every class again: continues
    est.partial_fit(X[y < 2], y[y < 2])  # partial_fit batches may hold a subset


# ------------------------------------------------------------------ pruned partial_fit (3)
@pytest.mark.parametrize("cls", [PrunedClassifier, PrunedRegressor], ids=lambda c: c.__name__)
def test_pruned_partial_fit_from_scratch_warns_at_every_call_that_it_is_dense(cls,
                                                                            small_data):
    # density_ stayed 1.0 silently.
    X, y = small_data
    est = small(cls, density=0.2)
    extra = {"classes": np.unique(y)} if cls is PrunedClassifier else {}
    for _ in range(2):
        with pytest.warns(UserWarning, match="never prunes.*density 1.0, not density=0.2"):
            est.partial_fit(X, y, **extra)
    assert est.density_ == 1.0
    est.set_params(warm_start=True).fit(X, y)  # the advice of the warning
    assert est.density_ == pytest.approx(0.2, abs=0.02)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.partial_fit(X, y)  # pruned now: training continues under the mask, no warning
    assert est.density_ == pytest.approx(0.2, abs=0.02)


# ------------------------------------------------------------------ pruned budget (6)
@pytest.mark.parametrize("params, dense_epochs", [
    (dict(max_epochs=3, finetune_epochs=10), 1),             # the issue: 13 epochs ran
    (dict(max_epochs=3, finetune_epochs=10, n_rounds=3), 3),  # 33 ran; no room to retrain
    (dict(max_epochs=6, finetune_epochs=1, n_rounds=3), 3),
    # the default finetune_epochs=None: a third of the budget
    (dict(max_epochs=30, finetune_epochs=None), 20),              # 20 + 10
    (dict(max_epochs=15, finetune_epochs=None), 10),              # 10 + 5 (10 left 5 dense)
    (dict(max_epochs=15, finetune_epochs=None, n_rounds=2), 11),  # 2 a round: 11 + 2 + 2
])
def test_pruned_max_epochs_is_the_whole_budget(params, dense_epochs, small_data,
                                               monkeypatch):
    X, y = small_data
    est = small(PrunedClassifier, **params)
    pruned_after, prune_to = [], PrunedClassifier._prune_to

    def spy(self, *args):
        pruned_after.append(len(self.net_.history))
        return prune_to(self, *args)

    monkeypatch.setattr(PrunedClassifier, "_prune_to", spy)
    est.fit(X, y)
    assert est.n_iter_ == params["max_epochs"]
    assert est.density_ == pytest.approx(0.3, abs=0.02)  # the default density
    n_rounds = params.get("n_rounds", 1)
    finetune = (params["max_epochs"] - dense_epochs) // n_rounds
    assert pruned_after == [dense_epochs + r * finetune for r in range(n_rounds)]


def test_pruned_rewind_without_room_to_retrain_is_refused(small_data):
    X, y = small_data
    with pytest.raises(ValueError, match="rewind=True needs retraining.*max_epochs >= 3"):
        small(PrunedClassifier, max_epochs=2, n_rounds=2, rewind=True).fit(X, y)


# ------------------------------------------------------------------ early stopping (16)
@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_early_stopping_falls_back_to_an_unstratified_split(cls, small_data):
    # 11 samples, one of class 2: a stratified 10% split is impossible; fit refused before.
    X, y = small_data
    rows = np.r_[np.flatnonzero(y == 0)[:5], np.flatnonzero(y == 1)[:5],
                 np.flatnonzero(y == 2)[:1]]
    est = small(cls, early_stopping=True, max_epochs=2)
    with pytest.warns(UserWarning, match="not stratified"):
        est.fit(X[rows], y[rows])
    assert len(est.validation_scores_) == est.n_iter_ >= 1
    assert list(est.classes_) == [0, 1, 2]


def test_early_stopping_split_without_weighted_validation_rows_names_the_classes():
    # scikit-learn's check_classifiers_one_label_sample_weights: with the unstratified
    # fallback the error must still say why (weight on one class only).
    X = np.random.RandomState(0).uniform(size=(10, 10))
    y = np.arange(10) % 2
    est = small(PrunedClassifier, early_stopping=True)
    with pytest.raises(ValueError, match=r"5 of 10 samples have non-zero sample_weight "
                                         r"\(times class_weight\), of 1 class"):
        est.fit(X, y, sample_weight=y.astype(float))


# ------------------------------------------------------------------ README (12)
def test_no_readme_paragraph_starts_mid_sentence():
    # "targets inside `fit`. Every estimator takes…" had lost its first line.
    text = (Path(__file__).parents[1] / "README.md").read_text()
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks
    starts = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    assert [p[:40] for p in starts if p[0].islower()] == []
