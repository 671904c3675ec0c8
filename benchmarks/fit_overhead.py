"""Per-epoch cost of our fit loop against a raw torch loop and skorch's default loop.

Everything runs in one process on the same data, network and batch size, interleaved over
``--repeats`` rounds; the result is the *ratio* of medians (machines here are shared and
noisy, absolute seconds are not)::

    python benchmarks/fit_overhead.py                 # Fashion-MNIST-sized synthetic data
    python benchmarks/fit_overhead.py --device cuda   # on a GPU

Compared, each for ``--epochs`` epochs of 784-300-100-10 with batch 128, Adam:
raw dense loop (data already in tensors), raw {0,1} surrogate loop (same module as
WeightFreeClassifier, no skorch), skorch's default ``NeuralNetClassifier`` (DataLoader),
``DenseClassifier`` and ``WeightFreeClassifier``.
"""

import argparse
import resource
import statistics
import time

import numpy as np
import torch
from skorch import NeuralNetClassifier

from sk_weightfree import DenseClassifier, WeightFreeClassifier
from sk_weightfree.nn import DenseMLP, WeightFreeMLP

HIDDEN = (300, 100)


def make_data(n, d, k, seed=0):
    rng = np.random.RandomState(seed)
    centers = rng.randn(k, d).astype(np.float32)
    y = rng.randint(k, size=n)
    X = centers[y] + 2.0 * rng.randn(n, d).astype(np.float32)
    return X, y


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def raw_loop(module, X, y, epochs, batch_size, device, lr):
    """The reference: tensors already on the device, index-sliced batches, nothing else."""
    module = module.to(device).train()
    Xt = torch.as_tensor(X, device=device)
    yt = torch.as_tensor(y, device=device)
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        order = torch.randperm(len(Xt), generator=g).to(device)
        for start in range(0, len(Xt), batch_size):
            idx = order[start:start + batch_size]
            opt.zero_grad()
            loss = loss_fn(module(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    sync(device)


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=60000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device, n_epochs, bs = args.device, args.epochs, args.batch_size
    X, y = make_data(args.n_samples, 784, 10)
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731

    runs = {
        "raw dense loop": lambda: raw_loop(DenseMLP(784, HIDDEN, 10, generator=gen()), X, y,
                                           n_epochs, bs, device, 1e-3),
        "raw {0,1} surrogate loop": lambda: raw_loop(
            WeightFreeMLP(784, HIDDEN, 10, generator=gen()), X, y, n_epochs, bs, device, 0.05),
        "skorch NeuralNetClassifier (default loop)": lambda: NeuralNetClassifier(
            DenseMLP(784, HIDDEN, 10, generator=gen()), criterion=torch.nn.CrossEntropyLoss,
            optimizer=torch.optim.Adam, lr=1e-3, max_epochs=n_epochs, batch_size=bs,
            device=device, train_split=None, verbose=0,
            iterator_train__shuffle=True).fit(X, y),
        "DenseClassifier": lambda: DenseClassifier(max_epochs=n_epochs, batch_size=bs,
                                                   device=device, random_state=0).fit(X, y),
        "WeightFreeClassifier": lambda: WeightFreeClassifier(
            max_epochs=n_epochs, batch_size=bs, device=device, random_state=0).fit(X, y),
    }
    times = {name: [] for name in runs}
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    for _ in range(args.repeats):
        for name, run in runs.items():
            times[name].append(timed(run) / n_epochs)
    med = {name: statistics.median(t) for name, t in times.items()}
    card = torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"
    print(f"# device: {card}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{args.n_samples} samples x 784, {HIDDEN}, batch {bs}; median of {args.repeats}")
    print("| loop | s/epoch | / raw | / skorch |")
    print("| --- | --- | --- | --- |")
    skorch_t = med["skorch NeuralNetClassifier (default loop)"]
    for name, t in med.items():
        raw = med["raw {0,1} surrogate loop"] if "WeightFree" in name or "{0,1}" in name \
            else med["raw dense loop"]
        print(f"| {name} | {t:.3f} | {t / raw:.2f} | {t / skorch_t:.2f} |")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS: {rss:.0f} MiB (X itself: {X.nbytes / 2**20:.0f} MiB float32)")
    if device.startswith("cuda"):
        print(f"peak device memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
