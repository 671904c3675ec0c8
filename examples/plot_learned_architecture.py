"""
=======================================
Looking at a learned architecture
=======================================

A weight-free network learns *which edges exist*; :mod:`sk_weightfree.plotting`
shows them, with scikit-learn's ``Display`` API (``from_estimator``,
``plot(ax=...)``, ``figure_``):

* :class:`~sk_weightfree.plotting.ReceptiveFieldDisplay`: each first-layer
  unit's incoming edges as an image of the input — +1, −1 or no edge;
* :class:`~sk_weightfree.plotting.DegreeDisplay`: each layer's degree
  distributions beside those of a random network with as many edges;
* :class:`~sk_weightfree.plotting.NetworkDisplay`: the network drawn as nodes and
  signed edges.

A :class:`~sk_weightfree.WeightFreeClassifier` with one hidden layer of 32 units
learns the 8×8 digits for a few epochs (to keep the example fast).
"""

# %%
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits, load_iris
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sk_weightfree import DenseClassifier, WeightFreeClassifier
from sk_weightfree.plotting import DegreeDisplay, NetworkDisplay, ReceptiveFieldDisplay

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X / 16.0, y, test_size=0.3, stratify=y, random_state=0)
weight_free = WeightFreeClassifier(hidden_layer_sizes=(32,), max_epochs=10, device="cpu",
                                   random_state=0).fit(X_train, y_train)
print(f"weight-free test accuracy {weight_free.score(X_test, y_test):.3f}, "
      f"density {weight_free.density_:.2f}")

# %%
# Receptive fields
# ----------------
# Each layer sees its input as ``[x, -x]`` (``unit_signs="paired"``), so an
# edge from a pixel is +1 (red), −1 (blue) or absent (grey); the display folds
# the twin lines of ``coefs_[0]`` into these signs. The most connected units
# come first; ``units=[...]`` picks others.
ReceptiveFieldDisplay.from_estimator(weight_free, image_shape=(8, 8), n_units=12,
                                     n_cols=6)

# %%
# A dense network's first layer, for comparison, holds real weights: a diverging
# colour map centred at 0 (every edge exists, so every degree is 64).
dense = DenseClassifier(hidden_layer_sizes=(32,), max_epochs=10, device="cpu",
                        random_state=0).fit(X_train, y_train)
ReceptiveFieldDisplay.from_estimator(dense, image_shape=(8, 8), n_units=12, n_cols=6)

# %%
# Degree distributions
# --------------------
# Green: how many edges each unit receives (in-degree) and each input sends
# (out-degree) in the learned network; grey: the same for a random network with
# the same number of edges in every layer. In this short fit the two are close:
# the degrees alone hardly tell the learned network from a random one of its
# density; what was learned is *which* edges exist and their signs (the
# receptive fields above).
DegreeDisplay.from_estimator(weight_free)

# %%
# The network drawn
# -----------------
# A small network can be drawn whole: iris, with one hidden layer of 16 units.
# Hidden units without any edge are visible as unconnected nodes.
X_iris, y_iris = load_iris(return_X_y=True)
iris_net = WeightFreeClassifier(hidden_layer_sizes=(16,), max_epochs=30, device="cpu",
                                random_state=0)
iris_net.fit(StandardScaler().fit_transform(X_iris), y_iris)
NetworkDisplay.from_estimator(iris_net)

# %%
# Wider layers are subsampled to their ``max_units`` most connected units, with a
# note saying so. Every display draws on a given ``ax`` too, here two panels of
# one figure.
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5), layout="constrained",
                                  width_ratios=(1.4, 1))
NetworkDisplay.from_estimator(weight_free, max_units=16, ax=left)
ReceptiveFieldDisplay.from_estimator(weight_free, image_shape=(8, 8), n_units=9, ax=right)
plt.show()
