"""WeightFreeClassifier and its torch pieces."""

import numpy as np
import pytest
import torch

from sk_weightfree import WeightFreeClassifier
from sk_weightfree.nn import ScoredMaskLinear, ThresholdRule, WeightFreeMLP, straight_through_mask
from conftest import flat_coefs, small


def test_surrogate_forward_and_backward_by_hand():
    theta = torch.tensor([0.3, -0.3, 0.0], requires_grad=True)
    mask = straight_through_mask(theta, temperature=0.5)
    assert mask.tolist() == [1.0, 0.0, 0.0]
    upstream = torch.tensor([2.0, -1.0, 0.5])
    (mask * upstream).sum().backward()
    s = torch.sigmoid(theta.detach() / 0.5)
    np.testing.assert_allclose(theta.grad, upstream * s * (1 - s) / 0.5, rtol=1e-6)
    # sigmoid'(0.6) / 0.5 by hand: s = 0.645656..., s(1-s) = 0.228784...
    assert theta.grad[0].item() == pytest.approx(2.0 * 0.2287842 / 0.5, rel=1e-5)


def test_bernoulli_sampling_frequency_and_reproducibility():
    theta = torch.full((20000,), 0.8)
    g = torch.Generator().manual_seed(0)
    m1 = straight_through_mask(theta, 2.0, sampling="bernoulli", generator=g)
    assert set(m1.unique().tolist()) <= {0.0, 1.0}
    assert m1.mean().item() == pytest.approx(torch.sigmoid(torch.tensor(0.4)).item(), abs=0.01)
    m2 = straight_through_mask(theta, 2.0, sampling="bernoulli",
                               generator=torch.Generator().manual_seed(0))
    assert torch.equal(m1, m2)


@pytest.mark.parametrize("kwargs, error", [
    ({"sampling": "gumbel"}, "sampling"), ({"temperature": 0.0}, "temperature"),
])
def test_surrogate_rejects_bad_options(kwargs, error):
    with pytest.raises(ValueError, match=error):
        straight_through_mask(torch.zeros(3), **kwargs)


def test_density_target_keeps_exact_top_k():
    layer = ScoredMaskLinear(40, 25, rule=ThresholdRule(density=0.1),
                             generator=torch.Generator().manual_seed(0))
    mask = layer.hard_mask()
    assert mask.sum().item() == 100
    assert layer.scores[mask].min() > layer.scores[~mask].max()


def test_layer_is_usable_on_its_own_and_trains_scores():
    layer = ScoredMaskLinear(5, 3, generator=torch.Generator().manual_seed(0))
    x = torch.randn(8, 5, generator=torch.Generator().manual_seed(1))
    out = layer(x)
    torch.testing.assert_close(out, x @ layer.hard_mask().float().T)
    out.pow(2).sum().backward()
    assert layer.scores.grad is not None and layer.scores.grad.abs().sum() > 0


def test_paired_layer_is_a_mask_over_the_doubled_input_by_hand():
    layer = ScoredMaskLinear(3, 2, signs="paired", generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # edges: out0 <- +x0, -x2 ; out1 <- +x1, -x1 (cancel), -x0
        layer.scores.copy_(torch.tensor([[1.0, -1, -1, -1, -1, 1],
                                         [-1.0, 1, -1, 1, 1, -1]]))
    x = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 4.0]])
    expected = torch.tensor([[1.0 - 3.0, -1.0], [-1.0 - 4.0, 1.0]])
    torch.testing.assert_close(layer(x), expected)
    torch.testing.assert_close(layer(x), torch.cat([x, -x], 1) @ layer.hard_mask().float().T)


def test_inference_mask_is_cached_until_the_scores_change():
    layer = ScoredMaskLinear(4, 3, generator=torch.Generator().manual_seed(0)).eval()
    first = layer.mask()
    assert layer.mask() is first  # no recomputation (no kthvalue/threshold per call)
    with torch.no_grad():
        layer.scores.neg_()
    second = layer.mask()
    assert second is not first
    torch.testing.assert_close(second, layer.hard_mask().float())


@pytest.mark.parametrize("unit_signs", ["paired", "fixed", "random", "none"])
@pytest.mark.parametrize("mask_rule", ["threshold", "supermask"])
def test_coefs_are_exactly_zero_or_one(mask_rule, unit_signs, digits):
    X, y = digits
    clf = small(WeightFreeClassifier, mask_rule=mask_rule, unit_signs=unit_signs,
                max_epochs=4).fit(X, y)
    values = flat_coefs(clf)
    assert set(np.unique(values)) <= {0.0, 1.0}
    for coef, mask in zip(clf.coefs_, clf.masks_):
        np.testing.assert_array_equal(coef, mask.astype(float))
    assert 0 < clf.density_ < 1
    assert clf.n_connections_ == int(values.sum())
    paired = unit_signs in ("paired", "fixed")
    assert clf.paired_inputs_ is paired
    widths = [X.shape[1], 16]
    assert [c.shape[0] for c in clf.coefs_] == [(2 if paired else 1) * w for w in widths]
    assert clf.density_ == clf.n_connections_ / sum(c.size for c in clf.coefs_)
    if unit_signs == "random":
        assert all(set(np.unique(s)) <= {-1.0, 1.0} for s in clf.unit_signs_)
    else:
        assert not hasattr(clf, "unit_signs_")


def test_learns_digits_well_above_chance(digits_split):
    X, X_test, y, y_test = digits_split
    clf = WeightFreeClassifier(hidden_layer_sizes=(64,), max_epochs=10, random_state=0,
                               device="cpu").fit(X, y)
    assert clf.score(X_test, y_test) > 0.9


@pytest.mark.parametrize("unit_signs", ["paired", "random"])
def test_exported_module_predicts_like_the_estimator(unit_signs, digits):
    X, y = digits
    clf = small(WeightFreeClassifier, hidden_layer_sizes=(12, 7), unit_signs=unit_signs)
    clf.fit(X, y)
    module = clf.to_module()
    linears = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 3
    for linear, coef in zip(linears, clf.coefs_):
        np.testing.assert_array_equal(linear.weight.detach().numpy().T, coef)
    with torch.no_grad():
        logits = module(torch.as_tensor(X, dtype=torch.float32)).numpy()
    np.testing.assert_array_equal(clf.classes_[logits.argmax(1)], clf.predict(X))
    np.testing.assert_allclose(torch.softmax(torch.as_tensor(logits), 1).numpy(),
                               clf.predict_proba(X), atol=1e-4)


def test_paired_estimator_pickles(digits, tmp_path):
    import pickle

    X, y = digits
    clf = small(WeightFreeClassifier).fit(X, y)
    clone = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(clone.predict_proba(X), clf.predict_proba(X))
    for a, b in zip(clone.coefs_, clf.coefs_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("mask_rule", ["threshold", "supermask"])
def test_same_seed_same_mask(mask_rule, digits):
    X, y = digits
    a = small(WeightFreeClassifier, mask_rule=mask_rule, random_state=5).fit(X, y)
    b = small(WeightFreeClassifier, mask_rule=mask_rule, random_state=5).fit(X, y)
    for ma, mb in zip(a.masks_, b.masks_):
        np.testing.assert_array_equal(ma, mb)


@pytest.mark.parametrize("density", [0.05, 0.3])
def test_density_target_is_met(density, digits):
    X, y = digits
    clf = small(WeightFreeClassifier, hidden_layer_sizes=(30,), density=density).fit(X, y)
    for mask in clf.masks_:
        assert mask.mean() == pytest.approx(density, abs=1.0 / mask.size + 1e-9)


def test_temperature_is_annealed(digits, monkeypatch):
    import sk_weightfree.nn._rules as rules

    X, y = digits
    seen = []

    def spy_on(name):  # the mask of unpaired layers and the fused weight of paired ones
        original = getattr(rules, name)

        def spy(logits, temperature, **kwargs):
            seen.append(float(temperature))
            return original(logits, temperature, **kwargs)

        monkeypatch.setattr(rules, name, spy)

    spy_on("straight_through_mask")
    spy_on("paired_straight_through")
    clf = small(WeightFreeClassifier, max_epochs=4, hidden_layer_sizes=(8,),
                mask_rule=ThresholdRule(temperature=2.0, final_temperature=0.25))
    clf.fit(X, y)
    # the layers saw one temperature per epoch, in this order
    changes = [t for i, t in enumerate(seen) if i == 0 or t != seen[i - 1]]
    np.testing.assert_allclose(changes, [2.0, 1.0, 0.5, 0.25], rtol=1e-6)
    assert len(seen) >= 4 * 2 * (len(X) // 32)  # every batch of every epoch, both layers
    seen.clear()
    clf.partial_fit(X, y)  # partial_fit does not schedule: the first temperature
    np.testing.assert_allclose(seen, 2.0)


def test_monotonicity_needs_a_positive_unit_scale():
    """The theory page's claim: {0,1} weights, a monotone activation and positive per-unit
    scales give a network non-decreasing in every input (the premise is set by hand)."""
    net = WeightFreeMLP(4, (6, 5), 3, unit_signs="none",
                        generator=torch.Generator().manual_seed(0)).eval()
    for norm in net.norms:
        norm.weight.data.uniform_(0.5, 2.0)
    x = torch.randn(50, 4, generator=torch.Generator().manual_seed(1))
    bigger = x.clone()
    bigger[:, 2] += 1.0
    with torch.no_grad():
        assert (net(bigger) >= net(x) - 1e-5).all()


def test_unit_scales_learn_signs_without_unit_signs(digits):
    """Without unit signs the fitted network is not monotone: batch-norm scales turn
    negative during training (the user guide says so)."""
    X, y = digits
    clf = small(WeightFreeClassifier, unit_signs="none", max_epochs=5).fit(X, y)
    assert any((s < 0).any() for s in clf.unit_scales_[:-1])


def test_paired_inputs_learn_a_difference():
    """Label 1 when x0 > x1: the network must count x1 against x0."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 2))
    y = (X[:, 0] > X[:, 1]).astype(int)
    clf = WeightFreeClassifier(hidden_layer_sizes=(16,), max_epochs=20, random_state=0,
                               device="cpu", batch_size=32).fit(X[:400], y[:400])
    assert clf.score(X[400:], y[400:]) > 0.9


def test_invalid_weight_free_parameters(small_data):
    X, y = small_data
    for params in [{"density": 0.0}, {"density": 1.5}, {"temperature": 0},
                   {"final_temperature": -1.0}, {"sampling": "gumbel"}, {"init_density": 1.0}]:
        with pytest.raises(ValueError, match=next(iter(params))):
            small(WeightFreeClassifier, **params).fit(X, y)
