"""The thread policy of a fit: ``n_threads``, chosen from the work, restored after."""

import numpy as np
import pytest
import torch

from sk_weightfree import DenseClassifier, WeightFreeClassifier, WeightFreeRegressor
from sk_weightfree._threads import SMALL_STEP_WORK, fit_threads, step_work
from sk_weightfree.nn import SmallCNN, WeightFreeMLP
from conftest import small


@pytest.fixture
def two_threads():
    """torch at 2 intra-op threads for the test, as it was after."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _threads_seen(monkeypatch, estimator):
    """The torch thread counts the estimator's training steps ran with."""
    seen = set()
    net_class = type(estimator)._net_class
    original = net_class.train_step_single

    def spy(self, *args, **kwargs):
        seen.add(torch.get_num_threads())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(net_class, "train_step_single", spy)
    return seen


def test_step_work_counts_the_folded_weights_times_the_batch():
    net = WeightFreeMLP(64, (100,), 10)
    assert step_work(net, 128) == 128 * (64 * 100 + 100 * 10)
    cnn = SmallCNN(n_outputs=10)  # a template: nn.Conv2d and nn.Linear weights
    weights = sum(m.weight.numel() for m in cnn.modules()
                  if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
    assert step_work(cnn, 4) == 4 * weights


def test_the_policy_takes_one_thread_for_a_small_step_and_torchs_setting_above(two_threads):
    assert fit_threads(None, SMALL_STEP_WORK - 1) == 1
    assert fit_threads(None, SMALL_STEP_WORK) == 2
    assert fit_threads(3, 10) == 3  # the user's number, whatever the work
    torch.set_num_threads(1)  # a lower setting (OMP_NUM_THREADS, a joblib worker) wins
    assert fit_threads(None, 10 * SMALL_STEP_WORK) == 1


@pytest.mark.parametrize("cls", [WeightFreeClassifier, DenseClassifier, WeightFreeRegressor])
def test_a_small_fit_runs_on_one_thread_and_restores_torchs_setting(cls, small_data,
                                                                    two_threads, monkeypatch):
    X, y = small_data
    estimator = small(cls)
    seen = _threads_seen(monkeypatch, estimator)
    estimator.fit(X, y if cls is not WeightFreeRegressor else y.astype(float))
    assert seen == {1} and estimator.n_threads_ == 1
    assert torch.get_num_threads() == 2


def test_n_threads_is_used_for_fit_and_partial_fit(small_data, two_threads, monkeypatch):
    X, y = small_data
    torch.set_num_threads(1)
    estimator = small(WeightFreeClassifier, n_threads=2)
    seen = _threads_seen(monkeypatch, estimator)
    estimator.fit(X, y)
    estimator.partial_fit(X, y)
    assert seen == {2} and estimator.n_threads_ == 2
    assert torch.get_num_threads() == 1


def test_a_large_step_keeps_torchs_setting(two_threads, monkeypatch):
    X = np.random.RandomState(0).randn(40, 784).astype(np.float32)
    y = np.arange(40) % 2
    estimator = WeightFreeClassifier(hidden_layer_sizes=(300, 100), max_epochs=1,
                                     batch_size=128, random_state=0)
    assert step_work(WeightFreeMLP(784, (300, 100), 2), 128) >= SMALL_STEP_WORK
    seen = _threads_seen(monkeypatch, estimator)
    estimator.fit(X, y)
    assert seen == {2} and estimator.n_threads_ == 2


def test_the_setting_is_restored_when_the_fit_fails(small_data, two_threads):
    from skorch.callbacks import Callback

    class Fails(Callback):
        def on_epoch_begin(self, net, **kwargs):
            raise RuntimeError("a callback failed")

    X, y = small_data
    estimator = small(WeightFreeClassifier, n_threads=1, callbacks=[Fails()])
    with pytest.raises(RuntimeError, match="a callback failed"):
        estimator.fit(X, y)
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("value", [0, -1, 1.5, "2"])
def test_bad_n_threads_is_a_clear_error(value, small_data):
    with pytest.raises(ValueError, match="'n_threads' parameter"):
        small(DenseClassifier, n_threads=value).fit(*small_data)
