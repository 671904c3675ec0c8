"""Accuracy versus density: pruned and weight-free networks at matched densities.

::

    python benchmarks/density_sweep.py                            # digits
    python benchmarks/density_sweep.py --dataset fashion-mnist --epochs 10

Prints a markdown table: one row per density, test accuracy of ``PrunedClassifier`` (real
weights, magnitude-pruned) and ``WeightFreeClassifier`` (``density`` target, {0,1}
weights), plus ``RandomNetworkClassifier`` at the same density as a no-search reference.
Same split and standardisation as ``sk-weightfree compare``.
"""

import argparse
import time

import numpy as np

from sk_weightfree import PrunedClassifier, RandomNetworkClassifier, WeightFreeClassifier
from sk_weightfree.cli import load_dataset


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--densities", type=float, nargs="+",
                        default=[0.02, 0.05, 0.1, 0.2, 0.5])
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    X_train, X_test, y_train, y_test, description = load_dataset(args.dataset, seed=args.seed)
    common = {"random_state": args.seed, "device": args.device}
    if args.epochs:
        common["max_epochs"] = args.epochs
    print(f"# {description}")
    print("| density | pruned acc | weight-free acc | random acc | pruned s | weight-free s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for density in args.densities:
        scores, seconds = [], []
        for cls in (PrunedClassifier, WeightFreeClassifier, RandomNetworkClassifier):
            start = time.perf_counter()
            clf = cls(density=density, **common).fit(X_train, y_train)
            seconds.append(time.perf_counter() - start)
            scores.append(np.mean(clf.predict(X_test) == y_test))
        print(f"| {density:g} | {scores[0]:.4f} | {scores[1]:.4f} | {scores[2]:.4f} "
              f"| {seconds[0]:.1f} | {seconds[1]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
