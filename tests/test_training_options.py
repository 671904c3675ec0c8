"""Training options an MLPClassifier or skorch user reaches for: ``alpha`` (the L2
penalty), ``shuffle``, the ``loss_`` attribute, a per-epoch log at ``verbose>=2`` and a
validation set of one's own (``fit(..., X_val=, y_val=, sample_weight_val=)``, as
scikit-learn's HistGradientBoosting estimators take it)."""

import copy
import inspect
import pickle

import numpy as np
import pytest
import sklearn
import torch
from sklearn.base import clone
from sklearn.datasets import make_friedman1
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sk_weightfree import (DenseClassifier, DenseRegressor, PrunedClassifier,
                           WeightAgnosticRegressor, WeightFreeClassifier, WeightFreeRegressor)
from conftest import ALL_ESTIMATORS, REGRESSORS, data_for, small


@pytest.fixture(scope="module")
def regression_data():
    X, y = make_friedman1(n_samples=120, noise=0.5, random_state=0)
    return X, y


def _names(cls):
    return cls.__name__


# ------------------------------------------------------------------ the parameters
@pytest.mark.parametrize("cls", ALL_ESTIMATORS, ids=_names)
def test_every_estimator_takes_the_options_keyword_only(cls):
    parameters = inspect.signature(cls).parameters
    for name, default in (("alpha", 0.0), ("shuffle", True)):
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY, name
        assert parameters[name].default == default, name
    fit = inspect.signature(cls.fit).parameters
    for name in ("X_val", "y_val", "sample_weight_val"):
        assert fit[name].kind is inspect.Parameter.KEYWORD_ONLY and fit[name].default is None
    assert "X_val" not in inspect.signature(cls.partial_fit).parameters


@pytest.mark.parametrize("param, value", [("alpha", -1.0), ("alpha", "big"), ("alpha", None),
                                          ("shuffle", "yes"), ("shuffle", None)])
def test_bad_options_are_clear_errors(param, value, small_data):
    with pytest.raises(ValueError, match=f"'{param}' parameter"):
        small(DenseClassifier, **{param: value}).fit(*small_data)


# ------------------------------------------------------------------ alpha
def _one_step(cls, X, y, alpha, lr):
    """One full-batch SGD step (no momentum) in float64: the change the penalty makes is
    ``lr * alpha / n * w`` exactly, and nothing else moves."""
    return small(cls, alpha=alpha, lr=lr, optimizer="sgd", momentum=0.0, max_epochs=1,
                 batch_size=len(X), precision="float64").fit(X, y)


def _penalised(cls):
    """Parameter names alpha must act on: dense weights (``weight_orig`` once pruned) or
    edge scores; biases, batch norms and output maps must not move."""
    dense = cls.__name__.startswith(("Dense", "Pruned"))
    return ("weight", "weight_orig") if dense else ("scores",)


@pytest.mark.parametrize("cls", ALL_ESTIMATORS, ids=_names)
def test_alpha_is_mlp_l2_on_the_edge_parameters_only(cls, small_data, regression_data):
    X, y = data_for(cls, small_data, regression_data)
    X = X[:60]
    y = y[:60]
    lr, alpha = 1e-6, 100.0 * len(X)  # lr * alpha / n = 1e-4
    plain = dict(_one_step(cls, X, y, 0.0, lr).net_.module_.named_parameters())
    penalised = dict(_one_step(cls, X, y, alpha, lr).net_.module_.named_parameters())
    moved = 0
    for name, before in plain.items():
        after = penalised[name]
        if name.rsplit(".", 1)[-1] in _penalised(cls) and before.requires_grad:
            # MLPClassifier: gradient += alpha * w / n_batch, so w shrinks by lr*alpha/n*w
            # (w is the initial value, which is ``before`` up to lr * gradient = 1e-6 * g)
            shrink = (before - after).detach().numpy() / (lr * alpha / len(X))
            np.testing.assert_allclose(shrink, before.detach().numpy(), rtol=1e-3, atol=1e-4,
                                       err_msg=name)
            moved += 1
        else:
            torch.testing.assert_close(after, before, rtol=0, atol=0, msg=name)
    assert moved, "no parameter was penalised"


def test_alpha_enters_the_training_loss_as_mlp(small_data):
    """``loss_curve_`` holds data loss + 0.5 * alpha * ||W||^2 / n_batch (MLPClassifier's
    ``loss_`` includes the penalty too); the first epoch's forward pass is at the initial
    weights, the same in both fits."""
    X, y = small_data
    lr, alpha = 1e-6, 3.0
    a = _one_step(DenseClassifier, X, y, 0.0, lr)
    b = _one_step(DenseClassifier, X, y, alpha, lr)
    # the initial weights: the penalised step shrank them by lr * alpha / n
    initial = [(ca - cb) / (lr * alpha / len(X)) for ca, cb in zip(a.coefs_, b.coefs_)]
    penalty = 0.5 * alpha * sum((w ** 2).sum() for w in initial) / len(X)
    assert b.loss_ - a.loss_ == pytest.approx(penalty, rel=1e-4)
    assert b.loss_ > a.loss_ + 1e-3


def test_alpha_leaves_the_validation_loss_a_data_loss(small_data):
    from sklearn.metrics import log_loss

    X, y, X_val, y_val = _split(*small_data)
    est = small(DenseClassifier, alpha=50.0, max_epochs=1, early_stopping=True,
                precision="float64").fit(X, y, X_val=X_val, y_val=y_val)
    assert est.history_[-1]["valid_loss"] == pytest.approx(
        log_loss(y_val, est.predict_proba(X_val)), rel=1e-6)  # summed in float32


def test_alpha_shrinks_the_weights(small_data):
    X, y = small_data
    norms = [sum((c ** 2).sum() for c in small(DenseClassifier, alpha=alpha, max_epochs=10)
                 .fit(X, y).coefs_) for alpha in (0.0, 10.0)]
    assert norms[1] < 0.8 * norms[0]


# ------------------------------------------------------------------ shuffle
class _Recorder(torch.nn.Module):
    """A template that records the first feature of each training batch it sees."""

    seen = []

    def __init__(self, n_outputs):
        super().__init__()
        self.fc = torch.nn.Linear(8, n_outputs)

    def forward(self, x):
        if self.training:
            _Recorder.seen.append(x[:, 0].detach().clone())
        return self.fc(x)


@pytest.mark.parametrize("shuffle", [False, True])
def test_shuffle_false_feeds_the_batches_in_data_order(shuffle, small_data):
    X, y = small_data
    _Recorder.seen = []
    small(DenseClassifier, module=_Recorder, shuffle=shuffle, max_epochs=2).fit(X, y)
    seen = torch.cat(_Recorder.seen).numpy()
    in_order = np.array_equal(seen, np.tile(X[:, 0].astype(np.float32), 2))
    assert in_order is not shuffle
    if shuffle:  # every epoch still visits every sample once
        np.testing.assert_array_equal(np.sort(seen[:len(X)]), np.sort(X[:, 0].astype(np.float32)))


@pytest.mark.parametrize("cls", ALL_ESTIMATORS, ids=_names)
def test_shuffle_false_ignores_the_shuffling_stream(cls, small_data, regression_data):
    """A continued fit with another shuffling generator gives the same model when
    shuffle=False, another one when shuffle=True."""
    X, y = data_for(cls, small_data, regression_data)
    for shuffle in (False, True):
        fitted = small(cls, shuffle=shuffle, max_epochs=1, warm_start=True).fit(X, y)
        models = []
        for seed in (1, 2):
            est = copy.deepcopy(fitted)
            est.net_.shuffle_generator = torch.Generator().manual_seed(seed)
            models.append(torch.cat([t.flatten().double() for t in
                                     est.fit(X, y).net_.module_.state_dict().values()]))
        assert torch.equal(*models) is not shuffle, shuffle


# ------------------------------------------------------------------ loss_
@pytest.mark.parametrize("cls", ALL_ESTIMATORS, ids=_names)
def test_loss_is_the_last_epochs_training_loss(cls, small_data, regression_data):
    X, y = data_for(cls, small_data, regression_data)
    est = small(cls).fit(X, y)
    assert est.loss_ == est.loss_curve_[-1] == est.history_[-1]["train_loss"]
    est.partial_fit(X, y, **({} if cls in REGRESSORS else {"classes": np.unique(y)}))
    assert est.loss_ == est.loss_curve_[-1] and len(est.loss_curve_) == est.n_iter_


def test_loss_stays_the_last_epochs_when_early_stopping_restores_the_best(small_data):
    """As MLPClassifier: the network returns to the best validation epoch, ``loss_`` is the
    loss of the last epoch run."""
    X, y = small_data
    est = small(DenseClassifier, early_stopping=True, n_iter_no_change=2, max_epochs=200,
                lr=0.05, validation_fraction=0.3).fit(X, y)
    best = int(np.argmax(est.validation_scores_))
    assert est.n_iter_ < 200 and best < est.n_iter_ - 1
    assert est.loss_ == est.loss_curve_[-1] != est.loss_curve_[best]


def test_loss_survives_pickling(small_data):
    est = pickle.loads(pickle.dumps(small(DenseClassifier).fit(*small_data)))
    assert est.loss_ == est.loss_curve_[-1]


# ------------------------------------------------------------------ verbose
def test_verbose_2_prints_one_line_per_epoch(small_data, capsys):
    X, y = small_data
    small(DenseClassifier, verbose=2, max_epochs=3).fit(X, y)
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["epoch", "train_loss", "dur"]
    rows = [line.split() for line in out[2:]]
    assert [row[0] for row in rows] == ["1", "2", "3"] and len(out) == 5
    history = small(DenseClassifier, max_epochs=3, verbose=1).fit(X, y).history_
    assert [float(row[1]) for row in rows] == [round(h["train_loss"], 4) for h in history]
    captured = capsys.readouterr()  # verbose=1 stays the bar (tqdm writes to stderr)
    assert captured.out == "" and "epoch" in captured.err




def test_verbose_2_shows_the_validation_score_and_the_stop(small_data, capsys):
    X, y = small_data
    est = small(DenseClassifier, verbose=2, early_stopping=True, n_iter_no_change=2,
                max_epochs=200, lr=0.05, validation_fraction=0.3).fit(X, y)
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["epoch", "train_loss", "valid_loss", "valid_score",
                                           "dur"]
    assert "Stopping since valid_score has not improved in the last 2 epochs." in out
    best = int(np.argmax(est.validation_scores_)) + 1
    assert f"Restoring best model from epoch {best}." in out
    rows = [line.split() for line in out.splitlines()[2:2 + est.n_iter_]]
    assert [int(row[0]) for row in rows] == list(range(1, est.n_iter_ + 1))  # the last too
    assert [float(row[3]) for row in rows] == [round(s, 4) for s in est.validation_scores_]


# ------------------------------------------------------------------ X_val, y_val
def _split(X, y, n_val=40):
    return X[n_val:], y[n_val:], X[:n_val], y[:n_val]


@pytest.mark.parametrize("cls", ALL_ESTIMATORS, ids=_names)
def test_validation_set_replaces_the_split(cls, small_data, regression_data):
    X, y, X_val, y_val = _split(*data_for(cls, small_data, regression_data))
    est = small(cls, early_stopping=True, max_epochs=4).fit(X, y, X_val=X_val, y_val=y_val)
    assert est.t_ == est.n_iter_ * len(X)  # every training sample was trained on
    assert len(est.validation_scores_) == est.n_iter_
    assert all(np.isfinite(est.validation_scores_))


@pytest.mark.parametrize("cls", [DenseClassifier, DenseRegressor], ids=_names)
def test_validation_scores_are_scores_on_the_validation_set(cls, small_data, regression_data):
    X, y = data_for(cls, small_data, regression_data)
    if cls is DenseRegressor:  # validation targets far from the training mean
        order = np.argsort(y)[::-1]
        X, y = X[order], y[order]
    X, y, X_val, y_val = _split(X, y)
    est = small(cls, early_stopping=True, max_epochs=5, n_iter_no_change=5).fit(
        X, y, X_val=X_val, y_val=y_val)
    assert est.best_validation_score_ == pytest.approx(est.score(X_val, y_val), abs=1e-5)


def test_validation_weights_weigh_the_score(small_data):
    X, y, X_val, y_val = _split(*small_data)
    weight = (np.arange(len(y_val)) % 2).astype(float)
    est = small(DenseClassifier, early_stopping=True, max_epochs=3, n_iter_no_change=3).fit(
        X, y, X_val=X_val, y_val=y_val, sample_weight_val=weight)
    kept = weight > 0
    assert est.best_validation_score_ == pytest.approx(est.score(X_val[kept], y_val[kept]))
    assert est.best_validation_score_ != pytest.approx(est.score(X_val, y_val))


def test_class_weight_weighs_the_validation_set_as_the_split(small_data):
    X, y, X_val, y_val = _split(*small_data)
    est = small(DenseClassifier, early_stopping=True, max_epochs=3, n_iter_no_change=3,
                class_weight={0: 1.0, 1: 0.0, 2: 0.0}).fit(X, y, X_val=X_val, y_val=y_val)
    zero = y_val == 0
    assert est.best_validation_score_ == pytest.approx(est.score(X_val[zero], y_val[zero]))


@pytest.mark.parametrize("kwargs, match", [
    ({"X_val": True}, "X_val is given, but y_val is not"),
    ({"y_val": True}, "y_val is given, but X_val is not"),
    ({"sample_weight_val": True}, "sample_weight_val is given without X_val and y_val"),
])
def test_incomplete_validation_set_is_a_clear_error(kwargs, match, small_data):
    X, y, X_val, y_val = _split(*small_data)
    values = {"X_val": X_val, "y_val": y_val, "sample_weight_val": np.ones(len(y_val))}
    est = small(DenseClassifier, early_stopping=True)
    with pytest.raises(ValueError, match=match):
        est.fit(X, y, **{k: values[k] for k in kwargs})
    assert not hasattr(est, "net_")


def test_validation_set_needs_early_stopping(small_data):
    X, y, X_val, y_val = _split(*small_data)
    with pytest.raises(ValueError, match="early_stopping=False"):
        small(DenseClassifier).fit(X, y, X_val=X_val, y_val=y_val)


@pytest.mark.parametrize("bad, match", [
    (lambda X, y: (X, np.where(y == 1, 7, y)), r"y_val holds label\(s\) \[7\]"),
    (lambda X, y: (X, y.astype(str)), r"y_val holds label\(s\) \['0', '1', '2'\]"),
    (lambda X, y: (X[:, :5], y), "X has 5 features"),
    (lambda X, y: (X, y[:10]), "inconsistent numbers of samples"),
    (lambda X, y: (X, np.eye(3)[y]), "y_val must have the form of the data"),
])
def test_bad_validation_set_is_a_clear_error(bad, match, small_data):
    X, y, X_val, y_val = _split(*small_data)
    X_val, y_val = bad(X_val, y_val)
    with pytest.raises(ValueError, match=match):
        small(DenseClassifier, early_stopping=True).fit(X, y, X_val=X_val, y_val=y_val)


@pytest.mark.parametrize("weight, match", [
    (np.ones(3), r"sample_weight_val must have shape \(40,\)"),
    (np.zeros(40), "sample_weight_val sums to zero"),
])
def test_bad_validation_weights_are_a_clear_error(weight, match, small_data):
    X, y, X_val, y_val = _split(*small_data)
    with pytest.raises(ValueError, match=match):
        small(DenseClassifier, early_stopping=True).fit(X, y, X_val=X_val, y_val=y_val,
                                                        sample_weight_val=weight)


def test_regressor_validation_targets_are_checked(regression_data):
    X, y, X_val, y_val = _split(*regression_data)
    est = small(WeightFreeRegressor, early_stopping=True)
    with pytest.raises(ValueError, match="y_val has 2 output"):
        est.fit(X, y, X_val=X_val, y_val=np.c_[y_val, y_val])
    with pytest.raises(ValueError, match="y_val contains NaN"):
        est.fit(X, y, X_val=X_val, y_val=np.r_[np.nan, y_val[1:]])


def test_warm_start_takes_a_validation_set(small_data):
    X, y, X_val, y_val = _split(*small_data)
    est = small(WeightFreeClassifier, warm_start=True, max_epochs=2).fit(X, y)
    est.set_params(early_stopping=True).fit(X, y, X_val=X_val, y_val=y_val)
    assert est.n_iter_ == 4 and est.t_ == 4 * len(X)
    assert [s is None for s in est.validation_scores_] == [True, True, False, False]


def test_weight_agnostic_picks_its_weight_on_the_validation_set(regression_data):
    X, y, X_val, y_val = _split(*regression_data)
    est = small(WeightAgnosticRegressor, early_stopping=True, max_epochs=2).fit(
        X, y, X_val=X_val, y_val=y_val)
    scores = [_score_with(est, w, X_val, y_val) for w in est.weight_values_]
    np.testing.assert_allclose(est.weight_scores_, scores, rtol=1e-4, atol=1e-5)


def _score_with(est, value, X, y):
    """R² on (X, y) of the fitted weight-agnostic network with shared value ``value``."""
    est = copy.deepcopy(est)
    module = est.net_.module_
    module.shared_index = int(np.flatnonzero(est.weight_values_ == value)[0])
    module.shared_weight.fill_(value)
    est._export_fitted_attributes()
    return est.score(X, y)


def test_validation_set_through_a_pipeline_with_metadata_routing(small_data):
    X, y, X_val, y_val = _split(*small_data)
    X, X_val = X * 10 + 3, X_val * 10 + 3  # far from standardised

    def pipe(**kwargs):
        est = small(DenseClassifier, early_stopping=True, max_epochs=3, n_iter_no_change=3)
        return Pipeline([("scale", StandardScaler()),
                         ("clf", est.set_fit_request(X_val=True, y_val=True))], **kwargs)

    with sklearn.config_context(enable_metadata_routing=True):
        routed = pipe(transform_input=["X_val"]).fit(X, y, X_val=X_val, y_val=y_val)
        untransformed = pipe().fit(X, y, X_val=X_val, y_val=y_val)
    scaler = StandardScaler().fit(X)
    direct = small(DenseClassifier, early_stopping=True, max_epochs=3, n_iter_no_change=3).fit(
        scaler.transform(X), y, X_val=scaler.transform(X_val), y_val=y_val)
    assert routed[-1].validation_scores_ == direct.validation_scores_
    assert untransformed[-1].validation_scores_ != direct.validation_scores_
    for a, b in zip(routed[-1].coefs_, direct.coefs_):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ warm starts, pickles
def test_warm_start_may_change_alpha_and_shuffle(small_data):
    X, y = small_data
    est = small(DenseClassifier, warm_start=True).fit(X, y)
    est.set_params(alpha=1.0, shuffle=False).fit(X, y)
    assert est.net_.alpha == 1.0 and est.n_iter_ == 6
    assert clone(est).get_params()["alpha"] == 1.0


@pytest.mark.skipif(np.lib.NumpyVersion(np.__version__) < "2.0.0",
                    reason="the stored pickle holds numpy 2 arrays (numpy._core), which "
                           "numpy 1.x cannot unpickle")
def test_a_model_pickled_by_0_2_0_has_the_new_defaults_and_loss():
    from pathlib import Path

    with open(Path(__file__).parent / "data" / "v0_2_0_weight_free_classifier.pkl", "rb") as f:
        old = pickle.load(f)
    assert old.alpha == 0.0 and old.shuffle is True
    assert old.loss_ == old.loss_curve_[-1]
    # the net's per-fit attribute scheduled_ (0.2.0) is its declared parameter scheduled now
    assert "scheduled_" not in vars(old.net_) and old.net_.get_params()["scheduled"] is True
