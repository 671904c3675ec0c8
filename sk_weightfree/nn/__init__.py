"""Torch building blocks of sk_weightfree, usable without the estimators."""

from ._layers import PairedInput, ScoredMaskLinear, UnitSigns, set_sample_seed, set_temperature
from ._networks import (ACTIVATIONS, UNIT_SIGN_MODES, DenseMLP,
                        SharedWeightMLP, WeightFreeMLP, unit_sign_mode)
from ._surrogate import straight_through_mask

__all__ = [
    "ACTIVATIONS",
    "DenseMLP",
    "PairedInput",
    "ScoredMaskLinear",
    "SharedWeightMLP",
    "UnitSigns",
    "UNIT_SIGN_MODES",
    "WeightFreeMLP",
    "unit_sign_mode",
    "set_sample_seed",
    "set_temperature",
    "straight_through_mask",
]
