"""The families on a weight-free network's learned architecture, on digits (issue 30).

Digits, standardised (scaler fitted on the training rows), a stratified 70/30 split
(``random_state=0``). For each seed 0, 1, 2: a ``WeightFreeClassifier`` (64 hidden units,
20 epochs) searches an architecture ``a = architecture_of(source)``; then each family is
fitted on ``a`` with the same recipe (64 hidden units, 20 epochs, its own default
learning rate and schedule, no tuning) and scored once on the test rows. Prints a
Markdown table of mean ± std over the seeds.

``--score-std`` instead chooses :class:`~sk_weightfree.nn.SignRule`'s ``score_std`` (the
default of the weight-free family on a given architecture) on a validation split (25 %)
carved from the training rows, the test rows unread.

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD python benchmarks/transplant_digits.py
    OMP_NUM_THREADS=1 PYTHONPATH=$PWD python benchmarks/transplant_digits.py --score-std
"""

import argparse
import warnings

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import sk_weightfree as sw
import sk_weightfree._weight_free as weight_free_module
from sk_weightfree.nn import SignRule

SEEDS = (0, 1, 2)
RECIPE = dict(hidden_layer_sizes=(64,), max_epochs=20, device="cpu")
FAMILIES = (sw.DenseClassifier, sw.WeightFreeClassifier, sw.WeightAgnosticClassifier,
            sw.RandomNetworkClassifier)


def data():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y,
                                                        random_state=0)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def source_architecture(X, y, seed):
    return sw.architecture_of(sw.WeightFreeClassifier(random_state=seed, **RECIPE).fit(X, y))


def choose_score_std(X_train, y_train):
    X_fit, X_val, y_fit, y_val = train_test_split(X_train, y_train, test_size=0.25,
                                                  stratify=y_train, random_state=0)
    for std in (0.1, 0.5, 1.0):
        weight_free_module.edge_rule = lambda signs, std=std: SignRule(score_std=std)
        scores = [sw.WeightFreeClassifier(random_state=seed, architecture=source_architecture(
            X_fit, y_fit, seed), **RECIPE).fit(X_fit, y_fit).score(X_val, y_val)
            for seed in SEEDS]
        print(f"| {std} | {np.mean(scores):.3f} ± {np.std(scores):.3f} |")


def table(X_train, X_test, y_train, y_test):
    rows = {}
    for seed in SEEDS:
        source = sw.WeightFreeClassifier(random_state=seed, **RECIPE).fit(X_train, y_train)
        architecture = sw.architecture_of(source)
        rows.setdefault("WeightFreeClassifier (the source: searched)", []).append(
            source.score(X_test, y_test))
        for cls in FAMILIES:
            est = cls(random_state=seed, architecture=architecture, **RECIPE)
            rows.setdefault(f"{cls.__name__}(architecture=a)", []).append(
                est.fit(X_train, y_train).score(X_test, y_test))
    print("| model | test accuracy |\n|---|---|")
    for name, scores in rows.items():
        print(f"| {name} | {np.mean(scores):.3f} ± {np.std(scores):.3f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--score-std", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    splits = data()
    if args.score_std:
        choose_score_std(*splits[::2])
    else:
        table(*splits)
