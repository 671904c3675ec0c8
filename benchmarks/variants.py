"""Fit one estimator under several parameter settings and print a results table.

Used to tune and to record what was tried (negative results included)::

    python benchmarks/variants.py --dataset fashion-mnist --estimator weight-free \
        --epochs 10 '{}' '{"lr": 0.01}' '{"sampling": "bernoulli"}'

Each positional argument is a JSON object of constructor parameters. Data: the same
split and standardisation as ``sk-weightfree compare``.
"""

import argparse
import json
import time

import numpy as np
import torch

from sk_weightfree.cli import _estimator_classes, load_dataset


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", default=["{}"])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--estimator", default="weight-free")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    X_train, X_test, y_train, y_test, description = load_dataset(args.dataset, seed=args.seed)
    cls = _estimator_classes()[args.estimator]
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    if device == "auto":
        device = "cpu"
    name = torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"
    print(f"# {description}; {cls.__name__}; device {name}; torch threads "
          f"{torch.get_num_threads()}")
    print("| params | test acc | train acc | density | epochs | fit s | s/epoch |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for text in args.variants:
        params = {"random_state": args.seed, "device": device, **json.loads(text)}
        if args.epochs:
            params.setdefault("max_epochs", args.epochs)
        clf = cls(**params)
        start = time.perf_counter()
        clf.fit(X_train, y_train)
        seconds = time.perf_counter() - start
        test = np.mean(clf.predict(X_test) == y_test)
        train = np.mean(clf.predict(X_train) == y_train)
        print(f"| `{text}` | {test:.4f} | {train:.4f} | {clf.density_:.3f} | {clf.n_iter_} "
              f"| {seconds:.1f} | {seconds / max(1, clf.n_iter_):.2f} |", flush=True)


if __name__ == "__main__":
    main()
