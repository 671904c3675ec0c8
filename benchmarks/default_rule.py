"""The default mask rule (issue 32): ``mask_rule="threshold"`` against ``"signed-supermask"``.

Validation splits carved from training data only; the test splits are never read here.
Two parts, one recipe for both rules (every parameter at the package default but
``mask_rule``; ``lr_schedule="constant"``; the epoch budgets below), seeds 0, 1, 2:

1. ``defaults``: both rules at the estimators' defaults (lr 0.05).
2. ``tuning``: the same small budget for both rules: lr in {0.02, 0.05, 0.1}, the best
   per rule chosen by mean validation score over the seeds (the lr 0.05 cells are the
   fits of part 1, the default lr being 0.05). The chosen cell's score is the score the
   choice was made on, so it is optimistic for both rules alike.

The number that decides is the paired difference signed − threshold per seed with its
95 % t interval (:func:`sk_weightfree._study.difference_to`).

Data (features standardised with the statistics of the fit part only):

- ``digits``: ``Protocol("digits")`` (70/30 split, 20 % of the training part as
  validation), 64-(300,100)-10, 30 epochs.
- ``fashion-mnist``: ``Protocol("fashion-mnist")`` (its 10,000-image validation split),
  fitted on a stratified 20,000-row subset of its fit split, 10 epochs.
- ``breast_cancer``, ``wine`` (classification), ``diabetes``, ``friedman1``
  (``make_friedman1(n_samples=2000, noise=1.0, random_state=0)``; regression, R²): a 30 %
  test part set aside (never read), then 25 % of the rest as validation (stratified for
  classification, seed 0), 30 epochs.
- ``cnn``: ``WeightFreeClassifier(module=SmallCNN, input_shape=(1, 28, 28))`` on a
  stratified 10,000-image subset of the Fashion-MNIST fit split, 3 epochs, scored on the
  10,000 validation images.

Every fit checks that each ``ScoredMask`` layer of the fitted network trains with the
rule named (a template could carry its own default rule otherwise) and records the
rule's parameters, warnings, seconds and the load average. Results are appended to
``--out`` as each fit finishes (a run cut short is readable; a rerun skips what is there)::

    OMP_NUM_THREADS=1 python benchmarks/default_rule.py            # both parts, 11 min here
    python benchmarks/default_rule.py --report                      # the markdown tables
    python benchmarks/default_rule.py --smoke --out /tmp/smoke.json # 1 epoch, 300 rows

More seeds for part 1 and one rate of the grid (``--learning-rates``), in a file of their
own (a report needs every cell on the same seeds)::

    OMP_NUM_THREADS=1 python benchmarks/default_rule.py --parts defaults \
        --seeds 0 1 2 3 4 5 6 7 8 9 --out benchmarks/results/default_rule_10seeds.json
    OMP_NUM_THREADS=1 python benchmarks/default_rule.py --parts tuning --learning-rates 0.02 \
        --seeds 0 1 2 3 4 5 6 7 8 9 --out benchmarks/results/default_rule_10seeds.json
"""

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from sk_weightfree import WeightFreeClassifier, WeightFreeRegressor
from sk_weightfree._study import (SPLIT_SEED, Protocol, Result, _standardise,
                                  _stratified_subset, difference_to, machine_line,
                                  markdown_table)
from sk_weightfree.nn import ScoredMask, SmallCNN

RULES = ("threshold", "signed-supermask")
LEARNING_RATES = (0.02, 0.05, 0.1)
DEFAULT_LR = 0.05
SEEDS = (0, 1, 2)
TEST_SIZE = 0.3  # tabular sets: the test part set aside first, never read here
VALIDATION_SIZE = 0.25  # tabular sets: of the rest
FASHION_FIT_ROWS = 20_000
CNN_FIT_ROWS = 10_000
INPUT_SHAPE = (1, 28, 28)

#: name: (task, max_epochs, extra estimator parameters, description of the split)
DATASETS = {
    "digits": ("classification", 30, {}, "Protocol('digits'): 1,005 fit / 252 validation"),
    "breast_cancer": ("classification", 30, {}, "load_breast_cancer"),
    "wine": ("classification", 30, {}, "load_wine"),
    "diabetes": ("regression", 30, {}, "load_diabetes"),
    "friedman1": ("regression", 30, {}, "make_friedman1(2000, noise=1.0, random_state=0)"),
    "fashion-mnist": ("classification", 10, {},
                      "Protocol('fashion-mnist'): 20,000 of the fit split / 10,000 validation"),
    "cnn": ("classification", 3, {"module": SmallCNN, "input_shape": INPUT_SHAPE},
            "SmallCNN, Fashion-MNIST: 10,000 of the fit split / 10,000 validation"),
}


# ---------------------------------------------------------------------------- data
def _tabular(name):
    from sklearn import datasets

    if name == "friedman1":
        return datasets.make_friedman1(n_samples=2000, noise=1.0, random_state=0)
    return getattr(datasets, f"load_{name}")(return_X_y=True)


def load_data(name, cache, fit_rows=None, val_rows=None):
    """``(X_fit, y_fit, X_val, y_val)`` of data set ``name``, standardised with the fit
    part's statistics. ``fit_rows``/``val_rows`` cap the parts (stratified): smoke runs."""
    task = DATASETS[name][0]
    if name == "digits":
        protocol = Protocol("digits")
        X_fit, y_fit, X_val, y_val = protocol.X_fit, protocol.y_fit, protocol.X_val, protocol.y_val
    elif name in ("fashion-mnist", "cnn"):
        if "fashion-mnist" not in cache:
            cache["fashion-mnist"] = Protocol("fashion-mnist")
        protocol = cache["fashion-mnist"]
        n = FASHION_FIT_ROWS if name == "fashion-mnist" else CNN_FIT_ROWS
        X_fit, y_fit = _stratified_subset(protocol.X_fit, protocol.y_fit, n, SPLIT_SEED)
        X_val, y_val = protocol.X_val, protocol.y_val
        # Protocol standardised with the whole fit split; again with the subset's own
        # statistics (the composition of two affine maps: as if from the raw pixels)
        X_fit, X_val = _standardise(X_fit, X_val)
    else:
        X, y = _tabular(name)
        stratify = y if task == "classification" else None
        X_train, _, y_train, _ = train_test_split(  # the test part is dropped unread
            X, y, test_size=TEST_SIZE, stratify=stratify, random_state=SPLIT_SEED)
        stratify = y_train if task == "classification" else None
        X_fit, X_val, y_fit, y_val = train_test_split(
            X_train, y_train, test_size=VALIDATION_SIZE, stratify=stratify,
            random_state=SPLIT_SEED)
        X_fit, X_val = _standardise(X_fit, X_val)
    if task == "regression":
        y_fit, y_val = y_fit.astype(np.float32), y_val.astype(np.float32)
    if fit_rows:
        X_fit, y_fit = _cap(X_fit, y_fit, fit_rows, task)
    if val_rows:
        X_val, y_val = _cap(X_val, y_val, val_rows, task)
    return X_fit, y_fit, X_val, y_val


def _cap(X, y, n, task):
    if task == "classification":
        return _stratified_subset(X, y, n, SPLIT_SEED)
    return X[:n], y[:n]


# ---------------------------------------------------------------------------- one fit
def make_estimator(name, rule, lr, seed, epochs=None):
    """The estimator of one cell: package defaults but ``mask_rule`` (and ``lr`` where not
    the default, which is left unset so that part 1 runs the estimator as shipped)."""
    task, max_epochs, extra, _ = DATASETS[name]
    cls = WeightFreeClassifier if task == "classification" else WeightFreeRegressor
    params = {"mask_rule": rule, "max_epochs": epochs or max_epochs, "random_state": seed,
              "device": "cpu", **extra}
    if lr != cls().lr:
        params["lr"] = lr
    return cls(**params)


def trained_rules(estimator, rule):
    """The rules the fitted network's ``ScoredMask`` layers train with, as
    ``{class name: parameters}``; raises ``AssertionError`` unless every layer's rule is
    ``rule``."""
    layers = [m for m in estimator.net_.module_.modules() if isinstance(m, ScoredMask)]
    if not layers:
        raise AssertionError(f"{type(estimator).__name__} has no ScoredMask layer")
    names = {layer.rule.name for layer in layers}
    if names != {rule}:
        raise AssertionError(f"mask_rule={rule!r} asked, but the layers train with {names}")
    return {type(layer.rule).__name__: layer.rule.get_params() for layer in layers}


def fit_cell(name, rule, lr, seed, data, epochs=None):
    X_fit, y_fit, X_val, y_val = data
    estimator = make_estimator(name, rule, lr, seed, epochs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        estimator.fit(X_fit, y_fit)
        seconds = time.perf_counter() - start
        score = float(estimator.score(X_val, y_val))  # accuracy, or R² for a regressor
    return {"dataset": name, "rule": rule, "lr": lr, "seed": seed, "score": score,
            "finite": bool(np.isfinite(score)), "fit_seconds": seconds,
            "epoch_seconds": [float(row["seconds"]) for row in estimator.history_],
            "n_iter": int(estimator.n_iter_), "density": float(estimator.density_),
            "connections": int(estimator.n_connections_),
            "trained_rule": trained_rules(estimator, rule),
            "params": {k: repr(v) for k, v in estimator.get_params(deep=False).items()},
            "warnings": sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0]}"
                                for w in caught}),
            "n_fit": len(y_fit), "n_val": len(y_val), "load": round(os.getloadavg()[0], 2)}


def cell_key(name, rule, lr, seed):
    return f"{name} {rule} lr={lr} seed={seed}"


# ---------------------------------------------------------------------------- driver
def plan(names, parts, seeds, learning_rates=LEARNING_RATES):
    """Cells in run order: part 1 (the default lr) for every data set first, then the
    other learning rates of the grid (``learning_rates``, a part of it: a partial run);
    seed-major within a data set, the two rules side by side."""
    cells = []
    rates = [DEFAULT_LR]  # part 1, and the default cell of part 2's grid
    if "tuning" in parts:
        rates += [lr for lr in learning_rates if lr != DEFAULT_LR]
    for lr in rates:
        for name in names:
            for seed in seeds:
                cells += [(name, rule, lr, seed) for rule in RULES]
    return cells


def run(args):
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    fits = results.setdefault("fits", {})
    results["machine"] = machine_line("cpu")
    results["setup"] = {"seeds": list(args.seeds), "learning_rates": list(LEARNING_RATES),
                        "smoke": args.smoke,
                        "data": {n: DATASETS[n][3] for n in args.datasets}}
    print(results["machine"], flush=True)
    cache, data = {}, {}
    fit_rows, val_rows, epochs = (300, 300, 1) if args.smoke else (None, None, None)
    for name, rule, lr, seed in plan(args.datasets, args.parts, args.seeds, args.learning_rates):
        key = cell_key(name, rule, lr, seed)
        if key in fits:
            continue
        if name not in data:
            data[name] = load_data(name, cache, fit_rows, val_rows)
            print(f"# {name}: {len(data[name][1])} fit rows, {len(data[name][3])} "
                  f"validation rows", flush=True)
        fits[key] = fit_cell(name, rule, lr, seed, data[name], epochs)
        row = fits[key]
        print(f"{key}: {row['score']:.4f} ({row['fit_seconds']:.1f} s, load {row['load']}"
              f"{'; ' + '; '.join(row['warnings']) if row['warnings'] else ''})", flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1))
    print(report(results))


# ---------------------------------------------------------------------------- report
def cells(results):
    """``{(dataset, rule, lr): [row per seed, in seed order]}``."""
    grouped = {}
    for row in results.get("fits", {}).values():
        grouped.setdefault((row["dataset"], row["rule"], row["lr"]), []).append(row)
    return {key: sorted(rows, key=lambda r: r["seed"]) for key, rows in grouped.items()}


def as_result(rows):
    return Result("validation", [r["score"] for r in rows], [r["density"] for r in rows],
                  epoch_seconds=[s for r in rows for s in r["epoch_seconds"]],
                  fit_seconds=[r["fit_seconds"] for r in rows],
                  n_iter=[r["n_iter"] for r in rows],
                  connections=[r["connections"] for r in rows])


def _difference(signed, threshold):
    """Cells of the paired difference signed − threshold, or blanks when the seeds differ."""
    if [r["seed"] for r in signed] != [r["seed"] for r in threshold] or len(signed) < 2:
        return ["n/a", "n/a"]
    d = difference_to([r["score"] for r in signed], [r["score"] for r in threshold],
                      "threshold")
    interval = f"[{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]" if d["ci95"] else "n/a"
    verdict = ("yes: signed better" if d["excludes_zero"] and d["mean"] > 0 else
               "yes: threshold better" if d["excludes_zero"] else
               "no (the same difference on every seed)" if d["ci95"] and d["mean"] != 0
               and d["ci95"][1] - d["ci95"][0] <= 1e-9 else "no")
    return [f"{d['mean']:+.4f} {interval}", verdict]


def _metric(name):
    return "R²" if DATASETS[name][0] == "regression" else "acc"


def chosen_lr(grouped, name, rule):
    """The learning rate of the grid with the best mean validation score (None until
    every rate has every seed)."""
    scored = {lr: grouped.get((name, rule, lr), []) for lr in LEARNING_RATES}
    if len({tuple(r["seed"] for r in rows) for rows in scored.values()}) != 1 \
            or not scored[DEFAULT_LR]:
        return None
    return max(scored, key=lambda lr: as_result(scored[lr]).mean)


def report(results):
    grouped = cells(results)
    names = [n for n in DATASETS if any(key[0] == n for key in grouped)]
    lines = [results.get("machine", ""), ""]
    header = ["data set", "metric", "threshold", "signed-supermask",
              "signed − threshold, paired [95 % t CI]", "CI excludes 0",
              "s/epoch thr / signed (median)", "seeds"]
    body = []
    for name in names:
        thr, sig = grouped.get((name, "threshold", DEFAULT_LR)), grouped.get(
            (name, "signed-supermask", DEFAULT_LR))
        if not thr or not sig:
            continue
        body.append([name, _metric(name), as_result(thr).accuracy(),
                     as_result(sig).accuracy(), *_difference(sig, thr),
                     f"{as_result(thr).seconds_per_epoch:.3f} / "
                     f"{as_result(sig).seconds_per_epoch:.3f}", len(thr)])
    lines += ["Part 1, defaults (lr 0.05), validation score, mean ± std over seeds:", "",
              markdown_table(header, body), ""]

    header = ["data set", "rule", *[f"lr {lr}" for lr in LEARNING_RATES], "chosen lr"]
    body, best = [], []
    for name in names:
        chosen = {}
        for rule in RULES:
            row = [name, rule]
            for lr in LEARNING_RATES:
                rows = grouped.get((name, rule, lr))
                row.append(as_result(rows).accuracy() if rows else "")
            chosen[rule] = chosen_lr(grouped, name, rule)
            body.append(row + [chosen[rule] if chosen[rule] is not None else "(incomplete)"])
        if None not in chosen.values():
            thr = grouped[(name, "threshold", chosen["threshold"])]
            sig = grouped[(name, "signed-supermask", chosen["signed-supermask"])]
            best.append([name, _metric(name),
                         f"{as_result(thr).accuracy()} (lr {chosen['threshold']})",
                         f"{as_result(sig).accuracy()} (lr {chosen['signed-supermask']})",
                         *_difference(sig, thr)])
    lines += ["Part 2, every cell of the lr grid (validation score, mean ± std):", "",
              markdown_table(header, body), ""]
    if best:
        lines += ["Part 2, the best lr per rule (chosen on the same validation scores):", "",
                  markdown_table(["data set", "metric", "threshold (best lr)",
                                  "signed-supermask (best lr)",
                                  "signed − threshold, paired [95 % t CI]", "CI excludes 0"],
                                 best), ""]
    lines += against_default(grouped, names)
    lines += notes(results)
    return "\n".join(lines)


def against_default(grouped, names):
    """Each signed-supermask cell against the default threshold cell (lr 0.05), paired by
    seed: could the signed rule replace the default with another learning rate?"""
    body = []
    for name in names:
        threshold = grouped.get((name, "threshold", DEFAULT_LR))
        for lr in LEARNING_RATES:
            signed = grouped.get((name, "signed-supermask", lr))
            if threshold and signed and len(signed) == len(threshold):
                body.append([name, _metric(name), as_result(threshold).accuracy(),
                             f"{as_result(signed).accuracy()} (lr {lr})",
                             *_difference(signed, threshold), len(signed)])
    if not body:
        return []
    return ["Each signed-supermask lr against the default threshold rule (lr 0.05):", "",
            markdown_table(["data set", "metric", "threshold, lr 0.05", "signed-supermask",
                            "signed − threshold, paired [95 % t CI]", "CI excludes 0",
                            "seeds"], body), ""]


def notes(results):
    """Warnings, non-finite scores and the rules that trained, summarised."""
    fits = list(results.get("fits", {}).values())
    lines = []
    bad = [cell_key(r["dataset"], r["rule"], r["lr"], r["seed"]) for r in fits
           if not r["finite"]]
    lines.append(f"non-finite scores: {', '.join(bad) if bad else 'none'}")
    counted = {}  # warning (category and first words) -> {"data set/rule": fits}
    for r in fits:
        for w in r["warnings"]:
            where = counted.setdefault(w[:70], {})
            where[f"{r['dataset']}/{r['rule']}"] = where.get(f"{r['dataset']}/{r['rule']}", 0) + 1
    lines.append("warnings: " + ("none" if not counted else "; ".join(
        f"'{w}...' in " + ", ".join(f"{k} ×{n}" for k, n in sorted(where.items()))
        for w, where in sorted(counted.items()))))
    trained = sorted({f"{r['rule']}: {json.dumps(r['trained_rule'], sort_keys=True)}"
                      for r in fits})
    lines.append("rules that trained (every ScoredMask layer checked): " + "; ".join(trained))
    loads = [r["load"] for r in fits]
    if loads:
        lines.append(f"load average during the fits: {min(loads):.1f}–{max(loads):.1f}")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--parts", nargs="+", choices=("defaults", "tuning"),
                        default=["defaults", "tuning"])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--learning-rates", type=float, nargs="+",
                        default=list(LEARNING_RATES),
                        help="run only these rates of the grid (part 2; default all)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--smoke", action="store_true",
                        help="300 fit and validation rows, 1 epoch: a check that it runs")
    parser.add_argument("--out", default="benchmarks/results/default_rule.json")
    parser.add_argument("--report", action="store_true", help="print the tables of --out")
    args = parser.parse_args()
    if args.report:
        print(report(json.loads(Path(args.out).read_text())))
        return
    torch.set_num_threads(args.threads)
    run(args)


if __name__ == "__main__":
    sys.exit(main())
