"""
=================================================
Accuracy against density: pruned vs weight-free
=================================================

How few connections does a network need? Two ways to get a sparse network at a
chosen density are compared on digits:

* :class:`~sk_weightfree.PrunedClassifier` trains a dense network with real
  weights, removes the smallest-magnitude weights until ``density`` of them are
  left, and retrains the survivors. The kept edges carry real weights.
* :class:`~sk_weightfree.WeightFreeClassifier` with ``density=...`` searches
  directly for the best ``density`` fraction of each layer's edges, every
  kept edge having weight exactly 1.

``pruning="layer"`` makes the pruned network keep the same fraction in every
layer, as the weight-free one does, so both have exactly the same number of
connections. A dense network and a random {0,1} network
(:class:`~sk_weightfree.RandomNetworkClassifier`, hidden structure not
searched) are the references.
"""

# %%
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sk_weightfree import (
    DenseClassifier,
    PrunedClassifier,
    RandomNetworkClassifier,
    WeightFreeClassifier,
)

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

shared = dict(hidden_layer_sizes=(64,), max_epochs=15, device="cpu", random_state=0)
densities = [0.05, 0.1, 0.3]

# %%
# Fit one network of each kind per density
# ----------------------------------------
scores = {"pruned": [], "weight-free": [], "random": []}
for density in densities:
    models = {
        "pruned": PrunedClassifier(density=density, pruning="layer",
                                   finetune_epochs=10, **shared),
        "weight-free": WeightFreeClassifier(density=density, **shared),
        "random": RandomNetworkClassifier(density=density, **shared),
    }
    for name, model in models.items():
        model.fit(X_train, y_train)
        scores[name].append(model.score(X_test, y_test))
        print(f"density {density:4.2f}  {name:12s} connections {model.n_connections_:5d}"
              f"  test accuracy {scores[name][-1]:.3f}")

dense = DenseClassifier(**shared).fit(X_train, y_train)
dense_score = dense.score(X_test, y_test)
print(f"dense (density 1.0): test accuracy {dense_score:.3f}")

# %%
# Plot
# ----
fig, ax = plt.subplots(figsize=(5.5, 3.8))
styles = {"pruned": ("tab:orange", "s"), "weight-free": ("tab:blue", "o"),
          "random": ("tab:gray", "^")}
for name, values in scores.items():
    color, marker = styles[name]
    ax.plot(densities, values, marker=marker, color=color, label=name)
ax.axhline(dense_score, color="black", linestyle="--", label="dense (all edges)")
ax.set_xscale("log")
ax.set_xticks(densities, [str(d) for d in densities])
ax.minorticks_off()
ax.set_xlabel("density (fraction of edges kept, log scale)")
ax.set_ylabel("test accuracy")
ax.set_ylim(0, 1.02)
ax.set_title("digits, one hidden layer of 64 units")
ax.legend(loc="lower right")
fig.tight_layout()
plt.show()

# %%
# The weight-free network has no real-valued weights at all: what it knows is
# in *which* edges it kept (plus a fixed sign and batch-norm scale per unit).
# The random network has the same kind of edges and units but an unsearched
# hidden layer, so the gap between the blue and the grey curves is what the
# structure search adds.
