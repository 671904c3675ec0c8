"""The research claim behind spectral_similarity, on fitted estimators."""

import numpy as np
import pytest

from sk_weightfree import DenseClassifier, WeightFreeClassifier, pairwise_spectral_similarity


@pytest.mark.parametrize("weighted", [False, True])
def test_weight_free_networks_resemble_each_other_more_than_dense_ones(weighted, digits):
    X, y = digits
    params = dict(hidden_layer_sizes=(32,), max_epochs=5, device="cpu")
    nets = [WeightFreeClassifier(random_state=s, **params).fit(X, y) for s in range(3)]
    nets += [DenseClassifier(random_state=s, **params).fit(X, y) for s in range(3)]
    S = pairwise_spectral_similarity(nets, weighted=weighted)
    off_diagonal = ~np.eye(3, dtype=bool)
    within_free = S[:3, :3][off_diagonal].mean()
    within_dense = S[3:, 3:][off_diagonal].mean()
    across = S[:3, 3:].mean()
    assert within_free > across + 0.1
    assert within_dense > across + 0.1
