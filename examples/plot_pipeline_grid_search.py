"""
==============================================
Tuning a weight-free network with GridSearchCV
==============================================

:class:`~sk_weightfree.WeightFreeClassifier` is an ordinary scikit-learn
classifier, so it goes into a :class:`~sklearn.pipeline.Pipeline` and
:class:`~sklearn.model_selection.GridSearchCV` unchanged. Here a pipeline of
:class:`~sklearn.preprocessing.StandardScaler` and a small weight-free network
is tuned over the hidden-layer width and the target density, then the
connections the best network kept are drawn.
"""

# %%
# Data and pipeline
# -----------------
# Digits images have pixel values 0..16; standardising them first helps every
# network in this package.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sk_weightfree import WeightFreeClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

pipe = Pipeline([
    ("scale", StandardScaler()),
    ("net", WeightFreeClassifier(max_epochs=10, device="cpu", random_state=0)),
])

# %%
# Grid search
# -----------
# Parameters of a pipeline step are addressed as ``<step>__<parameter>``.
# ``density=None`` lets the search choose how many edges to keep; a number fixes
# the fraction of each layer's edges that is kept.
param_grid = {
    "net__hidden_layer_sizes": [(32,), (64,)],
    "net__density": [None, 0.1],
}
search = GridSearchCV(pipe, param_grid, cv=3)
search.fit(X_train, y_train)

print("best parameters:", search.best_params_)
print(f"cross-validated accuracy: {search.best_score_:.3f}")
print(f"test accuracy: {search.score(X_test, y_test):.3f}")

# %%
# The cross-validation scores of every candidate:
results = search.cv_results_
labels = [
    f"{p['net__hidden_layer_sizes']}, density={p['net__density']}"
    for p in results["params"]
]
fig, ax = plt.subplots(figsize=(6, 3))
ax.barh(labels, results["mean_test_score"], xerr=results["std_test_score"],
        color="tab:blue", alpha=0.8)
ax.set_xlabel("mean CV accuracy (3 folds)")
ax.set_xlim(0, 1)
ax.set_title("GridSearchCV over a weight-free network")
fig.tight_layout()

# %%
# What the best network learned
# -----------------------------
# Every entry of ``coefs_`` is exactly 0 or 1: the network *is* its set of
# edges. By default (``unit_signs="paired"``) every layer sees its input twice,
# as ``[x, -x]``, so ``coefs_[0]`` has shape ``(2 * 64, n_hidden)``: rows
# ``[:64]`` are the excitatory lines from the 64 pixels, rows ``[64:]`` their
# inhibitory twins. The difference of the two halves is each pixel's signed
# connection to a hidden unit, +1, -1 or 0, although every weight is 0 or 1.
net = search.best_estimator_.named_steps["net"]
print("weight values:", np.unique(np.concatenate([c.ravel() for c in net.coefs_])))
print(f"density: {net.density_:.3f}, connections: {net.n_connections_}")

n_pixels = X.shape[1]
first = net.coefs_[0]
signed = first[:n_pixels] - first[n_pixels:]
fig, axes = plt.subplots(2, 6, figsize=(7, 3.4), layout="constrained")
for j, ax in enumerate(axes.ravel()):
    ax.imshow(signed[:, j].reshape(8, 8), cmap="bwr", vmin=-1, vmax=1)
    ax.set_title(f"unit {j}", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("Signed pixel connections of the first 12 hidden units\n"
             "(red = +1 through the excitatory line, blue = -1 through the twin)")
plt.show()
