"""Choose among parameter variants of one estimator by validation accuracy.

Follows the tuning protocol of ``sk_weightfree._study``: every variant is fitted on the training
part minus a validation split and scored on that split, mean ± std over ``--seeds``
(at least 3); the best mean is chosen. ``--final`` then refits only the chosen variant on
the whole training part and reports its test accuracy (the test split's one read)::

    python benchmarks/variants.py --dataset fashion-mnist --estimator weight-free \
        --epochs 10 '{}' '{"lr": 0.01}' '{"sampling": "bernoulli"}' --final

Each positional argument is a JSON object of constructor parameters. ``--smoke`` runs a
few hundred rows, ``hidden_layer_sizes=(16,)``, 1 epoch and 2 seeds (a check that the
script works, not a result).
"""

import argparse
import json

import torch
from sk_weightfree._study import DATASETS, Protocol, markdown_table, machine_line, resolve_device, warm_up

from sk_weightfree.cli import ESTIMATOR_NAMES, _estimator_classes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", default=["{}"])
    parser.add_argument("--dataset", default="digits", choices=DATASETS)
    parser.add_argument("--estimator", default="weight-free", choices=ESTIMATOR_NAMES)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--final", action="store_true",
                        help="refit the chosen variant on all training data, report test")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        torch.set_num_threads(1)
        args.seeds, args.epochs = args.seeds[:2], 1
    if len(args.seeds) < 3 and not args.smoke:
        print("# warning: the protocol asks for at least 3 seeds")
    device = resolve_device(args.device)
    protocol = Protocol(args.dataset, max_rows=400 if args.smoke else None)
    cls = _estimator_classes()[args.estimator]
    base = {"device": device}
    if args.epochs:
        base["max_epochs"] = args.epochs
    if args.smoke:
        base["hidden_layer_sizes"] = (16,)

    def factory(text):
        params = {**base, **json.loads(text)}
        return lambda seed: cls(**params, random_state=seed)

    print(f"# {protocol.describe()}")
    print(f"# {cls.__name__}, seeds {args.seeds}, common {base}; {machine_line(device)}")
    warm_up(device)
    results = {}
    for text in args.variants:
        results[text] = result = protocol.evaluate(factory(text), seeds=args.seeds)
        print(f"# {text}: validation {result.accuracy()}", flush=True)
    chosen = max(results, key=lambda text: results[text].mean)
    rows = [[f"`{text}`" + (" **chosen**" if text == chosen else ""), r.accuracy(),
             f"{r.density:.3f}", max(r.n_iter), f"{r.seconds_per_epoch:.2f}"]
            for text, r in results.items()]
    print(markdown_table(["params", "validation acc (mean ± std)", "density", "epochs",
                        "s/epoch"], rows), flush=True)
    if args.final:
        result = protocol.evaluate(factory(chosen), seeds=args.seeds, final=True)
        print(f"\nchosen `{chosen}`: test accuracy {result.accuracy()} over seeds "
              f"{args.seeds} (fitted on the whole training part)")


if __name__ == "__main__":
    main()
