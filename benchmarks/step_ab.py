"""In-process A/B of a training step: this checkout against an older one (issue 32).

Two processes on these shared cores can differ by 1.5x in every torch step, so the
changes of a round are compared inside one process, interleaved: the weight-free step
with the older checkout's paired-layer function (``nn/_surrogate.py``'s
``paired_straight_through``, loaded from ``--before``) and skorch's own closure step (what
the nets ran before they stepped Adam directly), against this checkout's; the dense step
with skorch's step against this checkout's. Median ms per step over ``--rounds`` rounds
of 14 batches of 128, and the ratios.

Run: python benchmarks/step_ab.py --before /path/to/older/checkout [--data digits]
[--function-only]
(``git worktree add /tmp/before a4113db`` makes one.)
"""

import argparse
import importlib.util
import os
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from skorch import NeuralNet

import sk_weightfree.nn._rules as rules
from sk_weightfree import DenseClassifier, WeightFreeClassifier
from sk_weightfree._training import DeviceBatchIterator, ResidentData
from speed import fashion_data  # the same standardised rows as speed.py's


def older_function(checkout):
    spec = importlib.util.spec_from_file_location(
        "before_surrogate", Path(checkout) / "sk_weightfree" / "nn" / "_surrogate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.paired_straight_through


def data(name):
    if name == "fashion":
        return (*fashion_data(5000), (300, 100), 2)
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32), y, (100,), 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", required=True, help="an older checkout's root")
    parser.add_argument("--data", choices=("fashion", "digits"), default="fashion")
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--function-only", action="store_true",
                        help="the weight-free step with the older layer function and this "
                             "checkout's step loop against this checkout's, nothing else")
    args = parser.parse_args()
    X, y, hidden, threads = data(args.data)
    torch.set_num_threads(threads)  # the estimators' own choice for these sizes
    current, before = rules.paired_straight_through, older_function(args.before)
    batches = list(DeviceBatchIterator(ResidentData(X, y, "cpu"), 128, shuffle=True,
                                       generator=torch.Generator().manual_seed(0)))[:14]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nets = {cls: cls(hidden_layer_sizes=hidden, max_epochs=1, random_state=0).fit(X, y).net_
                for cls in (WeightFreeClassifier, DenseClassifier)}

    def runner(net, function, skorch_step):
        def run():
            rules.paired_straight_through = function
            net.module_.train()
            start = time.perf_counter()
            for batch in batches:
                NeuralNet.train_step(net, batch) if skorch_step else net.train_step(batch)
            rules.paired_straight_through = current
            return 1000 * (time.perf_counter() - start) / len(batches)
        return run

    runs = {"weight-free before": runner(nets[WeightFreeClassifier], before,
                                         not args.function_only),
            "weight-free now": runner(nets[WeightFreeClassifier], current, False)}
    if not args.function_only:
        runs.update({"dense before": runner(nets[DenseClassifier], current, True),
                     "dense now": runner(nets[DenseClassifier], current, False)})
    for run in runs.values():
        run()  # warm-up
    ms = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            ms[name].append(run())
    m = {name: statistics.median(values) for name, values in ms.items()}
    rounds = [n / b for n, b in zip(ms["weight-free now"], ms["weight-free before"])]
    print(f"{args.data}, {X.shape[1]}-{hidden}-10 steps, {threads} thread(s), "
          f"torch {torch.__version__}, median of {args.rounds} interleaved rounds, "
          f"load {os.getloadavg()[0]:.1f}: "
          + ", ".join(f"{name} {value:.3f} ms" for name, value in m.items()))
    print(f"weight-free now / before {m['weight-free now'] / m['weight-free before']:.3f} "
          f"(median of the rounds' ratios {statistics.median(rounds):.3f})")
    if not args.function_only:
        print(f"dense now / before {m['dense now'] / m['dense before']:.3f}; weight-free / "
              f"dense before {m['weight-free before'] / m['dense before']:.2f}, now "
              f"{m['weight-free now'] / m['dense now']:.2f}")


if __name__ == "__main__":
    main()
