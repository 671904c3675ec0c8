"""The disentangling experiment (issue 30): architecture sources crossed with weight regimes.

How much of what a trained network does is its architecture (which edges exist) and how
much its weights? :func:`disentangle` takes four architectures per seed -- the one a
weight-free network *learned*, a dense network magnitude-*pruned* to the same density, the
learned one *rewired* (every unit's degree kept) and a *random* one (every layer's number
of edges kept) -- and trains each under four weight regimes: {0,1} weights with learned
signs (the weight-free family), one shared value (weight-agnostic), trained real weights
(dense) and frozen random weights (random network). The split, the encoding, the recipe,
the tuning and the intervals are those of :func:`sk_weightfree.compare` (``_study``).
"""

import json
from pathlib import Path

import numpy as np

from ._study import (SHARED_SCHEDULE, VALIDATION_SIZE, UsageError, _as_device,
                     _thread_count, build_estimators, check_search_space, check_seeds,
                     check_tunable, check_tune, device_name, family_classes, fit_counted,
                     format_matrix, jsonable, mean_interval, paired_difference,
                     prepare_arrays, search_space, threads_note, versions)

#: Where each architecture comes from, in the order of the table's rows.
SOURCES = ("learned", "pruned", "rewired", "random")
#: The weight regimes, as the families that train them, in the order of the columns.
REGIMES = ("weight-free", "weight-agnostic", "dense", "random")
#: What each regime puts on the edges (the table's column headers).
REGIME_LABELS = {"weight-free": "{0,1} signs", "weight-agnostic": "shared value",
                 "dense": "trained weights", "random": "frozen random"}
SOURCE_NOTES = {
    "learned": "the edges a weight-free network (default mask rule) learned on the "
               "training part (architecture_of)",
    "pruned": "a dense network magnitude-pruned (PrunedClassifier/Regressor, global) to the "
              "learned architecture's density, its architecture_of",
    "rewired": "the learned architecture rewired, every unit's in- and out-degree kept "
               "(sk_weightfree.rewire, random_state=seed)",
    "random": "every layer's number of edges of the learned architecture, placed uniformly "
              "at random (random_architecture, random_state=seed)",
}
#: Families fitted per seed: the two that find a source, then the four regimes.
_FAMILIES = ("weight-free", "pruned", "weight-agnostic", "dense", "random")


def architecture_density(architecture):
    """Share of the possible edges an architecture holds (all layers together)."""
    return float(sum(int(a.sum()) for a in architecture) / sum(a.size for a in architecture))


def cell_space(family, keep_density=False):
    """The tuning space of a family fitted on a given architecture: its
    :func:`~sk_weightfree._study.search_space` without the knobs that choose edges (the
    architecture fixes them), unless ``keep_density``."""
    return {param: values for param, values in search_space(family).items()
            if keep_density or "density" not in param}


class Disentanglement:
    """The result of :func:`disentangle`: sources × regimes, over seeds.

    Attributes
    ----------
    cells : list of dict
        One per (source, regime), rows first: ``source``, ``regime``, ``weights`` (what
        the regime puts on the edges), ``scores`` and ``seeds`` (one per seed), ``mean``,
        ``std`` (sample std; None with one seed), ``ci95`` (t interval; None with one
        seed), ``density`` and ``connections`` (of the source architecture, per seed),
        ``epochs``, ``fit_seconds``, ``not_converged`` (fits, tuning trials included, that
        reached the epoch budget still improving: ConvergenceWarnings, counted rather than
        printed), ``trials`` and ``chosen`` (with ``tune``).
    similarity : ndarray of shape (4, 4)
        Spectral similarity between the source architectures
        (:func:`sk_weightfree.pairwise_spectral_similarity` on the boolean
        architectures), mean over seeds.
    results : dict
        Everything ``results.json`` holds.
    architectures_ : dict
        ``{source: architecture}`` of the first seed.
    estimators_ : dict
        ``{(source, regime): fitted estimator}`` of the first seed.
    """

    def __init__(self, results, architectures, estimators):
        self.results = results
        self.cells = results["cells"]
        self.similarity = np.array(results["spectral_similarity"]["matrix"])
        self.architectures_ = architectures
        self.estimators_ = estimators

    def __repr__(self):
        return f"Disentanglement({len(self.cells)} cells, seeds={self.results['seeds']})"

    def cell(self, source, regime):
        """The cell of ``source`` (row) and ``regime`` (column)."""
        for cell in self.cells:
            if cell["source"] == source and cell["regime"] == regime:
                return cell
        raise KeyError(f"no cell ({source!r}, {regime!r}); sources {list(SOURCES)}, "
                       f"regimes {list(REGIMES)}")

    def difference(self, source, regime, reference="learned"):
        """``(mean, low, high)``: the cell ``(source, regime)`` minus the cell
        ``(reference, regime)``, paired by seed, with its 95 % t interval
        (:func:`~sk_weightfree._study.paired_difference`; ``nan`` bounds with one seed).
        """
        return paired_difference(self.cell(source, regime)["scores"],
                                 self.cell(reference, regime)["scores"])

    def matrix(self, key="mean"):
        """``key`` of every cell as a (source, regime) array."""
        return np.array([[self.cell(s, r)[key] for r in REGIMES] for s in SOURCES],
                        dtype=float)

    def table(self):
        """The text table the command prints: rows = sources, columns = regimes,
        ``mean ± std`` of the test score (the score of the one seed with ``seeds=1``)."""
        metric = "accuracy" if self.results["task"] == "classification" else "R²"
        header = [f"test {metric}", *(f"{REGIME_LABELS[r]} ({r})" for r in REGIMES),
                  "density"]
        body = []
        for source in SOURCES:
            line = [source]
            for regime in REGIMES:
                cell = self.cell(source, regime)
                line.append(f"{cell['mean']:.4f}" if cell["std"] is None
                            else f"{cell['mean']:.4f} ± {cell['std']:.4f}")
            line.append(f"{np.mean(self.cell(source, REGIMES[0])['density']):.3f}")
            body.append(line)
        widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
        lines = [header, ["-" * w for w in widths], *body]
        n = len(self.results["seeds"])
        notes = [f"mean ± sample std over {n} seeds" if n > 1 else "one seed",
                 "density: the source architecture's share of possible edges"]
        unconverged = sum(c.get("not_converged", 0) for c in self.cells)
        if unconverged:
            notes.append(f"{unconverged} fits reached the epoch budget still improving "
                         "(ConvergenceWarning; not_converged in results.json)")
        return "\n".join(
            "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                      for i, (c, w) in enumerate(zip(line, widths))) for line in lines
        ) + "\n" + "; ".join(notes)

    def similarity_table(self):
        """The spectral similarity matrix between the sources, as text."""
        return format_matrix(list(SOURCES), self.similarity)

    def to_json(self, path):
        """Write :attr:`results` as JSON to ``path``; returns the path."""
        Path(path).write_text(json.dumps(self.results, indent=2, default=jsonable))
        return path

    def to_csv(self, path):
        """One line per cell (per-seed lists and trials as JSON text); returns the path."""
        import csv

        fields = ["source", "regime", "weights", "mean", "std", "ci95", "scores", "seeds",
                  "density", "connections", "epochs", "fit_seconds", "not_converged",
                  "trials", "chosen"]
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            for cell in self.cells:
                writer.writerow({k: json.dumps(cell[k], default=jsonable)
                                 if isinstance(cell[k], (list, dict)) else cell[k]
                                 for k in fields})
        return path

    def plot(self, path=None, title=None):
        """Heatmap of the mean test score (sources × regimes, annotated ``mean ± std``)
        beside the sources' spectral similarity; written to ``path`` when given.
        Returns the path, or the figure without one."""
        import matplotlib

        if path is not None:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        means, stds = self.matrix("mean"), self.matrix("std")
        fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8),
                                          gridspec_kw={"width_ratios": [1.4, 1]})
        image = left.imshow(means, cmap="viridis", aspect="auto")
        for i in range(len(SOURCES)):
            for j in range(len(REGIMES)):
                text = f"{means[i, j]:.3f}" + ("" if np.isnan(stds[i, j])
                                                else f"\n± {stds[i, j]:.3f}")
                light = means[i, j] < np.nanmean(means)
                left.text(j, i, text, ha="center", va="center", fontsize=9,
                          color="white" if light else "black")
        left.set_xticks(range(len(REGIMES)), [f"{REGIME_LABELS[r]}\n({r})" for r in REGIMES],
                        fontsize=8)
        left.set_yticks(range(len(SOURCES)), SOURCES)
        left.set_xlabel("weight regime")
        left.set_ylabel("architecture source")
        metric = "accuracy" if self.results["task"] == "classification" else "R²"
        left.set_title(f"test {metric}, mean ± std over {len(self.results['seeds'])} seed(s)")
        fig.colorbar(image, ax=left, fraction=0.046)
        sim = right.imshow(self.similarity, cmap="magma", vmin=0, vmax=1)
        for i in range(len(SOURCES)):
            for j in range(len(SOURCES)):
                right.text(j, i, f"{self.similarity[i, j]:.2f}", ha="center", va="center",
                           fontsize=9, color="white" if self.similarity[i, j] < 0.6
                           else "black")
        right.set_xticks(range(len(SOURCES)), SOURCES)
        right.set_yticks(range(len(SOURCES)), SOURCES)
        right.set_title("spectral similarity of the sources")
        fig.colorbar(sim, ax=right, fraction=0.046)
        fig.suptitle(title or f"sk-weightfree disentangle: {self.results.get('description', '')}",
                     fontsize=10)
        fig.tight_layout()
        if path is None:
            return fig
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path


def _fit(name, estimator, data, task, n_trials, space, seed, check):
    """Fit ``estimator`` on the training part (tuned over ``space`` with ``n_trials``);
    the test part is not read. Returns ``(fitted, measurement)``."""
    estimator, measurement = fit_counted(name, estimator, data, task, n_trials=n_trials,
                                         space=space, seed=seed, check=check)
    return estimator, {**measurement, "epochs": int(estimator.n_iter_)}


def _score(estimator, data, task):
    from sklearn.metrics import accuracy_score, r2_score

    predicted = estimator.predict(data["X_test"])
    return float((r2_score if task == "regression" else accuracy_score)(data["y_test"],
                                                                         predicted))


def run_disentangle(make_data, task, *, hidden_layer_sizes=None, epochs=None, seeds=3,
                    n_trials=0, random_state=0, device="cpu", verbose=0, check=None,
                    say=None, announce=None):
    """The experiment behind :func:`disentangle` and ``sk-weightfree disentangle``.

    ``make_data(seed)`` returns one repeat's data (the dict of
    :func:`~sk_weightfree._study.split_and_encode`). Everything is checked before the
    first fit; ``check(name, fitted)`` runs after each fit, ``say`` prints status lines,
    ``announce(budget, warnings)`` runs once before the first fit. Per seed, every
    network is fitted first and the test part is scored after all of them.
    """
    from sklearn.base import clone

    import sk_weightfree

    check_seeds(seeds)
    check_tune(n_trials)
    hidden_layer_sizes = check_widths(hidden_layer_sizes)
    classes = family_classes(task)
    settings = ({} if hidden_layer_sizes is None else
                {f: {"hidden_layer_sizes": hidden_layer_sizes} for f in _FAMILIES})
    repeat_seeds = [random_state + r for r in range(seeds)]
    first = make_data(repeat_seeds[0])

    def build(seed):
        return build_estimators(list(_FAMILIES), classes, settings, budget=epochs, seed=seed,
                                device=device, verbose=verbose)

    built, budget, warned = build(repeat_seeds[0])
    spaces = {"learned": cell_space("weight-free", keep_density=True),
              "pruned": cell_space("pruned"),
              **{regime: cell_space(regime) for regime in REGIMES}}
    if n_trials:
        check_tunable(first["y_train"], task)
        for name, space in spaces.items():
            family = "weight-free" if name == "learned" else name
            check_search_space(name, built[family], space, n_trials)
    if announce is not None:
        announce(budget, warned)

    measured = {(s, r): [] for s in SOURCES for r in REGIMES}
    sources_seen = {s: [] for s in SOURCES}
    similarities = []
    first_architectures, first_estimators = {}, {}
    for repeat, seed in enumerate(repeat_seeds):
        data = first if repeat == 0 else make_data(seed)
        estimators = built if repeat == 0 else build(seed)[0]
        if say is not None:
            say(f"seed {seed} ({repeat + 1} of {seeds}): the learned and pruned sources")
        learner, _ = _fit("learned source (weight-free)", clone(estimators["weight-free"]),
                          data, task, n_trials, spaces["learned"], seed, check)
        learned = sk_weightfree.architecture_of(learner)
        density = architecture_density(learned)
        pruner, _ = _fit("pruned source", clone(estimators["pruned"]).set_params(
            density=density), data, task, n_trials, spaces["pruned"], seed, check)
        architectures = {
            "learned": learned, "pruned": sk_weightfree.architecture_of(pruner),
            "rewired": sk_weightfree.rewire(learned, random_state=seed),
            "random": sk_weightfree.random_architecture(learned, random_state=seed)}
        for source, architecture in architectures.items():
            sources_seen[source].append({
                "density": architecture_density(architecture),
                "connections": int(sum(int(a.sum()) for a in architecture)),
                "layer_densities": [float(a.mean()) for a in architecture]})
        fitted = {}
        for source in SOURCES:
            for regime in REGIMES:
                if say is not None:
                    say(f"  {source} architecture, {REGIME_LABELS[regime]} ({regime})")
                estimator = clone(estimators[regime]).set_params(
                    architecture=architectures[source])
                fitted[source, regime] = _fit(f"{regime} on the {source} architecture",
                                              estimator, data, task, n_trials,
                                              spaces[regime], seed, check)
        for key, (estimator, measurement) in fitted.items():  # the test part, once
            measured[key].append({"score": _score(estimator, data, task), **measurement})
        similarities.append(sk_weightfree.pairwise_spectral_similarity(
            [architectures[s] for s in SOURCES], random_state=seed))
        if repeat == 0:
            first_architectures = architectures
            first_estimators = {key: est for key, (est, _) in fitted.items()}

    cells = []
    for source in SOURCES:
        for regime in REGIMES:
            runs = measured[source, regime]
            scores = [m["score"] for m in runs]
            mean, low, high = mean_interval(scores)
            cells.append({
                "source": source, "regime": regime, "weights": REGIME_LABELS[regime],
                "mean": mean, "scores": scores, "seeds": repeat_seeds,
                "std": float(np.std(scores, ddof=1)) if len(scores) > 1 else None,
                "ci95": None if np.isnan(low) else [low, high],
                "density": [s["density"] for s in sources_seen[source]],
                "connections": [s["connections"] for s in sources_seen[source]],
                "epochs": [m["epochs"] for m in runs],
                "fit_seconds": [m["fit_seconds"] for m in runs],
                "threads": getattr(first_estimators[source, regime], "n_threads_", None),
                "not_converged": sum(m["not_converged"] for m in runs),
                "trials": [{"seed": seed, **t} for seed, m in zip(repeat_seeds, runs)
                           for t in m["trials"]],
                "chosen": [m["chosen"] for m in runs] if n_trials else [],
            })
    results = {
        "experiment": "disentangle", "task": task,
        "metric": "test_accuracy" if task == "classification" else "test_r2",
        "seed": random_state, "seeds": repeat_seeds, "tune": n_trials,
        "epoch_budget": budget, "hidden_layer_sizes": list(
            built["dense"].get_params()["hidden_layer_sizes"]),
        "sources": {s: SOURCE_NOTES[s] for s in SOURCES},
        "regimes": {r: f"{REGIME_LABELS[r]}: sk_weightfree."
                       f"{type(built[r]).__name__}(architecture=...)" for r in REGIMES},
        "source_architectures": sources_seen,
        "recipe_note": (f"one recipe: every fit trains with lr_schedule={SHARED_SCHEDULE!r} "
                        f"and max_epochs={budget} (the pruned source's retraining inside "
                        "it); each cell is fitted on the training part and the test part "
                        "is scored once per seed, after every fit of that seed"
                        + (f"; tune={n_trials}: every fit (the two sources and each cell) "
                           f"gets {n_trials} trials of seeded random search over its "
                           "family's search space without the knobs that choose edges, "
                           f"scored on a validation split of {VALIDATION_SIZE:.0%} of the "
                           "training part" if n_trials else "")),
        "search_spaces": ({name: {p: repr(v) if hasattr(v, "rvs") else v
                                  for p, v in space.items()}
                           for name, space in spaces.items()} if n_trials else None),
        "warnings": warned, "device": str(device),
        "device_name": device_name(_as_device(device)), "threads": _thread_count(),
        "threads_note": threads_note("cell"),
        "versions": versions(),
        "estimators": [{"family": f, "class": f"sk_weightfree.{type(e).__name__}",
                        "params": e.get_params(deep=False)} for f, e in built.items()],
        "cells": cells,
        "spectral_similarity": {"sources": list(SOURCES),
                                "matrix": np.mean(similarities, axis=0).tolist(),
                                "per_seed": [m.tolist() for m in similarities],
                                "note": "pairwise_spectral_similarity of the boolean "
                                        "architectures (random_state=seed), mean over "
                                        "seeds"},
    }
    return Disentanglement(results, first_architectures, first_estimators)


def disentangle(X, y, *, hidden_layer_sizes=None, epochs=None, seeds=3, tune=0,
                task="auto", random_state=0, X_test=None, y_test=None, train_size=None,
                device="auto", verbose=0):
    """Cross architecture sources with weight regimes: how much of the accuracy is the
    architecture, how much the weights, how much the exact wiring.

    The experiment behind ``sk-weightfree disentangle`` (issue 30). For each of ``seeds``
    repeats (seed ``random_state + repeat``), on the split and encoding of
    :func:`compare` (70/30, stratified for classification, standardised on the training
    part):

    1. a weight-free network is fitted on the training part; its edges are the
       **learned** architecture (:func:`architecture_of`);
    2. a dense network magnitude-pruned to the learned architecture's density
       (``Pruned*(density=...)``) gives the **pruned** one; :func:`rewire` of the
       learned one the **rewired** one (degrees kept) and :func:`random_architecture`
       the **random** one (each layer's number of edges kept);
    3. each source is trained under each weight regime -- {0,1} weights with learned
       signs (``WeightFree*``), one shared value (``WeightAgnostic*``), trained real
       weights (``Dense*``), frozen random weights with trained scales and readout
       (``RandomNetwork*``) -- with ``architecture=`` the source, the same recipe and
       epoch budget (``tune=N``: N trials per fit on a validation split of the training
       part);
    4. after every fit of the seed, the test part is scored once per cell.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    hidden_layer_sizes : tuple of int, default=None
        Widths of every network (None: the estimators' default, (300, 100)).
    epochs : int, default=None
        The epoch budget of every fit (None: the default ``max_epochs``, 30).
    seeds : int, default=3
    tune : int, default=0
        Trials of seeded random search per fit (its family's search space without the
        knobs that choose edges); 0: the shared recipe, untuned.
    task : {"auto", "classification", "regression"}, default="auto"
    random_state : int, default=0
        The first repeat's seed.
    X_test, y_test : array-like, default=None
        A fixed test part (then ``X, y`` is the whole training part).
    train_size : int, default=None
        Fit on that many rows of the training part (drawn per repeat).
    device : str, default="auto"
    verbose : int, default=0

    Returns
    -------
    result : Disentanglement
        ``cells`` (16, per-seed scores), ``similarity``, ``table()``, ``to_json(path)``,
        ``to_csv(path)``, ``plot(path)``.

    Raises
    ------
    ValueError
        Bad input, before anything is fitted.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_weightfree import disentangle
    >>> X, y = load_digits(return_X_y=True)
    >>> result = disentangle(X, y, hidden_layer_sizes=(16,), epochs=2, seeds=1,
    ...                      device="cpu")  # doctest: +SKIP
    >>> len(result.cells)  # doctest: +SKIP
    16
    """
    hidden_layer_sizes = check_widths(hidden_layer_sizes)
    make_data, task, device, description = prepare_arrays(
        X, y, task=task, X_test=X_test, y_test=y_test, train_size=train_size, device=device)
    result = run_disentangle(make_data, task, hidden_layer_sizes=hidden_layer_sizes,
                             epochs=epochs, seeds=seeds, n_trials=tune,
                             random_state=random_state, device=device, verbose=verbose)
    result.results["description"] = description
    return result


def check_widths(hidden_layer_sizes):
    """``hidden_layer_sizes`` as a tuple (None stays None); refuse anything but a
    positive integer or a non-empty sequence of them."""
    if hidden_layer_sizes is None:
        return None
    widths = ([hidden_layer_sizes] if isinstance(hidden_layer_sizes, (int, np.integer))
              else hidden_layer_sizes)
    if (isinstance(widths, (str, bytes)) or not hasattr(widths, "__len__") or not widths
            or any(isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 1
                   for w in widths)):
        raise UsageError(f"hidden_layer_sizes must be a non-empty sequence of positive "
                         f"integers, e.g. (300, 100); got {hidden_layer_sizes!r}")
    return tuple(int(w) for w in widths)
