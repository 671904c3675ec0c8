"""sk_weightfree: weight-free neural networks as scikit-learn estimators."""

from ._dense import DenseClassifier

__version__ = "0.1.0"

__all__ = [
    "DenseClassifier",
]
