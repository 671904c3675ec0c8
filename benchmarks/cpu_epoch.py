"""Seconds per epoch of WeightFreeClassifier (paired) against DenseClassifier on the CPU.

Run: python benchmarks/cpu_epoch.py (20,000 Fashion-MNIST rows, 2 epochs, interleaved).
"""
import numpy as np, torch
from sk_weightfree import DenseClassifier, WeightFreeClassifier
from sk_weightfree.datasets import load_fashion_mnist
X, y = load_fashion_mnist(subset="train", return_X_y=True)
X = ((X - X.mean(0)) / (X.std(0) + 1e-8)).astype(np.float32)[:20000]; y = y[:20000]
print("torch", torch.__version__, "threads", torch.get_num_threads())
res = {"dense": [], "wf": []}
for rep in range(2):
    for name, cls in (("dense", DenseClassifier), ("wf", WeightFreeClassifier)):
        est = cls(max_epochs=2, random_state=rep, device="cpu").fit(X, y)
        res[name].append(np.median([h["seconds"] for h in est.history_]))
for k, v in res.items(): print(k, ["%.2f" % s for s in v])
print("ratio wf/dense per epoch: %.2f" % (np.median(res["wf"]) / np.median(res["dense"])))
