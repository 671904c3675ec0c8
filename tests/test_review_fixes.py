"""Regression tests for defects found in code review."""

import numpy as np
import pytest
import torch

from sk_weightfree import (DenseClassifier, PrunedClassifier, RandomNetworkClassifier,
                           WeightAgnosticClassifier, WeightFreeClassifier)
from sk_weightfree.cli import main
from conftest import small


def _forward_from_exports(clf, X):
    """Logits rebuilt from the public fitted attributes alone."""
    h = X
    for i, coef in enumerate(clf.coefs_):
        z = (h @ coef) * clf.unit_scales_[i] + clf.unit_offsets_[i]
        h = z if i == len(clf.coefs_) - 1 else np.maximum(z, 0) * clf.unit_signs_[i]
    return h


@pytest.mark.parametrize("cls", [WeightFreeClassifier, RandomNetworkClassifier])
def test_unit_attributes_reproduce_predictions(cls, digits):
    X, y = digits
    clf = small(cls, hidden_layer_sizes=(12, 6)).fit(X, y)
    logits = _forward_from_exports(clf, X)
    expected = clf.predict_log_proba(X)
    got = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1,
                          keepdims=True)) - logits.max(1, keepdims=True)
    np.testing.assert_allclose(got, expected, atol=1e-5)  # scales exported from float32


def test_weight_agnostic_layer_scales_reproduce_predictions(digits):
    X, y = digits
    clf = small(WeightAgnosticClassifier, activation="tanh").fit(X, y)
    h = X
    for i, coef in enumerate(clf.coefs_):
        h = clf.layer_scales_[i] * (h @ coef)
        if i < len(clf.coefs_) - 1:
            h = np.tanh(h) * clf.unit_signs_[i]
    np.testing.assert_array_equal(clf.classes_[h.argmax(1)], clf.predict(X))


def test_weight_agnostic_validation_loss_averages_every_value(digits):
    X, y = digits
    clf = small(WeightAgnosticClassifier, early_stopping=True, max_epochs=4,
                weight_values=(-2.0, 1.0)).fit(X / 4, y)
    valid = [row["valid_loss"] for row in clf.history_]
    assert len(set(np.round(valid, 6))) > 1, valid  # it follows the training objective


@pytest.mark.parametrize("rewind", [False, True])
def test_pruned_cosine_schedule_restarts_for_fine_tuning(rewind, digits):
    X, y = digits
    clf = small(PrunedClassifier, lr_schedule="cosine", max_epochs=3, finetune_epochs=3,
                rewind=rewind, n_rounds=2).fit(X, y)
    assert clf.n_iter_ == 3 + 2 * 3
    losses = [row["train_loss"] for row in clf.history_]
    # the first fine-tune epoch learns (it ran at lr = 0 when the schedule did not restart)
    assert losses[4] < losses[3] or rewind
    assert clf.score(X, y) > 0.3  # chance is 0.1


def test_pruned_rewind_needs_fine_tuning(small_data):
    X, y = small_data
    with pytest.raises(ValueError, match="finetune_epochs"):
        small(PrunedClassifier, rewind=True, finetune_epochs=0).fit(X, y)


@pytest.mark.parametrize("hidden, density", [((300, 100), 0.01), ((8,), 0.02)])
def test_global_pruning_never_empties_a_layer(hidden, density, digits):
    X, y = digits
    clf = small(PrunedClassifier, hidden_layer_sizes=hidden, density=density).fit(X, y)
    assert all(mask.sum() >= 1 for mask in clf.masks_)


def test_interrupt_with_early_stopping_restores_the_best_epoch(small_data, monkeypatch):
    X, y = small_data
    # lr 0.05: the validation loss fluctuates, so the best epoch is not the last one
    params = dict(early_stopping=True, n_iter_no_change=50, lr=0.05)
    clf = small(DenseClassifier, max_epochs=20, **params)
    steps = {"n": 0}
    original = torch.optim.Adam.step

    def step(self, *args, **kwargs):
        steps["n"] += 1
        if steps["n"] == 17 * 4 + 2:  # 4 batches of 32 per epoch: inside epoch 18
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    with pytest.warns(UserWarning, match="interrupted"):
        clf.fit(X, y)
    monkeypatch.undo()
    assert clf.n_iter_ == 17
    stopper = dict(clf.net_.callbacks_)["stopping"]
    best = int(np.argmin([row["valid_loss"] for row in clf.history_]))
    assert stopper.best_epoch_ == best + 1 < 17
    # the weights are those of the best epoch: the same as an uninterrupted 17-epoch fit,
    # which restores its best epoch too
    reference = small(DenseClassifier, max_epochs=17, **params).fit(X, y)
    for got, expected in zip(clf.coefs_, reference.coefs_):
        np.testing.assert_array_equal(got, expected)


def test_skorch_net_predicts_on_plain_arrays(small_data):
    X, y = small_data
    clf = small(DenseClassifier).fit(X, y)
    proba = clf.net_.predict_proba(X.astype(np.float32))
    assert proba.shape == (len(X), 3)


def test_read_only_input_gives_no_warning(small_data, recwarn):
    X, y = small_data
    X = np.array(X, dtype=np.float32)
    X.flags.writeable = False
    small(DenseClassifier).fit(X, y).predict(X)
    assert not [w for w in recwarn if "writable" in str(w.message)]


def test_csv_with_ragged_rows_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "bad.csv").write_text("a,b,label\n1,2,x\n3\n4,5,y\n")
    assert main(["compare", "--dataset", str(tmp_path / "bad.csv"), "--target", "label",
                 "--quiet", "--out", ""]) == 2
    assert "fields" in capsys.readouterr().err
