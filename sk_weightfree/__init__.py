"""sk_weightfree: weight-free neural networks as scikit-learn estimators.

The estimators (and torch with them) are imported on first use, so that
``sk_weightfree.io.load`` and the spectral functions work without importing torch.
"""

import importlib

__version__ = "0.2.0"

_ESTIMATOR_MODULES = {
    "Comparison": "._study",
    "compare": "._study",
    "Disentanglement": "._disentangle",
    "disentangle": "._disentangle",
    "DenseClassifier": "._dense",
    "DenseRegressor": "._dense",
    "PrunedClassifier": "._pruned",
    "PrunedRegressor": "._pruned",
    "RandomNetworkClassifier": "._random",
    "RandomNetworkRegressor": "._random",
    "WeightAgnosticClassifier": "._weight_agnostic",
    "WeightAgnosticRegressor": "._weight_agnostic",
    "WeightFreeClassifier": "._weight_free",
    "WeightFreeRegressor": "._weight_free",
    "architecture_of": "._architecture",
    "random_architecture": "._architecture",
    "pairwise_spectral_similarity": "._spectral",
    "rewire": "._spectral",
    "spectral_density": "._spectral",
    "spectral_similarity": "._spectral",
}

__all__ = sorted(_ESTIMATOR_MODULES)


def __getattr__(name):
    if name in _ESTIMATOR_MODULES:
        value = getattr(importlib.import_module(_ESTIMATOR_MODULES[name], __name__), name)
        globals()[name] = value
        return value
    if name in ("datasets", "io", "nn", "plotting"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__) | {"datasets", "io", "nn", "plotting"})
