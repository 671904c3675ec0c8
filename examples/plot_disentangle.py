"""
==================================================
Disentangling the architecture from the weights
==================================================

How much of what a trained network does is its architecture (which edges exist)
and how much its weights? :func:`~sk_weightfree.disentangle` takes four
architectures -- the one a weight-free network *learned*, a dense network
magnitude-*pruned* to the same density, the learned one *rewired* with every
unit's degree kept, and a *random* one with every layer's number of edges kept
-- and trains each under four weight regimes: {0,1} weights with learned signs,
one shared value, trained real weights and frozen random weights.

This example is sized to run in seconds (one seed, a narrow network, a few
epochs); the results page reports the full experiment (3 seeds, 300-100 units,
30 epochs on digits; 784-300-100-10 on Fashion-MNIST). The same experiment runs
from the command line as ``sk-weightfree disentangle``.
"""

# %%
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from sk_weightfree import architecture_of, disentangle

warnings.filterwarnings("ignore", category=ConvergenceWarning)  # 5-epoch fits
X, y = load_digits(return_X_y=True)
result = disentangle(X, y, hidden_layer_sizes=(32,), epochs=5, seeds=1, device="cpu")
print(result.table())

# %%
# Every cell trained on its source's edges and no others
# -------------------------------------------------------
# The fitted networks of the first seed are kept; each one's edges lie inside the
# architecture it was given.
for (source, regime), network in result.estimators_.items():
    inside = all((~allowed & got).sum() == 0 for got, allowed in
                 zip(architecture_of(network), result.architectures_[source]))
    assert inside, (source, regime)
print("every network's edges lie inside its source architecture")

# %%
# The spectral similarity of the four architectures
# -------------------------------------------------
print(result.similarity_table())

# %%
# The heatmap: sources × regimes, and the similarity of the sources
# ------------------------------------------------------------------
fig = result.plot()
