"""Timing of the spectral similarity: exact versus approximate densities.

Run from the repository root::

    python benchmarks/spectral_timing.py

Prints, for random {0, 1} layered networks of growing size, the number of
nodes and edges, the seconds taken by ``spectral_density`` with
``method="exact"`` (dense SVD, only up to a few thousand nodes) and
``method="approximate"`` (stochastic Lanczos quadrature), and the base-2
Jensen-Shannon distance between the two densities (default
``drop_forced_ones=True``). The last lines time ``spectral_similarity`` of two
784-10000-10000-10 networks at 1% density with ``method="auto"`` (target:
under 2 seconds on 2 CPU cores), three times to show the noise.

Set ``OMP_NUM_THREADS`` to the cores you mean to measure on; the sparse
products are single-threaded either way.
"""

import platform
import time

import numpy as np
import scipy
from scipy import sparse
from scipy.spatial.distance import jensenshannon

from sk_weightfree._spectral import spectral_density, spectral_similarity

EXACT_MAX_NODES = 5000


def random_net(sizes, density, seed):
    """Random {0, 1} sparse layers shaped (n_in, n_out)."""
    rng = np.random.default_rng(seed)
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w = sparse.random(
            n_in, n_out, density=density, format="csr", random_state=rng
        )
        w.data[:] = 1.0
        layers.append(w)
    return layers


def timed(func, *args, **kwargs):
    start = time.perf_counter()
    out = func(*args, **kwargs)
    return out, time.perf_counter() - start


def main():
    cases = [
        ((100, 400, 400, 10), 0.05),
        ((200, 800, 800, 10), 0.02),
        ((300, 1500, 1500, 10), 0.01),
        ((500, 2000, 2000, 10), 0.01),
        ((784, 5000, 5000, 10), 0.01),
        ((784, 10000, 10000, 10), 0.01),
    ]
    header = (
        f"{'layers':<24}{'nodes':>8}{'edges':>10}"
        f"{'exact s':>10}{'approx s':>10}{'JS':>9}"
    )
    print(header)
    print("-" * len(header))
    for sizes, density in cases:
        net = random_net(sizes, density, seed=0)
        n_nodes = sum(sizes)
        n_edges = sum(w.nnz for w in net)
        (_, approx), t_approx = timed(
            spectral_density, net, method="approximate", random_state=0
        )
        if n_nodes <= EXACT_MAX_NODES:
            (_, exact), t_exact = timed(spectral_density, net, method="exact")
            js = f"{jensenshannon(exact, approx, base=2):9.4f}"
            t_exact = f"{t_exact:10.2f}"
        else:
            js, t_exact = f"{'-':>9}", f"{'-':>10}"
        name = "-".join(map(str, sizes)) + f" @{density:.0%}"
        print(f"{name:<24}{n_nodes:>8}{n_edges:>10}{t_exact}{t_approx:10.2f}{js}")

    sizes = (784, 10000, 10000, 10)
    a, b = random_net(sizes, 0.01, seed=1), random_net(sizes, 0.01, seed=2)
    print(
        f"\nspectral_similarity of two {'-'.join(map(str, sizes))} nets at 1% "
        f"(method='auto'; numpy {np.__version__}, scipy {scipy.__version__}, "
        f"{platform.machine()}):"
    )
    for _ in range(3):
        sim, seconds = timed(
            spectral_similarity, a, b, method="auto", random_state=0
        )
        print(f"  {seconds:.2f} s, similarity {sim:.4f}")


if __name__ == "__main__":
    main()
