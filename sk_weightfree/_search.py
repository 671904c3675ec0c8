"""The mask search's estimator side: the ``mask_rule`` parameter, its per-epoch schedule,
and the deprecated spellings of the threshold rule's knobs."""

import warnings
from numbers import Real

from sklearn.utils._param_validation import Hidden, Interval, StrOptions

from ._training import ScheduledCallback
from .nn import MASK_RULES, SAMPLING_RULES, MaskRule, SupermaskRule, make_rule, mask_rules

DEPRECATED = "deprecated"


class MaskRuleSchedule(ScheduledCallback):
    """Call every mask rule's :meth:`~sk_weightfree.nn.MaskRule.schedule` at the start of
    each epoch with the epoch's position in the current ``fit`` call (0 at the first, 1 at
    the last); ``partial_fit`` passes None (the rule's starting values apply)."""

    def on_epoch_begin(self, net, **kwargs):
        fraction = None
        if self.active(net):
            fraction = self.epoch_in_call(net) / max(1, net.epochs_planned_ - 1)
        for rule in mask_rules(net.module_):
            rule.schedule(fraction)


def changed_rule_params(old, new):
    """Names of the parameters in which two ``mask_rule`` values differ, or None when they
    are not the same rule (another class or name)."""
    old, new = make_rule(old), make_rule(new)
    if type(old) is not type(new):
        return None
    old_params, new_params = old.get_params(deep=False), new.get_params(deep=False)
    return {name for name in new_params if old_params[name] != new_params[name]}


class MaskRuleMixin:
    """The mask search's estimator side: the ``mask_rule`` parameter, the per-epoch rule
    schedule and the warm-start update of the fitted rules.

    ``mask_rule`` is a rule name (:data:`~sk_weightfree.nn.MASK_RULES`), a
    :class:`~sk_weightfree.nn.MaskRule`, or (weight-agnostic family) None for its default
    rule; the estimator's ``density`` sets the rule's target density. The spellings of
    earlier versions (``sampling``, ``temperature``, ``final_temperature``, ``init_density``
    on the estimator) still work with a ``FutureWarning`` and set the rule's parameter of
    the same name (``sampling="bernoulli"`` selects the ``"supermask"`` rule).
    """

    def _extra_callbacks(self):
        return [("mask_rule_schedule", MaskRuleSchedule())]

    def _update_search(self):
        """Give the fitted rules the continuable parameters of the current settings."""
        fresh = self._make_mask_rule()
        if hasattr(self, "mask_rule_"):
            self.mask_rule_ = fresh
        for rule in mask_rules(self.net_.module_):
            if type(rule) is type(fresh):
                rule.set_params(**{name: getattr(fresh, name)
                                   for name in fresh.continuable_params})

    _DEPRECATED_RULE_PARAMS = ("sampling", "temperature", "final_temperature", "init_density")
    # the rule's starting density before mask rules were a parameter (weight-agnostic: 0.5)
    _OLD_INIT_DENSITY = 0.25

    def __setstate__(self, state):
        if "mask_rule" not in state:  # pickled before mask rules (weight-free 0.2.0; 0.3)
            rule = SAMPLING_RULES[state.get("sampling", "threshold")]
            state["mask_rule"] = rule(
                temperature=state.get("temperature", 1.0),
                final_temperature=state.get("final_temperature"),
                init_density=state.get("init_density", self._OLD_INIT_DENSITY))
            deprecated = dict.fromkeys(set(self._DEPRECATED_RULE_PARAMS)
                                       & set(self._get_param_names()), DEPRECATED)
            state.update(deprecated)
            if "_fit_params" in state:
                state["_fit_params"] = {**state["_fit_params"], "mask_rule": state["mask_rule"],
                                        **deprecated}
            if "net_" in state:
                state["mask_rule_"] = make_rule(state["mask_rule"])
                if state.get("density") is not None:
                    state["mask_rule_"].set_params(density=state["density"])
        super().__setstate__(state)

    _surrogate_constraints = {
        "mask_rule": [StrOptions(set(MASK_RULES) - {"frozen"}), MaskRule],
        # (the weight-agnostic family adds None: its default rule)
        "sampling": [StrOptions(set(SAMPLING_RULES)), Hidden(StrOptions({DEPRECATED}))],
        "temperature": [Interval(Real, 0, None, closed="neither"),
                        Hidden(StrOptions({DEPRECATED}))],
        "final_temperature": [Interval(Real, 0, None, closed="neither"), None,
                              Hidden(StrOptions({DEPRECATED}))],
        "init_density": [Interval(Real, 0, 1, closed="neither"),
                         Hidden(StrOptions({DEPRECATED}))],
    }

    def _deprecated_rule_params(self):
        return {name: getattr(self, name) for name in self._DEPRECATED_RULE_PARAMS
                if getattr(self, name, DEPRECATED) != DEPRECATED}

    def _make_mask_rule(self):
        """The fitted copy of ``mask_rule`` with the estimator's ``density`` and any
        deprecated spelling applied (the estimator's own parameter is never changed)."""
        rule = make_rule(self.mask_rule)
        old = self._deprecated_rule_params()
        if old:
            warnings.warn(
                f"{', '.join(old)} on the estimator {'is' if len(old) == 1 else 'are'} "
                f"deprecated: pass a mask rule, e.g. mask_rule=ThresholdRule(...) or "
                f"mask_rule__<name>=... in a search (see the user guide's 'Choosing a mask "
                f"rule'); {'it' if len(old) == 1 else 'they'} will be removed in 0.5.",
                FutureWarning, stacklevel=4)
            if old.pop("sampling", "threshold") == "bernoulli":
                if type(rule) not in SAMPLING_RULES.values():
                    raise ValueError(f"sampling='bernoulli' selects the 'supermask' rule; it "
                                     f"cannot be combined with mask_rule={self.mask_rule!r}.")
                rule = SupermaskRule(**rule.get_params(deep=False))
        if getattr(self, "density", None) is not None:
            old["density"] = self.density
        unknown = sorted(set(old) - set(rule.get_params(deep=False)))
        if unknown:
            raise ValueError(f"The {rule.name!r} mask rule has no {', '.join(unknown)}; "
                             f"its parameters are {sorted(rule.get_params(deep=False))}.")
        rule.set_params(**old)
        rule.validate()
        return rule

    def _continuable_change(self, name, old, new):
        if name != "mask_rule":
            return super()._continuable_change(name, old, new)
        changed = changed_rule_params(old, new)
        return changed is not None and changed <= set(make_rule(new).continuable_params)


class TemperatureSchedule(MaskRuleSchedule):
    """The callback that models pickled by 0.2.0 hold; it now schedules their rules
    (whose temperatures the layers' ``__setstate__`` carried over)."""
