import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, make_classification
from sklearn.preprocessing import StandardScaler

import sk_weightfree

ESTIMATORS = [
    sk_weightfree.DenseClassifier,
    sk_weightfree.WeightFreeClassifier,
    sk_weightfree.PrunedClassifier,
    sk_weightfree.WeightAgnosticClassifier,
    sk_weightfree.RandomNetworkClassifier,
]
REGRESSORS = [
    sk_weightfree.DenseRegressor,
    sk_weightfree.WeightFreeRegressor,
    sk_weightfree.PrunedRegressor,
    sk_weightfree.WeightAgnosticRegressor,
    sk_weightfree.RandomNetworkRegressor,
]
ALL_ESTIMATORS = ESTIMATORS + REGRESSORS
SMALL = dict(hidden_layer_sizes=(16,), max_epochs=3, batch_size=32, device="cpu")


@pytest.fixture(autouse=True, scope="session")
def _few_threads():
    # Small networks on 2 cores: extra intra-op threads only add contention.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def small_data():
    X, y = make_classification(n_samples=120, n_features=8, n_informative=5, n_classes=3,
                               random_state=0)
    return X, y


@pytest.fixture(scope="session")
def digits():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="session")
def digits_split(digits):
    """Digits as (X_train, X_test, y_train, y_test): accuracy is measured on held-out rows."""
    from sklearn.model_selection import train_test_split

    X, y = digits
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)


@pytest.fixture(scope="session")
def digits_small():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X[:300]), y[:300]


@pytest.fixture(scope="module")
def fitted(small_data):
    """cls -> a small estimator fitted on ``small_data`` (shared; never mutate it)."""
    cache = {}

    def get(cls):
        if cls not in cache:
            cache[cls] = small(cls).fit(*small_data)
        return cache[cls]

    return get


def case_id(case):
    """Test id of a ``(class name, parameters)`` case."""
    name, params = case
    return name + "".join(f"-{k}={v}" for k, v in params.items())


def data_for(cls, classification, regression):
    """The data set of ``cls``'s kind: ``regression`` for the regressors."""
    return regression if cls in REGRESSORS else classification


def small(cls, **kwargs):
    """An estimator with a tiny network, for fast behavioural tests."""
    params = {**SMALL, "random_state": 0, **kwargs}
    if cls in (sk_weightfree.PrunedClassifier, sk_weightfree.PrunedRegressor):
        params.setdefault("finetune_epochs", 1)
    return cls(**params)


def flat_coefs(clf):
    return np.concatenate([c.ravel() for c in clf.coefs_])
