"""Seconds per training epoch on the CPU: the estimators against bare torch loops.

Four runs, interleaved round after round in one process, on Fashion-MNIST rows
(standardised, 784-300-100-10, batch 128, Adam):

- ``DenseClassifier`` and a bare torch loop over the same plain dense network;
- ``WeightFreeClassifier`` (paired inputs) and a bare torch loop over a copy of its own
  fitted network (the same paired module, its masks recomputed every step), without the
  estimator, skorch or callbacks around it;
- ``WeightFreeClassifier(mask_rule="signed-supermask")``: one score per edge.

Each figure is the median epoch of a run, printed with the 1-minute load average when the
run ended: on a shared machine the load says how far to trust it.

Run: python benchmarks/cpu_epoch.py [--rows 60000] [--epochs 2] [--rounds 2] [--threads N]
"""

import argparse
import copy
import os
import statistics
import time

import numpy as np
import torch
from torch import nn

from sk_weightfree import DenseClassifier, WeightFreeClassifier
from sk_weightfree.datasets import load_fashion_mnist

BATCH_SIZE = 128
LR = 1e-3


def adam(parameters):
    try:
        return torch.optim.Adam(parameters, lr=LR, fused=True)
    except (RuntimeError, TypeError):  # no fused Adam for this build
        return torch.optim.Adam(parameters, lr=LR)


def bare_epochs(module, X, y, epochs, seed):
    """Seconds per epoch of a plain loop: shuffled batches of resident tensors, Adam."""
    optimizer = adam([p for p in module.parameters() if p.requires_grad])
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    module.train()
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(len(X), generator=generator)
        for begin in range(0, len(X), BATCH_SIZE):
            batch = order[begin:begin + BATCH_SIZE]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(module(X[batch]), y[batch]).backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
    return seconds


def dense_network():
    return nn.Sequential(nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(),
                         nn.Linear(100, 10))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    X, y = load_fashion_mnist(subset="train", return_X_y=True)
    X = ((X - X.mean(0)) / (X.std(0) + 1e-8)).astype(np.float32)[:args.rows]
    y = y[:args.rows]
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y, dtype=torch.int64)
    options = dict(max_epochs=args.epochs, batch_size=BATCH_SIZE, lr=LR, device="cpu")
    # the weight-free network the bare loop trains: the estimator's own, fitted briefly
    paired = WeightFreeClassifier(**{**options, "max_epochs": 1}, random_state=0).fit(
        X[:1000], y[:1000]).net_.module_
    runs = {
        "DenseClassifier": lambda seed: [row["seconds"] for row in DenseClassifier(
            **options, random_state=seed).fit(X, y).history_],
        "bare dense loop": lambda seed: bare_epochs(dense_network(), Xt, yt, args.epochs, seed),
        "WeightFreeClassifier": lambda seed: [row["seconds"] for row in WeightFreeClassifier(
            **options, random_state=seed).fit(X, y).history_],
        "bare paired loop": lambda seed: bare_epochs(copy.deepcopy(paired), Xt, yt,
                                                     args.epochs, seed),
        "one-score signed rule": lambda seed: [row["seconds"] for row in WeightFreeClassifier(
            **options, mask_rule="signed-supermask", random_state=seed).fit(X, y).history_],
    }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} torch threads, "
          f"{os.cpu_count()} CPUs; {args.rows:,} rows, {args.epochs} epochs per run, "
          f"median epoch (s) [load average when the run ended]")
    print("| round | " + " | ".join(runs) + " | weight-free / bare paired | dense / bare dense"
          " | weight-free / dense | signed / weight-free | signed / dense |")
    print("|" + " --- |" * (len(runs) + 6))
    for round_ in range(args.rounds):
        seconds, cells = {}, []
        for name, run in runs.items():
            seconds[name] = statistics.median(run(round_))
            cells.append(f"{seconds[name]:.2f} [{os.getloadavg()[0]:.1f}]")
        ratios = (seconds["WeightFreeClassifier"] / seconds["bare paired loop"],
                  seconds["DenseClassifier"] / seconds["bare dense loop"],
                  seconds["WeightFreeClassifier"] / seconds["DenseClassifier"],
                  seconds["one-score signed rule"] / seconds["WeightFreeClassifier"],
                  seconds["one-score signed rule"] / seconds["DenseClassifier"])
        print(f"| {round_ + 1} | " + " | ".join(cells) + " | "
              + " | ".join(f"{r:.2f}×" for r in ratios) + " |", flush=True)


if __name__ == "__main__":
    main()
