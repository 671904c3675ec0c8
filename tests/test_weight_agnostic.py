"""The weight-agnostic family (sk_weightfree._weight_agnostic) on the mask-rule seam."""

import numpy as np
import pytest

from sk_weightfree import WeightAgnosticClassifier, WeightAgnosticRegressor
from sk_weightfree.nn import SupermaskRule, ThresholdRule, mask_rules
from conftest import small


def test_default_rule_is_the_threshold_rule_at_half_density(small_data):
    est = small(WeightAgnosticClassifier).fit(*small_data)
    assert est.mask_rule is None
    rule = est.mask_rule_
    assert type(rule) is ThresholdRule and rule.init_density == 0.5
    assert rule.temperature == 1.0 and rule.final_temperature is None


@pytest.mark.parametrize("mask_rule", ["supermask", SupermaskRule(temperature=2.0)])
def test_takes_a_mask_rule(mask_rule, small_data):
    est = small(WeightAgnosticRegressor, mask_rule=mask_rule)
    est.fit(small_data[0], small_data[0][:, 0])
    assert type(est.mask_rule_) is SupermaskRule
    assert all(type(rule) is SupermaskRule for rule in mask_rules(est.net_.module_))
    if not isinstance(mask_rule, str):
        assert mask_rule.temperature == 2.0 and est.mask_rule_ is not mask_rule


def test_its_own_sampling_and_temperature_are_deprecated(small_data):
    with pytest.warns(FutureWarning, match="deprecated: pass a mask rule"):
        est = small(WeightAgnosticClassifier, sampling="bernoulli",
                    temperature=2.0).fit(*small_data)
    assert type(est.mask_rule_) is SupermaskRule
    assert est.mask_rule_.temperature == 2.0 and est.mask_rule_.init_density == 0.5


def test_a_model_pickled_before_the_seam_loads_and_continues(small_data):
    X, y = small_data
    est = small(WeightAgnosticClassifier, mask_rule=ThresholdRule(
        init_density=0.5, temperature=1.5), warm_start=True).fit(X, y)
    state = est.__getstate__()
    # what the estimator pickled before the seam held instead of mask_rule
    for name in ("mask_rule", "mask_rule_", "sampling", "temperature", "final_temperature"):
        state.pop(name)
    state.update(sampling="threshold", temperature=1.5, final_temperature=None)
    state["_fit_params"] = {**{k: v for k, v in state["_fit_params"].items()
                               if k not in ("mask_rule",)},
                            "sampling": "threshold", "temperature": 1.5,
                            "final_temperature": None}
    old = WeightAgnosticClassifier.__new__(WeightAgnosticClassifier)
    old.__setstate__(state)
    np.testing.assert_array_equal(old.predict_proba(X), est.predict_proba(X))
    assert old.mask_rule_.temperature == 1.5 and old.mask_rule_.init_density == 0.5
    assert old.get_params()["temperature"] == "deprecated"
    old.fit(X, y)  # a warm start: the converted parameters count as unchanged
    assert old.n_iter_ == 2 * est.n_iter_
