"""The reference families: pruned, weight-agnostic and random networks."""

import numpy as np
import pytest

from sk_weightfree import PrunedClassifier, RandomNetworkClassifier, WeightAgnosticClassifier
from conftest import flat_coefs, small


@pytest.mark.parametrize("pruning", ["global", "layer"])
@pytest.mark.parametrize("n_rounds, rewind", [(1, False), (3, False), (2, True)])
def test_pruned_density_and_zero_pattern(pruning, n_rounds, rewind, digits_split):
    X, X_test, y, y_test = digits_split
    clf = small(PrunedClassifier, hidden_layer_sizes=(32,), density=0.1, pruning=pruning,
                n_rounds=n_rounds, rewind=rewind, max_epochs=3 + n_rounds).fit(X, y)
    assert clf.density_ == pytest.approx(0.1, abs=0.01)
    for coef, mask in zip(clf.coefs_, clf.masks_):
        assert (coef[~mask] == 0).all() and (coef[mask] != 0).all()
    if pruning == "layer":
        for mask in clf.masks_:
            assert mask.mean() == pytest.approx(0.1, abs=0.01)
    # max_epochs is the whole budget: 3 dense epochs + 1 fine-tune epoch per round
    assert clf.n_iter_ == 3 + n_rounds
    assert clf.score(X_test, y_test) > 0.3  # chance is 0.1; tiny net, 4 to 6 epochs in all


@pytest.mark.parametrize("pruning", ["layer", "global"])
def test_pruned_keeps_the_largest_weights(pruning, digits):
    X, y = digits
    clf = small(PrunedClassifier, hidden_layer_sizes=(40,), density=0.2, pruning=pruning,
                finetune_epochs=0).fit(X, y)
    # without fine-tuning, weight_orig holds every weight as it was when pruned
    trained = [np.abs(layer.weight_orig.detach().numpy().T)
               for layer in clf.net_.module_.linears]
    assert clf.density_ == pytest.approx(0.2, abs=0.01)
    if pruning == "layer":
        for weight, mask in zip(trained, clf.masks_):
            assert weight[mask].min() >= weight[~mask].max()
    else:  # one threshold over all layers, above each layer's floor of kept weights
        kept = np.concatenate([w[m] for w, m in zip(trained, clf.masks_)])
        removed = np.concatenate([w[~m] for w, m in zip(trained, clf.masks_)])
        floors = sum(max(w.shape) for w in trained)
        assert (kept < removed.max()).sum() <= floors
        assert np.sort(kept)[floors:].min() >= removed.max()


@pytest.mark.parametrize("rewind", [False, True])
def test_pruned_cosine_schedule_restarts_for_fine_tuning(rewind, digits):
    X, y = digits
    clf = small(PrunedClassifier, lr_schedule="cosine", max_epochs=9, finetune_epochs=3,
                rewind=rewind, n_rounds=2).fit(X, y)
    assert clf.n_iter_ == 9  # 3 dense epochs, then 2 rounds of 3 fine-tune epochs
    losses = clf.loss_curve_
    # the first fine-tune epoch learns (it ran at lr = 0 when the schedule did not restart)
    assert losses[4] < losses[3]
    assert clf.net_.optimizer_.param_groups[0]["lr"] < clf.lr  # and it decays again


def test_pruned_rewind_needs_fine_tuning(small_data):
    X, y = small_data
    with pytest.raises(ValueError, match="finetune_epochs"):
        small(PrunedClassifier, rewind=True, finetune_epochs=0).fit(X, y)


@pytest.mark.parametrize("hidden, density", [((300, 100), 0.01), ((8,), 0.02)])
def test_global_pruning_never_empties_a_layer(hidden, density, digits):
    X, y = digits
    clf = small(PrunedClassifier, hidden_layer_sizes=hidden, density=density).fit(X, y)
    assert all(mask.sum() >= 1 for mask in clf.masks_)


def test_weight_agnostic_has_one_shared_value(digits):
    X, y = digits
    clf = small(WeightAgnosticClassifier, weight_values=(-1.0, 0.5, 2.0), max_epochs=5)
    clf.fit(X, y)
    nonzero = np.unique(flat_coefs(clf)[flat_coefs(clf) != 0])
    assert nonzero.tolist() == [clf.shared_weight_]
    assert clf.shared_weight_ in (-1.0, 0.5, 2.0)
    assert clf.weight_scores_.shape == (3,)
    assert clf.shared_weight_ == (-1.0, 0.5, 2.0)[int(np.argmax(clf.weight_scores_))]
    # float32 training-time scoring vs float64 prediction may split a near-tie or two
    assert clf.score(X, y) == pytest.approx(clf.weight_scores_.max(), abs=2e-3)


def test_weight_agnostic_validation_loss_averages_every_value(digits):
    X, y = digits
    clf = small(WeightAgnosticClassifier, early_stopping=True, max_epochs=4,
                weight_values=(-2.0, 1.0)).fit(X / 4, y)
    valid = [row["valid_loss"] for row in clf.history_]
    assert len(set(np.round(valid, 6))) > 1, valid  # it follows the training objective


def test_weight_agnostic_predicts_probabilities_through_skorch(small_data):
    X, y = small_data
    clf = small(WeightAgnosticClassifier).fit(X, y)
    proba = clf.net_.predict_proba(X.astype(np.float32))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(proba, clf.predict_proba(X), atol=1e-5)


@pytest.mark.parametrize("values", [(), [], [1.0, np.inf], [[np.nan]]])
def test_weight_agnostic_rejects_bad_weight_values(values, small_data):
    X, y = small_data
    with pytest.raises(ValueError, match="weight_values"):
        small(WeightAgnosticClassifier, weight_values=values).fit(X, y)


def test_random_network_masks_are_reproducible_and_at_density(digits):
    X, y = digits
    a = small(RandomNetworkClassifier, hidden_layer_sizes=(200,), density=0.2, random_state=1)
    b = small(RandomNetworkClassifier, hidden_layer_sizes=(200,), density=0.2, random_state=1)
    c = small(RandomNetworkClassifier, hidden_layer_sizes=(200,), density=0.2, random_state=2)
    for clf in (a, b, c):
        clf.fit(X, y)
    np.testing.assert_array_equal(a.masks_[0], b.masks_[0])
    assert not np.array_equal(a.masks_[0], c.masks_[0])
    assert a.masks_[0].mean() == pytest.approx(0.2, abs=0.02)
    assert set(np.unique(flat_coefs(a))) <= {0.0, 1.0}


def test_random_network_hidden_structure_is_never_changed(digits):
    X, y = digits
    trained = small(RandomNetworkClassifier, max_epochs=3).fit(X, y)
    untrained = small(RandomNetworkClassifier, max_epochs=1, train_readout=False).fit(X, y)
    np.testing.assert_array_equal(trained.masks_[0], untrained.masks_[0])
    assert untrained.n_iter_ == 0 and trained.n_iter_ == 3
    assert not np.array_equal(trained.masks_[-1], untrained.masks_[-1])


@pytest.mark.parametrize("cls", [PrunedClassifier, RandomNetworkClassifier])
@pytest.mark.parametrize("density", [0.0, -0.1, 1.01])
def test_invalid_density_is_rejected(cls, density, small_data):
    X, y = small_data
    with pytest.raises(ValueError, match="density"):
        small(cls, density=density).fit(X, y)


def test_weight_agnostic_learns_an_imbalanced_one_against_rest(digits):
    """Without a bias node it predicted the minority class along whole rays of input space
    (accuracy near the 0.9 base rate); with it the class prior can be expressed."""
    from sklearn.model_selection import train_test_split

    X, y = digits
    X, y = X[:600], (y[:600] == 1).astype(int)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y,
                                                        random_state=0)
    clf = small(WeightAgnosticClassifier, hidden_layer_sizes=(32,), max_epochs=15)
    clf.fit(X_train, y_train)
    base_rate = 1 - y_test.mean()
    assert clf.score(X_test, y_test) > base_rate + 0.05
    assert (clf.predict(X_test)[y_test == 1] == 1).mean() > 0.5  # finds the minority


def test_weight_agnostic_chooses_the_value_on_the_validation_split(digits, monkeypatch):
    X, y = digits
    seen = []
    original = WeightAgnosticClassifier._valid_score

    def spy(self, outputs, targets, weights):
        seen.append(len(targets))
        return original(self, outputs, targets, weights)

    monkeypatch.setattr(WeightAgnosticClassifier, "_valid_score", spy)
    small(WeightAgnosticClassifier, early_stopping=True, validation_fraction=0.2,
          max_epochs=2).fit(X, y)
    n_valid = int(np.ceil(0.2 * len(y)))
    assert seen[-3:] == [n_valid] * 3  # the final choice scored the held-out rows


def test_the_base_class_is_abstract():
    from sk_weightfree._base import BaseNetwork

    with pytest.raises(TypeError, match="abstract"):
        BaseNetwork()


def test_pruned_interrupt_before_pruning_says_the_network_is_not_pruned(small_data,
                                                                        monkeypatch):
    import torch

    X, y = small_data
    steps = {"n": 0}
    original = torch.optim.Adam.step

    def step(self, *args, **kwargs):
        steps["n"] += 1
        if steps["n"] == 6:  # inside the second dense epoch
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    with pytest.warns(UserWarning, match="before pruning round 1 of 1"):
        clf = small(PrunedClassifier, density=0.2).fit(X, y)
    assert clf.density_ == 1.0 and clf.n_iter_ == 1
