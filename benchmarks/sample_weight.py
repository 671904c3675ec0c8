"""What sample weights cost and what they mean, in three measurements.

- ``--stage repeat``: weighting rows by integer k vs repeating them k times, with mini-batches
  (float32, batches of 64): how far apart the two models end (they are equal only with one
  batch in float64; see tests/test_common.py).
- ``--stage time``: a weighted vs an unweighted fit of the default weight-free classifier,
  interleaved in one process (digits repeated 5 times, 3 epochs), with the load average.
- ``--stage accuracy``: default fits of the batch-normalised families on a validation split
  carved from the training part (digits; Friedman #1), 3 seeds. Run it on two commits to see
  what a change of the statistics does, e.g. ``PYTHONPATH=<old checkout> python
  benchmarks/sample_weight.py --stage accuracy``.
- ``--stage balanced``: ``class_weight="balanced"`` on an imbalanced problem (95/5), balanced
  accuracy of the batch-normalised classifiers on a validation split, 6 seeds (the class
  weights reach the batch statistics since they are weighted).

Usage: ``python benchmarks/sample_weight.py [--stage repeat time accuracy balanced]``.
"""

import argparse
import os
import time
import warnings

import numpy as np
import torch
from sklearn.datasets import load_digits, make_classification, make_friedman1
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import sk_weightfree


def repeat():
    X, y = make_classification(n_samples=300, n_features=8, n_informative=5, n_classes=3,
                               random_state=0)
    k = np.random.RandomState(0).randint(0, 3, 300)
    params = dict(hidden_layer_sizes=(16,), max_epochs=5, batch_size=64, device="cpu",
                  random_state=0)
    for cls in (sk_weightfree.DenseClassifier, sk_weightfree.WeightFreeClassifier):
        weighted = cls(**params).fit(X, y, sample_weight=k.astype(float))
        repeated = cls(**params).fit(np.repeat(X, k, axis=0), np.repeat(y, k))
        gap = np.abs(weighted.predict_proba(X) - repeated.predict_proba(X)).max()
        same = (weighted.predict(X) == repeated.predict(X)).mean()
        print(f"{cls.__name__}: weighted vs repeated, max |proba diff| {gap:.3f}, "
              f"same labels {same:.0%}")


def timing(rounds=5):
    X, y = load_digits(return_X_y=True)
    X, y = np.vstack([X / 16] * 5).astype(np.float32), np.concatenate([y] * 5)
    weights = np.random.RandomState(0).randint(1, 4, len(y)).astype(float)
    seconds = {"unweighted": [], "weighted": []}
    for _ in range(rounds):
        for name, w in (("unweighted", None), ("weighted", weights)):
            start = time.perf_counter()
            sk_weightfree.WeightFreeClassifier(max_epochs=3, random_state=0).fit(
                X, y, sample_weight=w)
            seconds[name].append(time.perf_counter() - start)
    ratio = np.array(seconds["weighted"]) / np.array(seconds["unweighted"])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), load average "
          f"{os.getloadavg()}")
    for name, values in seconds.items():
        print(f"{name}: " + " ".join(f"{v:.2f}" for v in values) + " s")
    print("weighted / unweighted (first round includes warm-up): "
          + " ".join(f"{r:.2f}" for r in ratio))


def accuracy(seeds=3):
    X, y = load_digits(return_X_y=True)
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    X_fit, X_val, y_fit, y_val = train_test_split(X_train, y_train, test_size=0.25,
                                                  stratify=y_train, random_state=0)
    scaler = StandardScaler().fit(X_fit)
    X_fit, X_val = scaler.transform(X_fit), scaler.transform(X_val)
    rows = {}
    for name in ("WeightFreeClassifier", "RandomNetworkClassifier"):
        rows[f"{name} digits accuracy"] = [
            getattr(sk_weightfree, name)(random_state=s).fit(X_fit, y_fit).score(X_val, y_val)
            for s in range(seeds)]
    X, y = make_friedman1(1000, noise=1.0, random_state=0)
    X_fit, X_val, y_fit, y_val = train_test_split(X, y, test_size=0.25, random_state=0)
    scaler = StandardScaler().fit(X_fit)
    X_fit, X_val = scaler.transform(X_fit), scaler.transform(X_val)
    for name in ("WeightFreeRegressor", "RandomNetworkRegressor", "WeightAgnosticRegressor"):
        rows[f"{name} Friedman #1 R²"] = [
            getattr(sk_weightfree, name)(random_state=s).fit(X_fit, y_fit).score(X_val, y_val)
            for s in range(seeds)]
    for name, values in rows.items():
        print(f"{name} (validation, {seeds} seeds): {np.mean(values):.4f} ± {np.std(values):.4f}")


def balanced(seeds=6):
    from sklearn.metrics import balanced_accuracy_score

    X, y = make_classification(2000, 20, n_informative=8, weights=[0.95, 0.05],
                               random_state=0)
    X_train, _, y_train, _ = train_test_split(X, y, stratify=y, random_state=0)
    X_fit, X_val, y_fit, y_val = train_test_split(X_train, y_train, test_size=0.25,
                                                  stratify=y_train, random_state=0)
    for cls in (sk_weightfree.WeightFreeClassifier, sk_weightfree.RandomNetworkClassifier):
        scores = [balanced_accuracy_score(y_val, cls(class_weight="balanced", max_epochs=20,
                                                     random_state=s).fit(X_fit, y_fit)
                                          .predict(X_val)) for s in range(seeds)]
        print(f"{cls.__name__} class_weight='balanced' (validation balanced accuracy, "
              f"{int((y_val == 1).sum())} minority rows, {seeds} seeds): "
              f"{np.mean(scores):.3f} ± {np.std(scores):.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    stages = {"repeat": repeat, "time": timing, "accuracy": accuracy, "balanced": balanced}
    parser.add_argument("--stage", nargs="+", choices=list(stages), default=list(stages))
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    for stage in args.stage:
        stages[stage]()
