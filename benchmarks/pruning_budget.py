"""Pruning on small budgets: the default density and the retraining share, on validation.

Issue 31: ``PrunedClassifier(hidden_layer_sizes=(32,), max_epochs=15)`` scored 0.50 in
3-fold CV on digits where ``MLPClassifier`` scored 0.73-0.81. Two stages, each on the
validation split of :class:`sk_weightfree._study.Protocol` (the test part is never read),
seeds 0-2, one thread::

    python benchmarks/pruning_budget.py --stage split --dataset digits
    python benchmarks/pruning_budget.py --stage density --dataset digits
    python benchmarks/pruning_budget.py --stage density --dataset fashion-mnist

``split``: ``finetune_epochs=10`` (the old default) against a third of the budget, at
densities 0.1 and 0.25. ``density``: dense, and pruned at 0.1, 0.2, 0.3 and 0.5 with a
third of the budget retraining. Widths (32,), (100,), (300, 100) and budgets 5, 15, 30
on digits; (32,), (300, 100) and budgets 5, 15 on 12,000 Fashion-MNIST training images
(9,600 fit + 2,400 validation). One JSON line per configuration (the per-seed scores).
"""

import argparse
import itertools
import json
import warnings

import torch

from sk_weightfree import DenseClassifier, PrunedClassifier
from sk_weightfree._study import Protocol


def pruned(width, budget, density, finetune):
    def make(seed):
        if density is None:
            return DenseClassifier(hidden_layer_sizes=width, max_epochs=budget,
                                   random_state=seed, device="cpu")
        return PrunedClassifier(hidden_layer_sizes=width, max_epochs=budget, density=density,
                                finetune_epochs=max(1, budget // 3) if finetune == "third"
                                else finetune, random_state=seed, device="cpu")
    return make


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=("split", "density"), required=True)
    parser.add_argument("--dataset", choices=("digits", "fashion-mnist"), default="digits")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    if args.dataset == "fashion-mnist":
        protocol = Protocol(args.dataset, validation_size=0.2, max_rows=12000)
        widths, budgets = [(32,), (300, 100)], [5, 15]
    else:
        protocol = Protocol(args.dataset)
        widths, budgets = [(32,), (100,), (300, 100)], [5, 15, 30]
    print(protocol.describe(), flush=True)
    if args.stage == "split":
        configs = [(d, f) for d in (0.1, 0.25) for f in (10, "third")] + [(None, None)]
    else:
        configs = [(None, None)] + [(d, "third") for d in (0.1, 0.2, 0.3, 0.5)]
    for width, budget in itertools.product(widths, budgets):
        for density, finetune in configs:
            result = protocol.evaluate(pruned(width, budget, density, finetune))
            print(json.dumps({"dataset": args.dataset, "width": width, "budget": budget,
                              "density": density, "finetune": finetune,
                              "scores": result.scores}), flush=True)


if __name__ == "__main__":
    main()
