"""The ``callbacks`` parameter: skorch callbacks run beside the package's own."""

import math
import pickle

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback, Checkpoint, GradientNormClipping, LRScheduler
from sklearn.base import clone

from sk_weightfree import DenseClassifier, PrunedClassifier, WeightFreeClassifier

from conftest import ALL_ESTIMATORS, SMALL

N_SAMPLES, BATCH = 120, 32  # small_data; SMALL's batch_size

# the fits here are a few epochs long on purpose
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


class Count(Callback):
    """Counts the hooks it sees; its state is created in ``initialize``, as skorch's are."""

    def initialize(self):
        self.batches_ = []  # (training, batch size, finite loss) per on_batch_end
        self.epochs_ = 0
        self.grads_ = 0
        self.trains_ = 0
        return self

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.trains_ += 1

    def on_batch_end(self, net, batch=None, training=None, loss=None, y_pred=None, **kwargs):
        self.batches_.append((training, len(batch[1][0]), bool(torch.isfinite(loss))))

    def on_epoch_end(self, net, **kwargs):
        self.epochs_ += 1

    def on_grad_computed(self, net, named_parameters, batch=None, training=None, **kwargs):
        self.grads_ += 1

    def training_batches(self):
        return [b for b in self.batches_ if b[0]]


def fitted_copy(est, name="count"):
    return dict(est.net_.callbacks_)[name]


@pytest.mark.parametrize("Estimator", ALL_ESTIMATORS, ids=lambda e: e.__name__)
def test_a_counting_callback_sees_every_batch_and_epoch(Estimator, small_data):
    X, y = small_data
    est = Estimator(**SMALL, random_state=0, callbacks=[("count", Count())],
                    early_stopping=True).fit(X, y)
    count = fitted_copy(est)
    n_train = N_SAMPLES - round(0.1 * N_SAMPLES)  # validation_fraction=0.1
    train = count.training_batches()
    valid = [b for b in count.batches_ if not b[0]]
    assert len(train) == est.n_iter_ * math.ceil(n_train / BATCH)
    assert sum(size for _, size, _ in train) == est.n_iter_ * n_train
    assert len(valid) == est.n_iter_ and sum(s for _, s, _ in valid) == est.n_iter_ * 12
    assert all(finite for *_, finite in count.batches_)
    assert count.epochs_ == est.n_iter_
    assert count.grads_ == len(train)  # on_grad_computed: once per training batch


def test_the_bar_one_on_batch_end_per_training_batch(digits_small):
    X, y = digits_small  # 300 rows: 10 batches of 32 (the last of 12)
    est = WeightFreeClassifier(hidden_layer_sizes=(16,), max_epochs=3, batch_size=32,
                               device="cpu", random_state=0, callbacks=[Count()]).fit(X, y)
    count = fitted_copy(est, "Count")  # unnamed: skorch names it after its class
    assert len(count.batches_) == len(count.training_batches()) == 3 * 10


def test_callbacks_see_the_last_epoch_of_an_early_stop(small_data):
    est = DenseClassifier(**{**SMALL, "max_epochs": 50}, random_state=0, early_stopping=True,
                          n_iter_no_change=2, callbacks=[("count", Count())]).fit(*small_data)
    assert est.n_iter_ < 50  # the stopping rule ended it
    assert fitted_copy(est).epochs_ == est.n_iter_


def test_the_parameter_is_left_as_given(small_data):
    count = Count()
    given = [("count", count)]
    est = DenseClassifier(**SMALL, random_state=0, callbacks=given).fit(*small_data)
    assert est.get_params()["callbacks"] is given
    assert given == [("count", count)] and vars(count) == {}  # never initialised
    assert fitted_copy(est) is not count and fitted_copy(est).epochs_ == 3


def test_clone_and_pickle_keep_the_callbacks(small_data):
    est = DenseClassifier(**SMALL, random_state=0, callbacks=[("count", Count())])
    copy = clone(est)
    assert isinstance(copy.callbacks[0][1], Count) and copy.callbacks[0][0] == "count"
    assert copy.callbacks[0][1] is not est.callbacks[0][1]  # clone copies the parameter
    est.fit(*small_data)
    loaded = pickle.loads(pickle.dumps(est))
    assert isinstance(loaded.callbacks[0][1], Count)
    np.testing.assert_array_equal(loaded.predict(small_data[0]), est.predict(small_data[0]))
    assert fitted_copy(loaded).epochs_ == 3
    loaded.set_params(warm_start=True, max_epochs=2).fit(*small_data)  # trains on
    assert loaded.n_iter_ == 5 and fitted_copy(loaded).epochs_ == 2


def test_warm_start_and_partial_fit_run_the_callbacks(small_data):
    X, y = small_data
    est = DenseClassifier(**SMALL, random_state=0, warm_start=True).fit(X, y)
    # callbacks may be given (or changed) for a continuing fit
    est.set_params(callbacks=[("count", Count())], max_epochs=2).fit(X, y)
    assert est.n_iter_ == 5 and fitted_copy(est).epochs_ == 2
    assert len(fitted_copy(est).training_batches()) == 2 * math.ceil(N_SAMPLES / BATCH)
    est.partial_fit(X, y)  # each call runs a fresh copy
    assert est.n_iter_ == 6 and fitted_copy(est).epochs_ == 1
    assert len(fitted_copy(est).training_batches()) == math.ceil(N_SAMPLES / BATCH)
    fresh = DenseClassifier(**SMALL, random_state=0, callbacks=[("count", Count())])
    fresh.partial_fit(X, y, classes=np.unique(y))
    assert fitted_copy(fresh).epochs_ == 1


def test_a_pruned_fit_is_seen_whole(small_data):
    # dense phase and fine-tuning are two training calls on one net
    est = PrunedClassifier(**{**SMALL, "max_epochs": 4}, finetune_epochs=2, random_state=0,
                           callbacks=[("count", Count())]).fit(*small_data)
    count = fitted_copy(est)
    assert count.epochs_ == est.n_iter_ == 4 and count.trains_ == 2


def test_the_batch_rows_skorch_callbacks_read(small_data):
    seen = []

    class BatchLogger(Callback):  # as MlflowLogger(log_on_batch_end=True) reads them
        def on_batch_end(self, net, training=None, **kwargs):
            seen.append((training, net.history[-1, "batches", -1]["train_loss"]))

    DenseClassifier(**SMALL, random_state=0, callbacks=[BatchLogger()]).fit(*small_data)
    assert len(seen) == 3 * math.ceil(N_SAMPLES / BATCH)
    assert all(training and np.isfinite(loss) for training, loss in seen)


def test_gradient_norm_clipping_clips_before_the_step(small_data):
    norms = []

    class Norm(Callback):
        def on_grad_computed(self, net, named_parameters, **kwargs):
            grads = [p.grad for _, p in named_parameters if p.grad is not None]
            norms.append(float(torch.linalg.vector_norm(torch.stack(
                [torch.linalg.vector_norm(g) for g in grads]))))

    DenseClassifier(**SMALL, random_state=0, callbacks=[
        GradientNormClipping(gradient_clip_value=1e-3), Norm()]).fit(*small_data)
    assert len(norms) == 3 * math.ceil(N_SAMPLES / BATCH)
    assert max(norms) <= 1e-3 * (1 + 1e-4)


def test_an_lr_scheduler_schedules_with_a_constant_lr_schedule(small_data):
    est = DenseClassifier(**SMALL, random_state=0, optimizer="sgd", lr=0.1, callbacks=[
        LRScheduler(policy="StepLR", step_size=1, gamma=0.5)]).fit(*small_data)
    assert est.net_.optimizer_.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** 3)
    with pytest.raises(ValueError, match="lr_schedule='cosine'"):
        est.set_params(lr_schedule="cosine", warm_start=False).fit(*small_data)


@pytest.mark.parametrize("early_stopping, monitor",
                         [(True, "valid_loss_best"), (False, "train_loss_best")])
def test_checkpoint_saves_the_best_epoch(small_data, tmp_path, early_stopping, monitor):
    saves = []

    class Saves(Checkpoint):
        def save_model(self, net):
            saves.append(len(net.history))
            super().save_model(net)

    est = DenseClassifier(**SMALL, random_state=0, early_stopping=early_stopping, callbacks=[
        Saves(monitor=monitor, dirname=str(tmp_path))]).fit(*small_data)
    key = monitor[:-len("_best")]
    losses = [row[key] for row in est.net_.history]
    best = [i + 1 for i, loss in enumerate(losses) if loss < min(losses[:i], default=np.inf)]
    assert saves == best and (tmp_path / "params.pt").exists()


@pytest.mark.parametrize("name", ["stopping", "lr_schedule", "epoch_log", "progress",
                                  "epoch_timer"])
def test_a_name_of_the_packages_own_callbacks_is_refused(small_data, name):
    est = DenseClassifier(**SMALL, callbacks=[(name, Count())])
    with pytest.raises(ValueError, match=f"{name} is taken by DenseClassifier's own"):
        est.fit(*small_data)
    assert not hasattr(est, "net_")  # before any training
    with pytest.raises(ValueError, match="taken"):
        est.validate_params()


def test_a_familys_own_callback_name_is_refused(small_data):
    est = WeightFreeClassifier(**SMALL, callbacks=[("mask_rule_schedule", Count())])
    with pytest.raises(ValueError, match="mask_rule_schedule is taken"):
        est.fit(*small_data)


def test_a_duplicate_name_is_refused_and_unnamed_ones_are_numbered(small_data):
    with pytest.raises(ValueError, match="more than one callback is named Count"):
        DenseClassifier(**SMALL, callbacks=[("Count", Count()), Count()]).fit(*small_data)
    with pytest.raises(ValueError, match="more than one callback is named a"):
        DenseClassifier(**SMALL, callbacks=[("a", Count()), ("a", Count())]).fit(*small_data)
    est = DenseClassifier(**SMALL, callbacks=[Count(), Count()]).fit(*small_data)
    assert fitted_copy(est, "Count_1").epochs_ == fitted_copy(est, "Count_2").epochs_ == 3


@pytest.mark.parametrize("callbacks", [[object()], Count(), [Count], [("a", 1)],
                                       [(1, Count())], "Count"])
def test_what_is_not_a_skorch_callback_is_a_type_error(small_data, callbacks):
    est = DenseClassifier(**SMALL, callbacks=callbacks)
    with pytest.raises(TypeError, match="'callbacks' parameter .* skorch callbacks"):
        est.fit(*small_data)


@pytest.mark.parametrize("Estimator", ALL_ESTIMATORS, ids=lambda e: e.__name__)
def test_every_internal_name_is_reserved(Estimator):
    # what _check_callbacks refuses covers every name the package gives its callbacks
    est = Estimator()
    reserved = est._INTERNAL_CALLBACKS | {name for name, _ in est._extra_callbacks()}
    net_defaults = {name for name, _ in est._net_class(module=torch.nn.Identity)
                    ._default_callbacks}
    for verbose in (0, 1, 2):
        for lr_schedule in ("constant", "cosine"):
            est.set_params(verbose=verbose, lr_schedule=lr_schedule)
            assert {name for name, _ in est._callbacks()} | net_defaults <= reserved
