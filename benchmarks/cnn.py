"""Convolutional templates on Fashion-MNIST (issue 12): weight-free SmallCNN vs dense CNN.

Tuning protocol of ``sk_weightfree._study``: every row is the validation accuracy, mean ± std over
``--seeds`` (3 by default), fitted on the training part minus 10,000 validation images
(stratified), images fed as ``input_shape=(1, 28, 28)`` to the ``SmallCNN`` template
(conv32-pool-conv64-pool-fc128-fc10, 3×3 kernels). At the end, unless ``--no-final``, the
rows of ``FINAL_ROWS`` (weight-free and dense with batch norm) are refitted on all 60,000
training images and score the test split — its one read::

    python benchmarks/cnn.py --rows wf-cnn dense-cnn-bn --no-final      # ~30 min, 2 free cores
    python benchmarks/cnn.py --rows wf-cnn dense-cnn-bn --final-only    # test only, ~35 min
    python benchmarks/cnn.py --rows wf-cnn dense-cnn-bn                 # both, ~65 min
    python benchmarks/cnn.py --train-size 3000 --seeds 0                # smoke run, every row
    python benchmarks/cnn.py --device cuda                              # every row

Rows (``ROWS``): ``wf-cnn`` (``WeightFreeClassifier``: every conv/linear a {0,1}-masked
layer with paired inputs and per-unit batch norm; its defaults lr 0.05, cosine,
init_density 0.25), ``dense-cnn-bn`` (``DenseClassifier`` on ``SmallCNN(batch_norm=True)``,
Adam lr 1e-3, cosine), ``dense-cnn`` (the same without batch norm), and the other
families on the same template: ``pruned-cnn`` (``PrunedClassifier`` on the batch-norm
template, 4 + 1 fine-tune epochs, pruned to the number of edges the weight-free network of
the same seed has on — with paired inputs its ``density_`` counts the doubled edge set —
or to ``--prune-density`` when ``wf-cnn`` is not run), ``random-cnn``
(``RandomNetworkClassifier``, fixed random {0,1} hidden masks at density 0.5, read-out
{0,1} mask searched) and ``wa-cnn`` (``WeightAgnosticClassifier``, shared weight values).

Seeds are interleaved (seed 0 of every row, then seed 1, ...), so that a slow stretch of a
shared machine falls on every row rather than on one. Every fit prints a progress line
(flushed), so a timeout leaves the fits finished so far. For every fitted estimator the
script checks whether every entry of every ``coefs_`` array (every kernel tap and every
linear weight) is exactly 0.0 or 1.0, and prints the result per row.
"""

import argparse
import functools
import os
import time

import numpy as np
import torch
from sk_weightfree._study import Protocol, Result, markdown_table, machine_line, resolve_device, warm_up

from sk_weightfree import (DenseClassifier, PrunedClassifier, RandomNetworkClassifier,
                           WeightAgnosticClassifier, WeightFreeClassifier)
from sk_weightfree.nn import SmallCNN

INPUT_SHAPE = (1, 28, 28)
SMALL_CNN_BN = functools.partial(SmallCNN, batch_norm=True)
PRUNE_SPLIT = (4, 1)  # train + fine-tune epochs of the pruned row (5 in all)
# name: (label, class, params); the number of epochs is set from --epochs
ROWS = {
    "wf-cnn": ("weight-free SmallCNN (paired, lr 0.05, cosine, init_density 0.25)",
               WeightFreeClassifier, {"module": SmallCNN}),
    "dense-cnn-bn": ("dense SmallCNN + batch norm (Adam lr 1e-3, cosine)", DenseClassifier,
                     {"module": SMALL_CNN_BN, "lr": 1e-3, "lr_schedule": "cosine"}),
    "dense-cnn": ("dense SmallCNN, no batch norm (Adam lr 1e-3, cosine)", DenseClassifier,
                  {"module": SmallCNN, "lr": 1e-3, "lr_schedule": "cosine"}),
    "pruned-cnn": ("pruned SmallCNN + batch norm (lr 1e-3, cosine), 4 + 1 fine-tune epochs",
                   PrunedClassifier, {"module": SMALL_CNN_BN, "lr": 1e-3,
                                      "lr_schedule": "cosine"}),
    "random-cnn": ("random {0,1} SmallCNN (density 0.5, only the read-out mask searched)",
                   RandomNetworkClassifier, {"module": SmallCNN}),
    "wa-cnn": ("weight-agnostic SmallCNN (shared weight values)", WeightAgnosticClassifier,
               {"module": SmallCNN}),
}
DEFAULT_ROWS = list(ROWS)
FINAL_ROWS = ("wf-cnn", "dense-cnn-bn")  # test accuracy, read once at the end
# rough s/epoch on 50,000 rows, 2 free x86-64 cores, torch 2.13.0+cpu (measured for wf-cnn
# and dense-cnn-bn; the others scaled from a 2,400-row smoke run)
CPU_SECONDS_PER_EPOCH = {"wf-cnn": 55, "dense-cnn-bn": 42, "dense-cnn": 35,
                         "pruned-cnn": 42, "random-cnn": 35, "wa-cnn": 130}


def n_template_edges(module=SmallCNN):
    """Weights of the conv/linear layers of the (dense) template: the edge count."""
    net = module(INPUT_SHAPE, 10)
    return sum(m.weight.numel() for m in net.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))


def binary_check(estimator):
    """``(all_binary, n_entries, n_not_binary)`` over every ``coefs_`` array."""
    n_entries = n_bad = 0
    for coef in estimator.coefs_:
        coef = np.asarray(coef)
        n_entries += coef.size
        n_bad += int(np.count_nonzero((coef != 0.0) & (coef != 1.0)))
    return n_bad == 0, n_entries, n_bad


def merge(total, part):
    """Append the one-seed :class:`Result` ``part`` to ``total``."""
    for key in ("scores", "densities", "epoch_seconds", "fit_seconds", "n_iter",
                "connections"):
        getattr(total, key).extend(getattr(part, key))


def load_text():
    try:
        return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "load average n/a"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=DEFAULT_ROWS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--train-size", type=int,
                        help="keep this many training (and test) rows, stratified: smoke runs")
    parser.add_argument("--prune-density", type=float, default=0.5,
                        help="density of pruned-cnn when wf-cnn is not run")
    parser.add_argument("--no-final", action="store_true", help="skip the test evaluation")
    parser.add_argument("--final-only", action="store_true",
                        help="skip the validation fits: only the test evaluation of the "
                             "FINAL_ROWS among --rows (chosen on an earlier validation run)")
    args = parser.parse_args()
    if args.final_only and args.no_final:
        parser.error("--final-only and --no-final exclude each other")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    rows = [name for name in ROWS if name in args.rows]  # table order
    plan = {}
    for name in rows:
        label, cls, params = ROWS[name]
        params = dict(params, input_shape=INPUT_SHAPE, max_epochs=args.epochs)
        if cls is PrunedClassifier:
            train = max(1, args.epochs - args.epochs // 5)
            params.update(max_epochs=train, finetune_epochs=args.epochs - train)
            label = label.replace("4 + 1", f"{train} + {args.epochs - train}")
        plan[name] = (label, cls, params)

    protocol = Protocol("fashion-mnist", max_rows=args.train_size)
    n_fit = len(protocol.y_fit)
    estimate = 0 if args.final_only else sum(
        CPU_SECONDS_PER_EPOCH[name] for name in rows) * args.epochs * len(args.seeds) \
        * n_fit / 50_000
    if not args.no_final:
        estimate += sum(CPU_SECONDS_PER_EPOCH[name] for name in FINAL_ROWS if name in rows) \
            * args.epochs * len(args.seeds) * 6 / 5 * n_fit / 50_000
    print(f"# {protocol.describe()}")
    print(f"# {machine_line(device)}; batch 128; {args.epochs} epochs; seeds {args.seeds}")
    print(f"# SmallCNN template, input_shape {INPUT_SHAPE}; {n_template_edges():,} edges in "
          f"the dense template")
    if device == "cpu":
        print(f"# rough CPU estimate (2 free cores): {estimate / 60:.0f} min of fitting, "
              f"plus prediction", flush=True)
    print(f"# start: {time.strftime('%Y-%m-%d %H:%M:%S')}, {load_text()}", flush=True)
    warm_up(device)

    results = {name: Result("validation", [], []) for name in rows}
    checks = {name: [] for name in rows}
    wall = {name: 0.0 for name in rows}
    kept = {}  # name -> the estimators fitted since the last check

    def make(name, params, cls):
        def build(seed):
            estimator = cls(**params, device=device, random_state=seed)
            kept.setdefault(name, []).append(estimator)
            return estimator
        return build

    for seed in [] if args.final_only else args.seeds:
        for name, (label, cls, params) in plan.items():
            params = dict(params)
            if name == "pruned-cnn":
                if "wf-cnn" in results and len(results["wf-cnn"].connections) > \
                        len(results[name].connections):
                    edges = results["wf-cnn"].connections[-1]
                    params["density"] = round(min(1.0, edges / n_template_edges()), 4)
                else:
                    params["density"] = args.prune_density
            start = time.perf_counter()
            part = protocol.evaluate(make(name, params, cls), seeds=[seed])
            wall[name] += time.perf_counter() - start
            merge(results[name], part)
            estimator = kept.pop(name)[-1]
            checks[name].append(binary_check(estimator))
            ok, n_entries, n_bad = checks[name][-1]
            per_epoch = ", ".join(f"{row['seconds']:.1f}" for row in estimator.history_)
            extra = f" density target {params['density']:.4f};" if "density" in params else ""
            print(f"# {name} seed {seed}: validation {part.scores[0]:.4f}; fit "
                  f"{part.fit_seconds[0]:.1f} s (epochs {per_epoch} s); density_ "
                  f"{part.densities[0]:.4f}; edges on {part.connections[0]:,};{extra} coefs_ "
                  f"all in {{0,1}}: {ok} ({n_entries:,} entries, {n_bad:,} not 0/1); "
                  f"{load_text()}", flush=True)
            del estimator

    header = ["row", "estimator", "epochs", "validation acc (mean ± std)", "fit s (mean)",
              "s/epoch (median)", "density_", "edges on", "coefs_ all in {0,1}"]
    lines = []
    for name, (label, cls, params) in plan.items() if not args.final_only else ():
        result = results[name]
        n_ok = sum(ok for ok, _, _ in checks[name])
        n_bad = sum(bad for _, _, bad in checks[name])
        epochs = params["max_epochs"] + params.get("finetune_epochs", 0)
        lines.append([name, label, epochs, result.accuracy(),
                      f"{np.mean(result.fit_seconds):.1f}",
                      f"{result.seconds_per_epoch:.1f}", f"{result.density:.3f}",
                      f"{np.mean(result.connections):,.0f}",
                      f"{'yes' if n_ok == len(checks[name]) else 'no'} "
                      f"({n_ok}/{len(checks[name])} fits; {n_bad:,} entries not 0/1)"])
    if not args.final_only and "wf-cnn" in results and "dense-cnn-bn" in results:
        wf, dense = results["wf-cnn"], results["dense-cnn-bn"]
        fit_ratio = np.mean(wf.fit_seconds) / np.mean(dense.fit_seconds)
        print(f"# wf-cnn - dense-cnn-bn: {100 * (wf.mean - dense.mean):+.2f} points "
              f"(validation); fit time ratio {fit_ratio:.2f}x, s/epoch ratio "
              f"{wf.seconds_per_epoch / dense.seconds_per_epoch:.2f}x")

    if not args.no_final:
        final_rows = [name for name in FINAL_ROWS if name in plan]
        tests = {name: Result("test", [], []) for name in final_rows}
        test_checks = {name: [] for name in final_rows}
        for seed in args.seeds:  # interleaved as above; one test read per (row, seed) fit
            for name in final_rows:
                label, cls, params = plan[name]
                start = time.perf_counter()
                part = protocol.evaluate(make(name, params, cls), seeds=[seed], final=True)
                merge(tests[name], part)
                estimator = kept.pop(name)[-1]
                test_checks[name].append(binary_check(estimator))
                per_epoch = ", ".join(f"{row['seconds']:.1f}" for row in estimator.history_)
                print(f"# final {name} seed {seed}: test {part.scores[0]:.4f}; fit "
                      f"{part.fit_seconds[0]:.1f} s (epochs {per_epoch} s); density_ "
                      f"{part.densities[0]:.4f}; coefs_ all in {{0,1}}: "
                      f"{test_checks[name][-1][0]}; {time.perf_counter() - start:.0f} s wall; "
                      f"{load_text()}", flush=True)
                del estimator
        finals = []
        for name in final_rows:
            result, ok = tests[name], all(c[0] for c in test_checks[name])
            finals.append([name, plan[name][0], result.accuracy(),
                           f"{np.mean(result.fit_seconds):.1f}",
                           f"{result.seconds_per_epoch:.1f}", f"{result.density:.3f}",
                           "yes" if ok else "no"])
        print(f"\nTest accuracy (refit on all {len(protocol.y_fit) + len(protocol.y_val):,} "
              f"training images; test split read once per fit, no choice made on it):\n")
        print(markdown_table(["row", "estimator", "test acc (mean ± std)", "fit s (mean)",
                            "s/epoch (median)", "density_", "coefs_ all in {0,1}"], finals))
    if not args.final_only:
        print("\nValidation table:\n")
        print(markdown_table(header, lines))
        print("\n# wall s per row (fit + predict, all seeds): "
              + ", ".join(f"{name} {seconds:.0f}" for name, seconds in wall.items()))
    print(f"# end: {time.strftime('%Y-%m-%d %H:%M:%S')}, {load_text()}", flush=True)


if __name__ == "__main__":
    main()
