"""Torch building blocks of sk_weightfree, usable without the estimators."""

from ._layers import ScoredMaskLinear, UnitSigns, set_sample_seed, set_temperature
from ._networks import ACTIVATIONS, DenseMLP, MeanOverValuesLoss, SharedWeightMLP, WeightFreeMLP
from ._surrogate import straight_through_mask

__all__ = [
    "ACTIVATIONS",
    "DenseMLP",
    "MeanOverValuesLoss",
    "ScoredMaskLinear",
    "SharedWeightMLP",
    "UnitSigns",
    "WeightFreeMLP",
    "set_sample_seed",
    "set_temperature",
    "straight_through_mask",
]
