"""Any torch module as the template: masked convolutions, the conversion of each family,
the estimators on tiny images, and the errors a user meets."""

import functools
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import ClassifierMixin, clone, is_classifier
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import parametrize_with_checks
from torch import nn
from torch.nn import functional as F

import sk_weightfree
from conftest import ALL_ESTIMATORS
from sk_weightfree.nn import (MaskedUnit, ScoredMaskConv2d, SharedWeightUnit, SmallCNN,
                              ThresholdRule,
                              weight_free_from_template)
from sk_weightfree.nn._templates import replace_layers
from test_common import expected_failures

TINY_CNN = functools.partial(SmallCNN, channels=(4, 8), hidden=16)
SHAPE = (1, 8, 8)
WEIGHT_FREE = (sk_weightfree.WeightFreeClassifier, sk_weightfree.WeightFreeRegressor,
               sk_weightfree.RandomNetworkClassifier, sk_weightfree.RandomNetworkRegressor)


class TinyTemplate(nn.Module):
    """A template that fits any number of features (lazy first layer)."""

    def __init__(self, n_outputs):
        super().__init__()
        self.hidden = nn.LazyLinear(32)
        self.out = nn.Linear(32, n_outputs)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


@pytest.fixture(scope="module")
def images():
    X, y = load_digits(return_X_y=True)
    return (X[:240] / 16.0).astype(np.float32), y[:240]


def fit_cnn(cls, images, **kwargs):
    X, y = images
    params = dict(module=TINY_CNN, input_shape=SHAPE, max_epochs=2, batch_size=32,
                  device="cpu", random_state=0)
    if "Pruned" in cls.__name__:
        params["finetune_epochs"] = 1
    params.update(kwargs)
    return cls(**params).fit(X, y if issubclass(cls, ClassifierMixin) else y.astype(float))


# ---------------------------------------------------------------------------- layers
def test_paired_conv_applies_excitatory_minus_inhibitory_taps():
    layer = ScoredMaskConv2d(1, 2, 2, signs="paired", generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # channel 0 excitatory, channel 1 its inhibitory twin
        layer.scores.copy_(torch.tensor([
            [[[1., -1.], [-1., -1.]], [[-1., -1.], [-1., 1.]]],   # +x[0,0] - x[1,1]
            [[[1., 1.], [-1., -1.]], [[1., -1.], [-1., -1.]]],    # +x[0,1] (x[0,0] cancels)
        ]))
    x = torch.arange(9.0).view(1, 1, 3, 3)
    out = layer.eval()(x)
    expected = torch.tensor([[[[0 - 4, 1 - 5], [3 - 7, 4 - 8]],
                              [[1., 2.], [4., 5.]]]])
    torch.testing.assert_close(out, expected)


def test_conv_surrogate_gradient_is_weight_gradient_times_sigmoid_slope():
    layer = ScoredMaskConv2d(2, 3, 3, padding=1, signs="paired",
                             rule=ThresholdRule(temperature=0.5),
                             generator=torch.Generator().manual_seed(1))
    x = torch.randn(4, 2, 5, 5, generator=torch.Generator().manual_seed(2))
    layer.train()(x).square().sum().backward()
    weight = layer.signed_weight(layer.hard_mask().float()).requires_grad_(True)
    F.conv2d(x, weight, padding=1).square().sum().backward()
    s = torch.sigmoid(layer.scores.detach() / 0.5)
    slope = s * (1 - s) / 0.5
    expected = torch.cat([weight.grad, -weight.grad], dim=1) * slope
    torch.testing.assert_close(layer.scores.grad, expected)


def test_replace_layers_converts_linear_and_conv_and_keeps_the_rest():
    body = weight_free_from_template(TINY_CNN(SHAPE, 3), generator=torch.Generator())
    kinds = [type(m).__name__ for m in body.layers]
    assert kinds == ["MaskedUnit", "ReLU", "MaxPool2d", "MaskedUnit", "ReLU", "MaxPool2d",
                     "Flatten", "MaskedUnit", "ReLU", "MaskedUnit"]
    assert isinstance(replace_layers(nn.Linear(3, 2), lambda layer: "new"), str)


def test_unsupported_conv_is_refused():
    with pytest.raises(ValueError, match="groups=1"):
        weight_free_from_template(nn.Sequential(nn.Conv2d(2, 4, 3, groups=2)))


def test_small_cnn_rejects_images_too_small():
    with pytest.raises(ValueError, match="too small"):
        SmallCNN((1, 3, 3), 2)


# ---------------------------------------------------------------------------- estimators
@pytest.mark.parametrize("cls", ALL_ESTIMATORS, ids=lambda c: c.__name__)
def test_every_family_fits_a_cnn_template(cls, images):
    est = fit_cnn(cls, images)
    X, y = images
    paired = cls in WEIGHT_FREE or "Agnostic" in cls.__name__
    lines = 2 if paired else 1
    shapes = [c.shape for c in est.coefs_]
    assert shapes == [(4, 1 * lines, 3, 3), (8, 4 * lines, 3, 3), (32 * lines, 16),
                      (16 * lines, est.n_outputs_)]
    assert [m.shape for m in est.masks_] == shapes
    assert est.paired_inputs_ is paired
    assert est.density_ == pytest.approx(
        sum(m.sum() for m in est.masks_) / sum(m.size for m in est.masks_))
    if cls in WEIGHT_FREE:
        assert all(set(np.unique(c)) <= {0.0, 1.0} for c in est.coefs_)
    if "Pruned" in cls.__name__:
        assert est.density_ == pytest.approx(0.3, abs=0.02)  # the default density
        assert all((c[~m] == 0).all() for c, m in zip(est.coefs_, est.masks_))
    predictions = est.predict(X)
    assert predictions.shape == y.shape and np.isfinite(predictions.astype(float)).all()


def test_weight_free_cnn_learns_digits(images):
    X, y = images
    est = fit_cnn(sk_weightfree.WeightFreeClassifier, (X[:180], y[:180]), max_epochs=15)
    assert est.score(X[180:], y[180:]) > 0.7  # chance is 0.1


@pytest.mark.parametrize("cls", [sk_weightfree.WeightFreeClassifier,
                                 sk_weightfree.WeightFreeRegressor])
def test_to_module_reproduces_the_outputs(cls, images):
    est = fit_cnn(cls, images)
    X = images[0].astype(np.float64)
    plain = est.to_module()  # in the training dtype (float32): compared at 1e-5
    assert not any(isinstance(m, MaskedUnit) for m in plain.modules())
    with torch.no_grad():
        outputs = plain.double()(torch.as_tensor(X, dtype=torch.float64)).numpy()
    if is_classifier(est):  # the logits
        np.testing.assert_allclose(outputs, est.decision_function(X), rtol=1e-5, atol=1e-5)
    else:  # the predictions, in y's units
        np.testing.assert_allclose(outputs[:, 0], est.predict(X), rtol=1e-5, atol=1e-5)
    kernels = [m.weight for m in plain.modules() if isinstance(m, nn.Conv2d)]
    assert kernels and all(set(torch.unique(k).tolist()) <= {0.0, 1.0} for k in kernels)


@pytest.mark.parametrize("cls", ALL_ESTIMATORS, ids=lambda c: c.__name__)
def test_same_seed_same_model_and_pickling(cls, images):
    first, second = fit_cnn(cls, images), fit_cnn(cls, images)
    X = images[0]
    np.testing.assert_array_equal(first.predict(X), second.predict(X))
    restored = pickle.loads(pickle.dumps(first))
    np.testing.assert_array_equal(restored.predict(X), first.predict(X))


def test_instance_template_is_copied_and_reinitialised(images):
    template = nn.Sequential(nn.Unflatten(1, SHAPE), nn.Conv2d(1, 3, 3), nn.ReLU(),
                             nn.Flatten(), nn.LazyLinear(10))
    before = [p.detach().clone() for p in template[1].parameters()]
    fits = [fit_cnn(sk_weightfree.DenseClassifier, images, module=template, input_shape=None,
                    random_state=seed) for seed in (0, 0, 1)]
    assert all(torch.equal(a, b) for a, b in zip(before, template[1].parameters()))
    np.testing.assert_array_equal(fits[0].coefs_[0], fits[1].coefs_[0])
    assert not np.array_equal(fits[0].coefs_[0], fits[2].coefs_[0])
    assert fits[0].coefs_[0].shape == (3, 1, 3, 3) and fits[0].coefs_[1].shape == (108, 10)


def test_continuing_fits_and_grid_search(images):
    X, y = images
    est = fit_cnn(sk_weightfree.WeightFreeClassifier, images, warm_start=True)
    est.fit(X, y)
    est.partial_fit(X, y)
    assert est.n_iter_ == 5
    search = GridSearchCV(sk_weightfree.WeightFreeClassifier(
        module=TINY_CNN, input_shape=SHAPE, max_epochs=1, device="cpu", random_state=0),
        {"init_density": [0.2, 0.4]}, cv=2).fit(X, y)
    assert search.best_estimator_.coefs_[0].shape == (4, 2, 3, 3)


def test_weight_agnostic_template_uses_one_value_per_edge(images):
    est = fit_cnn(sk_weightfree.WeightAgnosticClassifier, images, ensemble=True)
    assert all(set(np.unique(c)) <= {0.0, est.shared_weight_} for c in est.coefs_)
    assert len(est.weight_scores_) == 3
    units = [m for m in est.net_.module_.modules() if isinstance(m, SharedWeightUnit)]
    assert len(units) == 4
    assert est.predict_proba(images[0]).sum(axis=1) == pytest.approx(1.0)


def test_random_network_template_trains_only_the_readout(images):
    est = fit_cnn(sk_weightfree.RandomNetworkClassifier, images)
    layers = est.net_.module_.scored_layers()
    assert [layer.scores.requires_grad for layer in layers] == [False, False, False, True]


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize("params, error, match", [
    (dict(module=TINY_CNN, input_shape=(1, 8, 7)), ValueError, "holds 56 values"),
    (dict(input_shape=(1, 8, 8)), ValueError, "needs module"),
    (dict(module=TINY_CNN, input_shape=(1, -8, -8)), ValueError, "positive integers"),
    (dict(module=TINY_CNN, input_shape=(64,)), ValueError, "could not be built"),
    (dict(module=SmallCNN((1, 8, 8), 10), input_shape=(64,)), ValueError,
     "failed on a torch.float32 batch"),
    (dict(module=nn.Sequential(nn.Linear(64, 3))), ValueError, r"output shape \(batch, 10\)"),
    (dict(module=lambda n_outputs: "not a module"), TypeError, "torch.nn.Module"),
    (dict(module="cnn"), ValueError, "module"),
    (dict(module=TINY_CNN, input_shape=SHAPE, unit_signs="random"), ValueError,
     "unit_signs='random'"),
    (dict(module=TINY_CNN, input_shape=SHAPE, unit_signs=True), ValueError, "unit_signs=True"),
])
def test_template_errors_are_clear(params, error, match, images):
    with pytest.raises(error, match=match):
        sk_weightfree.WeightFreeClassifier(max_epochs=1, device="cpu", **params).fit(*images)


def test_batch_norm_template_needs_batches_of_two(images):
    with pytest.raises(ValueError, match="batch_size >= 2"):
        sk_weightfree.DenseClassifier(module=functools.partial(TINY_CNN, batch_norm=True),
                                      input_shape=SHAPE, batch_size=1).fit(*images)


def _conv_net(*head, bias=True):
    return nn.Sequential(nn.Unflatten(1, SHAPE), nn.Conv2d(1, 4, 3, bias=bias),
                         nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), *head)


def test_pruned_template_without_biases(images):
    est = fit_cnn(sk_weightfree.PrunedClassifier, images, input_shape=None, rewind=True,
                  module=_conv_net(nn.Linear(144, 10, bias=False), bias=False))
    assert est.density_ == pytest.approx(0.3, abs=0.01)  # the default density


def test_dropout_template_is_reproducible_and_leaves_global_rng_alone(images):
    template = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 10))
    state = torch.random.get_rng_state()
    fits = [fit_cnn(cls, images, module=template, input_shape=None)
            for cls in (sk_weightfree.DenseClassifier, sk_weightfree.DenseClassifier,
                        sk_weightfree.WeightFreeClassifier, sk_weightfree.WeightFreeClassifier)]
    assert torch.equal(torch.random.get_rng_state(), state)
    np.testing.assert_array_equal(fits[0].coefs_[0], fits[1].coefs_[0])
    np.testing.assert_array_equal(fits[2].unit_scales_[0], fits[3].unit_scales_[0])


def test_batch_norms_are_recalibrated_without_dropout(images):
    template = nn.Sequential(nn.Dropout(0.8), nn.Linear(64, 10))
    est = fit_cnn(sk_weightfree.WeightFreeClassifier, images, module=template,
                  input_shape=None)
    unit = est.net_.module_.body[1]
    with torch.no_grad():
        z = unit.masked.eval()(torch.as_tensor(images[0]))
    # batches of 32: the statistics are averages of batch statistics, close to the
    # data's; dropout left on (p=0.8 scales kept inputs by 5) would inflate the variance
    torch.testing.assert_close(unit.norm.running_mean, z.mean(dim=0), atol=0.1, rtol=0.1)
    torch.testing.assert_close(unit.norm.running_var, z.var(dim=0), atol=0.1, rtol=0.15)


class Backwards(nn.Module):
    """Registers its output layer first."""

    def __init__(self, n_outputs):
        super().__init__()
        self.out = nn.Linear(16, n_outputs)
        self.hidden = nn.Linear(64, 16)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


class ZeroHead(nn.Module):
    def __init__(self, n_outputs):
        super().__init__()
        self.hidden = nn.Linear(64, 16)
        self.out = nn.Linear(16, n_outputs)
        nn.init.zeros_(self.out.weight)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


def test_a_class_template_keeps_its_own_initialisation(images):
    est = fit_cnn(sk_weightfree.DenseClassifier, images, module=ZeroHead, input_shape=None,
                  max_epochs=1, lr=1e-12)
    assert np.abs(est.coefs_[1]).max() < 1e-6


@pytest.mark.parametrize("cls, params, match", [
    (sk_weightfree.WeightFreeClassifier, dict(module=Backwards), "in the order it registers"),
    (sk_weightfree.WeightFreeClassifier,
     dict(module=nn.Sequential(nn.Unflatten(1, (1, 64)), nn.Conv1d(1, 2, 3), nn.Flatten(),
                               nn.Linear(124, 10))), "Conv1d"),
    (sk_weightfree.WeightAgnosticClassifier,
     dict(module=nn.Sequential(nn.Linear(64, 16), nn.BatchNorm1d(16), nn.Linear(16, 10))),
     "BatchNorm1d"),
    (sk_weightfree.WeightFreeClassifier,
     dict(module=nn.Sequential(nn.Unflatten(1, (8, 8)), nn.Linear(8, 8), nn.Flatten(),
                               nn.Linear(64, 10))), "must receive \\(batch, features\\)"),
    (sk_weightfree.DenseClassifier,
     dict(module=nn.Sequential(nn.Unflatten(1, (1, 64)), nn.AdaptiveAvgPool1d(10),
                               nn.Flatten())), "no nn.Linear or nn.Conv2d"),
    (sk_weightfree.DenseClassifier,
     dict(module=type("Float32", (nn.Sequential,), {"forward": lambda self, x: nn.Sequential.forward(self, x.float())})(nn.Linear(64, 10))),
     "keeps the input dtype"),
])
def test_templates_the_conversion_cannot_honour_are_refused(cls, params, match, images):
    with pytest.raises(ValueError, match=match):
        fit_cnn(cls, images, input_shape=None, **params)


def test_regressor_folds_the_target_scale_into_a_conv_head(images):
    X, y = images
    head = nn.Sequential(nn.Unflatten(1, SHAPE), nn.Conv2d(1, 4, 3), nn.ReLU(),
                         nn.Conv2d(4, 2, 6), nn.Flatten())
    Y = np.c_[y, 100.0 * y]
    est = sk_weightfree.DenseRegressor(module=head, max_epochs=2, random_state=0).fit(X, Y)
    weight = est.net_.module_.body[3].weight.detach().double().numpy()
    np.testing.assert_allclose(est.coefs_[-1], weight * est._target_scale[:, None, None, None])


def test_continuing_with_batch_size_one_on_batch_norms_is_refused(images):
    est = fit_cnn(sk_weightfree.DenseClassifier, images,
                  module=functools.partial(TINY_CNN, batch_norm=True), warm_start=True)
    with pytest.raises(ValueError, match="batch_size >= 2"):
        est.set_params(batch_size=1).fit(*images)
    assert est.n_iter_ == 2


def test_models_pickled_before_templates_existed_still_work(images):
    est = fit_cnn(sk_weightfree.DenseClassifier, images, module=None, input_shape=None,
                  hidden_layer_sizes=(8,))
    state = est.__getstate__()
    del state["module"], state["input_shape"]
    old = sk_weightfree.DenseClassifier.__new__(sk_weightfree.DenseClassifier)
    old.__setstate__(state)
    assert old.get_params()["module"] is None and clone(old).module is None


# ------------------------------------------------------------ scikit-learn's checks
@parametrize_with_checks(
    [cls(module=TinyTemplate, random_state=0) for cls in (
        sk_weightfree.WeightFreeClassifier, sk_weightfree.WeightAgnosticRegressor)],
    expected_failed_checks=expected_failures)
def test_sklearn_compatible_with_a_template(estimator, check):
    check(estimator)


def test_clone_keeps_a_class_and_copies_an_instance():
    assert clone(sk_weightfree.WeightFreeClassifier(module=SmallCNN)).module is SmallCNN
    instance = SmallCNN()
    copied = clone(sk_weightfree.WeightFreeClassifier(module=instance)).module
    assert isinstance(copied, SmallCNN) and copied is not instance
