"""Whole fits at 1 and 2 torch threads over network sizes: where a second thread pays.

For each input width and hidden layers (digits for 64 inputs, random data of 1,797 rows
otherwise), ``WeightFreeClassifier`` and ``DenseClassifier`` are fitted for 10 epochs
(``tol=0``) with ``n_threads=1`` and ``n_threads=2``, 3 interleaved rounds; the median fit
seconds and the ratio 2 threads / 1 thread are printed beside the work of a training step
(batch 128 times the network's weights, what ``sk_weightfree._threads.step_work`` counts).
With ``speed.py``'s busy row it is the evidence behind the estimators'
``SMALL_STEP_WORK`` (8 million; see the comment there, and where the runs disagree).

Run: python benchmarks/threads.py   (on a quiet machine: a busy one favours 1 thread)
"""

import os
import statistics
import time
import warnings

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler

from sk_weightfree import DenseClassifier, WeightFreeClassifier

CASES = [(64, (32,)), (64, (100,)), (64, (300,)), (64, (300, 100)), (128, (300, 100)),
         (784, (100,)), (256, (300, 100)), (784, (300, 100))]


def main():
    warnings.simplefilter("ignore")
    X_digits, y_digits = load_digits(return_X_y=True)
    X_digits = StandardScaler().fit_transform(X_digits).astype(np.float32)
    rng = np.random.RandomState(0)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs; median of 3 rounds; "
          f"[1-minute load average]\n")
    print("| inputs | hidden | step work (M) | WF 1 thread (s) | WF 2 threads | 2 / 1 | "
          "Dense 1 thread | Dense 2 threads | 2 / 1 | load |")
    print("|" + " --- |" * 10)
    for n_inputs, hidden in CASES:
        if n_inputs == 64:
            X, y = X_digits, y_digits
        else:
            X = rng.randn(len(y_digits), n_inputs).astype(np.float32)
            y = rng.randint(10, size=len(y_digits))
        sizes = [n_inputs, *hidden, 10]
        work = 128 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
        seconds = {}
        for _ in range(3):
            for cls in (WeightFreeClassifier, DenseClassifier):
                for threads in (1, 2):
                    start = time.perf_counter()
                    cls(hidden_layer_sizes=hidden, max_epochs=10, tol=0, n_threads=threads,
                        random_state=0).fit(X, y)
                    seconds.setdefault((cls, threads), []).append(time.perf_counter() - start)
        m = {key: statistics.median(values) for key, values in seconds.items()}
        wf = (m[(WeightFreeClassifier, 1)], m[(WeightFreeClassifier, 2)])
        dense = (m[(DenseClassifier, 1)], m[(DenseClassifier, 2)])
        print(f"| {n_inputs} | {hidden} | {work / 1e6:.2f} | {wf[0]:.3f} | {wf[1]:.3f} | "
              f"{wf[1] / wf[0]:.2f} | {dense[0]:.3f} | {dense[1]:.3f} | {dense[1] / dense[0]:.2f} "
              f"| [{os.getloadavg()[0]:.1f}] |", flush=True)


if __name__ == "__main__":
    main()
