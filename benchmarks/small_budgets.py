"""Issue 31's small-budget probes, as a new user runs them (one thread, digits).

    python benchmarks/small_budgets.py

Prints: PrunedClassifier((32,), max_epochs=15) in 3-fold CV on digits / 16 (the defaults);
the weight-agnostic classifier on digits / 16 against standardised digits (3-fold CV, 15
and 30 epochs); its validation accuracy against the epoch budget (the protocol's digits
validation split, seeds 0-2); streamed with partial_fit (5 chunks, 20 passes, held-out
30 %); and both families in HalvingGridSearchCV with max_epochs as the resource (5 to 15).
"""

import warnings

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import (HalvingGridSearchCV, cross_val_score,
                                     train_test_split)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_weightfree import PrunedClassifier, WeightAgnosticClassifier
from sk_weightfree._study import Protocol


def main():
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    X, y = load_digits(return_X_y=True)
    pruned = PrunedClassifier(hidden_layer_sizes=(32,), max_epochs=15, random_state=0)
    print("pruned (32,) 15 epochs, 3-fold on X/16:",
          cross_val_score(pruned, X / 16, y, cv=3).round(3), flush=True)
    for epochs in (15, 30):
        agnostic = WeightAgnosticClassifier(max_epochs=epochs, random_state=0)
        print(f"weight-agnostic {epochs} epochs, 3-fold: X/16",
              cross_val_score(agnostic, X / 16, y, cv=3).round(3), "standardised",
              cross_val_score(make_pipeline(StandardScaler(), agnostic), X, y, cv=3).round(3),
              flush=True)
    protocol = Protocol("digits")
    for epochs in (5, 10, 15, 30):
        result = protocol.evaluate(lambda seed: WeightAgnosticClassifier(
            max_epochs=epochs, random_state=seed, device="cpu"))
        print(f"weight-agnostic validation, {epochs} epochs: {result.accuracy()}", flush=True)
    X_train, X_test, y_train, y_test = train_test_split(
        StandardScaler().fit_transform(X), y, test_size=0.3, stratify=y, random_state=0)
    chunks = np.array_split(np.arange(len(y_train)), 5)
    for seed in range(3):
        agnostic = WeightAgnosticClassifier(random_state=seed)
        for passes in range(1, 21):
            for chunk in chunks:
                agnostic.partial_fit(X_train[chunk], y_train[chunk], classes=np.arange(10))
            if passes in (5, 20):
                print(f"weight-agnostic streamed, seed {seed}, {passes} passes: held-out "
                      f"{agnostic.score(X_test, y_test):.3f}", flush=True)
    for estimator, grid in ((PrunedClassifier(hidden_layer_sizes=(32,), random_state=0),
                             [1e-3, 3e-3]),
                            (WeightAgnosticClassifier(hidden_layer_sizes=(32,), random_state=0),
                             [0.02, 0.05])):
        step = type(estimator).__name__.lower()
        search = HalvingGridSearchCV(make_pipeline(StandardScaler(), estimator),
                                     {f"{step}__lr": grid}, resource=f"{step}__max_epochs",
                                     min_resources=5, max_resources=15, factor=3, cv=3,
                                     random_state=0).fit(X, y)
        print(f"{type(estimator).__name__} in HalvingGridSearchCV (5 then 15 epochs): mean "
              f"CV accuracy {search.cv_results_['mean_test_score'].round(3)}", flush=True)


if __name__ == "__main__":
    main()
