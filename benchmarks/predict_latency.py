"""predict latency of DenseClassifier and WeightFreeClassifier against MLPClassifier.

Run: python benchmarks/predict_latency.py (784-300-100-10, random data, 1/100/10,000 rows).
"""
import time, warnings, numpy as np, torch
from sklearn.neural_network import MLPClassifier
from sk_weightfree import DenseClassifier, WeightFreeClassifier
rng = np.random.default_rng(0)
X = rng.normal(size=(10000, 784)).astype(np.float32); y = rng.integers(0, 10, 10000)
warnings.simplefilter("ignore")
models = {"MLPClassifier": MLPClassifier((300, 100), max_iter=1).fit(X[:2000], y[:2000]),
          "DenseClassifier": DenseClassifier(max_epochs=1, device="cpu").fit(X[:2000], y[:2000]),
          "WeightFreeClassifier": WeightFreeClassifier(max_epochs=1, device="cpu").fit(X[:2000], y[:2000])}
print("torch", torch.__version__, "threads", torch.get_num_threads())
for n in (1, 100, 10000):
    row = []
    for name, m in models.items():
        m.predict(X[:n])
        reps = 200 if n == 1 else (50 if n == 100 else 5)
        t = time.perf_counter()
        for _ in range(reps): m.predict(X[:n])
        row.append(f"{name} {1000 * (time.perf_counter() - t) / reps:.2f} ms")
    print(n, " | ".join(row))
