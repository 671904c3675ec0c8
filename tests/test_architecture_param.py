"""architecture=: every family trains on given edges and never uses another (issue 30)."""

import functools
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback

import sk_weightfree
from sk_weightfree import (DenseClassifier, PrunedClassifier, PrunedRegressor,
                           RandomNetworkClassifier, WeightAgnosticClassifier,
                           WeightFreeClassifier, architecture_of, io, rewire,
                           spectral_similarity)
from sk_weightfree.nn import ScoredMask, SharedWeightMLP, SignRule, SmallCNN
from sk_weightfree.nn._templates import WEIGHT_LAYERS, SharedWeightUnit
from conftest import small

TRANSPLANTS = [  # the families that take an architecture
    sk_weightfree.DenseClassifier, sk_weightfree.DenseRegressor,
    sk_weightfree.WeightFreeClassifier, sk_weightfree.WeightFreeRegressor,
    sk_weightfree.WeightAgnosticClassifier, sk_weightfree.WeightAgnosticRegressor,
    sk_weightfree.RandomNetworkClassifier, sk_weightfree.RandomNetworkRegressor,
]
CLASSIFIERS = [cls for cls in TRANSPLANTS if "Classifier" in cls.__name__]
TINY_CNN = functools.partial(SmallCNN, channels=(4, 8), hidden=16)
SHAPE = (1, 8, 8)


def random_edges(shapes, seed, density=0.5):
    """An architecture of the given (coefs_-form) shapes, every layer non-empty."""
    rng = np.random.default_rng(seed)
    layers = []
    for shape in shapes:
        layer = rng.random(shape) < density
        layer.flat[0] = True
        layers.append(layer)
    return layers


def mlp_shapes(n_outputs):
    return [(8, 16), (16, n_outputs)]


def cnn_shapes(n_outputs):
    return [(4, 1, 3, 3), (8, 4, 3, 3), (32, 16), (16, n_outputs)]


@pytest.fixture(scope="module")
def images():
    X, y = load_digits(return_X_y=True)
    return (X[:160] / 16.0).astype(np.float32), y[:160]


def data_and_params(cls, kind, small_data, images):
    X, y = small_data if kind == "mlp" else images
    n_outputs = len(np.unique(y))
    if "Regressor" in cls.__name__:
        y, n_outputs = y.astype(float), 1
    params = (dict(hidden_layer_sizes=(16,)) if kind == "mlp"
              else dict(module=TINY_CNN, input_shape=SHAPE))
    shapes = (mlp_shapes if kind == "mlp" else cnn_shapes)(n_outputs)
    return X, y, params, shapes


def torch_layout(architecture):
    return [torch.from_numpy(np.ascontiguousarray(a.T if a.ndim == 2 else a))
            for a in architecture]


def edge_weights(module):
    """The weight of every edge each layer applies, in torch layout ``(out, in, *k)``
    without pairing (signed for paired lines): in the current mode's way of computing it
    (the training mask in training mode with gradients on, the hard mask otherwise)."""
    weights = []
    for layer in module.modules():
        if isinstance(layer, ScoredMask):
            if any(isinstance(m, SharedWeightUnit) and m.bias_node is layer
                   for m in module.modules()):
                continue  # a bias node: no edge of the architecture
            weight = layer.effective_weight().detach()
            if isinstance(module, SharedWeightMLP):
                weight = weight[:, :-1]  # the bias node's column
            weights.append(weight)
        elif isinstance(layer, WEIGHT_LAYERS):
            weights.append(layer.weight.detach())
    return weights


def off_edge_values(module, architecture):
    """The largest |weight| outside the architecture, in training and in eval mode."""
    largest = []
    was_training = module.training
    for training in (True, False):
        module.train(training)
        with torch.enable_grad():
            weights = edge_weights(module)
        assert len(weights) == len(architecture)
        for weight, edges in zip(weights, torch_layout(architecture)):
            assert weight.shape == edges.shape
            largest.append(float(weight[~edges].abs().max()) if (~edges).any() else 0.0)
    module.train(was_training)
    return max(largest)


class EpochWatch(Callback):
    """After every training epoch, the largest off-architecture weight."""

    def __init__(self, architecture, seen):
        self.architecture, self.seen = architecture, seen

    def on_epoch_end(self, net, **kwargs):
        self.seen.append(off_edge_values(net.module_, self.architecture))


def watched(cls, architecture, seen):
    class Watched(cls):
        def _extra_callbacks(self):
            return [*super()._extra_callbacks(),
                    ("watch", EpochWatch(architecture, seen))]
    Watched.__name__ = cls.__name__
    return Watched


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
@pytest.mark.parametrize("cls", TRANSPLANTS, ids=lambda c: c.__name__)
def test_no_edge_outside_the_architecture_is_ever_non_zero(cls, kind, small_data, images):
    X, y, params, shapes = data_and_params(cls, kind, small_data, images)
    architecture = random_edges(shapes, seed=1)
    seen = []
    est = small(watched(cls, architecture, seen), architecture=architecture,
                **params).fit(X, y)
    trains = not (cls is WeightAgnosticClassifier)  # nothing to train there
    assert len(seen) == (3 if trains else 0)
    assert seen == [0.0] * len(seen)  # during training, after every epoch
    assert off_edge_values(est.net_.module_, architecture) == 0.0
    for mask, coef, edges in zip(est.masks_, est.coefs_, architecture):
        if est.__dict__.get("paired_inputs_", False) or mask.shape != edges.shape:
            axis = 0 if mask.ndim == 2 else 1
            edges = np.concatenate([edges, edges], axis=axis)
        assert not mask[~edges].any() and not coef[~edges].any()
    # every family keeps exactly the edge set
    for got, edges in zip(architecture_of(est), architecture):
        np.testing.assert_array_equal(got, edges)


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
@pytest.mark.parametrize("cls", [WeightFreeClassifier, RandomNetworkClassifier],
                         ids=lambda c: c.__name__)
def test_zero_one_families_put_each_edge_on_exactly_one_twin_line(cls, kind, small_data,
                                                                   images):
    X, y, params, shapes = data_and_params(cls, kind, small_data, images)
    architecture = random_edges(shapes, seed=2)
    est = small(cls, architecture=architecture, **params).fit(X, y)
    assert est.paired_inputs_
    for mask, coef, edges in zip(est.masks_, est.coefs_, architecture):
        axis = 0 if mask.ndim == 2 else 1
        excitatory, inhibitory = np.split(mask, 2, axis=axis)
        np.testing.assert_array_equal(excitatory ^ inhibitory, edges)
        assert not (excitatory & inhibitory).any()
        assert set(np.unique(coef)) <= {0.0, 1.0}


def test_weight_free_learns_signs_and_random_keeps_its_hidden_signs(small_data):
    X, y = small_data
    architecture = random_edges(mlp_shapes(3), seed=3)
    wf = small(WeightFreeClassifier, architecture=architecture, max_epochs=10).fit(X, y)
    start = small(WeightFreeClassifier, architecture=architecture, max_epochs=1, lr=1e-12)
    start.fit(X, y)  # (practically) the initial signs
    assert isinstance(wf.mask_rule_, SignRule)
    assert any((a != b).any() for a, b in zip(wf.masks_, start.masks_))  # signs moved

    random = small(RandomNetworkClassifier, architecture=architecture, max_epochs=10)
    random.fit(X, y)
    again = small(RandomNetworkClassifier, architecture=architecture, max_epochs=1)
    again.fit(X, y)
    np.testing.assert_array_equal(random.masks_[0], again.masks_[0])  # frozen, seeded
    other = small(RandomNetworkClassifier, architecture=architecture, max_epochs=1,
                  random_state=1).fit(X, y)
    assert (other.masks_[0] != random.masks_[0]).any()  # drawn from random_state
    hidden, readout = random.net_.module_.scored_layers()
    assert not hidden.scores.requires_grad and readout.scores.requires_grad


@pytest.mark.parametrize("unit_signs", ["fixed", "none", "random"])
def test_unpaired_weight_free_keeps_every_edge_on(unit_signs, small_data):
    X, y = small_data
    architecture = random_edges(mlp_shapes(3), seed=4)
    est = small(WeightFreeClassifier, architecture=architecture,
                unit_signs=unit_signs).fit(X, y)
    for got, edges in zip(architecture_of(est), architecture):
        np.testing.assert_array_equal(got, edges)
    assert not any(layer.scores.requires_grad
                   for layer in est.net_.module_.scored_layers())


def test_weight_agnostic_fixes_edges_and_bias_nodes_and_chooses_the_value(small_data):
    X, y = small_data
    architecture = random_edges(mlp_shapes(3), seed=5)
    est = small(WeightAgnosticClassifier, architecture=architecture).fit(X, y)
    assert est.n_iter_ == 0 and est.weight_scores_.shape == (3,)
    assert est.shared_weight_ == est.weight_values_[np.argmax(est.weight_scores_)]
    for coef, edges in zip(est.coefs_, architecture):
        np.testing.assert_array_equal(coef, edges * est.shared_weight_)
    np.testing.assert_array_equal(est.intercepts_[0], est.shared_weight_)  # bias nodes on


@pytest.mark.parametrize("cls", TRANSPLANTS, ids=lambda c: c.__name__)
def test_shapes_and_dtypes_are_checked_with_the_layer_named(cls, small_data):
    X, y = small_data
    if "Regressor" in cls.__name__:
        y = y.astype(float)
    n_outputs = 3 if "Classifier" in cls.__name__ else 1
    good = random_edges(mlp_shapes(n_outputs), seed=6)
    cases = [
        ([good[0], good[1].T], r"architecture layer 1 has shape"),
        ([good[0]], r"architecture has 1 layer\(s\); the network has 2"),
        ([good[0], good[1] * 0.5], r"architecture layer 1 must hold booleans"),
        ([np.zeros_like(good[0]), good[1]], r"architecture layer 0 has no edge"),
        ([good[0][0], good[1]], r"architecture layer 0 must be 2-D"),
    ]
    for architecture, message in cases:
        est = small(cls, architecture=architecture)
        with pytest.raises(ValueError, match=message):
            est.fit(X, y)
        assert not hasattr(est, "net_")
    with pytest.raises(ValueError, match="'architecture' parameter"):
        small(cls, architecture=good[0]).fit(X, y)  # an array, not a list of them
    # 0/1 numbers are accepted as booleans
    small(cls, architecture=[a.astype(np.int64) for a in good], max_epochs=1).fit(X, y)


@pytest.mark.parametrize("cls", [PrunedClassifier, PrunedRegressor], ids=lambda c: c.__name__)
def test_pruned_refuses_an_architecture_before_training(cls, small_data):
    X, y = small_data
    est = small(cls, architecture=random_edges(mlp_shapes(3), seed=7))
    with pytest.raises(ValueError, match=r"DenseClassifier\(architecture=\.\.\.\)"):
        est.fit(X, y)
    assert not hasattr(est, "net_")
    with pytest.raises(ValueError, match="finds its architecture by pruning"):
        est.validate_params()


def test_a_changed_architecture_needs_a_fresh_fit(small_data):
    X, y = small_data
    architecture = random_edges(mlp_shapes(3), seed=8)
    est = small(WeightFreeClassifier, architecture=architecture).fit(X, y)
    est.set_params(architecture=random_edges(mlp_shapes(3), seed=9), warm_start=True)
    with pytest.raises(ValueError, match="architecture changed"):
        est.fit(X, y)
    est.set_params(architecture=[a.copy() for a in architecture]).fit(X, y)  # same edges


@pytest.fixture(scope="module")
def transplanted(small_data):
    """cls -> a small estimator fitted on a weight-free network's architecture."""
    X, y = small_data
    source = small(WeightFreeClassifier).fit(X, y)
    architecture = architecture_of(source)
    return architecture, {cls: small(cls, architecture=architecture).fit(X, y)
                          for cls in CLASSIFIERS}


def test_architecture_of_round_trip(transplanted):
    architecture, models = transplanted
    for model in models.values():
        for got, edges in zip(architecture_of(model), architecture):
            np.testing.assert_array_equal(got, edges)


@pytest.mark.parametrize("cls", CLASSIFIERS, ids=lambda c: c.__name__)
def test_a_transplanted_model_pickles_dumps_exports_and_compares(cls, transplanted,
                                                                 small_data, tmp_path):
    X, _ = small_data
    architecture, models = transplanted
    model = models[cls]
    expected = model.predict_proba(X)
    np.testing.assert_allclose(pickle.loads(pickle.dumps(model)).predict_proba(X), expected)
    io.dump(model, tmp_path / "model.swf")
    np.testing.assert_array_equal(io.load(tmp_path / "model.swf").predict(X),
                                  model.predict(X))
    module = model.to_module()
    with torch.no_grad():
        logits = module(torch.as_tensor(X, dtype=torch.float32))
        ours = model.net_.module_.eval()(torch.as_tensor(X, dtype=torch.float32))
    np.testing.assert_allclose(logits.numpy(), ours.numpy(), rtol=1e-4, atol=1e-4)
    similarity = spectral_similarity(model, architecture, random_state=0)
    assert np.isfinite(similarity)


def test_clone_and_grid_search_over_architectures(small_data):
    X, y = small_data
    architecture = architecture_of(small(WeightFreeClassifier).fit(X, y))
    est = small(DenseClassifier, architecture=architecture, max_epochs=2)
    copy = clone(est)
    assert all((a == b).all() for a, b in zip(copy.architecture, architecture))
    rewired = rewire(architecture, random_state=0)
    search = GridSearchCV(small(DenseClassifier, max_epochs=2),
                          {"architecture": [architecture, rewired]}, cv=2).fit(X, y)
    assert len(search.cv_results_["params"]) == 2
    best = search.best_estimator_
    for got, edges in zip(architecture_of(best), best.architecture):
        np.testing.assert_array_equal(got, edges)


def test_families_on_a_learned_digits_architecture(digits_split):
    """The issue's bar: a weight-free network's architecture on digits carries dense,
    weight-free, weight-agnostic and random networks, and dense on it scores > 0.8."""
    X_train, X_test, y_train, y_test = digits_split
    source = WeightFreeClassifier(hidden_layer_sizes=(64,), max_epochs=5, device="cpu",
                                  random_state=0).fit(X_train, y_train)
    architecture = architecture_of(source)
    for cls in CLASSIFIERS:
        est = cls(hidden_layer_sizes=(64,), max_epochs=5 if cls is not DenseClassifier
                  else 30, device="cpu", random_state=0, architecture=architecture)
        est.fit(X_train, y_train)
        for got, edges in zip(architecture_of(est), architecture):
            np.testing.assert_array_equal(got, edges)
        if cls is DenseClassifier:
            assert est.score(X_test, y_test) > 0.8


def test_sign_rule_puts_one_twin_line_on_with_an_identity_gradient():
    rule = SignRule()
    scores = torch.tensor([[0.3, -0.2, 0.0]], requires_grad=True)
    np.testing.assert_array_equal(rule.hard_mask(scores).numpy(),
                                  [[True, False, True, False, True, False]])
    signed = rule.train_mask(scores)
    np.testing.assert_array_equal(signed.detach().numpy(), [[1.0, -1.0, 1.0]])
    (signed * torch.tensor([[2.0, 3.0, 4.0]])).sum().backward()
    np.testing.assert_array_equal(scores.grad.numpy(), [[2.0, 3.0, 4.0]])
    layer = sk_weightfree.nn.ScoredMaskLinear(3, 1, signs="none")
    with pytest.raises(ValueError, match="needs paired lines"):
        layer.restrict_to(torch.ones(1, 3, dtype=torch.bool), SignRule())
