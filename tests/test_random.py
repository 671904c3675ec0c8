"""The random-network family (sk_weightfree._random): masks drawn at a density, never
searched."""

import numpy as np
import pytest

from sk_weightfree import RandomNetworkClassifier
from conftest import flat_coefs, small


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
