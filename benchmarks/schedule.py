"""Which learning-rate schedule should every family default to? (issue 34)

Each family is fitted with ``lr_schedule="constant"`` and ``"cosine"`` (its other
parameters its defaults, the same epoch budget for both), on the validation protocol of
:mod:`sk_weightfree._study`: fitted on the training part minus a stratified validation
split, scored on that validation split; the test split is never read. Seeds 0, 1, 2.

::

    python benchmarks/schedule.py --dataset digits --threads 1
    python benchmarks/schedule.py --dataset fashion-mnist --epochs 10 --threads 1 \
        --families dense weight-free pruned

Every fit is appended to ``--out`` (JSON lines) as it finishes; ``--report`` prints the
markdown table from that file.
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from sk_weightfree._study import (DATASETS, FAMILIES, Protocol, family_classes,
                                  machine_line, markdown_table, mean_interval)

SCHEDULES = ("constant", "cosine")


def report(path):
    lines = [json.loads(line) for line in Path(path).read_text().splitlines() if line]
    cells = {}
    for line in lines:
        cells.setdefault((line["family"], line["lr_schedule"]), []).append(line["score"])
    rows = []
    for family in dict.fromkeys(f for f, _ in cells):
        row = [family]
        for schedule in SCHEDULES:
            scores = cells.get((family, schedule), [])
            if scores:
                mean, low, high = mean_interval(scores)
                row.append(f"{mean:.4f} ± {np.std(scores):.4f} [{low:.4f}, {high:.4f}] "
                           f"(n={len(scores)})")
            else:
                row.append("not run")
        both = [cells.get((family, s), []) for s in SCHEDULES]
        n = min(map(len, both))
        row.append(f"{np.mean(np.subtract(both[1][:n], both[0][:n])):+.4f}" if n else "")
        rows.append(row)
    print(markdown_table(["family", "validation acc, constant (mean ± std [95 % CI])",
                        "validation acc, cosine", "cosine − constant (paired mean)"], rows))


def regression(args, out):
    """The five regressors on Friedman #1 (``sk-weightfree compare --dataset friedman1``'s
    data): :func:`sk_weightfree.compare` run on the command's 70 % training part (seed 0),
    so its 70/30 split of that part is a validation split; the test part is not read."""
    from sklearn.datasets import make_friedman1
    from sklearn.model_selection import train_test_split

    from sk_weightfree import compare

    X, y = make_friedman1(n_samples=2000, n_features=10, noise=1.0, random_state=0)
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.3, random_state=0)
    print(f"# friedman1: validation = 30 % of the 1,400-row training part, seeds "
          f"{args.seeds}; {machine_line('cpu')}", flush=True)
    for schedule in SCHEDULES:
        result = compare(X_train, y_train, estimators=args.families, epochs=args.epochs,
                         seeds=len(args.seeds), random_state=args.seeds[0], device="cpu",
                         settings={f: {"lr_schedule": schedule} for f in args.families})
        for row in result.rows:
            for seed, score in zip(row["seeds"], row["scores"]):
                line = {"dataset": "friedman1", "family": row["estimator"],
                        "lr_schedule": schedule, "seed": seed, "score": score,
                        "split": "validation (R²)", "epochs": row["epochs"],
                        "load_average": os.getloadavg()[0], "time": time.ctime(),
                        "machine": machine_line("cpu")}
                with open(out, "a") as handle:
                    handle.write(json.dumps(line) + "\n")
                print(json.dumps(line), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits", choices=(*DATASETS, "friedman1"))
    parser.add_argument("--families", nargs="+", default=list(FAMILIES))
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int)
    parser.add_argument("--out")
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    out = args.out or f"benchmarks/results/schedule_{args.dataset.replace('-', '_')}.jsonl"
    if args.report:
        return report(out)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.dataset == "friedman1":
        return regression(args, out)
    protocol = Protocol(args.dataset)
    print(f"# {protocol.describe()}; {machine_line('cpu')}", flush=True)
    for seed in args.seeds:  # seed-major: a cut-short run still pairs its schedules
        for family in args.families:
            for schedule in SCHEDULES:
                cls = family_classes()[family]
                params = {"lr_schedule": schedule, "random_state": seed, "device": "cpu"}
                if args.epochs:
                    params["max_epochs"] = args.epochs
                result = protocol.evaluate(lambda s: cls(**params), seeds=[seed])
                line = {"dataset": args.dataset, "family": family, "lr_schedule": schedule,
                        "seed": seed, "score": result.scores[0], "split": "validation",
                        "epochs": result.n_iter[0], "fit_seconds": result.fit_seconds[0],
                        "load_average": os.getloadavg()[0], "time": time.ctime(),
                        "machine": machine_line("cpu")}
                with open(out, "a") as handle:
                    handle.write(json.dumps(line) + "\n")
                print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
