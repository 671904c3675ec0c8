"""Prediction latency of the estimators and of their loaded files against MLPClassifier.

784-300-100-10 networks fitted briefly on random data (latency does not depend on what was
learned), then ms per call at 1, 100 and 10,000 rows, float32 and float64 input, for
``MLPClassifier``, ``DenseClassifier``, ``WeightFreeClassifier`` and ``io.load`` of each of
the two. The models are timed interleaved (one block of calls each, round after round) and
the median block is reported, with the load average beside each row: the machine may be
shared.

Run: python benchmarks/predict_latency.py [--method predict_proba] [--rounds 7] [--quick]
"""

import argparse
import io
import os
import statistics
import time
import warnings

import numpy as np
import torch
from sklearn.neural_network import MLPClassifier

from sk_weightfree import DenseClassifier, WeightFreeClassifier
from sk_weightfree import io as skio

ROWS = (1, 100, 10_000)
CALLS = {1: 200, 100: 50, 10_000: 3}  # calls per timed block


def fitted_models(train_rows, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(train_rows, 784)).astype(np.float32)
    y = rng.integers(0, 10, train_rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one iteration: "not converged"
        models = {
            "MLPClassifier": MLPClassifier((300, 100), max_iter=1, random_state=seed).fit(X, y),
            "DenseClassifier": DenseClassifier(max_epochs=1, device="cpu",
                                               random_state=seed).fit(X, y),
            "WeightFreeClassifier": WeightFreeClassifier(max_epochs=1, device="cpu",
                                                         random_state=seed).fit(X, y),
        }
    for name in ("DenseClassifier", "WeightFreeClassifier"):
        buffer = io.BytesIO()
        skio.dump(models[name], buffer)
        buffer.seek(0)
        models[f"io.load {name}"] = skio.load(buffer)
    return models


def block_ms(call, X, n_calls):
    start = time.perf_counter()
    for _ in range(n_calls):
        call(X)
    return 1000 * (time.perf_counter() - start) / n_calls


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--method", default="predict", choices=("predict", "predict_proba"))
    parser.add_argument("--rounds", type=int, default=7, help="timed blocks per model")
    parser.add_argument("--train-rows", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="3 rounds, fewer calls")
    args = parser.parse_args()
    rounds = 3 if args.quick else args.rounds
    calls = {n: max(1, c // 4) for n, c in CALLS.items()} if args.quick else CALLS
    models = fitted_models(args.train_rows)
    X_all = np.random.default_rng(1).normal(size=(max(ROWS), 784))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} torch threads, "
          f"{os.cpu_count()} CPUs; {args.method}, median of {rounds} interleaved blocks")
    names = list(models)
    header = ["input", "rows", f"{names[0]} (ms)"] + [f"{n} (× MLP)" for n in names[1:]]
    print("| " + " | ".join(header + ["load average (1 min)"]) + " |")
    print("|" + " --- |" * (len(header) + 1))
    for dtype in (np.float32, np.float64):
        for n_rows in ROWS:
            X = np.ascontiguousarray(X_all[:n_rows], dtype=dtype)
            methods = {name: getattr(model, args.method) for name, model in models.items()}
            for method in methods.values():
                method(X)  # warm: caches built, pages touched
            times = {name: [] for name in names}
            for _ in range(rounds):
                for name, method in methods.items():
                    times[name].append(block_ms(method, X, calls[n_rows]))
            medians = {name: statistics.median(t) for name, t in times.items()}
            reference = medians[names[0]]
            cells = [np.dtype(dtype).name, f"{n_rows:,}", f"{reference:.3g}"]
            cells += [f"{medians[name] / reference:.2f}" for name in names[1:]]
            print("| " + " | ".join(cells + [f"{os.getloadavg()[0]:.2f}"]) + " |", flush=True)


if __name__ == "__main__":
    main()
