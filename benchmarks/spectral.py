"""Does spectral similarity see what a trained network learned beyond its degrees?

Run from the repository root::

    python benchmarks/spectral.py [--epochs 30] [--hidden 300,100]
                                  [--out benchmarks/results/spectral.json]

Fifteen 64-300-100-10 networks (``--hidden`` for other widths) on digits, five
families of three seeds:

- ``wf``: ``WeightFreeClassifier`` (paired inputs, the default) trained on
  standardised digits;
- ``rewired``: each ``wf`` network with every layer rewired by
  :func:`~sk_weightfree._spectral.rewire` (every unit keeps its number of
  positive and of negative edges);
- ``random``: Erdos-Renyi masks at each ``wf`` layer's density, with random
  signs at that layer's fraction of positive edges;
- ``other``: ``WeightFreeClassifier`` trained on another 10-class task with
  64 features (``make_classification``, one per seed);
- ``pruned``: ``PrunedClassifier`` trained on digits and magnitude-pruned to
  the ``wf`` network's density (its real weights: ``signed=True`` reads their
  signs).

Every network is compared with every other one (paired twins folded into one
signed edge); for each network the family of its most similar other network
is its leave-one-out nearest neighbour. The table gives, per call, how many of
the 15 retrieve their own family, the mean similarity of ``wf`` to each family
(``wf~wf`` over the three seed pairs) and the seed-to-seed spread of
``wf~wf``; ``wf~own`` is the mean similarity of each ``wf`` network to its own
rewiring. Networks are trained with one torch thread; the results are written
as JSON.
"""

import argparse
import json
import os
import pickle
import platform
import time
from pathlib import Path

import numpy as np
import scipy
import torch
from sklearn.datasets import load_digits, make_classification
from sklearn.preprocessing import StandardScaler

from sk_weightfree import (PrunedClassifier, WeightFreeClassifier,
                           pairwise_spectral_similarity)
from sk_weightfree._spectral import _as_layers, _laplacian_eigenvalues, rewire

FAMILIES = ("wf", "rewired", "random", "other", "pruned")
SEEDS = (0, 1, 2)

OLD = dict(bandwidth=0.02, signed=False)
CALLS = [
    ("old default: bandwidth=0.02", OLD),
    ("old default, drop_forced_ones=False", dict(OLD, drop_forced_ones=False)),
    ("old default, metric='wasserstein'", dict(OLD, metric="wasserstein")),
    ("bandwidth=0.01", dict(bandwidth=0.01, signed=False)),
    ("bandwidth=0.0075", dict(bandwidth=0.0075, signed=False)),
    ("bandwidth=0.005", dict(bandwidth=0.005, signed=False)),
    ("bandwidth=0.003", dict(bandwidth=0.003, signed=False)),
    ("bandwidth=0.005, n_points=2048", dict(bandwidth=0.005, signed=False, n_points=2048)),
    ("bandwidth='silverman' (per pair)", "silverman"),
    ("bandwidth='auto'", dict(bandwidth="auto", signed=False)),
    ("signed=True, bandwidth=0.02", dict(bandwidth=0.02, signed=True)),
    ("signed=True, bandwidth=0.01", dict(bandwidth=0.01, signed=True)),
    ("signed=True, bandwidth=0.0075", dict(bandwidth=0.0075, signed=True)),
    ("signed=True, bandwidth=0.005", dict(bandwidth=0.005, signed=True)),
    ("signed=True, bandwidth=0.003", dict(bandwidth=0.003, signed=True)),
    ("signed=True, bandwidth='auto'", dict(bandwidth="auto", signed=True)),
    ("signed=True, weighted=True, 'auto'", dict(bandwidth="auto", signed=True,
                                                  weighted=True)),
    ("new default: spectral_similarity(a, b)", {}),
    ("new default, signed=False", dict(signed=False)),
    ("new default, calibrate=True", dict(calibrate=True, random_state=0)),
]


def train_families(epochs, hidden):
    """The 15 networks as the spectral functions read them (signed, folded)."""
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    shared = dict(hidden_layer_sizes=hidden, max_epochs=epochs, device="cpu")
    nets, meta = {f: [] for f in FAMILIES}, []
    for seed in SEEDS:
        start = time.perf_counter()
        wf = WeightFreeClassifier(random_state=seed, **shared).fit(X, y)
        layers = [w.toarray() for w in _as_layers(wf)]
        nets["wf"].append(layers)
        nets["rewired"].append([w.toarray() for w in rewire(layers, random_state=seed)])
        rng = np.random.default_rng(seed)
        nets["random"].append([
            (rng.random(w.shape) < np.mean(w != 0))
            * np.where(rng.random(w.shape) < np.mean(w[w != 0] > 0), 1.0, -1.0)
            for w in layers
        ])
        Xo, yo = make_classification(n_samples=len(X), n_features=X.shape[1],
                                     n_informative=16, n_classes=10,
                                     random_state=seed)
        other = WeightFreeClassifier(random_state=seed, **shared).fit(
            StandardScaler().fit_transform(Xo), yo)
        nets["other"].append([w.toarray() for w in _as_layers(other)])
        density = sum(np.count_nonzero(w) for w in layers) / sum(w.size for w in layers)
        pruned = PrunedClassifier(density=density, random_state=seed, **shared).fit(X, y)
        nets["pruned"].append([np.asarray(w) for w in pruned.coefs_])
        meta.append(dict(seed=seed, wf_train_accuracy=wf.score(X, y),
                         other_train_accuracy=other.score(
                             StandardScaler().fit_transform(Xo), yo),
                         pruned_train_accuracy=pruned.score(X, y),
                         folded_density=density, pruned_density=pruned.density_,
                         seconds=time.perf_counter() - start))
        print(f"seed {seed}: wf acc {meta[-1]['wf_train_accuracy']:.3f}, folded "
              f"density {density:.3f}, pruned density {pruned.density_:.3f} "
              f"({meta[-1]['seconds']:.0f} s)", flush=True)
    return nets, meta


def silverman_matrix(nets):
    """Similarities at Silverman's bandwidth of each pair's eigenvalue sample.

    Each network's rule-of-thumb width ``0.9 min(std, IQR / 1.34) n^(-1/5)``
    on its informative eigenvalues; a pair is compared at the wider one.
    """
    widths = []
    for net in nets:
        eig = _laplacian_eigenvalues(net, drop_forced_ones=True)
        iqr = np.subtract(*np.percentile(eig, [75, 25]))
        widths.append(0.9 * min(eig.std(), iqr / 1.34) * eig.size ** -0.2)
    n = len(nets)
    out = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = pairwise_spectral_similarity(
                [nets[i], nets[j]], bandwidth=max(widths[i], widths[j]),
                signed=False)[0, 1]
    return out, widths


def summarise(sim, labels):
    labels = np.asarray(labels)
    masked = sim - 2 * np.eye(len(sim))  # never one's own neighbour
    nearest = labels[np.argmax(masked, axis=1)]
    wf = np.flatnonzero(labels == "wf")
    row = dict(retrieval=int(np.sum(nearest == labels)), n=len(labels),
               nearest=nearest.tolist())
    seed_pairs = [sim[i, j] for i in wf for j in wf if i < j]
    row["wf~wf"] = float(np.mean(seed_pairs))
    row["wf~wf spread"] = [float(min(seed_pairs)), float(max(seed_pairs))]
    for family in FAMILIES[1:]:
        row[f"wf~{family}"] = float(sim[np.ix_(wf, np.flatnonzero(labels == family))].mean())
    rewired = np.flatnonzero(labels == "rewired")
    row["wf~own"] = float(np.mean([sim[i, j] for i, j in zip(wf, rewired)]))
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--hidden", default="300,100",
                        help="hidden layer sizes, comma-separated (default 300,100)")
    parser.add_argument("--out", default="benchmarks/results/spectral.json")
    parser.add_argument("--cache", help="pickle of the trained networks: read if "
                        "it exists, written otherwise (to re-run the comparisons)")
    args = parser.parse_args()
    hidden = tuple(int(h) for h in args.hidden.split(","))
    torch.set_num_threads(1)
    if args.cache and Path(args.cache).exists():
        nets, meta = pickle.loads(Path(args.cache).read_bytes())
    else:
        nets, meta = train_families(args.epochs, hidden)
        if args.cache:
            Path(args.cache).write_bytes(pickle.dumps((nets, meta)))
    flat = [net for f in FAMILIES for net in nets[f]]
    labels = [f for f in FAMILIES for _ in nets[f]]
    rows = []
    header = (f"| call | retrieval | wf~wf (spread) | wf~own | "
              + " | ".join(f"wf~{f}" for f in FAMILIES[1:]) + " | s |")
    print("\n" + header + "\n" + "| --- " * (header.count("|") - 1) + "|")
    for name, kwargs in CALLS:
        start = time.perf_counter()
        if kwargs == "silverman":
            sim, widths = silverman_matrix(flat)
            kwargs = dict(bandwidth="silverman", widths=[float(w) for w in widths])
        else:
            sim = pairwise_spectral_similarity(flat, **kwargs)
        row = dict(call=name, kwargs=kwargs, **summarise(sim, labels),
                   seconds=time.perf_counter() - start)
        rows.append(row)
        lo, hi = row["wf~wf spread"]
        print(f"| {name} | {row['retrieval']}/{row['n']} | {row['wf~wf']:.3f} "
              f"({lo:.3f}-{hi:.3f}) | {row['wf~own']:.3f} | "
              + " | ".join(f"{row[f'wf~{f}']:.3f}" for f in FAMILIES[1:])
              + f" | {row['seconds']:.1f} |", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(
        command=(f"python benchmarks/spectral.py --epochs {args.epochs} "
                 f"--hidden {args.hidden} --out {args.out}"),
        epochs=args.epochs, hidden_layer_sizes=hidden, networks=meta, calls=rows,
        load_average=list(os.getloadavg()),
        versions=dict(numpy=np.__version__, scipy=scipy.__version__,
                      torch=torch.__version__, machine=platform.machine()),
    ), indent=1))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
