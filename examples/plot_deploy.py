"""
======================================
Deploying a weight-free network
======================================

A weight-free network's trained state is one bit per possible edge plus a few
numbers per unit. :func:`sk_weightfree.io.dump` writes exactly that to a small
``.npz`` file, and :func:`sk_weightfree.io.load` reads it back, without
unpickling anything, into a predictor that needs only numpy and scipy. Here a
weight-free and a dense network are trained on digits, dumped, compared in
size with their pickles, and the loaded predictor is checked against the
estimator.
"""

# %%
# Train two small networks
# ------------------------
import os
import pickle
import tempfile

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sk_weightfree import DenseClassifier, WeightFreeClassifier
from sk_weightfree.io import dump, load

X, y = load_digits(return_X_y=True)
X = StandardScaler().fit_transform(X)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)

params = dict(hidden_layer_sizes=(128, 64), max_epochs=5, device="cpu", random_state=0)
networks = {
    "weight-free": WeightFreeClassifier(**params).fit(X_train, y_train),
    "dense": DenseClassifier(**params).fit(X_train, y_train),
}

# %%
# Dump, load, compare
# -------------------
# The loaded predictor gives the same labels and, to 1e-6, the same
# probabilities as the estimator.
directory = tempfile.mkdtemp()
sizes = {}
for name, net in networks.items():
    path = os.path.join(directory, f"{name}.npz")
    sizes[name] = {"pickle": len(pickle.dumps(net)), "dump": dump(net, path)}
    predictor = load(path)
    same = np.array_equal(predictor.predict(X_test), net.predict(X_test))
    gap = np.abs(predictor.predict_proba(X_test) - net.predict_proba(X_test)).max()
    print(f"{name:12s} pickle {sizes[name]['pickle']:>9,d} B   dump {sizes[name]['dump']:>7,d} B"
          f"   same labels: {same}   largest probability gap: {gap:.1e}"
          f"   accuracy: {predictor.score(X_test, y_test):.3f}")

# %%
# The loaded predictor
# --------------------
# It is a small numpy object: no torch module, no optimiser state.
print(predictor)
print(predictor.chain.layer_shapes, predictor.metadata_["dtype"])

# %%
# Sizes
# -----
fig, ax = plt.subplots(figsize=(6, 3))
names = list(sizes)
positions = np.arange(len(names))
ax.barh(positions - 0.2, [sizes[n]["pickle"] / 1e3 for n in names], height=0.4,
        label="pickle")
ax.barh(positions + 0.2, [sizes[n]["dump"] / 1e3 for n in names], height=0.4,
        label="sk_weightfree.io.dump")
ax.set_yticks(positions, names)
ax.set_xscale("log")
ax.set_xlabel("file size (kB, log scale)")
ax.legend()
fig.tight_layout()
plt.show()
