"""Issue 15's GPU run: our fit loop against the raw-loop limit and skorch's default loop.

One run on one GPU (about 3 minutes on an H100/H200; ``--pytest`` adds the CUDA-only tests)::

    python benchmarks/gpu.py --device cuda --pytest
    python benchmarks/gpu.py --smoke --device cpu      # a few seconds: checks the script

For ``DenseClassifier`` and ``WeightFreeClassifier`` (defaults: paired ``[h, -h]`` inputs)
on Fashion-MNIST 784-300-100-10 (all 60,000 training images, standardised), at batch 128
and 1024, seconds per epoch of

- **estimator**: the estimator's own fit (per-epoch ``history_["seconds"]``);
- **raw**: a hand-written torch loop, data on the device, index-sliced batches, the same
  module class the estimator builds (``est._build_module``) and the same optimiser
  (Adam, fused, the estimator's learning rate and schedule) — the limit to beat;
- **skorch default**: ``skorch.NeuralNetClassifier`` with its ``DataLoader`` over CPU numpy
  arrays, ``device`` set, ``train_split=None``, same module;
- **compiled**: the estimator with ``torch_compile=True``.

Each configuration gets one untimed warm-up fit (a few batches with the same shapes, so
compilation and CUDA start-up are not timed); the reported value is the median over
``--epochs`` timed epochs, each ended by ``torch.cuda.synchronize()``. Peak device memory
(``torch.cuda.max_memory_allocated``, reset before each timed run) is per configuration.
Then the test accuracy of both estimators after 10 epochs, and the ratios the issue names.
"""

import argparse
import gc
import math
import shlex
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
from sk_weightfree._study import Protocol, markdown_table, machine_line
from skorch import NeuralNetClassifier
from torch.nn import functional as F

from sk_weightfree import DenseClassifier, WeightFreeClassifier

ESTIMATORS = {"dense": DenseClassifier, "weight-free": WeightFreeClassifier}
LOOPS = ("raw", "estimator", "skorch default", "compiled")


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def build_module(cls, hidden, seed=0):
    """The untrained module the estimator would build, from its own ``_build_module``."""
    est = cls(hidden_layer_sizes=hidden)
    est._hidden_sizes, est._sample_seed = tuple(hidden), seed
    return est._build_module(784, 10, torch.Generator().manual_seed(seed)), est


def raw_loop(cls, hidden, X, y, epochs, batch_size, device):
    """Per-epoch seconds of the plain loop: tensors on the device, sliced batches."""
    module, est = build_module(cls, hidden)
    module = module.to(device).train()
    Xt, yt = torch.as_tensor(X, device=device), torch.as_tensor(y, device=device)
    fused = device.split(":")[0] in ("cpu", "cuda")
    optimizer = torch.optim.Adam(module.parameters(), lr=est.lr, fused=fused)
    times = []
    for epoch in range(epochs):
        if est.lr_schedule == "cosine":  # as the estimator's CosineLR, once per epoch
            for group in optimizer.param_groups:
                group["lr"] = est.lr * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
        sync(device)
        start = time.perf_counter()
        order = torch.randperm(len(Xt), device=device)
        for begin in range(0, len(Xt), batch_size):
            index = order[begin:begin + batch_size]
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(module(Xt[index]), yt[index]).backward()
            optimizer.step()
        sync(device)
        times.append(time.perf_counter() - start)
    return times


def skorch_default(cls, hidden, X, y, epochs, batch_size, device):
    module, est = build_module(cls, hidden)
    net = NeuralNetClassifier(
        module, criterion=torch.nn.CrossEntropyLoss, optimizer=torch.optim.Adam, lr=est.lr,
        max_epochs=epochs, batch_size=batch_size, device=device, train_split=None,
        iterator_train__shuffle=True, verbose=0)
    net.fit(X, y)
    sync(device)
    return list(net.history[:, "dur"])


def estimator_fit(cls, hidden, X, y, epochs, batch_size, device, compile_=False):
    est = cls(hidden_layer_sizes=hidden, max_epochs=epochs, batch_size=batch_size,
              device=device, random_state=0, torch_compile=compile_).fit(X, y)
    sync(device)
    return [row["seconds"] for row in est.history_]


def run_loop(loop, cls, hidden, X, y, epochs, batch_size, device):
    if loop == "raw":
        return raw_loop(cls, hidden, X, y, epochs, batch_size, device)
    if loop == "skorch default":
        return skorch_default(cls, hidden, X, y, epochs, batch_size, device)
    return estimator_fit(cls, hidden, X, y, epochs, batch_size, device,
                         compile_=loop == "compiled")


def card_line(device):
    line = machine_line(device)
    if device.startswith("cuda"):
        try:
            smi = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                 "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
            line += f"; nvidia-smi: {smi.stdout.strip()}"
        except (OSError, subprocess.SubprocessError) as exc:
            line += f"; nvidia-smi unavailable ({exc.__class__.__name__})"
    return line


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per configuration")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 1024])
    parser.add_argument("--accuracy-epochs", type=int, default=10)
    parser.add_argument("--loops", nargs="+", choices=LOOPS, default=list(LOOPS))
    parser.add_argument("--pytest", action="store_true", help="run the CUDA-only tests too")
    parser.add_argument("--smoke", action="store_true", help="tiny data, (16,) hidden units")
    args = parser.parse_args()
    device, cuda = args.device, args.device.startswith("cuda")
    hidden = (16,) if args.smoke else (300, 100)
    if args.smoke:
        torch.set_num_threads(1)
        args.epochs, args.accuracy_epochs = 2, 1
    begin = time.perf_counter()
    X, y, X_test, y_test = Protocol("fashion-mnist",
                                    max_rows=600 if args.smoke else None).final_data()
    y = y.astype(np.int64)
    print(f"# {card_line(device)}")
    print(f"# Fashion-MNIST {len(y)} x 784 -> {hidden} -> 10; median of {args.epochs} "
          f"timed epochs after one untimed warm-up per configuration", flush=True)
    header = ["estimator", "loop", "batch", "ms/epoch", "peak MiB", "wall s"]
    print(markdown_table(header, []), flush=True)
    ms, rows = {}, []
    for batch_size in args.batch_sizes:
        n_warm = min(len(y), 4 * batch_size + len(y) % batch_size)  # same batch shapes
        for loop in args.loops:
            for name, cls in ESTIMATORS.items():
                start = time.perf_counter()
                try:
                    run_loop(loop, cls, hidden, X[:n_warm], y[:n_warm], 1, batch_size, device)
                    gc.collect()
                    if cuda:
                        torch.cuda.empty_cache()
                        torch.cuda.reset_peak_memory_stats()
                    times = run_loop(loop, cls, hidden, X, y, args.epochs, batch_size, device)
                    ms[name, loop, batch_size] = 1000 * statistics.median(times)
                    peak = f"{torch.cuda.max_memory_allocated() / 2**20:.0f}" if cuda else "-"
                    row = [name, loop, batch_size, f"{ms[name, loop, batch_size]:.1f}", peak,
                           f"{time.perf_counter() - start:.0f}"]
                except Exception as exc:  # report and go on: one failure must not end the run
                    row = [name, loop, batch_size, f"failed: {exc.__class__.__name__}: "
                           f"{str(exc).splitlines()[0][:120] if str(exc) else ''}", "-",
                           f"{time.perf_counter() - start:.0f}"]
                rows.append(row)
                print(markdown_table(header, [row]).splitlines()[-1], flush=True)
    print(f"\n# timing done in {time.perf_counter() - begin:.0f} s", flush=True)

    print("\nTest accuracy after", args.accuracy_epochs, "epochs (batch 128, defaults):")
    for name, cls in ESTIMATORS.items():
        est = cls(hidden_layer_sizes=hidden, max_epochs=args.accuracy_epochs, device=device,
                  random_state=0).fit(X, y)
        print(f"- {name}: {np.mean(est.predict(X_test) == y_test):.4f} "
              f"(density {est.density_:.3f})", flush=True)

    def ratio(a, b):
        return f"{ms[a] / ms[b]:.2f}" if a in ms and b in ms else "n/a"

    print("\nRatios (goals from issue 15):")
    for bs in args.batch_sizes:
        print(f"- batch {bs}: Dense estimator / raw dense loop = "
              f"{ratio(('dense', 'estimator', bs), ('dense', 'raw', bs))} (goal <= 1.15); "
              f"skorch default / Dense estimator = "
              f"{ratio(('dense', 'skorch default', bs), ('dense', 'estimator', bs))} "
              f"(goal >= 3); WF estimator / raw WF loop = "
              f"{ratio(('weight-free', 'estimator', bs), ('weight-free', 'raw', bs))} "
              f"(goal <= 1.3)")
    for name in ESTIMATORS:
        for loop in ("estimator", "compiled"):
            if (name, loop, 128) in ms:
                print(f"- {name} {loop}, batch 128: {ms[name, loop, 128]:.1f} ms/epoch "
                      f"(goal <= 50 ms, captured step)")
    print(f"\n# total {time.perf_counter() - begin:.0f} s", flush=True)

    if args.pytest:
        command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                   "tests/test_reliability.py", "tests/test_training.py",
                   "-k", "cuda or gpu or device"]
        print("\n$ python " + shlex.join(command[1:]), flush=True)
        sys.exit(subprocess.run(command).returncode)


if __name__ == "__main__":
    main()
