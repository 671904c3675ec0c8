"""PrunedClassifier, WeightAgnosticClassifier and RandomNetworkClassifier."""

import numpy as np
import pytest

from sk_weightfree import PrunedClassifier, RandomNetworkClassifier, WeightAgnosticClassifier
from conftest import flat_coefs, small


@pytest.mark.parametrize("pruning", ["global", "layer"])
@pytest.mark.parametrize("n_rounds, rewind", [(1, False), (3, False), (2, True)])
def test_pruned_density_and_zero_pattern(pruning, n_rounds, rewind, digits):
    X, y = digits
    clf = small(PrunedClassifier, hidden_layer_sizes=(32,), density=0.1, pruning=pruning,
                n_rounds=n_rounds, rewind=rewind).fit(X, y)
    assert clf.density_ == pytest.approx(0.1, abs=0.01)
    for coef, mask in zip(clf.coefs_, clf.masks_):
        assert (coef[~mask] == 0).all() and (coef[mask] != 0).all()
    if pruning == "layer":
        for mask in clf.masks_:
            assert mask.mean() == pytest.approx(0.1, abs=0.01)
    assert clf.n_iter_ == 3 + n_rounds * 1  # training epochs + finetune epochs per round
    assert clf.score(X, y) > 0.3  # chance is 0.1; tiny net, 4 epochs in all


def test_pruned_keeps_the_largest_weights(digits):
    X, y = digits
    clf = small(PrunedClassifier, density=0.2, finetune_epochs=0).fit(X, y)
    kept = np.concatenate([np.abs(c[m]) for c, m in zip(clf.coefs_, clf.masks_)])
    assert len(kept) == clf.n_connections_
    assert clf.density_ == pytest.approx(0.2, abs=0.01)


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


def test_weight_agnostic_ensemble_averages_probabilities(digits):
    X, y = digits
    clf = small(WeightAgnosticClassifier, max_epochs=4).fit(X, y)
    single = clf.predict_proba(X)
    clf.set_params(ensemble=True)
    ensemble = clf.predict_proba(X)
    np.testing.assert_allclose(ensemble.sum(1), 1.0)
    assert not np.allclose(single, ensemble)
    assert clf.score(X, y) > 0.3


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
