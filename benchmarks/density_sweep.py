"""Accuracy versus density: pruned and weight-free networks at matched densities.

::

    python benchmarks/density_sweep.py                            # digits
    python benchmarks/density_sweep.py --dataset fashion-mnist --epochs 10
    python benchmarks/density_sweep.py --smoke                    # CPU check, seconds

Prints a markdown table: one row per density, accuracy of ``PrunedClassifier`` (real
weights, magnitude-pruned) and ``WeightFreeClassifier`` (``density`` target, {0,1}
weights), plus ``RandomNetworkClassifier`` at the same density as a no-search reference.
Every family gets the same epoch budget (``--epochs``, default 30) and the same schedule
(every family's default, ``lr_schedule="constant"``): the pruned network spends a quarter
of its budget fine-tuning after pruning (``max_epochs`` is the whole budget). Tuning protocol of ``sk_weightfree._study``:
validation accuracy (a split of the training part), mean ± std over ``--seeds``;
``--final`` adds test accuracy, refitted on the whole training part (no choice is made
from this sweep, so its test columns are a report, not a selection).
"""

import argparse

import torch
from sk_weightfree._study import DATASETS, Protocol, markdown_table, machine_line, resolve_device, warm_up

from sk_weightfree import PrunedClassifier, RandomNetworkClassifier, WeightFreeClassifier

FAMILIES = {"pruned": PrunedClassifier, "weight-free": WeightFreeClassifier,
            "random": RandomNetworkClassifier}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits", choices=DATASETS)
    parser.add_argument("--densities", type=float, nargs="+",
                        default=[0.02, 0.05, 0.1, 0.2, 0.5])
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--final", action="store_true", help="also report test accuracy")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    common = {"device": resolve_device(args.device)}
    if args.smoke:
        torch.set_num_threads(1)
        args.seeds, args.densities, args.epochs = args.seeds[:2], args.densities[2:4], 2
        common["hidden_layer_sizes"] = (16,)
    budget = args.epochs or WeightFreeClassifier().max_epochs
    params = {name: {**common, "max_epochs": budget} for name in FAMILIES}
    params["pruned"].update(finetune_epochs=budget // 4)  # inside max_epochs = budget
    protocol = Protocol(args.dataset, max_rows=400 if args.smoke else None)
    print(f"# {protocol.describe()}; seeds {args.seeds}; {budget} epochs (pruned "
          f"{budget - budget // 4} + {budget // 4} fine-tune), lr_schedule constant; "
          f"{machine_line(common['device'])}")
    warm_up(common["device"])
    header = ["density"] + [f"{name} validation acc" for name in FAMILIES]
    header += [f"{name} test acc" for name in FAMILIES] if args.final else []
    header += ["pruned s/epoch", "weight-free s/epoch"]
    print(markdown_table(header, []), flush=True)
    lines = []
    for density in args.densities:
        results, tests = {}, []
        for name, cls in FAMILIES.items():
            def make(seed, cls=cls, name=name):
                return cls(density=density, random_state=seed, **params[name])

            results[name] = protocol.evaluate(make, seeds=args.seeds)
            if args.final:
                tests.append(protocol.evaluate(make, seeds=args.seeds, final=True).accuracy())
        line = [f"{density:g}", *(r.accuracy() for r in results.values()), *tests,
                f"{results['pruned'].seconds_per_epoch:.2f}",
                f"{results['weight-free'].seconds_per_epoch:.2f}"]
        lines.append(line)
        print(markdown_table(header, [line]).splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
