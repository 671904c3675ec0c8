"""
Regression: the five families on Friedman #1
=============================================

Every family of the package has a regressor as well as a classifier:
:class:`~sk_weightfree.DenseRegressor`, :class:`~sk_weightfree.WeightFreeRegressor`,
:class:`~sk_weightfree.PrunedRegressor`, :class:`~sk_weightfree.WeightAgnosticRegressor`
and :class:`~sk_weightfree.RandomNetworkRegressor`. They score with R², accept one or
several target columns, and standardise the targets inside ``fit`` (the map back is folded
into the last layer), so unscaled targets need no
:class:`~sklearn.compose.TransformedTargetRegressor`.

Here they are fitted on scikit-learn's Friedman #1 problem (10 features, 5 of them
relevant, a smooth non-linear target) and compared on a held-out split with
scikit-learn's :class:`~sklearn.neural_network.MLPRegressor` and a linear
:class:`~sklearn.linear_model.Ridge`.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import make_friedman1
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_weightfree import (
    DenseRegressor,
    PrunedRegressor,
    RandomNetworkRegressor,
    WeightAgnosticRegressor,
    WeightFreeRegressor,
)

torch.set_num_threads(1)  # small networks: one thread is the fastest on a shared CPU
# MLPRegressor stops at max_iter=500 before its loss changes by less than its tol on this
# noisy target, and says so; the reference is used as it stands.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = make_friedman1(n_samples=1000, noise=1.0, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)

# %%
# Fit every model in a pipeline with a :class:`~sklearn.preprocessing.StandardScaler`.
# The networks share one architecture (one hidden layer of 64 units) and 30 epochs.

common = dict(hidden_layer_sizes=(64,), max_epochs=30, device="cpu", random_state=0)
models = {
    "dense": DenseRegressor(**common),
    "weight-free": WeightFreeRegressor(**common),
    "pruned": PrunedRegressor(**common),
    "weight-agnostic": WeightAgnosticRegressor(**common),
    "random": RandomNetworkRegressor(**common),
    "MLPRegressor": MLPRegressor(hidden_layer_sizes=(64,), max_iter=500, random_state=0),
    "Ridge": Ridge(),
}
scores, densities = {}, {}
for name, model in models.items():
    pipe = make_pipeline(StandardScaler(), model).fit(X_train, y_train)
    scores[name] = pipe.score(X_test, y_test)
    densities[name] = getattr(pipe[-1], "density_", np.nan)
    print(f"{name:16s} test R² {scores[name]:.3f}  density {densities[name]:.3f}")

# %%
# The weight-free regressor's ``coefs_`` are still exactly 0 or 1; the real numbers it
# keeps belong to units (``unit_scales_``, ``intercepts_``), and the target's scale is
# folded into the last layer's.

weight_free = models["weight-free"]
print(sorted({float(v) for c in weight_free.coefs_ for v in c.ravel()}),
      [c.shape for c in weight_free.coefs_])

# %%
# Test R² of each model (higher is better; the labels give the density of the networks).

fig, ax = plt.subplots(figsize=(7, 3.5))
names = list(scores)
colors = ["tab:blue"] * 5 + ["tab:gray"] * 2
ax.barh(names[::-1], [scores[n] for n in names[::-1]], color=colors[::-1])
for i, name in enumerate(names[::-1]):
    label = f"{scores[name]:.3f}"
    if not np.isnan(densities[name]):
        label += f"  (density {densities[name]:.2f})"
    ax.text(max(scores[name], 0) + 0.01, i, label, va="center", fontsize=8)
ax.set_xlim(0, 1.3)
ax.set_xlabel("test R²")
ax.set_title("Friedman #1, 1,000 samples, hidden (64,)")
fig.tight_layout()
plt.show()

# %%
# One split and one seed, so read the bars as an illustration, not a benchmark. The
# weight-free regressor, whose every weight is 0 or 1, is not behind the real-weight
# networks here; the weight-agnostic one, whose mask must work for every value in
# ``weight_values`` and which trains no real number at all, is far behind them.
