"""Every mask rule on one footing: rule × sign mode on Fashion-MNIST (and digits).

Protocol (``sk_weightfree._study``): every choice on the validation split carved from the training
data, the test split read once at the end for the chosen settings only.

1. ``--stage tune``: for each rule (paired lines), its learning rate — and edge-popup's
   ``k`` — chosen on the validation split with one seed, a shortened budget (``--tune-rows``
   rows of the fit split, ``--tune-epochs`` epochs). The choices go to the JSON file.
2. ``--stage table``: each rule × sign mode with its chosen settings, 784-300-100-10,
   ``--epochs`` epochs, seeds 0, 1, 2, fitted on the fit split (50,000 images): validation
   accuracy, then (after every choice is fixed) test accuracy of the same fitted models
   (``--fit-rows`` fits them on a stratified part of the fit split instead),
   density, edges on, seconds per epoch. A dense network (Adam 1e-3, cosine) is the
   reference row.
3. ``--stage cnn``: the two best rules of the table on the ``SmallCNN`` template.

Run (2 CPU threads unless ``--threads``)::

    python benchmarks/rules.py --stage tune table --dataset fashion-mnist
    python benchmarks/rules.py --stage tune table --dataset digits --out benchmarks/results/rules_digits.json

Results are appended to ``--out`` (JSON) as each configuration finishes, so a long run can
be read while it goes; ``--report`` prints the markdown table from that file.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).parent))
from sk_weightfree._study import SPLIT_SEED, Protocol, _load, markdown_table, machine_line  # noqa: E402

from sk_weightfree import DenseClassifier, WeightFreeClassifier  # noqa: E402
from sk_weightfree.nn import SmallCNN  # noqa: E402

RULES = ("threshold", "supermask", "edge-popup", "signed-supermask")
SIGNS = {"threshold": ("paired", "fixed"), "supermask": ("paired", "fixed"),
         "edge-popup": ("paired", "fixed"), "signed-supermask": ("paired",)}
LEARNING_RATES = (0.05, 0.1)
EDGE_POPUP_K = (0.3, 0.5)


def load(path):
    return json.loads(Path(path).read_text()) if Path(path).exists() else {}


def save(path, results):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(results, indent=1))


def load_average():
    return round(os.getloadavg()[0], 2)


def weight_free(rule, signs, lr, density=None, epochs=10, **kwargs):
    return lambda seed: WeightFreeClassifier(
        mask_rule=rule, unit_signs=signs, lr=lr, density=density, max_epochs=epochs,
        random_state=seed, device="cpu", **kwargs)


def fit_and_score(make, seed, X_fit, y_fit, scored):
    est = make(seed)
    start = time.perf_counter()
    est.fit(X_fit, y_fit)
    seconds = time.perf_counter() - start
    out = {name: float(np.mean(est.predict(X) == y)) for name, (X, y) in scored.items()}
    return {**out, "seed": seed, "fit_seconds": seconds, "density": float(est.density_),
            "edges_on": int(est.n_connections_), "signed_edges": signed_edge_fraction(est),
            "load": load_average(),
            "epoch_seconds": [float(row["seconds"]) for row in est.history_]}


def signed_edge_fraction(est):
    """Fraction of (input, output) pairs whose signed weight ``M₊ - M₋`` is not zero
    (for unpaired networks, of edges present): comparable across sign modes, unlike
    ``density_``, which counts lines."""
    nonzero = total = 0
    for coef in est.coefs_:
        if getattr(est, "paired_inputs_", False):
            coef = coef[:coef.shape[0] // 2] - coef[coef.shape[0] // 2:]
        nonzero += int(np.count_nonzero(coef))
        total += coef.size
    return nonzero / total


def test_split_with_fit_statistics(protocol):
    """The test split standardised with the statistics of the fit split (the models of
    the table are fitted on the fit split, so their test inputs use its scaling)."""
    X, y = protocol._train
    X_fit, _, _, _ = train_test_split(X, y, test_size=len(protocol.y_val), stratify=y,
                                      random_state=SPLIT_SEED)
    X_test, y_test = _load(protocol.dataset, "test")
    protocol.test_reads += 1
    return StandardScaler().fit(X_fit).transform(X_test).astype(np.float32), y_test


def tune(protocol, results, out, args):
    n = min(args.tune_rows, len(protocol.y_fit))
    X, _, y, _ = train_test_split(protocol.X_fit, protocol.y_fit, train_size=n,
                                  stratify=protocol.y_fit, random_state=SPLIT_SEED) \
        if n < len(protocol.y_fit) else (protocol.X_fit, None, protocol.y_fit, None)
    tuning = results.setdefault("tuning", {})
    grid = [(rule, lr, None) for rule in RULES for lr in LEARNING_RATES]
    grid += [("edge-popup", None, k) for k in EDGE_POPUP_K]  # k at the chosen lr
    for rule, lr, k in grid:
        if lr is None:  # edge-popup's k, at its best learning rate so far
            lr = max((r for r in tuning.values() if r["rule"] == rule and r["k"] is None),
                     key=lambda r: r["validation"])["lr"]
        key = f"{rule} lr={lr} k={k}"
        if key in tuning:
            continue
        row = fit_and_score(weight_free(rule, "paired", lr, k, args.tune_epochs), 0, X, y,
                            {"validation": (protocol.X_val, protocol.y_val)})
        tuning[key] = {"rule": rule, "lr": lr, "k": k, **row}
        print(f"tune {key}: validation {row['validation']:.4f} (load {row['load']})",
              flush=True)
        save(out, results)
    chosen = {}
    for rule in RULES:
        best = max((r for r in tuning.values() if r["rule"] == rule),
                   key=lambda r: r["validation"])
        chosen[rule] = {"lr": best["lr"], "density": best["k"]}
    results["chosen"] = chosen
    save(out, results)
    print("chosen on validation:", chosen, flush=True)


def table(protocol, results, out, args):
    chosen = results["chosen"]
    X_fit, y_fit = protocol.X_fit, protocol.y_fit
    if args.fit_rows and args.fit_rows < len(y_fit):
        X_fit, _, y_fit, _ = train_test_split(X_fit, y_fit, train_size=args.fit_rows,
                                              stratify=y_fit, random_state=SPLIT_SEED)
    results["table_fit_rows"] = len(y_fit)
    rows = results.setdefault("table", {})
    configs = [(f"{rule} / {signs}", weight_free(rule, signs, chosen[rule]["lr"],
                                                 chosen[rule]["density"], args.epochs))
               for rule in RULES for signs in SIGNS[rule]]
    configs.append(("dense (real weights, Adam 1e-3)", lambda seed: DenseClassifier(
        lr=1e-3, lr_schedule="cosine", max_epochs=args.epochs, random_state=seed,
        device="cpu")))
    X_test, y_test = test_split_with_fit_statistics(protocol)
    for seed in args.seeds:  # seed-major: a run cut short still has every row
        for name, make in configs:
            key = f"{name} seed={seed}"
            if key in rows:
                continue
            rows[key] = {"config": name, **fit_and_score(
                make, seed, X_fit, y_fit,
                {"validation": (protocol.X_val, protocol.y_val), "test": (X_test, y_test)})}
            print(f"{key}: validation {rows[key]['validation']:.4f} "
                  f"(load {rows[key]['load']})", flush=True)
            save(out, results)


def cnn(protocol, results, out, args):
    by_config = _by_config(results.get("table", {}))
    ranked = sorted((c for c in by_config if not c.startswith("dense")),
                    key=lambda c: -np.mean([r["validation"] for r in by_config[c]]))
    rows = results.setdefault("cnn", {})
    side = int(round(np.sqrt(protocol.X_fit.shape[1])))
    for name in ranked[:2]:
        rule, signs = (part.strip() for part in name.split("/"))
        lr = results["chosen"][rule]["lr"]
        density = results["chosen"][rule]["density"]
        for seed in args.cnn_seeds:
            key = f"{name} seed={seed}"
            if key in rows:
                continue
            make = weight_free(rule, signs, lr, density, args.cnn_epochs, module=SmallCNN,
                               input_shape=(1, side, side))
            rows[key] = {"config": name, **fit_and_score(
                make, seed, protocol.X_fit, protocol.y_fit,
                {"validation": (protocol.X_val, protocol.y_val)})}
            print(f"cnn {key}: validation {rows[key]['validation']:.4f}", flush=True)
            save(out, results)


def _by_config(rows):
    grouped = {}
    for row in rows.values():
        grouped.setdefault(row["config"], []).append(row)
    return grouped


def _mean_std(values, digits=4):
    return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"


def report(results):
    lines = [results.get("machine", "")]
    if "table_fit_rows" in results:
        lines.append(f"table models fitted on {results['table_fit_rows']} rows of the fit split")
    if "chosen" in results:
        lines.append("chosen on validation: " + ", ".join(
            f"{rule}: lr {c['lr']}" + (f", k {c['density']}" if c["density"] else "")
            for rule, c in results["chosen"].items()))
    for section, columns in (("table", ("validation", "test")), ("cnn", ("validation",))):
        grouped = _by_config(results.get(section, {}))
        if not grouped:
            continue
        header = ["rule / sign mode", *[f"{c} acc" for c in columns], "density_",
                  "edges on (±1)", "s/epoch (median)", "load avg", "seeds"]
        body = [[name, *[_mean_std([r[c] for r in rs]) for c in columns],
                 f"{np.mean([r['density'] for r in rs]):.3f}",
                 f"{100 * np.mean([r['signed_edges'] for r in rs]):.0f}%",
                 f"{np.median([s for r in rs for s in r['epoch_seconds']]):.2f}",
                 f"{min(r['load'] for r in rs):.1f}–{max(r['load'] for r in rs):.1f}",
                 len(rs)] for name, rs in grouped.items()]
        lines += ["", f"{section}:", markdown_table(header, body)]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist", choices=("digits",
                                                                       "fashion-mnist"))
    parser.add_argument("--stage", nargs="+", default=["tune", "table"],
                        choices=("tune", "table", "cnn"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tune-rows", type=int, default=20_000)
    parser.add_argument("--fit-rows", type=int, default=None,
                        help="fit the table's models on this many rows of the fit split "
                             "(stratified; default: all of it)")
    parser.add_argument("--tune-epochs", type=int, default=3)
    parser.add_argument("--cnn-epochs", type=int, default=5)
    parser.add_argument("--cnn-seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-rows", type=int, default=None, help="smoke runs only")
    parser.add_argument("--out", default="benchmarks/results/rules.json")
    parser.add_argument("--report", action="store_true", help="print the saved table")
    args = parser.parse_args()
    results = load(args.out)
    if args.report:
        print(report(results))
        return
    torch.set_num_threads(args.threads)
    protocol = Protocol(args.dataset, max_rows=args.max_rows)
    results["machine"] = f"{machine_line('cpu')}; {protocol.describe()}"
    print(results["machine"], flush=True)
    for stage in args.stage:
        {"tune": tune, "table": table, "cnn": cnn}[stage](protocol, results, args.out, args)
    print(report(results))


if __name__ == "__main__":
    main()
