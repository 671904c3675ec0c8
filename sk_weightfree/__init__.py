"""sk_weightfree: weight-free neural networks as scikit-learn estimators."""

from . import datasets

from ._dense import DenseClassifier
from ._pruned import PrunedClassifier
from ._random import RandomNetworkClassifier
from ._spectral import pairwise_spectral_similarity, spectral_density, spectral_similarity
from ._weight_agnostic import WeightAgnosticClassifier
from ._weight_free import WeightFreeClassifier

__version__ = "0.1.0"

__all__ = [
    "DenseClassifier",
    "PrunedClassifier",
    "RandomNetworkClassifier",
    "WeightAgnosticClassifier",
    "WeightFreeClassifier",
    "pairwise_spectral_similarity",
    "spectral_density",
    "spectral_similarity",
]
