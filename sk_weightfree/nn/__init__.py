"""Torch building blocks of sk_weightfree, usable without the estimators."""

from ._layers import (PairedInput, ScoredMask, ScoredMaskConv2d, ScoredMaskLinear, UnitSigns,
                      set_sample_seed, set_temperature)
from ._networks import (ACTIVATIONS, UNIT_SIGN_MODES, DenseMLP, SharedValueNetwork,
                        SharedWeightMLP, WeightFreeMLP, unit_sign_mode)
from ._surrogate import straight_through_mask
from ._templates import (MaskedUnit, SharedWeightTemplate, SharedWeightUnit, SmallCNN,
                         TemplateNetwork, shared_weight_from_template,
                         weight_free_from_template)

__all__ = [
    "ACTIVATIONS",
    "DenseMLP",
    "MaskedUnit",
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
    "WeightFreeMLP",
    "unit_sign_mode",
    "set_sample_seed",
    "set_temperature",
    "shared_weight_from_template",
    "straight_through_mask",
    "weight_free_from_template",
]
