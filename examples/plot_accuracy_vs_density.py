"""
===============================================
Accuracy against density: pruned vs weight-free
===============================================

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
(:class:`~sk_weightfree.RandomNetworkClassifier`, hidden structure drawn at
random and not searched) are the references.
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
# 15 epochs at the real-weight networks' default learning rate (1e-3) leave them
# under-trained on this small data set; 1e-2 is a fairer reference.
real_lr = 1e-2
densities = [0.05, 0.1, 0.3]

# %%
# Fit one network of each kind per density
# ----------------------------------------
# The pruned network is pruned in three rounds (each followed by five epochs of
# retraining), which works better than one big cut at low density.
# ``RandomNetworkClassifier(density=...)`` sets the density of the *hidden*
# layers only; its output layer is searched like the weight-free one's, so its
# overall density differs. Every point below is placed at the density the
# fitted network actually has (``density_``).
scores = {"pruned": [], "weight-free": [], "random": []}
actual = {"pruned": [], "weight-free": [], "random": []}
for density in densities:
    models = {
        "pruned": PrunedClassifier(density=density, pruning="layer", n_rounds=3,
                                   finetune_epochs=5, **shared, lr=real_lr),
        "weight-free": WeightFreeClassifier(density=density, **shared),
        "random": RandomNetworkClassifier(density=density, **shared),
    }
    for name, model in models.items():
        model.fit(X_train, y_train)
        scores[name].append(model.score(X_test, y_test))
        actual[name].append(model.density_)
        print(f"target {density:4.2f}  {name:12s} density_ {model.density_:.3f}  "
              f"connections {model.n_connections_:5d}  test accuracy {scores[name][-1]:.3f}")

dense = DenseClassifier(**shared, lr=real_lr).fit(X_train, y_train)
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
    ax.plot(actual[name], values, marker=marker, color=color, label=name)
ax.axhline(dense_score, color="black", linestyle="--", label="dense (all edges)")
ax.set_xscale("log")
ax.set_xticks([0.05, 0.1, 0.2, 0.3], ["0.05", "0.1", "0.2", "0.3"])
ax.set_xlim(0.04, 0.4)
ax.minorticks_off()
ax.set_xlabel("density_ (fraction of edges kept, log scale)")
ax.set_ylabel("test accuracy")
ax.set_ylim(0.5, 1.0)
ax.set_title("digits, one hidden layer of 64 units")
ax.legend(loc="lower right")
fig.tight_layout()
plt.show()

# %%
# Reading the plot
# ----------------
# The weight-free network has no real-valued weights at all: what it knows is
# *which* edges it kept (plus a fixed sign and a batch-norm scale and shift per
# unit). The random network has the same kind of edges and units but an
# unsearched hidden layer, so the gap between the blue and the grey curves is
# what the structure search adds. With one seed and 15 epochs the numbers are
# noisy; in runs like this one the searched {0,1} network tends to hold up
# better than magnitude pruning when very few edges are kept, while real
# weights catch up as the density grows.
