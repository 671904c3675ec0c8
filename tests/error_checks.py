"""Shared checks of the error and fault tests (test_data, test_heads, test_base,
test_fit): bad input gets a clear error raised outside torch/numpy, and a failed or
interrupted fit leaves a usable model or an unfitted one."""

import contextlib
import os

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from conftest import ESTIMATORS, small

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


def step_raiser(monkeypatch, exc_factory, at_call, optimizer=torch.optim.Adam):
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


def oom():
    return torch.OutOfMemoryError(
        "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.10 GiB total capacity)"
    )


def fit_through_interrupt(est, X, y):
    """Fit ``est`` where a ``KeyboardInterrupt`` stops training; the model must be usable."""
    with contextlib.suppress(KeyboardInterrupt):
        est.fit(X, y)
    assert_fully_fitted(est, X)
