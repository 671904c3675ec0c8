"""Model size and prediction speed: pickle vs the compact file, torch vs the numpy predictor.

For each estimator at 784-300-100-10 on Fashion-MNIST: the size of ``pickle.dumps`` of the
fitted estimator, of :func:`sk_weightfree.io.dump`'s file, and of each gzipped; predict
throughput of the estimator (torch, CPU) and of :func:`sk_weightfree.io.load`'s predictor
at batch sizes 1, 64 and 4,096. Then the two ways a {0,1} layer is computed (sums of
selected inputs, BLAS products) per layer and batch size, which is where the rule in
``sk_weightfree/_inference.py`` comes from.

Sizes and speeds do not depend on how well the network is trained, so a short fit is
enough (``--epochs 1`` by default)::

    OPENBLAS_NUM_THREADS=1 python benchmarks/compact.py            # 1 thread each
    OPENBLAS_NUM_THREADS=2 python benchmarks/compact.py --threads 2 --epochs 2

One thread each is the default: on a shared 2-core machine, multi-threaded BLAS (numpy's
OpenBLAS and torch's alike) is dominated by waits for the other jobs' cores.
"""

import argparse
import gzip
import os
import pickle
import platform
import tempfile
import time

import numpy as np
import scipy.sparse as sp
import torch

import sk_weightfree
from sk_weightfree import io as skio
from sk_weightfree.datasets import load_fashion_mnist

ESTIMATORS = [
    ("DenseClassifier", {}),
    ("PrunedClassifier", {"density": 0.1, "finetune_epochs": 1}),
    ("WeightFreeClassifier", {}),
    ("WeightAgnosticClassifier", {}),
    ("WeightAgnosticClassifier", {"ensemble": True}),
    ("RandomNetworkClassifier", {}),
]
BATCHES = (1, 64, 4096)


def throughput(predict, X, batch, budget=1.0):
    """Rows per second of ``predict`` over consecutive batches of ``batch`` rows."""
    predict(X[:batch])  # warm-up (caches, the float64 copy of the torch module)
    rows, start = 0, time.perf_counter()
    while time.perf_counter() - start < budget or rows < batch:
        offset = (rows // batch * batch) % (len(X) - batch + 1)
        predict(X[offset:offset + batch])
        rows += batch
    return rows / (time.perf_counter() - start)


def sizes(est, directory):
    pickled = pickle.dumps(est)
    path = os.path.join(directory, "model.npz")
    skio.dump(est, path)
    with open(path, "rb") as f:
        dumped = f.read()
    return {"pickle": len(pickled), "pickle.gz": len(gzip.compress(pickled)),
            "dump": len(dumped), "dump.gz": len(gzip.compress(dumped))}, path


def layer_methods(spec, X, budget=0.3):
    """Per {0,1} layer and batch size: microseconds per batch as sums of inputs vs BLAS."""
    rows = []
    plans = spec.plan()[0]
    a_full = X[:4096].astype(np.float64)
    for i, plan in enumerate(plans):
        if plan.binary:
            for batch in BATCHES:
                a = a_full[:batch]
                timings = {}
                for method in ("sum", "blas"):
                    n, start = 0, time.perf_counter()
                    while time.perf_counter() - start < budget or n < 3:
                        plan.product(a, method)
                        n += 1
                    timings[method] = (time.perf_counter() - start) / n * 1e6
                rows.append((i, plan.matrix.dense.shape, plan.matrix.density, batch,
                             timings["sum"], timings["blas"]))
        # next layer's input: this layer's output on the same rows
        a_full = plan(a_full, spec.activation, "blas")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train", type=int, default=10000, help="training rows used")
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per timing")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; run with OPENBLAS_NUM_THREADS set to the same")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    X_train, y_train = load_fashion_mnist(return_X_y=True)
    X_test, y_test = load_fashion_mnist(subset="test", return_X_y=True)
    X_train, y_train = X_train[:args.train] / 255, y_train[:args.train]
    X_test = X_test / 255

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores ({platform.processor() or 'cpu'}), "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), numpy {np.__version__} "
          f"(OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}), "
          f"sk_weightfree {sk_weightfree.__version__}")
    print(f"784-300-100-10, {args.epochs} epoch(s) on {len(X_train)} Fashion-MNIST rows; "
          f"throughput on the 10,000 test rows, rows/s\n")
    header = (f"| estimator | pickle | pickle.gz | dump | dump.gz | pickle/dump | "
              + " | ".join(f"torch b={b} | numpy b={b}" for b in BATCHES) + " | acc |")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    details = []
    with tempfile.TemporaryDirectory() as directory:
        for name, params in ESTIMATORS:
            est = getattr(sk_weightfree, name)(hidden_layer_sizes=(300, 100),
                                               max_epochs=args.epochs, device="cpu",
                                               random_state=0, **params)
            est.fit(X_train, y_train)
            size, path = sizes(est, directory)
            predictor = skio.load(path)
            assert (predictor.predict(X_test[:500]) == est.predict(X_test[:500])).mean() > 0.99
            speeds = []
            for batch in BATCHES:
                speeds.append(throughput(est.predict, X_test, batch, args.budget))
                speeds.append(throughput(predictor.predict, X_test, batch, args.budget))
            label = name + "".join(f" {k}={v}" for k, v in params.items() if k == "ensemble")
            print(f"| {label} | {size['pickle'] / 1e3:,.0f} kB | {size['pickle.gz'] / 1e3:,.0f} kB "
                  f"| {size['dump'] / 1e3:,.1f} kB | {size['dump.gz'] / 1e3:,.1f} kB "
                  f"| {size['pickle'] / size['dump']:,.0f}x | "
                  + " | ".join(f"{s:,.0f}" for s in speeds)
                  + f" | {predictor.score(X_test, y_test):.3f} |", flush=True)
            if name == "DenseClassifier":
                dense_pickle = size["pickle"]
            if name == "WeightFreeClassifier":
                details = layer_methods(predictor.spec, X_test)
                weight_free_dump = size["dump"]
    print(f"\nWeightFreeClassifier dump vs DenseClassifier pickle: "
          f"{dense_pickle / weight_free_dump:,.0f}x smaller")
    print("\n{0,1} layers of the WeightFreeClassifier: microseconds per batch\n")
    print("| layer | shape (signed, paired folded) | density | batch | sum of inputs | BLAS | faster |")
    print("|---|---|---|---|---|---|---|")
    for i, shape, density, batch, t_sum, t_blas in details:
        print(f"| {i} | {shape[0]}x{shape[1]} | {density:.3f} | {batch} | {t_sum:,.0f} | "
              f"{t_blas:,.0f} | {'sum' if t_sum < t_blas else 'BLAS'} |")
    # the same measurement on synthetic {0,1} layers over a range of densities
    print("\nrandom {0,1} 784x300 layers: microseconds per batch (sum of inputs / BLAS)\n")
    print("| density | " + " | ".join(f"b={b}" for b in BATCHES) + " |")
    print("|---|---|---|---|")
    rng = np.random.default_rng(0)
    for density in (0.01, 0.03, 0.1, 0.25, 0.5):
        matrix = (rng.random((784, 300)) < density).astype(np.float64)
        selection = sp.csr_matrix(matrix.T)
        cells = []
        for batch in BATCHES:
            a = rng.standard_normal((batch, 784))
            t = {}
            for method, run in (("sum", lambda: (selection @ a.T).T), ("blas", lambda: a @ matrix)):
                n, start = 0, time.perf_counter()
                while time.perf_counter() - start < 0.3 or n < 3:
                    run()
                    n += 1
                t[method] = (time.perf_counter() - start) / n * 1e6
            cells.append(f"{t['sum']:,.0f} / {t['blas']:,.0f}")
        print(f"| {density} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
