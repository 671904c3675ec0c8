"""What an MLPClassifier / MLPRegressor user reaches for: sample_weight, class_weight,
partial_fit, warm_start, multilabel y, regression, early stopping on the score, SGD momentum
and the MLP-style fitted attributes."""

import numpy as np
import pytest
import sklearn
from sklearn.datasets import make_classification, make_friedman1, make_multilabel_classification
from sklearn.model_selection import cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import sk_weightfree
from sk_weightfree import (DenseClassifier, DenseRegressor, PrunedClassifier,
                           WeightAgnosticClassifier, WeightFreeClassifier, WeightFreeRegressor)
from conftest import ALL_ESTIMATORS, ESTIMATORS, REGRESSORS, data_for, small


@pytest.fixture(scope="module")
def regression_data():
    X, y = make_friedman1(n_samples=300, noise=0.5, random_state=0)
    return X, y


# ------------------------------------------------------------------ sample_weight
@pytest.mark.parametrize("cls", ALL_ESTIMATORS)
def test_unit_sample_weight_gives_the_unweighted_model(cls, small_data, regression_data):
    X, y = data_for(cls, small_data, regression_data)
    a = small(cls).fit(X, y)
    b = small(cls).fit(X, y, sample_weight=np.ones(len(y)))
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    for ca, cb in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(ca, cb)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_class_weight_dict_equals_the_matching_sample_weight(cls, small_data):
    X, y = small_data
    weights = {0: 3.0, 1: 0.5, 2: 1.0}
    a = small(cls, class_weight=weights).fit(X, y)
    b = small(cls).fit(X, y, sample_weight=np.array([weights[label] for label in y]))
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-6)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_weight_on_one_class_pulls_predictions_to_it(cls):
    X, y = make_classification(n_samples=300, n_features=6, n_informative=2, n_redundant=0,
                               class_sep=0.3, flip_y=0.3, random_state=0)
    to_one = small(cls, max_epochs=5).fit(X, y, sample_weight=np.where(y == 1, 20.0, 1.0))
    to_zero = small(cls, max_epochs=5).fit(X, y, sample_weight=np.where(y == 0, 20.0, 1.0))
    assert (to_one.predict(X) == 1).mean() > (to_zero.predict(X) == 1).mean() + 0.3


@pytest.mark.parametrize("cls", [DenseClassifier, WeightFreeClassifier, DenseRegressor])
@pytest.mark.parametrize("weight, match", [
    (-1.0, "negative"), (0.0, "sums to zero"), ("short", "shape"), (np.nan, "NaN|infinity"),
])
def test_bad_sample_weight_is_a_clear_error(cls, weight, match, small_data):
    X, y = small_data
    if isinstance(weight, str):
        sample_weight = np.ones(len(y) - 1)
    else:
        sample_weight = np.ones(len(y))
        sample_weight[:] = weight if weight == 0.0 else 1.0
        sample_weight[0] = weight
    with pytest.raises(ValueError, match=match):
        small(cls).fit(X, y, sample_weight=sample_weight)


def test_zero_weights_are_allowed(small_data):
    X, y = small_data
    weights = np.ones(len(y))
    weights[:40] = 0.0
    clf = small(WeightFreeClassifier).fit(X, y, sample_weight=weights)
    assert clf.score(X, y) > 0.4


def test_balanced_class_weight_raises_minority_recall():
    X, y = make_classification(n_samples=600, n_features=8, weights=[0.92], class_sep=0.6,
                               random_state=0)
    plain = small(DenseClassifier, max_epochs=10).fit(X, y)
    balanced = small(DenseClassifier, max_epochs=10, class_weight="balanced").fit(X, y)
    recall = [(clf.predict(X)[y == 1] == 1).mean() for clf in (plain, balanced)]
    assert recall[1] > recall[0] + 0.1


def test_sample_weight_is_routed_through_pipeline_and_cross_validate(small_data):
    X, y = small_data
    weights = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(StandardScaler().set_fit_request(sample_weight=False),
                             small(WeightFreeClassifier)
                             .set_fit_request(sample_weight=True)
                             .set_score_request(sample_weight=True))
        if tuple(map(int, sklearn.__version__.split(".")[:2])) < (1, 8):  # the pipeline consumed it
            pipe.set_score_request(sample_weight=True)
        result = cross_validate(pipe, X, y, cv=3, params={"sample_weight": weights},
                                error_score="raise")
        assert np.isfinite(result["test_score"]).all() and len(result["test_score"]) == 3
        routed = pipe.fit(X, y, sample_weight=weights)[-1]
    direct = small(WeightFreeClassifier).fit(StandardScaler().fit_transform(X), y,
                                             sample_weight=weights)
    for a, b in zip(routed.coefs_, direct.coefs_):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ partial_fit
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_partial_fit_needs_classes_first_and_runs_one_epoch(cls, small_data):
    X, y = small_data
    clf = small(cls)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:60], y[:60], classes=np.unique(y))
    assert clf.n_iter_ == 1 and clf.t_ == 60
    step = _optimizer_steps(clf)
    clf.partial_fit(X[60:], y[60:])
    assert clf.n_iter_ == 2 and clf.t_ == len(y)
    assert _optimizer_steps(clf) > step  # the optimiser state was kept
    with pytest.raises(ValueError, match="not among"):
        clf.partial_fit(X[:10], np.full(10, 7))


def _optimizer_steps(est):
    state = est.net_.optimizer_.state_dict()["state"]
    return max(float(s["step"]) for s in state.values())


@pytest.mark.parametrize("cls", REGRESSORS)
def test_regressor_partial_fit_improves(cls, regression_data):
    X, y = regression_data
    reg = small(cls, hidden_layer_sizes=(32,))
    scores = [reg.partial_fit(X, y).score(X, y) for _ in range(8)]
    assert reg.n_iter_ == 8
    assert scores[-1] > scores[0]


def test_partial_fit_with_early_stopping_is_refused(small_data):
    X, y = small_data
    with pytest.raises(ValueError, match="early_stopping"):
        small(DenseClassifier, early_stopping=True).partial_fit(X, y, classes=np.unique(y))


def test_pruned_partial_fit_keeps_the_mask(small_data):
    X, y = small_data
    clf = small(PrunedClassifier, density=0.3).fit(X, y)
    masks = [m.copy() for m in clf.masks_]
    for _ in range(3):
        clf.partial_fit(X, y)
    for before, after, coef in zip(masks, clf.masks_, clf.coefs_):
        np.testing.assert_array_equal(before, after)
        assert (coef[~after] == 0).all()


# ------------------------------------------------------------------ warm_start
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_warm_start_continues_the_fitted_network(cls, small_data):
    X, y = small_data
    clf = small(cls, warm_start=True).fit(X, y)
    first_iter, steps = clf.n_iter_, _optimizer_steps(clf)
    clf.fit(X, y)
    assert clf.n_iter_ > first_iter
    assert _optimizer_steps(clf) > steps
    cold = small(cls).fit(X, y)
    cold.fit(X, y)
    assert cold.n_iter_ == first_iter


def test_warm_start_with_other_classes_is_a_clear_error(small_data):
    X, y = small_data
    clf = small(DenseClassifier, warm_start=True).fit(X, y)
    with pytest.raises(ValueError, match="same classes"):
        clf.fit(X, y + 10)


# ------------------------------------------------------------------ multilabel
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_multilabel_indicator_y(cls):
    X, Y = make_multilabel_classification(n_samples=200, n_features=10, n_classes=4,
                                          random_state=0)
    X = StandardScaler().fit_transform(X)
    clf = small(cls, max_epochs=10, hidden_layer_sizes=(32,)).fit(X, Y)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 4
    pred, proba = clf.predict(X), clf.predict_proba(X)
    assert pred.shape == Y.shape and set(np.unique(pred)) <= {0, 1}
    assert proba.shape == Y.shape
    np.testing.assert_array_equal(pred, (proba > 0.5).astype(int))
    assert not np.allclose(proba.sum(axis=1), 1.0)
    # better than predicting each label's majority value
    baseline = np.mean(Y == (Y.mean(axis=0) > 0.5))
    assert np.mean(pred == Y) > baseline + 0.05


# ------------------------------------------------------------------ regression
@pytest.mark.parametrize("cls", REGRESSORS)
def test_regressors_learn_friedman1_and_ignore_target_scale(cls, regression_data):
    X, y = regression_data
    params = dict(hidden_layer_sizes=(64,), max_epochs=20)
    if cls is sk_weightfree.PrunedRegressor:
        params["density"] = 0.5  # 10 % of a 10-64-1 network is too few edges for this
    reg = small(cls, **params).fit(X, y)
    assert reg.score(X, y) > 0.5
    scaled = small(cls, **params).fit(X, 1e6 * y + 1e9)
    np.testing.assert_allclose(scaled.predict(X), 1e6 * reg.predict(X) + 1e9, rtol=1e-5)


@pytest.mark.parametrize("cls", REGRESSORS)
def test_multi_output_regression(cls, regression_data):
    X, y = regression_data
    Y = np.column_stack([y, -2 * y])
    reg = small(cls).fit(X, Y)
    assert reg.predict(X).shape == (len(y), 2) and reg.n_outputs_ == 2
    assert small(cls).fit(X, y).predict(X).shape == (len(y),)


@pytest.mark.parametrize("loss", ["absolute_error", "huber"])
def test_regression_losses(loss, regression_data):
    X, y = regression_data
    assert small(WeightFreeRegressor, loss=loss, max_epochs=10).fit(X, y).score(X, y) > 0.3


# ------------------------------------------------------------------ attributes
@pytest.mark.parametrize("cls", ALL_ESTIMATORS)
def test_mlp_style_attributes(cls, small_data, regression_data):
    X, y = data_for(cls, small_data, regression_data)
    est = small(cls).fit(X, y)
    assert est.n_layers_ == len(est.coefs_) + 1 == 3
    assert len(est.loss_curve_) == est.n_iter_ and est.best_loss_ == min(est.loss_curve_)
    assert est.validation_scores_ is None and est.best_validation_score_ is None
    assert est.t_ == est.n_iter_ * len(y)
    assert [b.shape for b in est.intercepts_] == [(c.shape[1],) for c in est.coefs_]
    if cls in REGRESSORS:
        assert est.out_activation_ == "identity" and est.n_outputs_ == 1
    else:
        assert est.out_activation_ == "softmax" and est.n_outputs_ == 3


@pytest.mark.parametrize("cls", [DenseClassifier, WeightFreeClassifier, DenseRegressor])
def test_early_stopping_watches_the_validation_score(cls, small_data, regression_data):
    X, y = data_for(cls, small_data, regression_data)
    est = small(cls, early_stopping=True, max_epochs=60, n_iter_no_change=3,
                validation_fraction=0.3).fit(X, y)
    scores = est.validation_scores_
    assert len(scores) == est.n_iter_ and est.best_loss_ is None
    assert est.best_validation_score_ == max(scores)
    best = int(np.argmax(scores))
    if est.n_iter_ < 60:  # stopped: n_iter_no_change epochs without a better score
        assert est.n_iter_ - 1 - best <= 3


def test_weight_agnostic_ensemble_is_fixed_at_fit(small_data):
    X, y = small_data
    clf = small(WeightAgnosticClassifier, ensemble=False).fit(X, y)
    before = clf.predict_proba(X)
    clf.set_params(ensemble=True)
    np.testing.assert_array_equal(clf.predict_proba(X), before)



# ------------------------------------------------------------------ review findings
def test_warm_start_refuses_a_changed_architecture_and_applies_a_new_lr(small_data):
    X, y = small_data
    clf = small(DenseClassifier, warm_start=True).fit(X, y)
    with pytest.raises(ValueError, match="hidden_layer_sizes changed"):
        clf.set_params(hidden_layer_sizes=(20, 5)).fit(X, y)
    clf.set_params(hidden_layer_sizes=(16,), lr=0.01).fit(X, y)
    assert clf.net_.optimizer_.param_groups[0]["lr"] == 0.01


def test_warm_start_can_switch_early_stopping(small_data):
    X, y = small_data
    clf = small(DenseClassifier, warm_start=True, early_stopping=True).fit(X, y)
    clf.set_params(early_stopping=False).fit(X, y)  # the stopping rule follows the switch
    assert clf.validation_scores_ is None and clf.n_iter_ == 6


def test_a_failed_warm_fit_leaves_a_picklable_estimator(small_data, monkeypatch):
    import copy
    import pickle

    from sk_weightfree.nn import WeightFreeMLP

    X, y = small_data
    clf = small(WeightFreeClassifier, warm_start=True, early_stopping=True).fit(X, y)
    before = clf.predict_proba(X)

    def interrupted(self, batches):
        raise KeyboardInterrupt

    monkeypatch.setattr(WeightFreeMLP, "recalibrate_norms", interrupted)
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, y)
    monkeypatch.undo()
    assert clf.net_.train_split is None and clf.net_.valid_score_fn is None
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(X), before)
    copy.deepcopy(clf)


@pytest.mark.parametrize("class_weight", [{0: -1.0, 1: 1.0, 2: 1.0}, {0: 0, 1: 0, 2: 0},
                                          {0: np.nan, 1: 1.0, 2: 1.0}])
def test_bad_class_weight_values_are_a_clear_error(class_weight, small_data):
    X, y = small_data
    with pytest.raises(ValueError, match="class_weight"):
        small(DenseClassifier, class_weight=class_weight).fit(X, y)


def test_zero_weights_are_left_out_before_the_early_stopping_split(small_data):
    from sklearn.model_selection import train_test_split

    X, y = small_data
    seed = small(DenseClassifier, early_stopping=True).fit(X, y)._split_seed
    _, valid = train_test_split(np.arange(len(y)), test_size=0.1, stratify=y,
                                random_state=seed)
    weights = np.ones(len(y))
    weights[valid] = 0.0  # the split of all rows would hold no weighted validation row
    weighted = small(DenseClassifier, early_stopping=True).fit(X, y, sample_weight=weights)
    removed = small(DenseClassifier, early_stopping=True).fit(X[weights > 0], y[weights > 0])
    assert weighted.validation_scores_ == removed.validation_scores_
    np.testing.assert_array_equal(weighted.predict_proba(X), removed.predict_proba(X))


def test_multilabel_y_must_be_zero_one(small_data):
    X, y = small_data
    Y = np.column_stack([y == 0, y == 1]).astype(int) * 2 - 1
    with pytest.raises(ValueError, match="indicator matrix of 0 and 1"):
        small(DenseClassifier).fit(X, Y)


def test_regression_targets_that_overflow_are_a_clear_error(regression_data):
    X, y = regression_data
    y = y.copy()
    y[0] = 1e300
    with pytest.raises(ValueError, match="too large"):
        small(DenseRegressor).fit(X, y)


@pytest.mark.parametrize("cls", [DenseClassifier, PrunedClassifier])
def test_partial_fit_takes_single_samples_without_batch_norm(cls, small_data):
    X, y = small_data
    clf = small(cls)
    for i in range(5):
        clf.partial_fit(X[i:i + 1], y[i:i + 1], classes=np.unique(y))
    assert clf.n_iter_ == 5 and clf.t_ == 5


def test_partial_fit_with_batch_norm_needs_two_samples(small_data):
    X, y = small_data
    with pytest.raises(ValueError, match="minimum of 2"):
        small(WeightFreeClassifier).partial_fit(X[:1], y[:1], classes=np.unique(y))
