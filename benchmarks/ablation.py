"""The ablation table of issue 14: signs, widths, epochs; weight-free vs dense vs pruned.

Tuning protocol of ``sk_weightfree._study`` on Fashion-MNIST (784-300-100-10 unless said): every
row is the validation accuracy, mean ± std over ``--seeds`` (3 by default), fitted on the
training part minus 10,000 validation images. At the end, and only for the two defaults
rows (weight-free and dense, (300, 100), 10 epochs), the test accuracy after a refit on
all 60,000 training images — the test split's one read::

    python benchmarks/ablation.py --device cuda           # about 6 min on one H100/H200
    python benchmarks/ablation.py --rows wf-paired dense --seeds 0 1 2
    python benchmarks/ablation.py --smoke                 # CPU check, a few seconds

Rows (not a full cross product; see ``ROWS``): the three sign variants of weight-free
(paired ``[h, -h]`` inputs, one random sign per unit, paired + tanh) at (300, 100) and 10
epochs; weight-free and dense at (600, 200) and at 30 epochs; ``PrunedClassifier`` at the
density the weight-free network found, with the same total epoch budget
(``max_epochs + finetune_epochs`` = 10). With paired inputs ``density_`` is a fraction of
the *doubled* edge set, so the optional row ``pruned-edges`` matches the number of edges
that are on (``n_connections_``) instead. Each row is printed (and flushed) as soon as it
is done, so a timeout leaves the rows finished so far.
"""

import argparse
import time

import torch
from sk_weightfree._study import Protocol, markdown_table, machine_line, resolve_device, warm_up

from sk_weightfree import DenseClassifier, PrunedClassifier, WeightFreeClassifier

SMALL, WIDE = (300, 100), (600, 200)
PRUNE_SPLIT = (7, 3)  # train + fine-tune epochs of the pruned row: 10 in all, 3:1 as 30+10
# name: (label, class, params); epochs are given as "max_epochs"
ROWS = {
    "wf-paired": ("weight-free, paired [h, -h] (default)", WeightFreeClassifier,
                  {"hidden_layer_sizes": SMALL, "max_epochs": 10}),
    "wf-random": ("weight-free, one random sign per unit", WeightFreeClassifier,
                  {"hidden_layer_sizes": SMALL, "max_epochs": 10, "unit_signs": "random"}),
    "wf-paired-tanh": ("weight-free, paired, tanh", WeightFreeClassifier,
                       {"hidden_layer_sizes": SMALL, "max_epochs": 10, "activation": "tanh"}),
    "dense": ("dense (default)", DenseClassifier,
              {"hidden_layer_sizes": SMALL, "max_epochs": 10}),
    "pruned": ("pruned to the weight-free density, 7 + 3 fine-tune epochs", PrunedClassifier,
               {"hidden_layer_sizes": SMALL, "max_epochs": PRUNE_SPLIT[0],
                "finetune_epochs": PRUNE_SPLIT[1]}),
    "pruned-edges": ("pruned to the weight-free number of edges on, 7 + 3 fine-tune epochs",
                     PrunedClassifier, {"hidden_layer_sizes": SMALL,
                                        "max_epochs": PRUNE_SPLIT[0],
                                        "finetune_epochs": PRUNE_SPLIT[1]}),
    "wf-paired-wide": ("weight-free, paired", WeightFreeClassifier,
                       {"hidden_layer_sizes": WIDE, "max_epochs": 10}),
    "dense-wide": ("dense", DenseClassifier, {"hidden_layer_sizes": WIDE, "max_epochs": 10}),
    "wf-paired-30": ("weight-free, paired", WeightFreeClassifier,
                     {"hidden_layer_sizes": SMALL, "max_epochs": 30}),
    "dense-30": ("dense", DenseClassifier, {"hidden_layer_sizes": SMALL, "max_epochs": 30}),
}
DEFAULT_ROWS = [name for name in ROWS if name != "pruned-edges"]
FINAL_ROWS = ("wf-paired", "dense")  # test accuracy, read once at the end
GPU_SECONDS_PER_EPOCH = 0.7  # rough per-fit estimate at batch 128 on an H100


def epochs_of(params):
    return params["max_epochs"] + params.get("finetune_epochs", 0)


def n_dense_edges(hidden, n_features=784, n_classes=10):
    sizes = [n_features, *hidden, n_classes]
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def smoke_params(params):
    """Tiny stand-ins: (16,) or (32,) hidden units, 1 or 2 epochs."""
    params = dict(params, hidden_layer_sizes=(16,) if params["hidden_layer_sizes"] == SMALL
                  else (32,))
    params["max_epochs"] = 2 if params["max_epochs"] == 30 else 1
    if "finetune_epochs" in params:
        params["finetune_epochs"] = 1
    return params


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=DEFAULT_ROWS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-final", action="store_true", help="skip the test evaluation")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        torch.set_num_threads(1)
        args.seeds = args.seeds[:2]
    device = resolve_device(args.device)
    rows = [name for name in ROWS if name in args.rows]  # table order
    if {"pruned", "pruned-edges"} & set(rows) and "wf-paired" not in rows:
        rows.insert(0, "wf-paired")  # the pruned rows need its density
    plan = {name: (ROWS[name][0], ROWS[name][1],
                   smoke_params(ROWS[name][2]) if args.smoke else dict(ROWS[name][2]))
            for name in rows}
    protocol = Protocol("fashion-mnist", max_rows=600 if args.smoke else None)
    n_epochs = sum(epochs_of(params) for _, _, params in plan.values()) * len(args.seeds)
    if not args.no_final:  # refits on 60k rows instead of 50k
        n_epochs += sum(epochs_of(plan[name][2]) for name in FINAL_ROWS if name in plan) \
            * len(args.seeds) * 6 // 5
    print(f"# {protocol.describe()}")
    print(f"# {machine_line(device)}; batch 128; seeds {args.seeds}")
    print(f"# {n_epochs} fit-epochs planned: about {n_epochs * GPU_SECONDS_PER_EPOCH / 60:.1f}"
          f" min at {GPU_SECONDS_PER_EPOCH} s/epoch (GPU estimate)", flush=True)
    warm_up(device)
    header = ["row", "estimator", "hidden", "epochs", "validation acc (mean ± std)",
              "density", "edges on", "s/epoch", "wall s"]
    print(markdown_table(header, []), flush=True)
    results, lines = {}, []
    for name, (label, cls, params) in plan.items():
        if name == "pruned":
            params["density"] = round(results["wf-paired"].density, 4)
            label = label.replace("density", f"density {params['density']:.3f}")
        if name == "pruned-edges":
            edges = results["wf-paired"].connections
            params["density"] = round(min(1.0, sum(edges) / len(edges) / n_dense_edges(
                params["hidden_layer_sizes"])), 4)
            label = label.replace("edges on", f"edges on (density {params['density']:.3f})")
        if cls is PrunedClassifier:
            label = label.replace("7 + 3", f"{params['max_epochs']} + {params['finetune_epochs']}")
        start = time.perf_counter()
        result = protocol.evaluate(
            lambda seed: cls(**params, device=device, random_state=seed), seeds=args.seeds)
        results[name] = result
        line = [name, label, params["hidden_layer_sizes"], epochs_of(params),
                result.accuracy(), f"{result.density:.3f}",
                f"{sum(result.connections) / len(result.connections):,.0f}",
                f"{result.seconds_per_epoch:.2f}", f"{time.perf_counter() - start:.0f}"]
        lines.append(line)
        print(markdown_table(header, [line]).splitlines()[-1], flush=True)
    if not args.no_final:
        finals = []
        for name in (n for n in FINAL_ROWS if n in plan):
            label, cls, params = plan[name]
            result = protocol.evaluate(
                lambda seed: cls(**params, device=device, random_state=seed),
                seeds=args.seeds, final=True)
            finals.append([name, label, result.accuracy(), f"{result.density:.3f}"])
            print(f"# final {name}: test {result.accuracy()}", flush=True)
        print("\nTest accuracy (refit on all 60,000 training images; test read once):\n")
        print(markdown_table(["row", "estimator", "test acc (mean ± std)", "density"], finals))
    print("\nValidation table:\n")
    print(markdown_table(header, lines), flush=True)


if __name__ == "__main__":
    main()
