"""Architectures as data: architecture_of, check_architecture, the two null architectures."""

import functools

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

from sk_weightfree import (DenseClassifier, PrunedClassifier, WeightFreeClassifier,
                           architecture_of, random_architecture, rewire)
from sk_weightfree._architecture import check_architecture
from sk_weightfree.nn import SmallCNN
from conftest import small


@pytest.fixture(scope="module")
def images():
    X, y = load_digits(return_X_y=True)
    return (X[:200] / 16.0).astype(np.float32), y[:200]


@pytest.fixture(scope="module")
def paired(small_data):
    return small(WeightFreeClassifier).fit(*small_data)


def test_paired_edges_exist_where_either_twin_is_on(paired):
    architecture = architecture_of(paired)
    assert paired.paired_inputs_
    for mask, edges in zip(paired.masks_, architecture):
        n_in = mask.shape[0] // 2
        assert edges.dtype == bool and edges.shape == (n_in, mask.shape[1])
        np.testing.assert_array_equal(edges, mask[:n_in] | mask[n_in:])
    assert [a.shape for a in architecture] == [(8, 16), (16, 3)]


@pytest.mark.parametrize("cls, params", [
    (DenseClassifier, {}), (PrunedClassifier, {"density": 0.3}),
    (WeightFreeClassifier, {"unit_signs": "none"})])
def test_unpaired_edges_are_the_masks(cls, params, small_data):
    est = small(cls, **params).fit(*small_data)
    architecture = architecture_of(est)
    for mask, edges in zip(est.masks_, architecture):
        np.testing.assert_array_equal(edges, mask)
        assert edges.dtype == bool and edges is not mask  # a copy: the model stays intact


def test_template_taps_keep_the_kernel_shape(images):
    cnn = WeightFreeClassifier(module=functools.partial(SmallCNN, channels=(4, 8), hidden=16),
                               input_shape=(1, 8, 8), max_epochs=1, batch_size=32,
                               device="cpu", random_state=0).fit(*images)
    shapes = [a.shape for a in architecture_of(cnn)]
    assert shapes[0] == (4, 1, 3, 3) and shapes[1] == (8, 4, 3, 3)
    assert all(len(s) == 2 for s in shapes[2:])


def test_architecture_of_refuses_what_it_cannot_read(small_data):
    with pytest.raises(NotFittedError, match="WeightFreeClassifier instance is not fitted"):
        architecture_of(WeightFreeClassifier())
    with pytest.raises(TypeError, match="got a LogisticRegression"):
        architecture_of(LogisticRegression().fit(*small_data))


@pytest.mark.parametrize("architecture, shapes, error, message", [
    ("abc", None, TypeError, "list of boolean arrays"),
    (np.ones((3, 2), bool), None, TypeError, "list of boolean arrays"),
    ([np.ones((3, 2), bool)], [(3, 2), (2, 1)], ValueError, "has 1 layer"),
    ([np.ones((3, 2), bool), np.ones((3, 1), bool)], [(3, 2), (2, 1)], ValueError,
     r"layer 1 has shape \(3, 1\); the network's layer 1 has shape \(2, 1\)"),
    ([np.full((3, 2), 2)], None, ValueError, "layer 0 must hold booleans"),
    ([np.ones(3, bool)], None, ValueError, "layer 0 must be 2-D"),
    ([np.zeros((3, 2), bool)], None, ValueError, "layer 0 has no edge"),
    ([[[1, 0], [0]]], None, ValueError, "layer 0 is not an array"),
])
def test_check_architecture_names_the_layer(architecture, shapes, error, message):
    with pytest.raises(error, match=message):
        check_architecture(architecture, shapes)


def test_check_architecture_takes_zeros_and_ones():
    checked = check_architecture([[[1, 0], [0, 1]], np.array([[1.0], [0.0]])])
    assert [a.dtype for a in checked] == [bool, bool]
    np.testing.assert_array_equal(checked[0], np.eye(2, dtype=bool))


def test_random_architecture_keeps_each_layers_edge_count(paired):
    architecture = architecture_of(paired)
    drawn = random_architecture(architecture, random_state=0)
    assert [d.shape for d in drawn] == [a.shape for a in architecture]
    assert [int(d.sum()) for d in drawn] == [int(a.sum()) for a in architecture]
    assert all(d.dtype == bool for d in drawn)
    again = random_architecture(paired, random_state=0)  # an estimator: its architecture
    for d, e in zip(drawn, again):
        np.testing.assert_array_equal(d, e)
    assert any((d != a).any() for d, a in zip(drawn, architecture))


def test_rewired_architecture_keeps_every_degree():
    rng = np.random.default_rng(0)
    architecture = [rng.random((30, 20)) < 0.3, rng.random((20, 5)) < 0.5,
                    rng.random((6, 3, 3, 3)) < 0.4]
    rewired = rewire(architecture, random_state=0)
    for before, after in zip(architecture, rewired):
        assert after.dtype == bool and after.shape == before.shape
        if before.ndim == 2:
            np.testing.assert_array_equal(before.sum(axis=0), after.sum(axis=0))
            np.testing.assert_array_equal(before.sum(axis=1), after.sum(axis=1))
        else:  # each output channel and each (input channel, tap) keeps its degree
            np.testing.assert_array_equal(before.sum(axis=(1, 2, 3)), after.sum(axis=(1, 2, 3)))
            np.testing.assert_array_equal(before.sum(axis=0), after.sum(axis=0))
        assert (before != after).any()
    again = rewire(architecture, random_state=0)
    assert all((a == b).all() for a, b in zip(rewired, again))
