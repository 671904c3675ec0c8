"""The shared base: data path, labels, seeding, devices, persistence, progress, stopping."""

import pickle
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from skorch.callbacks import Callback
from sklearn.exceptions import NotFittedError

from sk_weightfree import DenseClassifier, WeightFreeClassifier
from sk_weightfree._base import resolve_device
from sk_weightfree._training import DeviceBatchIterator, ResidentData
from conftest import ESTIMATORS, REGRESSORS, data_for, small


@pytest.mark.parametrize("n, batch_size", [(10, 3), (10, 5), (7, 10), (9, 4), (1, 4)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_iterator_visits_every_sample_once(n, batch_size, shuffle):
    X = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    data = ResidentData(X, np.arange(n), "cpu")
    it = DeviceBatchIterator(data, batch_size, shuffle=shuffle,
                             generator=torch.Generator().manual_seed(0))
    for _ in range(2):  # every epoch
        seen = torch.cat([yb for _, (yb, _) in it]).tolist()
        assert sorted(seen) == list(range(n))
        for Xb, (yb, _) in it:
            np.testing.assert_array_equal(Xb.numpy()[:, 0], 2 * yb.numpy())
    sizes = [len(yb) for _, (yb, _) in it]
    assert len(sizes) == len(it)
    assert n == 1 or min(sizes) >= 2  # a lone last sample is merged, for batch norm


def test_iterator_shuffles_reproducibly():
    data = ResidentData(np.zeros((50, 1)), np.arange(50), "cpu")

    def order(seed):
        it = DeviceBatchIterator(data, 8, shuffle=True,
                                 generator=torch.Generator().manual_seed(seed))
        return torch.cat([y for _, (y, _) in it]).tolist()

    assert order(1) == order(1)
    assert order(1) != order(2)
    assert order(1) != list(range(50))


def test_sparse_is_densified_per_batch_only(monkeypatch):
    X = sp.random(40, 6, density=0.3, format="csr", random_state=0)
    data = ResidentData(X, np.arange(40), "cpu")
    assert data.X is None and sp.issparse(data.X_sparse)
    densified = []
    original = sp.csr_matrix.toarray

    def spy(self, *args, **kwargs):
        densified.append(self.shape[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(sp.csr_matrix, "toarray", spy)
    batches = list(DeviceBatchIterator(data, 16, shuffle=True,
                                       generator=torch.Generator().manual_seed(0)))
    assert densified == [16, 16, 8]
    got = torch.cat([xb for xb, _ in batches]).numpy()
    order = torch.cat([yb for _, (yb, _) in batches]).numpy()
    np.testing.assert_allclose(got, X.toarray()[order], rtol=1e-6)


def test_dense_float32_input_is_not_copied_on_cpu():
    X = np.ones((5, 3), dtype=np.float32)
    assert ResidentData(X, None, "cpu").X.data_ptr() == X.ctypes.data


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_sparse_and_dense_input_agree(cls, small_data):
    X, y = small_data
    dense = small(cls).fit(X, y)
    sparse = small(cls).fit(sp.csr_matrix(X), y)
    np.testing.assert_allclose(dense.predict_proba(X), sparse.predict_proba(sp.csc_matrix(X)),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("labels", [
    np.array(["cat", "dog", "emu"]), np.array([-1, 1, 7]), np.array([True, False, True]),
])
def test_any_label_type(labels, small_data):
    X, y = small_data
    y_labels = labels[y % len(labels)]
    clf = small(DenseClassifier).fit(X, y_labels)
    np.testing.assert_array_equal(clf.classes_, np.unique(y_labels))
    assert set(clf.predict(X)) <= set(np.unique(y_labels))
    assert clf.predict_proba(X).shape == (len(X), len(np.unique(y_labels)))


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_same_seed_same_model_other_seed_other_model(cls, small_data):
    X, y = small_data
    state = torch.random.get_rng_state()
    a, b, c = small(cls, random_state=3), small(cls, random_state=3), small(cls, random_state=4)
    for clf in (a, b, c):
        clf.fit(X, y)
    assert torch.equal(state, torch.random.get_rng_state()), "global torch RNG touched"
    for ca, cb in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(ca, cb)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert any(not np.array_equal(ca, cc) for ca, cc in zip(a.coefs_, c.coefs_))


def test_device_resolution():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    for bad in ["gpu", "tpu", "", "cuda:x"]:
        with pytest.raises(ValueError, match="device"):
            resolve_device(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_without_cuda_is_a_clear_error(small_data):
    X, y = small_data
    with pytest.raises(ValueError, match="CUDA is not available"):
        small(DenseClassifier, device="cuda").fit(X, y)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fit_on_gpu_predict_after_moving_to_cpu(small_data):
    X, y = small_data
    clf = small(WeightFreeClassifier, device="cuda").fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    restored.net_.module_.cpu()
    np.testing.assert_allclose(clf.predict_proba(X), restored.predict_proba(X), atol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_cuda_model_loads_and_predicts_in_a_cpu_only_interpreter(cls, small_data, tmp_path):
    import os
    import subprocess
    import sys

    X, y = small_data
    clf = small(cls, device="cuda").fit(X, y)
    np.save(tmp_path / "X.npy", X)
    with open(tmp_path / "model.pkl", "wb") as f:
        pickle.dump(clf, f)
    code = (
        "import pickle, warnings, numpy as np, torch\n"
        "assert not torch.cuda.is_available()\n"
        "warnings.simplefilter('ignore')\n"
        f"clf = pickle.load(open({str(tmp_path / 'model.pkl')!r}, 'rb'))\n"
        f"np.save({str(tmp_path / 'p.npy')!r}, clf.predict_proba(np.load({str(tmp_path / 'X.npy')!r})))\n"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=300)
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), clf.predict_proba(X), atol=1e-4)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_pickle_and_joblib_round_trips(cls, small_data, tmp_path):
    X, y = small_data
    clf = small(cls).fit(X, y)
    expected = clf.predict_proba(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(X), expected)
    joblib.dump(clf, tmp_path / "model.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "model.joblib").predict_proba(X),
                                  expected)
    with pytest.raises(NotFittedError):
        clone(clf).predict(X)


def test_fitted_attributes(small_data):
    X, y = small_data
    clf = small(DenseClassifier, hidden_layer_sizes=(7, 5)).fit(X, y)
    assert [c.shape for c in clf.coefs_] == [(8, 7), (7, 5), (5, 3)]
    assert [m.shape for m in clf.masks_] == [(8, 7), (7, 5), (5, 3)]
    assert all(m.dtype == bool for m in clf.masks_)
    assert clf.n_connections_ == 8 * 7 + 7 * 5 + 5 * 3
    assert clf.density_ == 1.0
    assert clf.n_iter_ == 3 == len(clf.history_)
    assert all({"epoch", "train_loss", "seconds"} <= set(row) for row in clf.history_)
    assert np.isfinite([row["train_loss"] for row in clf.history_]).all()


def test_verbose_shows_a_progress_bar_and_silence_is_silent(small_data, capsys):
    X, y = small_data
    small(DenseClassifier).fit(X, y)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    small(DenseClassifier, verbose=1).fit(X, y)
    assert "epoch" in capsys.readouterr().err


def test_early_stopping_holds_out_data_and_stops(small_data):
    X, y = small_data
    clf = small(DenseClassifier, max_epochs=200, early_stopping=True, n_iter_no_change=2,
                tol=10.0).fit(X, y)
    assert clf.n_iter_ == 3  # tol too large for any epoch to count as an improvement
    assert all("valid_loss" in row for row in clf.history_)


def test_training_loss_stopping_rule(small_data):
    X, y = small_data
    clf = small(DenseClassifier, max_epochs=50, n_iter_no_change=4, tol=10.0).fit(X, y)
    assert clf.n_iter_ == 5


def test_early_stopping_with_too_little_data_for_a_stratified_split_falls_back():
    X = np.random.RandomState(0).randn(6, 2)
    with pytest.warns(UserWarning, match="not stratified"):
        small(DenseClassifier, early_stopping=True).fit(X, [0, 1, 2, 0, 1, 2])


@pytest.mark.parametrize("param, value", [
    ("hidden_layer_sizes", (10, 0)), ("hidden_layer_sizes", (2.5,)), ("max_epochs", 0),
    ("batch_size", 0), ("lr", 0.0), ("lr", -1), ("optimizer", "lbfgs"), ("activation", "elu"),
    ("device", "gpu"), ("validation_fraction", 1.0), ("lr_schedule", "step"),
])
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_invalid_hyper_parameters_are_value_errors(cls, param, value, small_data):
    X, y = small_data
    with pytest.raises(ValueError, match=param if param != "device" else "device"):
        small(cls, **{param: value}).fit(X, y)


def test_single_class_is_rejected(small_data):
    X, _ = small_data
    with pytest.raises(ValueError, match="class"):
        small(DenseClassifier).fit(X, np.zeros(len(X)))


def test_skorch_net_predicts_on_plain_arrays(small_data):
    from conftest import small

    X, y = small_data
    clf = small(DenseClassifier).fit(X, y)
    proba = clf.net_.predict_proba(X.astype(np.float32))
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("cls", [DenseClassifier, WeightFreeClassifier])
def test_sparse_prediction_is_batched_and_batch_invariant(cls, small_data):
    from sk_weightfree._inference import forward
    from conftest import small

    X, y = small_data
    clf = small(cls).fit(X, y)
    X_sparse = sp.csr_matrix(np.where(np.abs(X) > 0.5, X, 0.0))
    whole = clf.predict_proba(X_sparse)
    np.testing.assert_allclose(whole, clf.predict_proba(X_sparse.toarray()), rtol=1e-12,
                               atol=1e-15)
    # the CPU formula the estimator predicts with, 7 rows a batch
    batched = forward(clf._chain, X_sparse, batch_size=7)
    batched = np.exp(batched - batched.max(1, keepdims=True))
    # float64 BLAS sums in a shape-dependent order: equal up to rounding
    np.testing.assert_allclose(batched / batched.sum(1, keepdims=True), whole, rtol=1e-12,
                               atol=1e-15)
    np.testing.assert_allclose(clf.predict_proba(X_sparse[:5]), whole[:5], rtol=1e-12,
                               atol=1e-15)
    np.testing.assert_array_equal(clf.predict(X_sparse), whole.argmax(1))


# ------------------------------------------------------------------ ConvergenceWarning
@pytest.mark.parametrize("cls", ESTIMATORS + REGRESSORS, ids=lambda c: c.__name__)
def test_convergence_warning_when_max_epochs_ends_an_improving_fit(cls, small_data):
    # MLPClassifier's rule: ending at max_iter while still improving by more than tol warns.
    from sklearn.datasets import make_regression
    from sklearn.exceptions import ConvergenceWarning

    X, y = data_for(cls, small_data, make_regression(n_samples=120, n_features=8,
                                                     random_state=0))
    with pytest.warns(ConvergenceWarning, match=r"max_epochs=2 .*tol=0\.0001") as record:
        small(cls, max_epochs=2).fit(X, y)
    assert record[0].filename == __file__  # it points at the caller of fit
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        # stopped by the rule (patience 1) long before max_epochs
        est = small(cls, max_epochs=20, tol=1e9, n_iter_no_change=1).fit(X, y)
        assert est.n_iter_ < 20
        # max_epochs reached, but the last epochs no longer improved by more than tol
        # (pruned: the epochs after the pruning are the ones judged, here 2)
        last_phase = {"finetune_epochs": 2} if "Pruned" in cls.__name__ else {}
        small(cls, max_epochs=3, tol=1e9, n_iter_no_change=5, **last_phase).fit(X, y)
        # partial_fit runs one epoch a call and never warns, as in MLPClassifier
        extra = {"classes": np.unique(y)} if cls in ESTIMATORS else {}
        small(cls).partial_fit(X, y, **extra)


# ---------------------------------------------------------------------------- the net
class _BatchSpy:
    """A skorch callback recording the batch hooks' arguments."""

    def __init__(self):
        calls = self.calls = []

        class Spy(Callback):
            def on_batch_begin(self, net, batch=None, training=None, **kwargs):
                calls.append(("begin", training, len(batch[0])))

            def on_batch_end(self, net, batch=None, training=None, loss=None, y_pred=None,
                             **kwargs):
                calls.append(("end", training, len(batch[0]), float(loss.detach()),
                              tuple(y_pred.shape)))

        self.callback = Spy()


def test_the_loop_fires_skorchs_batch_hooks_with_skorchs_arguments(small_data):
    X, y = small_data
    spy = _BatchSpy()

    class Spied(DenseClassifier):
        def _extra_callbacks(self):
            return [("spy", spy.callback)]

    est = Spied(hidden_layer_sizes=(8,), max_epochs=2, batch_size=32, early_stopping=True,
                n_iter_no_change=5, device="cpu", random_state=0).fit(X, y)
    n_train, n_valid = 108, 12  # validation_fraction=0.1 of 120
    train = [c for c in spy.calls if c[1] is True]
    valid = [c for c in spy.calls if c[1] is False]
    assert sum(c[2] for c in train if c[0] == "begin") == 2 * n_train
    assert sum(c[2] for c in valid if c[0] == "end") == 2 * n_valid
    assert [c[0] for c in spy.calls[:2]] == ["begin", "end"]  # paired, in order
    ends = [c for c in spy.calls if c[0] == "end"]
    assert all(np.isfinite(c[3]) and c[4] == (c[2], 3) for c in ends)
    assert est.n_iter_ == 2


def test_the_nets_own_parameters_are_declared(small_data):
    est = small(DenseClassifier, alpha=0.5, precision="bfloat16").fit(*small_data)
    params = est.net_.get_params()
    assert params["alpha"] == 0.5 and params["autocast_dtype"] is torch.bfloat16
    assert isinstance(params["shuffle_generator"], torch.Generator)
    assert params["use_torch_compile"] is False and params["valid_score_fn"] is None
    assert params["scheduled"] is True and not hasattr(est.net_, "scheduled_")
    est.set_params(alpha=0.25, warm_start=True).fit(*small_data)  # a continuing fit
    assert est.net_.get_params()["alpha"] == 0.25
    est.partial_fit(*small_data)  # no schedule: ScheduledCallbacks read scheduled=False
    assert est.net_.get_params()["scheduled"] is False
    assert clone(est.net_).get_params()["scheduled"] is False


class _GradListener(Callback):
    """Listens to on_grad_computed, so the net keeps skorch's closure step."""

    def initialize(self):
        self.calls_ = 0
        return self

    def on_grad_computed(self, net, named_parameters, **kwargs):
        self.calls_ += 1


@pytest.mark.parametrize("cls, options", [
    (WeightFreeClassifier, {}),
    (DenseClassifier, {"optimizer": "sgd", "alpha": 0.1}),
    (WeightFreeClassifier, {"early_stopping": True, "lr_schedule": "cosine"}),
])
def test_the_direct_step_is_skorchs_closure_step(cls, options, small_data, monkeypatch):
    # Without a callback at on_grad_computed the net steps its optimiser directly; a
    # listener brings back skorch's closure. Both give the same fit, bit for bit.
    from skorch import NeuralNet

    closure_steps = []
    skorch_step = NeuralNet.train_step

    def counted(net, batch, **fit_params):
        closure_steps.append(1)
        return skorch_step(net, batch, **fit_params)

    monkeypatch.setattr(NeuralNet, "train_step", counted)
    X, y = small_data
    kwargs = dict(hidden_layer_sizes=(8,), max_epochs=3, batch_size=32, device="cpu",
                  random_state=0, **options)
    direct = cls(**kwargs).fit(X, y)
    assert not closure_steps  # the direct step ran
    listener = _GradListener()
    closure = cls(**kwargs, callbacks=[("grads", listener)]).fit(X, y)
    assert closure_steps  # skorch's step ran
    n_batches = sum(row["train_batch_count"] for row in closure.net_.history)
    assert dict(closure.net_.callbacks_)["grads"].calls_ == n_batches > 0
    for a, b in zip(direct.coefs_, closure.coefs_):
        np.testing.assert_array_equal(a, b)
    assert [r["train_loss"] for r in direct.history_] == [
        r["train_loss"] for r in closure.history_]


def test_the_epoch_loss_is_the_running_sum_of_batch_losses():
    # _mean_loss reads the batch losses once per epoch; its value is the one a running
    # `total += loss * size` on the device gives, bit for bit, in float32 and float64
    from sk_weightfree._training import _mean_loss

    generator = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        losses = list(torch.rand(37, generator=generator, dtype=dtype) * 3)
        sizes = [128] * 36 + [61]
        total = 0.0
        for loss, size in zip(losses, sizes):
            total += loss * size
        assert _mean_loss(losses, sizes) == float(total / sum(sizes))
    assert _mean_loss([], []) == 0.0


def test_a_fit_under_no_grad_trains(small_data):
    # the optimisers switch gradients on for their closure; the direct step does too
    X, y = small_data
    with torch.no_grad():
        est = WeightFreeClassifier(hidden_layer_sizes=(8,), max_epochs=2, batch_size=32,
                                   device="cpu", random_state=0).fit(X, y)
    reference = WeightFreeClassifier(hidden_layer_sizes=(8,), max_epochs=2, batch_size=32,
                                     device="cpu", random_state=0).fit(X, y)
    for a, b in zip(est.coefs_, reference.coefs_):
        np.testing.assert_array_equal(a, b)


def test_an_optimiser_subclass_keeps_skorchs_closure():
    # a subclass of SGD may need its closure (sharpness-aware steps evaluate it
    # themselves): only the exact built-in optimisers get the direct step
    from sk_weightfree._training import ResidentClassifierNet, ResidentData

    class ClosureSGD(torch.optim.SGD):
        def step(self, closure=None):
            if closure is None:
                raise RuntimeError("ClosureSGD needs its closure")
            with torch.enable_grad():
                closure()
            return super().step()

    X = np.random.RandomState(0).randn(64, 4).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    net = ResidentClassifierNet(torch.nn.Linear(4, 2), criterion=torch.nn.CrossEntropyLoss,
                                criterion__reduction="none", optimizer=ClosureSGD, lr=0.1,
                                max_epochs=2, batch_size=16, train_split=None, verbose=0,
                                device="cpu")
    net.fit(ResidentData(X, y, "cpu"), None)
    assert np.isfinite(net.history[-1, "train_loss"])


def test_a_listener_added_after_a_fit_is_called_at_the_next_step(small_data):
    # the listeners are found at each step, never cached on the net (nor pickled)
    X, y = small_data
    est = WeightFreeClassifier(hidden_layer_sizes=(8,), max_epochs=1, batch_size=32,
                               device="cpu", random_state=0).fit(X, y)
    net = est.net_
    net.set_params(callbacks=[("grads", _GradListener())])
    net.initialize_callbacks()
    from sk_weightfree._training import ResidentData

    data = ResidentData(X, np.searchsorted(est.classes_, y), "cpu")
    batch = next(iter(net.get_iterator(data, training=True)))
    net.module_.train()
    net.train_step(batch)
    assert dict(net.callbacks_)["grads"].calls_ == 1
