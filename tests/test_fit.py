"""The fit lifecycle (sk_weightfree._base): batch sizes, round trips (pickle, joblib,
clone), failed refits, interrupts, out of memory and reproducibility leave a usable model or
an unfitted one."""

import copy
import pickle

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

import sk_weightfree
import sk_weightfree._inference
from sk_weightfree import (DenseClassifier, PrunedClassifier, RandomNetworkClassifier,
                           WeightAgnosticClassifier, WeightFreeClassifier)
from conftest import ESTIMATORS, small
from error_checks import (BATCHES_PER_EPOCH, CLEAR, TRAINED, assert_fully_fitted,
                          assert_valid_proba, call, clear_error, fit_through_interrupt, fresh,
                          oom, step_raiser)


# ============================================================================ batch sizes
BATCH_NORM_ESTIMATORS = (WeightFreeClassifier, RandomNetworkClassifier)


@pytest.mark.parametrize("batch_size", [1, 119, 10_000])
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_any_valid_batch_size_works(cls, batch_size, small_data):
    X, y = small_data
    if batch_size == 1 and cls in BATCH_NORM_ESTIMATORS:
        # Batch normalisation needs two samples per batch: the one check, with one message
        # for every family (and for templates, test_templates)
        with pytest.raises(ValueError, match=r"batch normalisation, which needs "
                                             r"batch_size >= 2; got batch_size=1\."):
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
    step_raiser(monkeypatch, KeyboardInterrupt, 17 * 4 + 2)  # 4 batches of 32 per epoch: inside epoch 18
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
    step_raiser(monkeypatch, KeyboardInterrupt, 2 * 4 + 2)  # inside epoch 3
    with pytest.warns(UserWarning, match="interrupted"):
        clf.fit(X, y)
    monkeypatch.undo()
    state = clf.net_.optimizer_.state_dict()["state"]
    assert all(float(s["step"]) == 2 * 4 for s in state.values())  # two whole epochs
    reference = small(DenseClassifier, max_epochs=2).fit(X, y)
    for got, expected in zip(state.values(),
                             reference.net_.optimizer_.state_dict()["state"].values()):
        torch.testing.assert_close(got["exp_avg"], expected["exp_avg"], rtol=0, atol=0)


def test_the_epoch_snapshot_is_rewritten_in_place_and_independent(small_data, monkeypatch):
    """The state kept after each epoch (to undo an interrupted one) reuses its tensors
    from epoch to epoch (fresh copies every epoch slowed the training steps through the
    allocator), and never aliases the live module or optimiser."""
    from sk_weightfree._training import ResidentNetMixin

    X, y = small_data
    taken = []
    original = ResidentNetMixin.snapshot

    def spy(self, into=None):
        result = original(self, into=into)
        live = {id(t) for t in self.module_.state_dict().values()} | {
            id(t) for state in self.optimizer_.state_dict()["state"].values()
            for t in state.values() if isinstance(t, torch.Tensor)}
        tensors = [*result["module"].values(), *[
            t for state in result["optimizer"]["state"].values() for t in state.values()
            if isinstance(t, torch.Tensor)]]
        assert not any(id(t) in live for t in tensors)
        taken.append({name: t.data_ptr() for name, t in result["module"].items()})
        return result

    monkeypatch.setattr(ResidentNetMixin, "snapshot", spy)
    small(WeightFreeClassifier, max_epochs=3).fit(X, y)
    # one at the start of the call, then one per epoch written into the previous one
    assert len(taken) == 4
    assert taken[1] == taken[2] == taken[3]


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
    step_raiser(monkeypatch, KeyboardInterrupt, 2 * BATCHES_PER_EPOCH + 1)
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
    est = fresh(cls)
    step_raiser(monkeypatch, KeyboardInterrupt, 1)  # the first training step
    fit_through_interrupt(est, *small_data)
    assert est.n_iter_ == 0 and est.history_ == []


@pytest.mark.parametrize("n_rounds", [1, 2])
def test_keyboard_interrupt_during_pruning_finetune(n_rounds, monkeypatch, small_data):
    X, y = small_data
    # 3 training epochs (12 steps), then interrupt in the 2nd batch of the first finetune.
    step_raiser(monkeypatch, KeyboardInterrupt, 3 * BATCHES_PER_EPOCH + 2)
    est = fresh(PrunedClassifier, finetune_epochs=3, n_rounds=n_rounds)
    fit_through_interrupt(est, X, y)
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
    fit_through_interrupt(est, X, y)
    assert est.n_iter_ == 1


# ============================================================================ out of memory
@pytest.mark.parametrize("cls", TRAINED)
def test_out_of_memory_in_training_gives_advice(cls, monkeypatch, small_data):
    X, y = small_data
    step_raiser(monkeypatch, oom, 3)
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
    step_raiser(monkeypatch, oom, 3)
    est = fresh(cls)
    with pytest.raises(Exception, match="batch_size"):
        est.fit(X, y)
    with pytest.raises(NotFittedError):
        est.predict(X)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_out_of_memory_moving_data_to_device_gives_advice(cls, monkeypatch, small_data):
    from sk_weightfree._training import ResidentData

    def no_memory(self, *args, **kwargs):
        raise oom()

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
