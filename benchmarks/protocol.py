"""The tuning protocol every benchmark script uses: choose on validation, read test once.

Not a script; imported by ``variants.py``, ``ablation.py``, ``density_sweep.py`` and
``gpu.py``. Run it directly for a one-line check of the splits::

    python benchmarks/protocol.py --dataset fashion-mnist

Rules:

- **Splits.** ``digits``: scikit-learn's ``load_digits``, a fixed 70/30 stratified split
  (``random_state=0``). ``fashion-mnist``: the official 60k/10k files. A validation split
  is carved from the *training* part only (stratified, fixed seed): 10,000 of the 60,000
  Fashion-MNIST images, 20 % of the digits training part.
- **Standardisation** with the statistics of the part the estimator is fitted on
  (``StandardScaler``): train-minus-validation while tuning, the full training part at
  the end.
- **Choices on validation.** :meth:`Protocol.evaluate` fits on train-minus-validation and
  scores the validation split, over several seeds (mean ± std, at least 3 seeds).
- **Test read once, at the end.** ``evaluate(..., final=True)`` refits on the whole
  training part and scores the test split; call it only for the configurations already
  chosen. The test split is not even loaded before that call.
"""

import argparse
import os
import platform
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

DATASETS = ("digits", "fashion-mnist")
SPLIT_SEED = 0


def _stratified_subset(X, y, n, seed):
    """At most ``n`` rows of ``(X, y)``, stratified (for smoke runs)."""
    if n is None or n >= len(y):
        return X, y
    X, _, y, _ = train_test_split(X, y, train_size=n, stratify=y, random_state=seed)
    return X, y


def _load(dataset, part):
    """``(X, y)`` of the training or test part, raw (not standardised)."""
    if dataset == "fashion-mnist":
        from sk_weightfree.datasets import load_fashion_mnist

        return load_fashion_mnist(subset=part, return_X_y=True)
    if dataset == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(
            X.astype(np.float32), y, test_size=0.3, stratify=y, random_state=SPLIT_SEED)
        return (X_train, y_train) if part == "train" else (X_test, y_test)
    raise ValueError(f"dataset must be one of {DATASETS}; got {dataset!r}")


def _standardise(X_fit, X_score):
    scaler = StandardScaler().fit(X_fit)
    return (scaler.transform(X_fit).astype(np.float32),
            scaler.transform(X_score).astype(np.float32))


@dataclass
class Result:
    """Scores of one configuration over seeds; ``split`` is "validation" or "test"."""

    split: str
    scores: list
    densities: list
    epoch_seconds: list = field(default_factory=list)  # every epoch of every seed
    fit_seconds: list = field(default_factory=list)
    n_iter: list = field(default_factory=list)
    connections: list = field(default_factory=list)  # n_connections_ (edges on)

    @property
    def mean(self):
        return float(np.mean(self.scores))

    @property
    def std(self):
        return float(np.std(self.scores))

    @property
    def density(self):
        return float(np.mean(self.densities))

    @property
    def seconds_per_epoch(self):
        return float(np.median(self.epoch_seconds)) if self.epoch_seconds else float("nan")

    def accuracy(self):
        """``"0.8912 ± 0.0021"``: mean ± (population) std over seeds."""
        return f"{self.mean:.4f} ± {self.std:.4f}"


class Protocol:
    """Data splits and the fit/score loop of the tuning protocol.

    Parameters
    ----------
    dataset : {"digits", "fashion-mnist"}
    validation_size : int or float, optional
        Size of the validation split carved from the training part (default 10,000
        images for Fashion-MNIST, 0.2 for digits).
    max_rows : int, optional
        Keep at most this many training (and test) rows, stratified: smoke runs only.
    """

    def __init__(self, dataset="digits", *, validation_size=None, max_rows=None):
        self.dataset = dataset
        self.max_rows = max_rows
        X, y = _stratified_subset(*_load(dataset, "train"), max_rows, SPLIT_SEED)
        if validation_size is None:
            validation_size = 10_000 if dataset == "fashion-mnist" else 0.2
        if isinstance(validation_size, int) and validation_size >= len(y):
            validation_size = 0.2  # smoke subsets
        X_fit, X_val, y_fit, y_val = train_test_split(
            X, y, test_size=validation_size, stratify=y, random_state=SPLIT_SEED)
        self._train = (X, y)
        self.X_fit, self.X_val = _standardise(X_fit, X_val)
        self.y_fit, self.y_val = y_fit, y_val
        self.test_reads = 0

    def describe(self):
        n, n_fit, n_val = len(self._train[1]), len(self.y_fit), len(self.y_val)
        return (f"{self.dataset}: {n} training rows = {n_fit} fit + {n_val} validation "
                f"(stratified, seed {SPLIT_SEED}); test read only for final evaluations")

    def final_data(self):
        """``(X_train, y_train, X_test, y_test)``: the whole training part and the test
        split, standardised with training statistics. Reading it counts as a test read."""
        self.test_reads += 1
        X_test, y_test = _stratified_subset(*_load(self.dataset, "test"), self.max_rows,
                                            SPLIT_SEED)
        X_train, X_test = _standardise(self._train[0], X_test)
        return X_train, self._train[1], X_test, y_test

    def evaluate(self, make_estimator, seeds=(0, 1, 2), final=False):
        """Fit ``make_estimator(seed)`` once per seed and score it.

        ``final=False``: fit on train-minus-validation, score validation accuracy.
        ``final=True``: fit on the whole training part, score test accuracy (only for
        configurations already chosen on validation). Returns a :class:`Result`.
        """
        if final:
            X_fit, y_fit, X_score, y_score = self.final_data()
        else:
            X_fit, y_fit, X_score, y_score = self.X_fit, self.y_fit, self.X_val, self.y_val
        result = Result("test" if final else "validation", [], [])
        for seed in seeds:
            estimator = make_estimator(seed)
            start = time.perf_counter()
            estimator.fit(X_fit, y_fit)
            result.fit_seconds.append(time.perf_counter() - start)
            result.scores.append(float(np.mean(estimator.predict(X_score) == y_score)))
            result.densities.append(float(estimator.density_))
            result.n_iter.append(int(estimator.n_iter_))
            result.connections.append(int(estimator.n_connections_))
            result.epoch_seconds += [row["seconds"] for row in estimator.history_]
        return result


def resolve_device(device):
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def warm_up(device):
    """One tiny untimed fit, so that torch/CUDA start-up is charged to no row."""
    from sk_weightfree import DenseClassifier, WeightFreeClassifier

    rng = np.random.RandomState(0)
    X, y = rng.randn(256, 8).astype(np.float32), np.arange(256) % 2
    for cls in (DenseClassifier, WeightFreeClassifier):
        cls(hidden_layer_sizes=(8,), max_epochs=1, device=device, random_state=0).fit(X, y)


def machine_line(device):
    """One line naming the machine: device, torch version, threads."""
    device = resolve_device(device)
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        card = f"{props.name} ({props.total_memory / 2**30:.0f} GiB), CUDA {torch.version.cuda}"
    else:
        card = f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    return (f"device: {card}; torch {torch.__version__}, {torch.get_num_threads()} "
            f"threads; Python {platform.python_version()}")


def format_table(header, rows):
    """A markdown table: ``header`` a list of column names, ``rows`` lists of cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits", choices=DATASETS)
    args = parser.parse_args()
    protocol = Protocol(args.dataset)
    print(protocol.describe())
    print(machine_line("auto"))
