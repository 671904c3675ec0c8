"""The CPU speed table of issue 32, measured the same way every time.

Every ratio is measured in one process, the runs of a row interleaved round after round;
the 1-minute load average is printed beside each figure (on a shared machine it says how
far to trust it). Rows (``--only`` picks some):

- ``fashion``: Fashion-MNIST (``--rows`` training images, standardised), 784-300-100-10,
  batch 128, ``fit`` with ``max_epochs=2``: seconds per epoch of the whole fit (wall time /
  2, fixed costs included) and of the training epochs alone (``history_``), for
  ``WeightFreeClassifier``, ``DenseClassifier`` and a bare torch loop over a copy of the
  weight-free estimator's own network; then the time of one fit split into training and
  the batch-norm recalibration pass.
- ``steps``: one training step (the net's ``train_step``) of the weight-free and dense
  networks, 784-300-100-10 on Fashion-MNIST batches of 128, interleaved: the ratio
  without the fit's fixed costs and data path (``--profile``: torch's profiler table of
  each).
- ``compile``: ``torch_compile=True`` against eager for the dense and weight-free families,
  4 epochs, on 20,000 Fashion-MNIST rows (784-300-100-10) and on digits (64-100-10): the
  first compiled fit, a second one of the same shapes in the process, an eager one.
- ``digits``: digits (all 1,797 rows, standardised), ms per epoch of 64-(100,)-10 and
  64-(300, 100)-10 for ``WeightFreeClassifier``, ``MLPClassifier`` (its own defaults,
  numpy), ``DenseClassifier``, the bare paired loop and ``WeightFreeClassifier`` with
  ``batch_size=200`` (``MLPClassifier``'s batch here); the time of a one-epoch fit, and
  its split into checks, network, epoch, recalibration and export.
- ``search``: ``GridSearchCV`` over ``hidden_layer_sizes`` (2 values x 3 folds, 10 epochs,
  digits), ``n_jobs=1`` against ``n_jobs=2``, each search in a fresh process (workers
  started by the search, as a new user's first search) and again in the same process
  (loky keeps its workers); then the wall time of what a worker imports, each in a fresh
  interpreter.
- ``busy``: the default ``WeightFreeClassifier(max_epochs=30)`` on digits with 2 threads,
  1 thread and the estimator's own choice (``n_threads=None``), quiet and then with one
  busy process beside it.

Run: python benchmarks/speed.py [--only fashion digits ...] [--rows 60000] [--rounds 3]
[--weight-free mask_rule=signed-supermask lr=0.02] (parameters of every weight-free fit)
"""

import argparse
import functools
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from cpu_epoch import bare_epochs  # noqa: E402

from sk_weightfree import DenseClassifier, WeightFreeClassifier  # noqa: E402

SECTIONS = ("fashion", "steps", "compile", "digits", "search", "busy")


def load():
    return f"[{os.getloadavg()[0]:.1f}]"


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def fashion_data(rows):
    from sk_weightfree.datasets import load_fashion_mnist

    X, y = load_fashion_mnist(subset="train", return_X_y=True)
    X = ((X - X.mean(0)) / (X.std(0) + 1e-8)).astype(np.float32)
    return X[:rows], y[:rows]


def digits_data():
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X).astype(np.float32), y


def paired_network(X, y, hidden):
    """The weight-free estimator's own network (fitted one epoch on a few rows)."""
    return WeightFreeClassifier(hidden_layer_sizes=hidden, max_epochs=1, random_state=0).fit(
        X[:500], y[:500]).net_.module_


def fit_epochs(make, X, y, epochs):
    """(wall seconds per epoch, median training-epoch seconds) of one fit."""
    seconds, estimator = timed(lambda: make().fit(X, y))
    return seconds / epochs, statistics.median(row["seconds"] for row in estimator.history_)


def fashion(args):
    import copy

    X, y = fashion_data(args.rows)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y, dtype=torch.int64)
    paired = paired_network(X, y, (300, 100))
    options = dict(max_epochs=2, random_state=0)
    print(f"\n### Fashion-MNIST, {len(y):,} rows, 784-300-100-10, batch 128, max_epochs=2\n")
    print("| round | WF fit s/epoch | WF training epoch | Dense fit s/epoch | Dense training "
          "epoch | bare paired loop epoch | WF / Dense (fit) | WF / bare loop (epoch) |")
    print("|" + " --- |" * 8)
    for round_ in range(args.rounds):
        wf = fit_epochs(lambda: WeightFreeClassifier(**options), X, y, 2)
        wf_load = load()
        dense = fit_epochs(lambda: DenseClassifier(**options), X, y, 2)
        dense_load = load()
        bare = statistics.median(bare_epochs(copy.deepcopy(paired), Xt, yt, 2, round_))
        print(f"| {round_ + 1} | {wf[0]:.2f} {wf_load} | {wf[1]:.2f} | {dense[0]:.2f} "
              f"{dense_load} | {dense[1]:.2f} | {bare:.2f} {load()} | {wf[0] / dense[0]:.2f}× "
              f"| {wf[1] / bare:.2f}× |", flush=True)
    # one fit split into its training epochs and the recalibration pass
    rows = min(len(y), 20_000)
    estimator = WeightFreeClassifier(max_epochs=1, random_state=0)
    calls = []
    module_class = type(paired)
    original = module_class.recalibrate_norms

    def spy(module, batches):
        start = time.perf_counter()
        original(module, batches)
        calls.append(time.perf_counter() - start)

    module_class.recalibrate_norms = spy
    try:
        total, _ = timed(lambda: estimator.fit(X[:rows], y[:rows]))
    finally:
        module_class.recalibrate_norms = original
    training = estimator.history_[-1]["seconds"]
    print(f"\nOne epoch on {rows:,} rows: fit {total:.2f} s = training {training:.2f} s + "
          f"recalibration {calls[0]:.3f} s ({calls[0] / total:.0%} of the fit) + the rest "
          f"{total - training - calls[0]:.3f} s {load()}")


def steps(args, n_batches=30, rounds=15):
    """ms per training step (the net's own ``train_step``) of the weight-free and dense
    estimators' networks, 784-300-100-10 on Fashion-MNIST batches of 128, interleaved."""
    from sk_weightfree._training import DeviceBatchIterator, ResidentData

    X, y = fashion_data(5_000)
    batches = list(DeviceBatchIterator(ResidentData(X, y, "cpu"), 128, shuffle=True,
                                       generator=torch.Generator().manual_seed(0)))
    runs = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, cls in (("wf", WeightFreeClassifier), ("dense", DenseClassifier)):
            net = cls(max_epochs=1, random_state=0).fit(X, y).net_
            net.module_.train()

            def run(net=net):
                start = time.perf_counter()
                for batch in batches[:n_batches]:
                    net.train_step(batch)
                return 1000 * (time.perf_counter() - start) / n_batches

            run()  # warm-up
            runs[name] = run
    ms = {name: [] for name in runs}
    for _ in range(rounds * args.rounds // 3):
        for name, run in runs.items():
            ms[name].append(run())
    ratios = [w / d for w, d in zip(ms["wf"], ms["dense"])]
    wf, dense = statistics.median(ms["wf"]), statistics.median(ms["dense"])
    print(f"\n### One training step, 784-300-100-10, batch 128, {torch.get_num_threads()} "
          f"threads (median of {len(ratios)} interleaved rounds of {n_batches} steps)\n")
    print(f"weight-free {wf:.2f} ms, dense {dense:.2f} ms: {wf / dense:.2f}× (rounds "
          f"{min(ratios):.2f}–{max(ratios):.2f}×) {load()}")
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        for name, run in runs.items():
            with profile(activities=[ProfilerActivity.CPU]) as profiler:
                for _ in range(4):
                    run()
            print(f"\n{name}: torch profiler over {4 * n_batches} steps\n")
            print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


def compile_row(args):
    print("\n### torch_compile: a first compiled fit, a second fit of the same shapes in the "
          "process (a new estimator, another seed), and an eager fit; 4 epochs\n")
    print("| data, network | family | first compiled fit (s) | compiled fit again (s) | "
          "eager fit (s) | compiled again / eager |")
    print("| --- | --- | --- | --- | --- | --- |")
    cases = [("Fashion-MNIST 20,000 rows, 784-300-100-10", *fashion_data(20_000), (300, 100)),
             ("digits, 64-100-10", *digits_data(), (100,))]
    for label, X, y, hidden in cases:
        for cls in (DenseClassifier, WeightFreeClassifier):
            def fit(seed, compiled):
                return timed(lambda: cls(hidden_layer_sizes=hidden, max_epochs=4, tol=0,
                                         torch_compile=compiled, random_state=seed).fit(X, y))[0]
            first = fit(0, True)
            again = fit(1, True)
            eager = fit(1, False)
            print(f"| {label} | {cls.__name__} | {first:.1f} {load()} | {again:.2f} | "
                  f"{eager:.2f} {load()} | {again / eager:.2f}× |", flush=True)


def digits(args):
    import copy

    from sklearn.neural_network import MLPClassifier

    X, y = digits_data()
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y, dtype=torch.int64)
    epochs = 10
    print(f"\n### digits, {len(y):,} rows, ms per epoch ({epochs} epochs a fit, median of "
          f"{args.rounds} interleaved rounds)\n")
    print("| hidden | WeightFreeClassifier | MLPClassifier | DenseClassifier | bare paired loop "
          "| WF / MLP | WF batch 200 / MLP | one-epoch fit (ms): WF | one-epoch fit: MLP "
          "| load |")
    print("|" + " --- |" * 10)
    for hidden in ((100,), (300, 100)):
        paired = paired_network(X, y, hidden)
        runs = {
            "wf": lambda: timed(lambda: WeightFreeClassifier(
                hidden_layer_sizes=hidden, max_epochs=epochs, tol=0, random_state=0).fit(X, y))[0],
            "mlp": lambda: timed(lambda: MLPClassifier(
                hidden_layer_sizes=hidden, max_iter=epochs, tol=0, random_state=0).fit(X, y))[0],
            # MLPClassifier's own batch on these data (batch_size="auto": min(200, n))
            "wf200": lambda: timed(lambda: WeightFreeClassifier(
                hidden_layer_sizes=hidden, max_epochs=epochs, tol=0, batch_size=200,
                random_state=0).fit(X, y))[0],
            "dense": lambda: timed(lambda: DenseClassifier(
                hidden_layer_sizes=hidden, max_epochs=epochs, tol=0, random_state=0).fit(X, y))[0],
            "bare": lambda: sum(bare_epochs(copy.deepcopy(paired), Xt, yt, epochs, 0)),
            "wf1": lambda: timed(lambda: WeightFreeClassifier(
                hidden_layer_sizes=hidden, max_epochs=1, random_state=0).fit(X, y))[0],
            "mlp1": lambda: timed(lambda: MLPClassifier(
                hidden_layer_sizes=hidden, max_iter=1, random_state=0).fit(X, y))[0],
        }
        seconds = {name: [] for name in runs}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name, run in runs.items():  # warm-up
                run()
            for _ in range(args.rounds):
                for name, run in runs.items():
                    seconds[name].append(run())
        ms = {name: 1000 * statistics.median(values) for name, values in seconds.items()}
        per_epoch = {name: ms[name] / epochs for name in ("wf", "mlp", "dense", "bare", "wf200")}
        print(f"| {hidden} | {per_epoch['wf']:.1f} | {per_epoch['mlp']:.1f} | "
              f"{per_epoch['dense']:.1f} | {per_epoch['bare']:.1f} | "
              f"{per_epoch['wf'] / per_epoch['mlp']:.2f}× | {per_epoch['wf200']:.1f}: "
              f"{per_epoch['wf200'] / per_epoch['mlp']:.2f}× | {ms['wf1']:.1f} | "
              f"{ms['mlp1']:.1f} | {load()} |", flush=True)
    fixed_costs(X, y)


# The steps of a fit whose time is not the training epochs', by the method that does each.
FIT_STEPS = {"checks and data": ("_validate_training_data", "_make_datasets"),
             "network and net": ("_build_module", "_make_net", "_dry_run"),
             "training epochs": ("_train",),
             "recalibration pass": ("_finish_training",),
             "export": ("_export_fitted_attributes",)}


def fixed_costs(X, y, repeats=20):
    """ms per step of a one-epoch digits fit, each step timed by wrapping its method."""

    spent = {step: 0.0 for step in FIT_STEPS}
    originals = []

    def timing(step, method):
        @functools.wraps(method)
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                spent[step] += time.perf_counter() - start
        return wrapper

    for step, names in FIT_STEPS.items():
        for name in names:
            for owner in type(WeightFreeClassifier()).__mro__:
                if name in owner.__dict__:
                    originals.append((owner, name, owner.__dict__[name]))
                    setattr(owner, name, timing(step, owner.__dict__[name]))
                    break
    total = 0.0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            WeightFreeClassifier(hidden_layer_sizes=(100,), max_epochs=1).fit(X, y)
            spent.update({step: 0.0 for step in spent})
            for seed in range(repeats):
                seconds, _ = timed(lambda: WeightFreeClassifier(
                    hidden_layer_sizes=(100,), max_epochs=1, random_state=seed).fit(X, y))
                total += seconds
    finally:
        for owner, name, method in originals:
            setattr(owner, name, method)
    cells = " + ".join(f"{step} {1000 * value / repeats:.1f}" for step, value in spent.items())
    rest = 1000 * (total - sum(spent.values())) / repeats
    print(f"\nOne-epoch fit of 64-(100,)-10 on digits, ms (mean of {repeats}): "
          f"{1000 * total / repeats:.1f} = {cells} + the rest {rest:.1f} {load()}")


SEARCH = """
import time, warnings
warnings.simplefilter("ignore")
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler
from sk_weightfree import WeightFreeClassifier
X, y = load_digits(return_X_y=True)
X = StandardScaler().fit_transform(X).astype(np.float32)
seconds = []
for _ in range(2):
    start = time.perf_counter()
    GridSearchCV(WeightFreeClassifier(max_epochs=10, random_state=0),
                 {{"hidden_layer_sizes": [(100,), (300, 100)]}}, cv=3, n_jobs={n_jobs}).fit(X, y)
    seconds.append(time.perf_counter() - start)
print(seconds)
"""


def search(args):
    print("\n### GridSearchCV over hidden_layer_sizes (2 values x 3 folds, 10 epochs, "
          "digits), seconds per search in a fresh process: first search, then a second one "
          "in the same process\n")
    print("| round | n_jobs=1 first | n_jobs=1 again | n_jobs=2 first | n_jobs=2 again | "
          "first: 2 / 1 | again: 2 / 1 |")
    print("|" + " --- |" * 7)
    for round_ in range(args.rounds):
        cells = {}
        for n_jobs in (1, 2):
            out = subprocess.run([sys.executable, "-c", SEARCH.format(n_jobs=n_jobs)],
                                 capture_output=True, text=True, check=True)
            cells[n_jobs] = (json.loads(out.stdout.strip().splitlines()[-1]), load())
        (one, load_one), (two, load_two) = cells[1], cells[2]
        print(f"| {round_ + 1} | {one[0]:.2f} {load_one} | {one[1]:.2f} | {two[0]:.2f} "
              f"{load_two} | {two[1]:.2f} | {two[0] / one[0]:.2f}× | {two[1] / one[1]:.2f}× |",
              flush=True)
    for round_ in range(args.rounds):
        imports = import_seconds()
        print(f"\nA fresh interpreter's imports, s (round {round_ + 1}): " + ", ".join(
            f"{name} {seconds:.2f}" for name, seconds in imports.items()) + f" {load()}")


# What each joblib worker imports before its first fit, timed in fresh interpreters.
IMPORTS = {"torch": "import torch", "sklearn.base": "import sklearn.base",
           "skorch": "import skorch",
           "WeightFreeClassifier": "from sk_weightfree import WeightFreeClassifier"}


def import_seconds():
    """Wall seconds of each of :data:`IMPORTS` in a fresh interpreter (its start included)."""
    seconds = {}
    for name, statement in IMPORTS.items():
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True)
        seconds[name] = time.perf_counter() - start
    return seconds


def _spin(stop):
    while not stop.is_set():
        pass


def busy(args):
    X, y = digits_data()

    has_policy = "n_threads" in WeightFreeClassifier().get_params()  # since issue 32
    default_threads = torch.get_num_threads()

    def fit(n_threads):
        """A fit with ``n_threads`` torch threads (None: the estimator's choice, or torch's
        default before the estimators had one)."""
        torch.set_num_threads(default_threads if n_threads is None else n_threads)
        options = {"n_threads": n_threads} if has_policy else {}
        try:
            return timed(lambda: WeightFreeClassifier(max_epochs=30, random_state=0,
                                                      **options).fit(X, y))
        finally:
            torch.set_num_threads(default_threads)

    print("\n### Default WeightFreeClassifier(max_epochs=30) on digits, fit seconds: 2 "
          "threads, 1 thread, the estimator's choice (n_threads=None)\n")
    print("| machine | 2 threads (epochs) | 1 thread (epochs) | n_threads=None (threads, "
          "epochs) | 2 / 1 | None / 1 |")
    print("| --- | --- | --- | --- | --- | --- |")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit(1)  # warm-up
        for label in ("quiet", "one busy process beside"):
            stop = multiprocessing.Event()
            spinner = None
            if label != "quiet":
                spinner = multiprocessing.Process(target=_spin, args=(stop,))
                spinner.start()
                time.sleep(1.0)
            try:
                for _ in range(args.rounds):
                    two, two_fit = fit(2)
                    one, one_fit = fit(1)
                    chosen, estimator = fit(None)
                    used = getattr(estimator, "n_threads_", default_threads)
                    # a thread count changes the float rounding, hence when the stopping
                    # rule ends the fit: the epochs run are printed beside the seconds
                    print(f"| {label} | {two:.2f} ({two_fit.n_iter_} ep.) {load()} | "
                          f"{one:.2f} ({one_fit.n_iter_} ep.) | {chosen:.2f} "
                          f"({used} thr., {estimator.n_iter_} ep.) {load()} | {two / one:.2f}× | "
                          f"{chosen / one:.2f}× |", flush=True)
            finally:
                stop.set()
                if spinner is not None:
                    spinner.join()


def _parameter(text):
    name, _, value = text.partition("=")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=SECTIONS)
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true",
                        help="steps: also print torch's profile of each network's steps")
    parser.add_argument("--weight-free", nargs="+", default=[], metavar="NAME=VALUE",
                        help="parameters of every WeightFreeClassifier of the run, e.g. "
                             "mask_rule=signed-supermask lr=0.02")
    args = parser.parse_args()
    if args.weight_free:
        global WeightFreeClassifier
        params = dict(_parameter(text) for text in args.weight_free)
        WeightFreeClassifier = functools.partial(WeightFreeClassifier, **params)
        print(f"every WeightFreeClassifier with {params}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} torch threads, "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}; "
          f"[1-minute load average when the figure was taken]")
    sections = {"fashion": fashion, "steps": steps, "compile": compile_row, "digits": digits,
                "search": search, "busy": busy}
    for name in args.only:
        sections[name](args)


if __name__ == "__main__":
    main()
