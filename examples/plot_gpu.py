"""
=================
Training on a GPU
=================

Every estimator takes a ``device`` hyper-parameter:

* ``device="auto"`` (the default) trains on the first CUDA GPU when torch can
  see one, else on the CPU;
* ``device="cuda"`` or ``"cuda:1"`` asks for a GPU and raises a
  :class:`ValueError` that says so when CUDA is not available;
* ``device="cpu"`` always trains on the CPU.

The training data are copied to the device once and mini-batches are sliced
there, so there is no per-batch transfer. This example runs anywhere: on a
machine without a GPU it says so and uses the CPU.
"""

# %%
# Choosing the device
# -------------------
import time

import matplotlib.pyplot as plt
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sk_weightfree import WeightFreeClassifier

if torch.cuda.is_available():
    device = "cuda"
    print(f"CUDA is available: training on {torch.cuda.get_device_name(0)}")
else:
    device = "cpu"
    print("CUDA is not available here: falling back to the CPU")

# %%
# Asking for a GPU that is not there is an error, not a silent fallback:
try:
    WeightFreeClassifier(device="cuda", max_epochs=1, hidden_layer_sizes=(8,)).fit(
        [[0.0, 1.0], [1.0, 0.0]], [0, 1]
    )
    print("device='cuda' works here")
except ValueError as error:
    print("device='cuda' raised ValueError:", error)

# %%
# Fitting
# -------
# ``device="auto"`` would pick the same device as above; it is spelled out here
# so the printed output says what happened.
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

clf = WeightFreeClassifier(hidden_layer_sizes=(128,), max_epochs=10, device=device,
                           random_state=0)
start = time.perf_counter()
clf.fit(X_train, y_train)
print(f"fit on {clf.net_.device} in {time.perf_counter() - start:.2f} s, "
      f"test accuracy {clf.score(X_test, y_test):.3f}")

# %%
# The fitted attributes are NumPy arrays on the host whatever the device, and
# ``predict`` accepts NumPy input as usual. ``history_`` records the training
# loss and the duration of every epoch:
epochs = [row["epoch"] for row in clf.history_]
fig, (ax_loss, ax_time) = plt.subplots(1, 2, figsize=(8, 3))
ax_loss.plot(epochs, [row["train_loss"] for row in clf.history_], marker="o")
ax_loss.set_xlabel("epoch")
ax_loss.set_ylabel("training loss")
ax_time.bar(epochs, [row["seconds"] for row in clf.history_], color="tab:gray")
ax_time.set_xlabel("epoch")
ax_time.set_ylabel("seconds")
fig.suptitle(f"WeightFreeClassifier on {device}")
fig.tight_layout()
plt.show()

# %%
# Moving a model to the CPU
# -------------------------
# A network fitted on a GPU keeps its torch module there. To predict on the
# CPU, move the module (``net_.module_``) with torch's usual ``.cpu()``; or
# export a plain ``torch.nn.Sequential`` of {0,1}-weight layers with
# :meth:`~sk_weightfree.WeightFreeClassifier.to_module` and put it wherever
# you like.
clf.net_.module_.cpu()
module = clf.to_module()
with torch.no_grad():
    logits = module(torch.as_tensor(X_test[:5], dtype=torch.float32))
print("predict:  ", clf.predict(X_test[:5]))
print("to_module:", clf.classes_[logits.argmax(dim=1).numpy()])

# %%
# Notes
# -----
# * With the same ``random_state``, a fit on the CPU gives the same model
#   every time. On a GPU, cuBLAS/cuDNN reductions may sum in a different
#   order from run to run, so two fits can differ slightly.
# * For networks as small as this one, launching many tiny kernels costs
#   about as much as the arithmetic, so a GPU gains little; it pays off with
#   wide layers and large data sets such as Fashion-MNIST.
# * ``sk-weightfree compare --device cuda`` runs the command-line comparison
#   on a GPU.
