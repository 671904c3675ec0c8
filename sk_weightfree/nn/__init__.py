"""Torch building blocks of sk_weightfree, usable without the estimators."""

from ._layers import (SIGN_MODES, OutputAffine, PairedInput, ScoredMask, ScoredMaskConv2d, ScoredMaskLinear,
                      UnitSigns, mask_rules, sample_weighted)
from ._networks import (ACTIVATIONS, UNIT_SIGN_MODES, DenseMLP, SharedValueNetwork,
                        SharedWeightMLP, ValueEnsemble, WeightFreeMLP, layer_signs,
                        unit_sign_mode)
from ._rules import (MASK_RULES, SAMPLING_RULES, EdgePopupRule, FrozenRule, MaskRule, SignedSupermaskRule,
                     SignRule, SupermaskRule, ThresholdRule, make_rule)
from ._surrogate import straight_through_mask
from ._templates import (MaskedUnit, SharedWeightTemplate, SharedWeightUnit, SmallCNN,
                         TemplateNetwork, shared_weight_from_template,
                         weight_free_from_template)

__all__ = [
    "ACTIVATIONS",
    "DenseMLP",
    "EdgePopupRule",
    "FrozenRule",
    "MASK_RULES",
    "MaskRule",
    "SAMPLING_RULES",
    "SIGN_MODES",
    "SignedSupermaskRule",
    "SignRule",
    "SupermaskRule",
    "ThresholdRule",
    "layer_signs",
    "make_rule",
    "mask_rules",
    "MaskedUnit",
    "OutputAffine",
    "PairedInput",
    "ScoredMask",
    "ScoredMaskConv2d",
    "ScoredMaskLinear",
    "SharedValueNetwork",
    "SharedWeightMLP",
    "SharedWeightTemplate",
    "SharedWeightUnit",
    "SmallCNN",
    "TemplateNetwork",
    "UnitSigns",
    "UNIT_SIGN_MODES",
    "ValueEnsemble",
    "WeightFreeMLP",
    "unit_sign_mode",
    "sample_weighted",
    "shared_weight_from_template",
    "straight_through_mask",
    "weight_free_from_template",
]
