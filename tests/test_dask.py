"""Grid search on a dask cluster gives the sequential result; fitted models pickle small.

Uses a ``LocalCluster`` of two single-threaded worker *processes*: the estimators, the
data and the fitted models are pickled across process boundaries as on a remote cluster
(minus the network), and the test checks that the fits ran in other processes.
"""

import os
import pickle

import numpy as np
import pytest

distributed = pytest.importorskip("dask.distributed")

import joblib  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sk_weightfree import WeightFreeClassifier  # noqa: E402

PARAMS = dict(hidden_layer_sizes=(16,), max_epochs=4, batch_size=64, device="cpu",
              random_state=0)
GRID = {"hidden_layer_sizes": [(16,), (32,)], "density": [None, 0.2]}


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.fixture(scope="module")
def data():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X[:400]), y[:400]


def _search():
    return GridSearchCV(WeightFreeClassifier(**PARAMS), GRID, cv=2, n_jobs=-1)


def test_grid_search_on_dask_matches_sequential(client, data):
    X, y = data
    with distributed.get_task_stream(client) as tasks, \
            joblib.parallel_config(backend="dask"):
        on_dask = _search().fit(X, y)
    assert tasks.data, "the fits did not run on the dask cluster"
    with joblib.parallel_config(backend="sequential"):
        sequential = _search().fit(X, y)

    assert len(client.scheduler_info()["workers"]) == 2
    worker_pids = set(client.run(os.getpid).values())
    assert os.getpid() not in worker_pids and len(worker_pids) == 2
    assert len(on_dask.cv_results_["params"]) == 4
    assert on_dask.cv_results_["params"] == sequential.cv_results_["params"]
    np.testing.assert_array_equal(on_dask.cv_results_["mean_test_score"],
                                  sequential.cv_results_["mean_test_score"])
    assert on_dask.best_params_ == sequential.best_params_
    np.testing.assert_array_equal(on_dask.predict(X), sequential.predict(X))


def test_fitted_estimator_pickles_small_and_without_training_data(data):
    X, y = data
    small = WeightFreeClassifier(**PARAMS).fit(X, y)
    X_big, y_big = np.tile(X, (10, 1)), np.tile(y, 10)
    big = WeightFreeClassifier(**PARAMS).fit(X_big, y_big)

    size_small, size_big = len(pickle.dumps(small)), len(pickle.dumps(big))
    # Measured about 75 kB (64-16-10 network: scores, Adam state, batch norms, history);
    # the bound leaves room for other torch/skorch versions.
    assert size_small < 150_000
    # Ten times the training data (X_big alone is ~2 MB) must not grow the pickle.
    assert size_big <= size_small + 2_000
    assert size_big < X_big.nbytes / 10

    restored = pickle.loads(pickle.dumps(small))
    np.testing.assert_array_equal(restored.predict_proba(X), small.predict_proba(X))


def test_early_stopping_pickle_does_not_hold_validation_data(data):
    X, y = data
    params = {**PARAMS, "early_stopping": True}
    small = WeightFreeClassifier(**params).fit(X, y)
    big = WeightFreeClassifier(**params).fit(np.tile(X, (10, 1)), np.tile(y, 10))
    assert len(pickle.dumps(big)) <= len(pickle.dumps(small)) + 2_000
