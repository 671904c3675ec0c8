"""The ``sk-weightfree`` command: ``sk-weightfree compare`` fits every estimator and reports."""

import argparse
import csv
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ESTIMATOR_NAMES = ("dense", "weight-free", "pruned", "weight-agnostic", "random")


class UsageError(Exception):
    """Bad input from the user: reported in one line with exit status 2."""


def _estimator_classes():
    from . import (DenseClassifier, PrunedClassifier, RandomNetworkClassifier,
                   WeightAgnosticClassifier, WeightFreeClassifier)

    return dict(zip(ESTIMATOR_NAMES, (DenseClassifier, WeightFreeClassifier, PrunedClassifier,
                                      WeightAgnosticClassifier, RandomNetworkClassifier)))


def load_dataset(name, target=None, seed=0):
    """Return ``(X_train, X_test, y_train, y_test, description)`` for ``--dataset``.

    Features are standardised with statistics of the training part.
    """
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    if name == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        parts = train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)
        description = "digits (sklearn, 70/30 stratified split)"
    elif name == "fashion-mnist":
        from .datasets import load_fashion_mnist

        try:
            X_train, y_train, X_test, y_test = load_fashion_mnist(return_X_y=True)
        except FileNotFoundError as exc:
            raise UsageError(str(exc).replace("\n", " ")) from None
        parts = [X_train, X_test, y_train, y_test]
        description = "Fashion-MNIST (60k/10k)"
    else:
        X, y = _load_file(Path(name), target)
        parts = train_test_split(X, y, test_size=0.3, random_state=seed,
                                 stratify=y if np.unique(y, return_counts=True)[1].min() > 1
                                 else None)
        description = f"{name} (70/30 split)"
    X_train, X_test, y_train, y_test = parts
    scaler = StandardScaler().fit(X_train)
    return (scaler.transform(X_train).astype(np.float32),
            scaler.transform(X_test).astype(np.float32), y_train, y_test, description)


def _load_file(path, target):
    if not path.exists():
        raise UsageError(
            f"data set {str(path)!r} is neither 'digits', 'fashion-mnist' nor an existing file"
        )
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            missing = {"X", "y"} - set(data.files)
            if missing:
                raise UsageError(f"{path} lacks array(s) {sorted(missing)}; it needs 'X' and 'y'")
            X, y = data["X"], data["y"]
    elif path.suffix == ".csv":
        if target is None:
            raise UsageError("a .csv data set needs --target COLUMN")
        X, y = _read_csv(path, target)
    else:
        raise UsageError(f"unsupported data file {path.name!r}: use .npz (X, y) or .csv")
    if X.ndim != 2 or len(X) != len(y):
        raise UsageError(f"{path}: X must be 2-D with one row per label; got X {X.shape}, "
                         f"y {y.shape}")
    return X, y


def _read_csv(path, target):
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise UsageError(f"{path} is empty")
    header, body = rows[0], rows[1:]
    if target not in header:
        raise UsageError(f"{path} has no column {target!r}; columns are {header}")
    column = header.index(target)
    body = [r for r in body if r]  # blank lines
    short = [i + 2 for i, r in enumerate(body) if len(r) != len(header)]
    if short:
        raise UsageError(f"{path}: line {short[0]} has a different number of fields "
                         f"than the header ({len(header)})")
    try:
        X = np.array([[float(v) for i, v in enumerate(r) if i != column] for r in body])
    except ValueError as exc:
        raise UsageError(f"{path}: non-numeric feature value ({exc})") from None
    return X, np.array([r[column] for r in body])


def run_compare(args):
    """Fit the chosen estimators, print the table and similarity matrix, write the report."""
    import torch

    from . import pairwise_spectral_similarity, spectral_density
    from ._base import resolve_device

    classes = _estimator_classes()
    names = args.estimators or list(ESTIMATOR_NAMES)
    unknown = [n for n in names if n not in classes]
    if unknown:
        raise UsageError(f"unknown estimator(s) {unknown}; choose from {list(ESTIMATOR_NAMES)}")
    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    X_train, X_test, y_train, y_test, description = load_dataset(
        args.dataset, args.target, args.seed)
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    say(f"data: {description}; train {X_train.shape}, test {X_test.shape}; device: {device}")

    rows, fitted = [], {}
    for name in names:
        params = {"random_state": args.seed, "device": str(device),
                  "verbose": 0 if args.quiet else 1}
        if args.epochs is not None:
            params["max_epochs"] = args.epochs
        clf = classes[name](**params)
        start = time.perf_counter()
        clf.fit(X_train, y_train)
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        accuracy = float(np.mean(clf.predict(X_test) == y_test))
        predict_seconds = time.perf_counter() - start
        fitted[name] = clf
        rows.append({"estimator": name, "test_accuracy": accuracy,
                     "density": float(clf.density_), "connections": int(clf.n_connections_),
                     "fit_seconds": fit_seconds, "predict_seconds": predict_seconds,
                     "epochs": int(clf.n_iter_)})

    similarity = pairwise_spectral_similarity(list(fitted.values()), random_state=args.seed)
    densities = {name: spectral_density(clf, random_state=args.seed)
                 for name, clf in fitted.items()}
    say("")
    say(format_table(rows))
    say("")
    say("spectral similarity (1 = identical spectra)")
    say(format_matrix(names, similarity))

    results = {
        "dataset": description, "seed": args.seed, "device": str(device),
        "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                        else platform.processor() or platform.machine()),
        "versions": _versions(), "results": rows,
        "spectral_similarity": {"estimators": names, "matrix": similarity.tolist()},
    }
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(results, indent=2))
        _write_csv(out / "results.csv", rows, names, similarity, results)
        from ._report import plot_report

        plot_report(rows, names, similarity, densities, out / "report.png",
                    title=f"sk-weightfree compare: {description}")
        say(f"\nwrote {out / 'results.json'}, {out / 'results.csv'}, {out / 'report.png'}")
    return results


def format_table(rows):
    """Aligned text table of the per-estimator results."""
    header = ["estimator", "test acc", "density", "connections", "fit s", "predict s"]
    body = [[r["estimator"], f"{r['test_accuracy']:.4f}", f"{r['density']:.3f}",
             f"{r['connections']:,}", f"{r['fit_seconds']:.2f}", f"{r['predict_seconds']:.3f}"]
            for r in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = [header, ["-" * w for w in widths], *body]
    return "\n".join(
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                  for i, (cell, w) in enumerate(zip(line, widths)))
        for line in lines
    )


def format_matrix(names, matrix):
    """Aligned text rendering of a labelled square matrix."""
    width = max(len(n) for n in names)
    head = " " * width + "  " + "  ".join(n.rjust(max(6, len(n))) for n in names)
    lines = [head]
    for name, row in zip(names, matrix):
        lines.append(name.ljust(width) + "  " + "  ".join(
            f"{v:.3f}".rjust(max(6, len(n))) for n, v in zip(names, row)))
    return "\n".join(lines)


def _write_csv(path, rows, names, similarity, results):
    fields = list(rows[0]) + [f"similarity_{n}" for n in names] + ["dataset", "device", "seed"]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for row, sims in zip(rows, similarity):
            writer.writerow({**row, **{f"similarity_{n}": float(s) for n, s in zip(names, sims)},
                             "dataset": results["dataset"], "device": results["device"],
                             "seed": results["seed"]})


def _versions():
    import scipy
    import skorch
    import sklearn
    import torch

    from . import __version__

    return {"sk_weightfree": __version__, "python": platform.python_version(),
            "numpy": np.__version__, "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__, "torch": torch.__version__,
            "skorch": skorch.__version__}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="sk-weightfree", description="Weight-free neural networks, compared.")
    commands = parser.add_subparsers(dest="command", required=True)
    compare = commands.add_parser(
        "compare", help="fit every estimator on one data set and compare them",
        description="Fit the estimators on a fixed train/test split; print accuracy, density, "
                    "connections, timings and the spectral similarity matrix.")
    compare.add_argument("--dataset", default="digits",
                         help="'digits' (default, embedded), 'fashion-mnist', or a path to a "
                              ".npz (arrays X, y) or .csv (with --target)")
    compare.add_argument("--target", help="label column of a .csv data set")
    compare.add_argument("--estimators", nargs="+", metavar="NAME",
                         help=f"subset of {', '.join(ESTIMATOR_NAMES)} (default: all)")
    compare.add_argument("--epochs", type=_positive_int, help="max_epochs for every estimator")
    compare.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    compare.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    compare.add_argument("--out", default="compare-results",
                         help="folder for results.json, results.csv, report.png "
                              "(default: compare-results; '' writes nothing)")
    compare.add_argument("--quiet", action="store_true", help="print nothing, no progress bars")
    return parser


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def main(argv=None):
    """Entry point of ``sk-weightfree``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        run_compare(args)
    except UsageError as exc:
        print(f"sk-weightfree: error: {exc}", file=sys.stderr)
        return 2
    return 0
