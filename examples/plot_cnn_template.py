"""
===========================================================
A weight-free convolutional network: any module as template
===========================================================

Every estimator takes ``module=`` — a torch module used as the *template* of its
network — and ``input_shape=``, the shape each row of ``X`` is reshaped to. Each
family turns the template's ``nn.Conv2d`` and ``nn.Linear`` layers into its own
kind and keeps the rest (pooling, flatten, activations):

* :class:`~sk_weightfree.WeightFreeClassifier` makes every kernel tap and every
  linear weight a {0,1} edge whose presence is searched, each layer seeing its
  input as paired ``[h, -h]`` channels and followed by a per-unit batch norm;
* :class:`~sk_weightfree.DenseClassifier` trains the template as it is.

Here the ready-made :class:`~sk_weightfree.nn.SmallCNN` (two 3×3 convolutions
with max-pooling, then two linear layers), narrowed to 8 and 16 channels so that the
example runs in seconds, learns the 8×8 digits, reshaped to ``(1, 8, 8)``. The convolution kernels of the weight-free network are shown as
they are: black taps are on, white off, for the excitatory and the inhibitory
line of the input.
"""

# %%
import functools

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sk_weightfree import DenseClassifier, WeightFreeClassifier
from sk_weightfree.nn import SmallCNN

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X / 16.0, y, test_size=0.3, stratify=y, random_state=0)

cnn = functools.partial(SmallCNN, channels=(8, 16), hidden=32)
weight_free = WeightFreeClassifier(module=cnn, input_shape=(1, 8, 8), max_epochs=10,
                                   device="cpu", random_state=0).fit(X_train, y_train)
# the dense reference gets batch norms too (the weight-free layers bring their own)
dense = DenseClassifier(module=functools.partial(cnn, batch_norm=True),
                        input_shape=(1, 8, 8), max_epochs=10, device="cpu",
                        random_state=0).fit(X_train, y_train)
for name, clf in (("weight-free CNN", weight_free), ("dense CNN", dense)):
    print(f"{name:16s} test accuracy {clf.score(X_test, y_test):.3f}, "
          f"density {clf.density_:.2f}")

# %%
# Convolution layers are exported in torch's layout ``(out, in, kh, kw)``; with
# paired inputs the ``in`` axis holds the excitatory channels, then their
# inhibitory twins. Every entry is exactly 0 or 1.
first = weight_free.coefs_[0]  # (8, 2, 3, 3)
print("first layer", first.shape, "values", np.unique(first))

fig, axes = plt.subplots(2, 8, figsize=(8, 2.4))
for k in range(8):
    for line, label in enumerate(("+x", "-x")):
        ax = axes[line, k]
        ax.imshow(first[k, line], cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        if k == 0:
            ax.set_ylabel(label)
fig.suptitle("weight-free CNN: first 8 kernels, {0,1} taps")
plt.tight_layout()
plt.show()
