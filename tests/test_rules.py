"""Mask rules: each rule by hand, one conformance suite over every rule and sign mode, the
estimator's ``mask_rule`` parameter, and the no-change promise for the default rule."""

import pickle
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

import sk_weightfree
from sk_weightfree import WeightFreeClassifier, WeightFreeRegressor, io, spectral_similarity
from sk_weightfree.nn import (MASK_RULES, EdgePopupRule, FrozenRule, MaskRule, ScoredMaskConv2d,
                              ScoredMaskLinear, SignedSupermaskRule, SupermaskRule,
                              ThresholdRule, WeightFreeMLP, make_rule)
from sk_weightfree._inference import fold_paired
from sk_weightfree.nn import straight_through_mask
from conftest import flat_coefs, small

DATA = Path(__file__).parent / "data"

# Every rule the estimators accept, with the sign modes it supports. Adding a rule means one
# class in sk_weightfree/nn/_rules.py and one line here.
RULE_CASES = [
    ("threshold", ("paired", "fixed", "none")),
    ("supermask", ("paired", "fixed", "none")),
    ("edge-popup", ("paired", "fixed", "none")),
    ("signed-supermask", ("paired",)),
]
CASES = [(rule, signs) for rule, modes in RULE_CASES for signs in modes]
CASE_IDS = [f"{rule}-{signs}" for rule, signs in CASES]


def test_every_named_rule_is_in_the_conformance_list():
    estimator_rules = set(MASK_RULES) - {"frozen"}  # frozen is the random family's
    assert {rule for rule, _ in RULE_CASES} == estimator_rules


def _layer(rule, signs, n_in=5, n_out=4, seed=0):
    return ScoredMaskLinear(n_in, n_out, rule=make_rule(rule), signs=signs,
                            generator=torch.Generator().manual_seed(seed))


# ============================================================================ conformance
@pytest.mark.parametrize("rule, signs", CASES, ids=CASE_IDS)
def test_mask_is_zero_one_with_the_paired_layout(rule, signs):
    layer = _layer(rule, signs)
    lines = 10 if signs != "none" else 5
    mask = layer.hard_mask()
    assert mask.dtype == torch.bool and mask.shape == (4, lines)
    layer.train()
    train_mask = layer.mask()
    assert train_mask.shape == (4, lines)
    assert set(train_mask.detach().unique().tolist()) <= {0.0, 1.0}
    weight = layer.effective_weight()
    assert set(weight.detach().unique().tolist()) <= {-1.0, 0.0, 1.0}
    # the layer computes x @ W.T with W the signed weight of the {0,1} line mask
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(1))
    layer.eval()
    doubled = torch.cat([x, -x], 1) if signs != "none" else x
    torch.testing.assert_close(layer(x), doubled @ layer.hard_mask().float().T)


@pytest.mark.parametrize("rule, signs", CASES, ids=CASE_IDS)
def test_gradient_reaches_the_scores_only_while_training(rule, signs):
    layer = _layer(rule, signs)
    x = torch.randn(6, 5, generator=torch.Generator().manual_seed(1))
    layer.train()(x).square().sum().backward()
    assert layer.scores.grad is not None and layer.scores.grad.abs().sum() > 0
    # eval mode and no_grad use the hard mask: nothing flows back to the scores
    assert not layer.eval()(x).requires_grad
    with torch.no_grad():
        assert not layer.train()(x).requires_grad


@pytest.mark.parametrize("rule, signs", CASES, ids=CASE_IDS)
def test_same_seed_same_mask_and_pickling(rule, signs):
    a, b, c = _layer(rule, signs), _layer(rule, signs), _layer(rule, signs, seed=1)
    assert torch.equal(a.hard_mask(), b.hard_mask())
    assert not torch.equal(a.hard_mask(), c.hard_mask())
    restored = pickle.loads(pickle.dumps(a))
    assert torch.equal(restored.hard_mask(), a.hard_mask())
    assert restored.rule.get_params() == a.rule.get_params()


def test_pickling_keeps_the_sampling_stream_and_leaves_the_live_rule_alone():
    scores = torch.zeros(30, 40)
    rule = make_rule(SupermaskRule())
    rule.reseed(0)
    rule.train_mask(scores)  # the stream has moved
    copy_ = pickle.loads(pickle.dumps(rule))
    assert hasattr(rule, "generator_")  # pickling did not reset the live rule
    assert torch.equal(rule.train_mask(scores), copy_.train_mask(scores))


def test_supermask_prediction_sample_is_the_same_in_every_dtype(digits_small):
    X, y = digits_small
    clf = small(WeightFreeClassifier, mask_rule=SupermaskRule(predict_mask="sample")).fit(X, y)
    layer = clf.net_.module_.linears[0]
    assert torch.equal(layer.rule.hard_mask(layer.scores),
                       layer.rule.hard_mask(layer.scores.double()))
    with torch.no_grad():
        raw = clf.to_module().double()(torch.as_tensor(X, dtype=torch.float64))
    np.testing.assert_allclose(raw.softmax(1).numpy(), clf.predict_proba(X), atol=1e-6)


@pytest.fixture(scope="module")
def fitted_rules(digits_small):
    X, y = digits_small
    return {case: small(WeightFreeClassifier, mask_rule=case[0], unit_signs=case[1],
                        max_epochs=2).fit(X, y) for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_fitted_estimator_keeps_every_promise(case, fitted_rules, digits_small, tmp_path):
    X, _ = digits_small
    clf = fitted_rules[case]
    # coefs_ exactly {0,1}, paired layout unless unsigned
    assert set(np.unique(flat_coefs(clf))) <= {0.0, 1.0}
    assert clf.paired_inputs_ is (case[1] != "none")
    assert clf.coefs_[0].shape == ((2 if case[1] != "none" else 1) * X.shape[1], 16)
    assert type(clf.mask_rule_) is MASK_RULES[case[0]]
    # to_module() predicts the same
    with torch.no_grad():
        raw = clf.to_module().double()(torch.as_tensor(X[:20], dtype=torch.float64))
    np.testing.assert_allclose(raw.softmax(1).numpy(), clf.predict_proba(X[:20]), atol=1e-6)
    # the compact file round trip
    path = tmp_path / "model.npz"
    io.dump(clf, path)
    np.testing.assert_allclose(io.load(path).predict_proba(X[:20]), clf.predict_proba(X[:20]),
                               atol=1e-6)
    # pickling, and the spectral similarity reads it
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict(X), clf.predict(X))
    assert 0.0 <= spectral_similarity(clf, clf) <= 1.0


@pytest.mark.parametrize("rule", [name for name, _ in RULE_CASES])
def test_same_random_state_same_fit(rule, fitted_rules, digits_small):
    X, y = digits_small
    again = small(WeightFreeClassifier, mask_rule=rule, unit_signs="paired",
                  max_epochs=2).fit(X, y)
    first = fitted_rules[(rule, "paired")]
    for a, b in zip(first.masks_, again.masks_):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(first.predict_proba(X), again.predict_proba(X))


# ============================================================================ each rule by hand
def test_threshold_rule_by_hand():
    scores = torch.tensor([[0.5, -0.2], [0.0, 2.0]], requires_grad=True)
    rule = ThresholdRule(temperature=0.5)
    mask = rule.train_mask(scores)
    assert mask.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    mask.sum().backward()
    s = torch.sigmoid(scores.detach() / 0.5)
    torch.testing.assert_close(scores.grad, s * (1 - s) / 0.5)
    # a target density keeps the top fraction
    assert ThresholdRule(density=0.5).hard_mask(scores).tolist() == [[True, False],
                                                                     [False, True]]


def test_temperature_schedule_is_geometric():
    rule = make_rule(ThresholdRule(temperature=2.0, final_temperature=0.5))
    values = []
    for fraction in (0.0, 0.5, 1.0, None):
        rule.schedule(fraction)
        values.append(float(rule.current_temperature()))
    np.testing.assert_allclose(values, [2.0, 1.0, 0.5, 2.0])


def test_supermask_samples_while_training_and_has_a_fixed_prediction_mask():
    scores = torch.zeros(200, 50, requires_grad=True)  # p = 1/2 everywhere
    rule = make_rule(SupermaskRule())
    rule.reseed(0)
    first = rule.train_mask(scores)
    second = rule.train_mask(scores)
    assert 0.4 < first.mean() < 0.6 and not torch.equal(first, second)
    first.sum().backward()
    torch.testing.assert_close(scores.grad, torch.full_like(scores, 0.25))
    # prediction: the likely edges, or one seeded sample that does not change
    positive = torch.tensor([[1.0, -1.0]])
    assert rule.hard_mask(positive).tolist() == [[True, False]]
    sampled = make_rule(SupermaskRule(predict_mask="sample"))
    sampled.reseed(3)
    a, b = sampled.hard_mask(scores.detach()), sampled.hard_mask(scores.detach())
    assert torch.equal(a, b) and 0.4 < a.float().mean() < 0.6


def test_supermask_layers_of_one_network_draw_different_samples():
    # one rule object is shared by every layer: equal-shaped layers must still get
    # different training samples (a shared stream, not one reset per call)
    net = WeightFreeMLP(10, (10,), 10, rule=make_rule(SupermaskRule()), unit_signs="none",
                        generator=torch.Generator().manual_seed(0))
    for layer in net.linears:
        torch.nn.init.zeros_(layer.scores)
    net.linears[0].rule.reseed(0)
    net.train()
    assert not torch.equal(net.linears[0].mask(), net.linears[1].mask())


def test_edge_popup_keeps_the_top_k_of_abs_scores_with_identity_gradient():
    scores = torch.tensor([[0.1, -3.0, 0.5, 2.0]], requires_grad=True)
    rule = EdgePopupRule(density=0.5)
    mask = rule.train_mask(scores)
    assert mask.tolist() == [[0.0, 1.0, 0.0, 1.0]]  # |-3| and |2| are the top half
    (mask * torch.tensor([[1.0, 2.0, 3.0, 4.0]])).sum().backward()
    # identity to |s|, so g * sign(s) to s
    torch.testing.assert_close(scores.grad, torch.tensor([[1.0, -2.0, 3.0, 4.0]]))
    assert rule.hard_mask(scores).sum() == 2


def test_signed_supermask_drives_both_twins_from_one_score():
    layer = ScoredMaskLinear(3, 2, rule=SignedSupermaskRule(tau=0.5), signs="paired",
                             generator=torch.Generator().manual_seed(0))
    assert layer.scores.shape == (2, 3)  # one score per edge, not per line
    with torch.no_grad():
        layer.scores.copy_(torch.tensor([[0.9, -0.7, 0.2], [-0.4, 0.6, -2.0]]))
    # edges: out0 = +x0 - x1 ; out1 = +x1 - x2
    assert layer.hard_mask().int().tolist() == [[1, 0, 0, 0, 1, 0], [0, 1, 0, 0, 0, 1]]
    x = torch.tensor([[1.0, 2.0, 3.0]])
    layer.train()
    out = layer(x)
    torch.testing.assert_close(out, torch.tensor([[1.0 - 2.0, 2.0 - 3.0]]))
    out.sum().backward()  # identity gradient: d out_j / d m_ji = x_i
    torch.testing.assert_close(layer.scores.grad, x.expand(2, 3))


def test_signed_supermask_initial_density():
    layer = ScoredMaskLinear(300, 200, rule=SignedSupermaskRule(init_density=0.3),
                             signs="paired", generator=torch.Generator().manual_seed(0))
    edges = layer.hard_mask()[:, :300] | layer.hard_mask()[:, 300:]
    assert edges.float().mean().item() == pytest.approx(0.3, abs=0.01)


def test_fixed_signs_allow_only_one_twin_per_edge():
    layer = ScoredMaskLinear(40, 30, rule=ThresholdRule(init_density=0.9), signs="fixed",
                             generator=torch.Generator().manual_seed(0))
    mask = layer.hard_mask()
    positive, negative = mask[:, :40], mask[:, 40:]
    assert not (positive & negative).any()
    assert torch.equal(positive | negative, layer.rule.hard_mask(layer.scores))
    assert torch.equal(positive, (positive | negative) & (layer.edge_signs > 0))


def test_frozen_rule_never_moves():
    layer = ScoredMaskLinear(5, 4, rule=FrozenRule(density=0.5), signs="paired",
                             generator=torch.Generator().manual_seed(0))
    assert not layer.scores.requires_grad
    assert not layer.train()(torch.ones(2, 5)).requires_grad


def test_rules_on_a_convolution():
    for rule in ("threshold", "edge-popup", "signed-supermask"):
        layer = ScoredMaskConv2d(2, 3, 3, padding=1, rule=make_rule(rule), signs="paired",
                                 generator=torch.Generator().manual_seed(0))
        x = torch.randn(2, 2, 5, 5, generator=torch.Generator().manual_seed(1))
        layer.train()(x).square().sum().backward()
        assert layer.scores.grad.abs().sum() > 0
        assert layer.hard_mask().shape == (3, 4, 3, 3)


# ============================================================================ the estimators
def test_default_rule_reproduces_the_code_before_the_seam():
    """The ten estimators with default parameters fit and predict as the reference: their
    masks (coefs_) as at 9dc8063; predictions as since the recalibration pass pools its
    batches (the batch-normalised and weight-agnostic regressor's output statistics)."""
    sys.path.insert(0, str(DATA))
    try:
        from make_default_reference import NAMES, fitted, outputs, reference_data
    finally:
        sys.path.remove(str(DATA))
    reference = np.load(DATA / "default_reference.npz")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the reference was written
    try:
        for name in NAMES:
            got = outputs(fitted(name), reference_data()[2])
            assert str(got["coefs_sha256"]) == str(reference[f"{name}/coefs_sha256"]), name
            for key in ("predict", "predict_proba"):
                if key in got:
                    np.testing.assert_allclose(got[key], reference[f"{name}/{key}"],
                                               rtol=0, atol=1e-12, err_msg=name)
    finally:
        torch.set_num_threads(threads)


def test_mask_rule_is_a_parameter_and_searchable(digits_small):
    X, y = digits_small
    clf = small(WeightFreeClassifier, max_epochs=2, mask_rule=ThresholdRule())
    assert "mask_rule__temperature" in clf.get_params()
    search = GridSearchCV(clf, {"mask_rule__temperature": [0.5, 2.0]}, cv=2).fit(X, y)
    assert search.best_estimator_.mask_rule_.temperature in (0.5, 2.0)
    search = GridSearchCV(small(WeightFreeClassifier, max_epochs=2),
                          {"mask_rule": ["threshold", "edge-popup", SignedSupermaskRule()]},
                          cv=2).fit(X, y)
    assert len(search.cv_results_["params"]) == 3
    # the caller's rule object is never modified by fit
    rule = ThresholdRule(temperature=3.0)
    small(WeightFreeClassifier, max_epochs=1, mask_rule=rule, density=0.4).fit(X, y)
    assert rule.get_params()["density"] is None and not hasattr(rule, "temperature_")


def test_estimator_density_sets_the_rule_density(digits_small):
    X, y = digits_small
    clf = small(WeightFreeClassifier, max_epochs=1, mask_rule="edge-popup",
                density=0.2).fit(X, y)
    assert clf.mask_rule_.density == 0.2
    for mask in clf.masks_:
        assert mask.mean() == pytest.approx(0.2, abs=1.0 / mask.size + 1e-9)


@pytest.mark.parametrize("params, match", [
    ({"mask_rule": "gumbel"}, "mask_rule"),
    ({"mask_rule": 3}, "mask_rule"),
    ({"mask_rule": "frozen"}, "mask_rule"),
    ({"mask_rule": ThresholdRule(temperature=0.0)}, "temperature"),
    ({"mask_rule": EdgePopupRule(density=1.5)}, "density"),
    ({"mask_rule": "signed-supermask", "unit_signs": "none"}, "paired"),
    ({"mask_rule": "signed-supermask", "density": 0.3}, "has no density"),
])
def test_bad_rules_are_clear_errors(params, match, digits_small):
    X, y = digits_small
    with pytest.raises(ValueError, match=match):
        small(WeightFreeClassifier, **params).fit(X, y)


def test_old_spellings_warn_and_map_onto_the_rule(digits_small):
    X, y = digits_small
    with pytest.warns(FutureWarning, match="deprecated"):
        old = small(WeightFreeClassifier, sampling="bernoulli", temperature=2.0,
                    init_density=0.4).fit(X, y)
    assert type(old.mask_rule_) is SupermaskRule
    assert (old.mask_rule_.temperature, old.mask_rule_.init_density) == (2.0, 0.4)
    # the old spelling had no annealing unless final_temperature was set
    new = small(WeightFreeClassifier, mask_rule=SupermaskRule(
        temperature=2.0, final_temperature=None, init_density=0.4)).fit(X, y)
    np.testing.assert_array_equal(old.predict_proba(X), new.predict_proba(X))
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        small(WeightFreeClassifier, max_epochs=1).fit(X, y)  # defaults do not warn


def test_warm_start_may_change_what_the_rule_allows(digits_small):
    X, y = digits_small
    clf = small(WeightFreeClassifier, max_epochs=1, warm_start=True,
                mask_rule=ThresholdRule(temperature=1.0)).fit(X, y)
    clf.set_params(mask_rule__temperature=0.3).fit(X, y)  # continuable
    rules = {id(layer.rule): layer.rule for layer in clf.net_.module_.scored_layers()}
    assert [r.temperature for r in rules.values()] == [0.3]
    clf.set_params(mask_rule__init_density=0.6)  # shapes the network: refused
    with pytest.raises(ValueError, match="mask_rule changed"):
        clf.fit(X, y)
    clf.set_params(mask_rule=EdgePopupRule())
    with pytest.raises(ValueError, match="mask_rule changed"):
        clf.fit(X, y)


def test_regressor_and_template_take_rules(digits_small):
    X, y = digits_small
    reg = small(WeightFreeRegressor, mask_rule="signed-supermask").fit(X, y.astype(float))
    assert set(np.unique(flat_coefs(reg))) <= {0.0, 1.0}
    clf = WeightFreeClassifier(module=TinyCNN, input_shape=(1, 8, 8), max_epochs=1,
                               batch_size=32, mask_rule="edge-popup", unit_signs="fixed",
                               random_state=0, device="cpu").fit(X, y)
    assert set(np.unique(flat_coefs(clf))) <= {0.0, 1.0}
    assert clf.score(X, y) > 0.2


class TinyCNN(torch.nn.Module):
    def __init__(self, input_shape=(1, 8, 8), n_outputs=10):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(input_shape[0], 4, 3, padding=1), torch.nn.ReLU(),
            torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(4 * 16, n_outputs))

    def forward(self, x):
        return self.body(x)


def test_random_family_is_the_frozen_rule(digits_small):
    X, y = digits_small
    clf = small(sk_weightfree.RandomNetworkClassifier).fit(X, y)
    hidden, readout = clf.net_.module_.scored_layers()
    assert isinstance(hidden.rule, FrozenRule) and not hidden.scores.requires_grad
    assert isinstance(readout.rule, ThresholdRule) and readout.scores.requires_grad


def test_a_new_rule_is_one_small_class(digits_small):
    """The seam's promise: a rule is one class; the estimator takes an instance."""

    class EveryOther(MaskRule):
        name = "every-other"

        def init_scores(self, scores, generator=None):
            torch.nn.init.normal_(scores, generator=generator)

        def hard_mask(self, scores):
            return scores > 0

        def train_mask(self, scores):
            return ThresholdRule().train_mask(scores)

    X, y = digits_small
    clf = small(WeightFreeClassifier, mask_rule=EveryOther()).fit(X, y)
    assert set(np.unique(flat_coefs(clf))) <= {0.0, 1.0}
    assert clone(clf).get_params()["mask_rule"].__class__ is EveryOther


@pytest.mark.skipif(np.lib.NumpyVersion(np.__version__) < "2.0.0",
                    reason="the stored pickle holds numpy 2 arrays (numpy._core), which "
                           "numpy 1.x cannot unpickle")
def test_a_model_pickled_by_0_2_0_loads_predicts_and_continues():
    """tests/data/v0_2_0_weight_free_classifier.pkl: fitted by 9dc8063 (0.2.0) with
    sampling="bernoulli", temperature=2.0 on digits[:200] / 16, hidden (8,), 2 epochs."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X, y = X[:200] / 16.0, y[:200]
    with open(DATA / "v0_2_0_weight_free_classifier.pkl", "rb") as f:
        clf = pickle.load(f)
    np.testing.assert_allclose(clf.predict_proba(X[:20]),
                               np.load(DATA / "v0_2_0_weight_free_classifier_proba.npy"),
                               rtol=0, atol=1e-12)
    assert clf.mask_rule.get_params()["temperature"] == 2.0
    assert type(clf.mask_rule) is SupermaskRule and clf.sampling == "deprecated"
    clone(clf)  # get_params works
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # the user set no old spelling now
        clf.set_params(warm_start=True, max_epochs=1).fit(X, y)
    assert clf.n_iter_ == 3


# ============================================================== the fused paired weight
def _reference_paired_weight(rule, scores):
    """The signed weight as the papers define it: the threshold rule's straight-through
    mask folded ``M₊ - M₋``; the signed rule's ``1[m > tau] - 1[m < -tau]`` with the
    identity gradient."""
    if rule.scores_per_edge == 2:
        return fold_paired(straight_through_mask(rule.logits(scores),
                                                 rule.current_temperature()))
    hard = (scores > rule.tau).float() - (scores < -rule.tau).float()
    return scores + (hard - scores).detach()


@pytest.mark.parametrize("rule", [
    ThresholdRule(), ThresholdRule(temperature=0.3), ThresholdRule(density=0.4),
    ThresholdRule(temperature=2.0, final_temperature=0.5),
    SignedSupermaskRule(), SignedSupermaskRule(tau=0.2)],
    ids=["threshold", "threshold-T0.3", "threshold-topk", "threshold-annealed", "signed",
         "signed-tau0.2"])
@pytest.mark.parametrize("shape", [(7, 10), (3, 8, 2, 2), "channels_last", (0, 10)],
                         ids=["linear", "conv", "conv-channels-last", "no-rows"])
def test_paired_weight_equals_the_fold_of_the_train_mask(rule, shape):
    """A rule's fused paired weight (fewer operations per step) has exactly the values
    and gradients of folding its training mask ``M₊ - M₋``."""
    if shape == (0, 10) and getattr(rule, "density", None) is not None:
        pytest.skip("the top-k of a layer without edges is undefined")
    layout = torch.contiguous_format
    if shape == "channels_last":
        shape, layout = (3, 8, 2, 2), torch.channels_last
    lines = shape[1] if rule.scores_per_edge == 2 else shape[1] // 2
    scores = torch.randn(shape[0], lines, *shape[2:], generator=torch.Generator().manual_seed(1))
    if shape[0]:
        scores[0, 0] = 0.0  # ties at the thresholds
        if rule.scores_per_edge == 1:
            scores[0, 1] = rule.tau
            scores[0, 2] = -rule.tau
    scores = scores.contiguous(memory_format=layout)
    grad = torch.randn(shape[0], shape[1] // 2, *shape[2:],
                       generator=torch.Generator().manual_seed(2))
    results = []
    for weight_of in (rule.paired_weight, lambda s: _reference_paired_weight(rule, s)):
        leaf = scores.clone().requires_grad_(True)
        weight = weight_of(leaf)
        weight.backward(grad)
        results.append((weight.detach(), leaf.grad))
    (fused, fused_grad), (reference, reference_grad) = results
    assert fused.shape == reference.shape
    assert torch.equal(fused, reference)
    assert set(fused.unique().tolist()) <= {-1.0, 0.0, 1.0}
    assert fused_grad.shape == reference_grad.shape
    assert torch.equal(fused_grad, reference_grad)


def test_a_threshold_subclass_with_its_own_mask_keeps_it_on_paired_layers():
    """The fused weight is the threshold rule's own: a subclass that changes
    ``train_mask`` gets the fold of its mask."""

    class AlwaysOn(ThresholdRule):
        def train_mask(self, scores):
            return torch.ones_like(scores)

    weight = AlwaysOn().paired_weight(torch.randn(3, 8))
    assert torch.equal(weight, torch.zeros(3, 4))  # both twins on: they cancel


def test_a_paired_layer_trains_with_the_rules_paired_weight(monkeypatch):
    """The layer's training weight comes from the rule's ``paired_weight`` (the fused
    path), restricted to the layer's edges."""
    layer = _layer("threshold", "paired").train()
    edges = torch.rand(layer.edge_shape, generator=torch.Generator().manual_seed(3)) > 0.5
    layer.restrict_to(edges)
    calls = []
    original = ThresholdRule.paired_weight

    def spy(self, scores):
        calls.append(scores.shape)
        return original(self, scores)

    monkeypatch.setattr(ThresholdRule, "paired_weight", spy)
    weight = layer.effective_weight()
    assert calls == [layer.scores.shape]
    assert not weight[~edges].any()
    folded = layer.signed_weight(layer.mask())
    assert torch.equal(weight, folded)


def test_the_temperature_is_copied_to_the_scores_once_an_epoch():
    """The surrogate's temperature on the scores' device and dtype is one copy, made again
    only when the schedule changes it (a copy to a GPU at every step would wait for it)."""
    rule = ThresholdRule(temperature=2.0, final_temperature=0.5)
    scores = torch.zeros(2, 4, dtype=torch.float64)
    first = rule.temperature_like(scores)
    assert first.dtype == torch.float64 and first.item() == 2.0
    assert rule.temperature_like(scores) is first
    rule.schedule(1.0)
    assert rule.temperature_like(scores).item() == 0.5
    assert rule.temperature_like(torch.zeros(1)) is rule.current_temperature()
    restored = pickle.loads(pickle.dumps(rule))
    assert "_temperature_copies" not in restored.__dict__
    assert restored.temperature_like(scores).item() == 0.5


@pytest.mark.parametrize("temperature", [1.0, 0.5, torch.tensor(0.5), torch.tensor(1.0)],
                         ids=["1.0", "0.5", "tensor-0.5", "tensor-1.0"])
def test_paired_straight_through_takes_a_number_or_a_tensor(temperature):
    """The fused function's two temperature paths (a host number, as eager training
    passes it, or a 0-d tensor) give the fold of the surrogate mask."""
    from sk_weightfree.nn._surrogate import paired_straight_through

    logits = torch.randn(5, 12, generator=torch.Generator().manual_seed(4))
    grad = torch.randn(5, 6, generator=torch.Generator().manual_seed(5))
    results = []
    for weight_of in (lambda z: paired_straight_through(z, temperature),
                      lambda z: fold_paired(straight_through_mask(z, temperature))):
        leaf = logits.clone().requires_grad_(True)
        weight_of(leaf).backward(grad)
        results.append(leaf.grad)
    assert torch.equal(results[0], results[1])
    with pytest.raises(ValueError, match="temperature must be > 0"):
        paired_straight_through(logits, 0.0)
