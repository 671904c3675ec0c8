"""
=================================================
Spectral similarity of trained network structures
=================================================

:func:`~sk_weightfree.pairwise_spectral_similarity` compares networks through
the eigenvalue distribution of their graphs (one node per unit, one edge per
non-zero weight; see :doc:`/spectral`). It is blind to how the hidden units
are numbered, so two networks trained from different seeds can be compared
directly.

Here weight-free networks from three seeds and dense networks from three seeds
are fitted on digits, together with one pruned, one weight-agnostic and one
random network, and all pairwise similarities are drawn as a heatmap.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler

from sk_weightfree import (
    DenseClassifier,
    PrunedClassifier,
    RandomNetworkClassifier,
    WeightAgnosticClassifier,
    WeightFreeClassifier,
    pairwise_spectral_similarity,
    spectral_density,
)

X, y = load_digits(return_X_y=True)
X = StandardScaler().fit_transform(X)
shared = dict(hidden_layer_sizes=(64, 32), max_epochs=10, device="cpu")

# %%
# Fit the networks
# ----------------
seeds = [0, 1, 2]
nets, names = [], []
for seed in seeds:
    nets.append(WeightFreeClassifier(random_state=seed, **shared).fit(X, y))
    names.append(f"weight-free {seed}")
for seed in seeds:
    nets.append(DenseClassifier(random_state=seed, **shared).fit(X, y))
    names.append(f"dense {seed}")
for label, cls in [("pruned", PrunedClassifier), ("weight-agnostic", WeightAgnosticClassifier),
                   ("random", RandomNetworkClassifier)]:
    nets.append(cls(random_state=0, **shared).fit(X, y))
    names.append(label)

for name, net in zip(names, nets):
    print(f"{name:16s} density {net.density_:.3f}  training accuracy {net.score(X, y):.3f}")

# %%
# Similarity matrix
# -----------------
# ``weighted=True`` uses each weight ``w`` as the strength of its edge. For the
# {0,1} networks this changes nothing (and a weight-agnostic network has one
# weight on every edge, which cancels in the normalised Laplacian). For the
# dense networks it matters: without weights every fully connected 64-64-32-10
# network has the same edges, told apart only by their signs (the spectrum is
# signed by default, see :doc:`/spectral`).
similarity = pairwise_spectral_similarity(nets, weighted=True)

fig, ax = plt.subplots(figsize=(7, 6))
image = ax.imshow(similarity, vmin=0, vmax=1, cmap="viridis")
ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
ax.set_yticks(range(len(names)), names)
for i in range(len(names)):
    for j in range(len(names)):
        value = similarity[i, j]
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                color="black" if value > 0.6 else "white")
fig.colorbar(image, ax=ax, label="spectral similarity (1 = identical spectra)")
ax.set_title("Pairwise spectral similarity, digits")
fig.tight_layout()

# %%
# Within and across groups
# ------------------------
# Mean similarity of the distinct pairs inside each group of three seeds, and
# of every weight-free/dense pair.
wf = [i for i, n in enumerate(names) if n.startswith("weight-free")]
dn = [i for i, n in enumerate(names) if n.startswith("dense")]


def mean_within(group):
    return np.mean([similarity[i, j] for i in group for j in group if i < j])


within_wf = mean_within(wf)
within_dense = mean_within(dn)
across = similarity[np.ix_(wf, dn)].mean()
print(f"mean similarity within weight-free: {within_wf:.3f}")
print(f"mean similarity within dense:       {within_dense:.3f}")
print(f"mean similarity weight-free/dense:  {across:.3f}")

# %%
# Weight-free networks trained from different seeds have spectra much closer to
# each other than to any dense network (measured: 0.97 within, 0.74 across),
# and the dense networks are close to each other: the spectrum tells the two
# training regimes apart, whatever the seed. With ``signed=False`` (magnitudes
# only) the across-regime similarity is lower still (0.60), but that spectrum
# cannot tell a trained weight-free network from a rewiring of it that keeps
# every unit's degrees; the signed one can (:doc:`/spectral`).
#
# The measure sees the graph only, so it is not a fingerprint of the
# *search*: the weight-agnostic and random networks, also {0,1} graphs with
# about half of the edges present, sit close to the weight-free ones, and the
# pruned network, with 10% of the edges, is far from every other. Density and
# the spread of the units' degrees shape the spectrum most, as the smoothed
# spectra show:
fig, ax = plt.subplots(figsize=(6, 3.5))
for index, color in [(wf[0], "tab:blue"), (dn[0], "black"), (names.index("pruned"), "tab:orange")]:
    grid, density = spectral_density(nets[index], weighted=True)
    ax.plot(grid, density, color=color, label=names[index])
ax.set_xlabel("eigenvalue of the normalised Laplacian")
ax.set_ylabel("density")
ax.set_yscale("log")
ax.set_ylim(1e-3, 10)
ax.legend()
ax.set_title("Smoothed spectra")
fig.tight_layout()
plt.show()
