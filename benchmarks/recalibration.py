"""The batch-norm recalibration pass over a subsample, against the whole pass.

One weight-free fit per seed (``max_epochs`` epochs, 1 thread) on the fit part of a data
set; then its batch-norm statistics re-estimated several ways on copies of the same fitted
network: over every training row in batches of 128 (the pass before issue 32), over the
first ``rows`` rows of a shuffled order in chunks of ``chunk`` rows, and over every row in
one chunk. Validation accuracy of each (the split carved from the training part) and the
seconds of each pass.

Run: python benchmarks/recalibration.py [--dataset fashion-mnist] [--epochs 5]
"""

import argparse
import copy
import itertools
import time
import warnings

import numpy as np
import torch

from sk_weightfree import WeightFreeClassifier
from sk_weightfree._study import Protocol
from sk_weightfree._training import DeviceBatchIterator, ResidentData

# (rows, chunk): None rows is every row
VARIANTS = [(None, 128), (10_240, 128), (10_240, 1_024), (10_240, 10_240), (None, 10**9)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    protocol = Protocol(args.dataset)
    print(protocol.describe(), f"; {args.epochs} epochs; torch {torch.__version__}, 1 thread")
    accuracy = {variant: [] for variant in VARIANTS}
    for seed in (0, 1, 2):
        fitted = WeightFreeClassifier(max_epochs=args.epochs, random_state=seed).fit(
            protocol.X_fit, protocol.y_fit)
        data = ResidentData(protocol.X_fit, protocol.y_fit, "cpu")
        cells = []
        for rows, chunk in VARIANTS:
            estimator = copy.deepcopy(fitted)
            batches = (X for X, _ in DeviceBatchIterator(
                data, chunk, shuffle=True, generator=torch.Generator().manual_seed(seed)))
            if rows is not None:
                batches = itertools.islice(batches, -(-rows // chunk))
            start = time.perf_counter()
            estimator.net_.module_.recalibrate_norms(batches)
            seconds = time.perf_counter() - start
            estimator._export_fitted_attributes()
            score = float(np.mean(estimator.predict(protocol.X_val) == protocol.y_val))
            accuracy[(rows, chunk)].append(score)
            cells.append(f"{rows or 'all'} rows / chunk {min(chunk, len(data))}: "
                         f"{score:.4f} ({seconds:.2f} s)")
        print(f"seed {seed}: " + " | ".join(cells), flush=True)
    reference = np.array(accuracy[VARIANTS[0]])
    print("\n| rows | chunk | validation accuracy | difference to every row, chunk 128, per seed |")
    print("| --- | --- | --- | --- |")
    for (rows, chunk), scores in accuracy.items():
        difference = ", ".join(f"{d:+.4f}" for d in np.array(scores) - reference)
        print(f"| {rows or 'all'} | {chunk if chunk < 10**9 else 'all'} | "
              f"{np.mean(scores):.4f} ± {np.std(scores, ddof=1):.4f} | {difference} |")


if __name__ == "__main__":
    main()
