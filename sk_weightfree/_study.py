"""The comparison study: the validation protocol, one recipe, equal tuning budgets, seeds
and intervals -- what :func:`compare`, ``sk-weightfree compare`` and ``benchmarks/`` use.

Run it directly for a one-line check of the benchmark splits::

    python -m sk_weightfree._study --dataset fashion-mnist

Rules of the benchmark protocol (:class:`Protocol`):

- **Splits.** ``digits``: scikit-learn's ``load_digits``, a fixed 70/30 stratified split
  (``random_state=0``). ``fashion-mnist``: the official 60k/10k files. A validation split
  is carved from the *training* part only (stratified, fixed seed): 10,000 of the 60,000
  Fashion-MNIST images, 20 % of the digits training part.
- **Standardisation** with the statistics of the part the estimator is fitted on
  (``StandardScaler``): train-minus-validation while tuning, the full training part at
  the end.
- **Choices on validation.** :meth:`Protocol.evaluate` fits on train-minus-validation and
  scores the validation split, over several seeds (mean ± std, at least 3 seeds).
- **Test read once, at the end.** ``evaluate(..., final=True)`` refits on the whole
  training part and scores the test split; call it only for the configurations already
  chosen. The test split is not even loaded before that call.
"""

import argparse
import json
import os
import platform
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DATASETS = ("digits", "fashion-mnist")
SPLIT_SEED = 0

#: The compared families, in the order ``compare`` reports them, and their public classes.
FAMILIES = ("dense", "weight-free", "pruned", "weight-agnostic", "random")
_CLASS_NAMES = {
    "classification": ("DenseClassifier", "WeightFreeClassifier", "PrunedClassifier",
                       "WeightAgnosticClassifier", "RandomNetworkClassifier"),
    "regression": ("DenseRegressor", "WeightFreeRegressor", "PrunedRegressor",
                   "WeightAgnosticRegressor", "RandomNetworkRegressor"),
}


def family_classes(task="classification"):
    """``{family: estimator class}`` for ``task`` ("classification" or "regression")."""
    import sk_weightfree

    return {family: getattr(sk_weightfree, name)
            for family, name in zip(FAMILIES, _CLASS_NAMES[task])}


# ---------------------------------------------------------------------------- statistics
def mean_interval(scores, confidence=0.95):
    """``(mean, low, high)``: the mean of ``scores`` and its t-based confidence interval.

    The interval is ``mean ± t(1 - (1 - confidence) / 2, n - 1) * s / sqrt(n)`` with ``s``
    the sample standard deviation (``ddof=1``); with one score it is ``(nan, nan)``.
    """
    from scipy import stats

    scores = np.asarray(scores, dtype=float)
    mean = float(scores.mean())
    if len(scores) < 2:
        return mean, float("nan"), float("nan")
    half = (stats.t.ppf(0.5 + confidence / 2, len(scores) - 1)
            * scores.std(ddof=1) / np.sqrt(len(scores)))
    return mean, float(mean - half), float(mean + half)


def paired_difference(scores, reference, confidence=0.95):
    """The difference ``scores - reference``, paired by seed: ``(mean, low, high)``.

    Both lists hold one score per seed, in the same seed order; the interval is
    :func:`mean_interval` of the per-seed differences.
    """
    scores, reference = np.asarray(scores, dtype=float), np.asarray(reference, dtype=float)
    if scores.shape != reference.shape:
        raise ValueError(f"paired scores need one per seed on both sides; got "
                         f"{len(scores)} and {len(reference)}")
    return mean_interval(scores - reference, confidence)


def difference_to(scores, reference, baseline):
    """A row's ``difference`` entry: ``scores - reference`` paired by seed, its 95 %
    interval, and whether that interval excludes zero (never for a degenerate interval,
    the same difference on every seed, which says nothing about the spread)."""
    mean, low, high = paired_difference(scores, reference)
    return {"baseline": baseline, "mean": mean,
            "ci95": None if np.isnan(low) else [low, high],
            "excludes_zero": bool((low > 0 or high < 0) and high - low > 1e-9)}


def _stratified_subset(X, y, n, seed):
    """At most ``n`` rows of ``(X, y)``, stratified (for smoke runs)."""
    from sklearn.model_selection import train_test_split

    if n is None or n >= len(y):
        return X, y
    X, _, y, _ = train_test_split(X, y, train_size=n, stratify=y, random_state=seed)
    return X, y


def _load(dataset, part):
    """``(X, y)`` of the training or test part, raw (not standardised)."""
    if dataset == "fashion-mnist":
        from sk_weightfree.datasets import load_fashion_mnist

        return load_fashion_mnist(subset=part, return_X_y=True)
    if dataset == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        X, y = load_digits(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(
            X.astype(np.float32), y, test_size=0.3, stratify=y, random_state=SPLIT_SEED)
        return (X_train, y_train) if part == "train" else (X_test, y_test)
    raise ValueError(f"dataset must be one of {DATASETS}; got {dataset!r}")


def _standardise(X_fit, X_score):
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(X_fit)
    return (scaler.transform(X_fit).astype(np.float32),
            scaler.transform(X_score).astype(np.float32))


@dataclass
class Result:
    """Scores of one configuration over seeds; ``split`` is "validation" or "test"."""

    split: str
    scores: list
    densities: list
    epoch_seconds: list = field(default_factory=list)  # every epoch of every seed
    fit_seconds: list = field(default_factory=list)
    n_iter: list = field(default_factory=list)
    connections: list = field(default_factory=list)  # n_connections_ (edges on)

    @property
    def mean(self):
        return float(np.mean(self.scores))

    @property
    def std(self):
        return float(np.std(self.scores))

    @property
    def density(self):
        return float(np.mean(self.densities))

    @property
    def seconds_per_epoch(self):
        return float(np.median(self.epoch_seconds)) if self.epoch_seconds else float("nan")

    def accuracy(self):
        """``"0.8912 ± 0.0021"``: mean ± (population) std over seeds."""
        return f"{self.mean:.4f} ± {self.std:.4f}"


class Protocol:
    """Data splits and the fit/score loop of the tuning protocol.

    Parameters
    ----------
    dataset : {"digits", "fashion-mnist"}
    validation_size : int or float, optional
        Size of the validation split carved from the training part (default 10,000
        images for Fashion-MNIST, 0.2 for digits).
    max_rows : int, optional
        Keep at most this many training (and test) rows, stratified: smoke runs only.
    """

    def __init__(self, dataset="digits", *, validation_size=None, max_rows=None):
        from sklearn.model_selection import train_test_split

        self.dataset = dataset
        self.max_rows = max_rows
        X, y = _stratified_subset(*_load(dataset, "train"), max_rows, SPLIT_SEED)
        if validation_size is None:
            validation_size = 10_000 if dataset == "fashion-mnist" else 0.2
        if isinstance(validation_size, int) and validation_size >= len(y):
            validation_size = 0.2  # smoke subsets
        X_fit, X_val, y_fit, y_val = train_test_split(
            X, y, test_size=validation_size, stratify=y, random_state=SPLIT_SEED)
        self._train = (X, y)
        self.X_fit, self.X_val = _standardise(X_fit, X_val)
        self.y_fit, self.y_val = y_fit, y_val
        self.test_reads = 0

    def describe(self):
        n, n_fit, n_val = len(self._train[1]), len(self.y_fit), len(self.y_val)
        return (f"{self.dataset}: {n} training rows = {n_fit} fit + {n_val} validation "
                f"(stratified, seed {SPLIT_SEED}); test read only for final evaluations")

    def final_data(self):
        """``(X_train, y_train, X_test, y_test)``: the whole training part and the test
        split, standardised with training statistics. Reading it counts as a test read."""
        self.test_reads += 1
        X_test, y_test = _stratified_subset(*_load(self.dataset, "test"), self.max_rows,
                                            SPLIT_SEED)
        X_train, X_test = _standardise(self._train[0], X_test)
        return X_train, self._train[1], X_test, y_test

    def evaluate(self, make_estimator, seeds=(0, 1, 2), final=False):
        """Fit ``make_estimator(seed)`` once per seed and score it.

        ``final=False``: fit on train-minus-validation, score validation accuracy.
        ``final=True``: fit on the whole training part, score test accuracy (only for
        configurations already chosen on validation). Returns a :class:`Result`.
        """
        if final:
            X_fit, y_fit, X_score, y_score = self.final_data()
        else:
            X_fit, y_fit, X_score, y_score = self.X_fit, self.y_fit, self.X_val, self.y_val
        result = Result("test" if final else "validation", [], [])
        for seed in seeds:
            estimator = make_estimator(seed)
            start = time.perf_counter()
            estimator.fit(X_fit, y_fit)
            result.fit_seconds.append(time.perf_counter() - start)
            result.scores.append(float(np.mean(estimator.predict(X_score) == y_score)))
            result.densities.append(float(estimator.density_))
            result.n_iter.append(int(estimator.n_iter_))
            result.connections.append(int(estimator.n_connections_))
            result.epoch_seconds += [row["seconds"] for row in estimator.history_]
        return result


def resolve_device(device):
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def warm_up(device):
    """One tiny untimed fit, so that torch/CUDA start-up is charged to no row."""
    from sk_weightfree import DenseClassifier, WeightFreeClassifier

    rng = np.random.RandomState(0)
    X, y = rng.randn(256, 8).astype(np.float32), np.arange(256) % 2
    for cls in (DenseClassifier, WeightFreeClassifier):
        cls(hidden_layer_sizes=(8,), max_epochs=1, device=device, random_state=0).fit(X, y)


def machine_line(device):
    """One line naming the machine: device, torch version, threads."""
    import torch

    device = resolve_device(device)
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        card = f"{props.name} ({props.total_memory / 2**30:.0f} GiB), CUDA {torch.version.cuda}"
    else:
        card = f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    return (f"device: {card}; torch {torch.__version__}, {torch.get_num_threads()} "
            f"threads; Python {platform.python_version()}")


def markdown_table(header, rows):
    """A markdown table: ``header`` a list of column names, ``rows`` lists of cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits", choices=DATASETS)
    args = parser.parse_args()
    protocol = Protocol(args.dataset)
    print(protocol.describe())
    print(machine_line("auto"))


# ============================================================================ compare
class UsageError(ValueError):
    """Bad input to a comparison, found before anything is fitted (one line).

    ``sk-weightfree compare`` reports it with exit status 2.
    """


#: The parameters that make a training recipe: every row of a comparison gets the same
#: values unless ``settings`` change them, and a row whose values differ is flagged.
RECIPE_PARAMS = ("lr_schedule", "max_epochs", "batch_size", "optimizer",
                 "hidden_layer_sizes")

#: The learning-rate schedule every family trains with in a comparison (and every
#: family's default ``lr_schedule``; ``tests/test_study.py`` holds them equal).
SHARED_SCHEDULE = "constant"

#: Share of the training part carved out as the validation split when tuning.
VALIDATION_SIZE = 0.2

#: Rows of the untimed warm-up fit of each estimator (one epoch).
WARMUP_ROWS = 64

#: Per task: the results key, the table header and the figure's axis label of the score.
METRICS = {
    "classification": ("test_accuracy", "test acc", "test accuracy"),
    "regression": ("test_r2", "test R²", "test R² (coefficient of determination)"),
}


def split_name(name):
    """``"weight-free:edge-popup"`` -> ``("weight-free", "edge-popup")``; ``"dense"`` ->
    ``("dense", None)``: a row name is a family, optionally with the mask rule it is
    built with."""
    family, colon, rule = name.partition(":")
    return family, (rule if colon else None)


def check_names(names):
    """Refuse unknown families, empty rules and repeated row names."""
    unknown = [n for n in names if split_name(n)[0] not in FAMILIES]
    if unknown:
        raise UsageError(f"unknown estimator(s) {unknown}; choose from {list(FAMILIES)}"
                         " (a family may name its mask rule: weight-free:edge-popup)")
    empty = [n for n in names if split_name(n)[1] == ""]
    if empty:
        raise UsageError(f"--estimators {empty[0]!r} names no mask rule after ':' (e.g. "
                         "weight-free:edge-popup)")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UsageError(f"--estimators names {', '.join(repeated)} more than once")


def row_settings(settings, names, option="--set"):
    """``{row name: {param: value}}``: what ``settings`` give each compared row.

    A key ``FAMILY`` reaches every row of that family (``weight-free`` reaches
    ``weight-free:edge-popup`` too, except its ``mask_rule``, which the row's name sets);
    a key ``FAMILY:RULE`` reaches that row alone and wins over the family's value.
    """
    for key in settings or {}:
        if split_name(key)[0] not in FAMILIES:
            raise UsageError(f"{option} {key}: unknown estimator {split_name(key)[0]!r}; "
                             f"choose from {list(FAMILIES)}")
        if key not in names and (split_name(key)[1] is not None
                                 or key not in {split_name(n)[0] for n in names}):
            raise UsageError(f"{option} {key}: {key!r} is not among the estimators compared "
                             f"({', '.join(names)})")
    rows = {}
    for name in names:
        family, rule = split_name(name)
        inherited = dict((settings or {}).get(family, {})) if name != family else {}
        if rule is not None:
            inherited.pop("mask_rule", None)
        rows[name] = {**inherited, **(settings or {}).get(name, {})}
    return rows


def _pruned_budget(estimator, budget, explicit, warned):
    """``max_epochs`` (the whole budget, retraining included) and ``finetune_epochs``.

    Appends to ``warned`` when the budget leaves no fine-tuning after pruning.
    """
    n_rounds = estimator.get_params()["n_rounds"]
    if "max_epochs" in explicit:  # the user chose; report what runs
        return {}
    finetune = explicit.get("finetune_epochs")
    if (not isinstance(n_rounds, int) or n_rounds < 1
            or not isinstance(finetune, (int, type(None)))):
        return {}  # left to the estimator's own parameter check
    if finetune is None:  # the estimator's own split (by default a third of the budget)
        finetune = estimator._finetune_epochs(budget)
    if budget - n_rounds * finetune < 1:
        raise UsageError(f"pruned: n_rounds={n_rounds} x finetune_epochs={finetune} leaves no "
                         f"epoch of initial training in the budget of {budget} epochs; lower "
                         "them or raise --epochs")
    if finetune == 0 and "finetune_epochs" not in explicit:
        warned.append(
            f"pruned: a budget of {budget} epoch{'' if budget == 1 else 's'} leaves no "
            f"fine-tuning after pruning (a third of it: finetune_epochs = ({budget} // 3) "
            f"// n_rounds={n_rounds} = 0), so the network is scored as pruned, untrained "
            f"since (a pruned CNN is then near chance); pruning needs --epochs >= "
            f"{3 * n_rounds} (one fine-tune epoch per round) or --set "
            "pruned.finetune_epochs=N")
    return {"max_epochs": budget, "finetune_epochs": finetune}


def build_estimators(names, classes, settings, *, budget, seed, device, verbose, model=None):
    """Construct and validate every row's estimator before anything is fitted.

    Returns ``({name: estimator}, budget, warnings)``. Each gets the shared recipe
    (``lr_schedule=SHARED_SCHEDULE`` and ``max_epochs=budget``; None: the dense
    estimator's default ``max_epochs``), ``random_state=seed``, ``device`` and ``verbose``;
    ``settings`` (``{name: {param: value}}``, see :func:`row_settings`) override those,
    and ``model`` (``{family: params}``) comes first. A name ``FAMILY:RULE`` builds the
    family with ``mask_rule=RULE``. Parameters are checked by the estimators' own
    constraints, cross-parameter checks and the device check, so a bad name or value
    fails here. ``warnings`` lists what runs but is likely not what the user wants.
    """
    if budget is None:
        budget = classes["dense"]().max_epochs
    settings = row_settings(settings, names)
    estimators, warned = {}, []
    for name in names:
        family, rule = split_name(name)
        estimator = classes[family]()
        valid = estimator.get_params(deep=False)
        explicit = settings[name]
        unknown = sorted(set(explicit) - set(valid))
        if unknown:
            raise UsageError(f"--set {name}.{unknown[0]}: {type(estimator).__name__} has no "
                             f"parameter {unknown[0]!r}; it has {', '.join(sorted(valid))}")
        params = {"random_state": seed, "device": str(device), "verbose": verbose,
                  "max_epochs": budget, "lr_schedule": SHARED_SCHEDULE,
                  **(model or {}).get(family, {})}
        if rule is not None:
            if "mask_rule" not in valid:
                raise UsageError(f"--estimators {name}: {type(estimator).__name__} has no "
                                 "mask_rule parameter, so it takes no rule after ':'")
            if "mask_rule" in explicit:
                raise UsageError(f"--set {name}.mask_rule: the name {name!r} already sets "
                                 f"mask_rule={rule!r}")
            params["mask_rule"] = rule
        if "finetune_epochs" in valid:
            estimator.set_params(**explicit)  # n_rounds may be among them
            params.update(_pruned_budget(estimator, budget, explicit, warned))
        estimator.set_params(**{**params, **explicit})
        try:
            validate_params(estimator)  # the device's availability too
        except (ValueError, TypeError) as exc:
            raise UsageError(f"{name}: {exc}") from None
        estimators[name] = estimator
    return estimators, budget, warned


def validate_params(estimator):
    """Run the checks ``fit`` runs on the parameters, without fitting (the estimators'
    public :meth:`~sk_weightfree._base.BaseNetwork.validate_params`; it sets nothing)."""
    estimator.validate_params()


def recipes(estimators):
    """``({name: recipe}, shared, {name: [params that differ]})`` of the rows.

    A row's recipe is its :data:`RECIPE_PARAMS`; the comparison's ``shared`` recipe takes,
    per parameter, the value most rows hold (the first row's on a tie); a row is flagged
    with each parameter where it differs.
    """
    each = {name: {p: _plain(est.get_params(deep=False).get(p)) for p in RECIPE_PARAMS}
            for name, est in estimators.items()}
    shared = {}
    for param in RECIPE_PARAMS:
        values = [json.dumps(r[param], default=repr) for r in each.values()]
        shared[param] = json.loads(max(values, key=values.count))
    differs = {name: [p for p in RECIPE_PARAMS
                      if json.dumps(r[p], default=repr) != json.dumps(shared[p], default=repr)]
               for name, r in each.items()}
    return each, shared, differs


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return value


# ---------------------------------------------------------------------------- tuning
def search_space(name):
    """The documented search space of row ``name`` for ``tune=N``.

    Every family: ``lr`` log-uniform around the family's default (dense and pruned
    1e-4 to 1e-2, the {0,1} families 5e-3 to 0.5) and ``lr_schedule`` constant or
    cosine. Then each family's own knobs: pruned ``density`` in {0.05, 0.1, 0.2, 0.3, 0.5};
    random ``density`` in {0.1, 0.25, 0.5}; weight-agnostic ``weight_values`` in
    {(0.5, 1, 2), (1,), (0.25, 0.5, 1, 2, 4)}; weight-free the row's mask rule with its
    own parameter (``init_density`` in {0.1, 0.25, 0.5} for threshold, supermask and
    signed-supermask; edge-popup's ``density`` in {0.3, 0.5, 0.7}).
    """
    from scipy.stats import loguniform

    family, rule = split_name(name)
    dense_like = family in ("dense", "pruned")
    space = {"lr": loguniform(1e-4, 1e-2) if dense_like else loguniform(5e-3, 0.5),
             "lr_schedule": ["constant", "cosine"]}
    if family == "pruned":
        space["density"] = [0.05, 0.1, 0.2, 0.3, 0.5]
    elif family == "random":
        space["density"] = [0.1, 0.25, 0.5]
    elif family == "weight-agnostic":
        space["weight_values"] = [(0.5, 1, 2), (1,), (0.25, 0.5, 1, 2, 4)]
    elif family == "weight-free":
        from .nn import make_rule

        rule = make_rule(rule or "threshold")
        knob = "density" if rule.name == "edge-popup" else "init_density"
        space[f"mask_rule__{knob}"] = ([0.3, 0.5, 0.7] if knob == "density"
                                      else [0.1, 0.25, 0.5])
    return space


def searchable(estimator):
    """``estimator`` with a rule name in ``mask_rule`` replaced by the rule object, so
    that the search can set its parameters (``mask_rule__<param>``)."""
    rule = estimator.get_params(deep=False).get("mask_rule")
    if isinstance(rule, str):
        from .nn import make_rule

        estimator.set_params(mask_rule=make_rule(rule))
    return estimator


def search_spaces(names, search=None):
    """``{row name: space}``: each row's :func:`search_space` with ``search``'s values
    (``{name: {param: list of values}}``, a family reaching its rule rows) replacing or
    adding parameters."""
    extra = row_settings(search or {}, names, option="--search")
    for name, params in extra.items():
        for param, values in params.items():
            if not isinstance(values, (list, tuple)) or not values:
                raise UsageError(f"--search {name}.{param}: needs a non-empty JSON list of "
                                 f"values to draw from; got {values!r}")
    return {name: {**search_space(name), **extra[name]} for name in names}


def check_search_space(name, estimator, space, n_trials):
    """Refuse a search-space value the row's estimator refuses, and a space of fewer
    distinct configurations than ``n_trials`` (every family gets exactly N trials)."""
    from sklearn.base import clone

    combinations = 1
    for param, values in space.items():
        if hasattr(values, "rvs"):
            combinations = float("inf")
            candidates = [values.ppf(0.0), values.ppf(1.0)] if hasattr(values, "ppf") else []
        else:
            candidates = list(values)
            combinations *= len(candidates)
            if not candidates:
                raise UsageError(f"--tune: {name} search space {param!r} is empty")
        for value in candidates:
            trial = searchable(clone(estimator))
            try:
                trial.set_params(**{param: value})
                validate_params(trial)
            except (ValueError, TypeError) as exc:
                raise UsageError(f"--tune: {name} refuses {param}={value!r} of its search "
                                 f"space: {_one_line(exc)}") from None
    if combinations < n_trials:
        raise UsageError(f"--tune {n_trials}: the search space of {name} has only "
                         f"{combinations} distinct configurations")


def validation_fold(y, seed, task, validation_size=VALIDATION_SIZE):
    """``PredefinedSplit`` fold labels over the training part: -1 for the rows fitted
    while tuning, 0 for the validation split (stratified for single-label classification,
    drawn with ``seed``)."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(y))
    stratify = y if task == "classification" and np.ndim(y) == 1 else None
    _, validation = train_test_split(index, test_size=validation_size, random_state=seed,
                                     stratify=stratify)
    fold = np.full(len(y), -1)
    fold[validation] = 0
    return fold


def check_tunable(y_train, task, validation_size=VALIDATION_SIZE):
    """Refuse a training part too small to carve a validation split for ``tune``.

    Classification needs every class at least twice in the training part and a
    validation split (``validation_size`` of it) holding every class once: at least
    ``ceil(n_classes / validation_size)`` rows; regression at least
    ``ceil(2 / validation_size)`` rows (two validation rows for an R²).
    """
    n = len(y_train)
    if task == "classification" and np.ndim(y_train) == 1:
        classes, counts = np.unique(y_train, return_counts=True)
        need = int(np.ceil(len(classes) / validation_size))
        if counts.min() < 2 or n < need or n - int(np.ceil(n * validation_size)) < len(classes):
            raise UsageError(
                f"--tune needs a validation split ({validation_size:.0%} of the training "
                f"part, stratified): at least {need} training rows and 2 of every class for "
                f"{len(classes)} classes; the training part has {n} rows, the rarest class "
                f"{counts.min()}")
    else:
        need = int(np.ceil(2 / validation_size))
        if n < need:
            raise UsageError(f"--tune needs a validation split ({validation_size:.0%} of the "
                             f"training part, at least 2 rows): at least {need} training "
                             f"rows; the training part has {n}")


def tune(estimator, space, X, y, *, n_trials, seed, task):
    """Seeded random search of ``n_trials`` configurations of ``estimator`` over
    ``space``, each fitted on the training part minus the validation split of
    :func:`validation_fold` and scored on that split; the best is refitted on the whole
    training part ``(X, y)``. The test part is not an argument: tuning cannot read it.

    Returns ``(fitted estimator, trials, chosen, refit_seconds)``; ``trials`` lists each
    configuration's ``params``, ``validation_score`` and ``seconds`` (fit and score).
    """
    from sklearn.model_selection import PredefinedSplit, RandomizedSearchCV

    search = RandomizedSearchCV(
        searchable(estimator), space, n_iter=n_trials, random_state=seed, refit=True,
        cv=PredefinedSplit(validation_fold(y, seed, task)), error_score="raise")
    search.fit(X, y)
    results = search.cv_results_
    trials = [{"params": {k: _plain(v) for k, v in params.items()},
               "validation_score": float(results["split0_test_score"][i]),
               "seconds": float(results["mean_fit_time"][i] + results["mean_score_time"][i])}
              for i, params in enumerate(results["params"])]
    chosen = {k: _plain(v) for k, v in search.best_params_.items()}
    return search.best_estimator_, trials, chosen, float(search.refit_time_)


# ---------------------------------------------------------------------------- data
def detect_task(y, description):
    """"regression" for a continuous target, else "classification" (type_of_target)."""
    from sklearn.utils.multiclass import type_of_target

    y = np.asarray(y)
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise UsageError(f"{description}: the target has missing (NaN) or infinite values")
    try:
        kind = type_of_target(y)
    except ValueError as exc:
        raise UsageError(f"{description}: unusable target ({exc})") from None
    if kind in ("continuous", "continuous-multioutput"):
        return "regression"
    if kind in ("binary", "multiclass", "multilabel-indicator"):
        return "classification"
    raise UsageError(f"{description}: unsupported target of type {kind!r}; use class labels "
                     "(one column, or a 0/1 indicator matrix) or numeric targets")


def resolve_task(requested, detected, y, description):
    """The task to run: ``requested`` unless "auto"; refused where the target cannot be it.

    Checked here, before any fit: ``classification`` of a continuous target (a classifier
    would refuse it mid-run) and ``regression`` of a non-numeric one.
    """
    if requested in ("auto", None):
        return detected
    y = np.asarray(y)
    if requested == "regression" and y.dtype.kind not in "biuf":
        raise UsageError(f"{description}: --task regression needs a numeric target")
    if requested == "classification" and detected == "regression":
        finite = y[np.isfinite(y)] if y.dtype.kind == "f" else y
        if not np.all(finite == np.round(finite)):
            raise UsageError(
                f"{description}: --task classification needs class labels, but the target is "
                f"continuous ({len(np.unique(finite)):,} distinct values, not all integers); "
                "use --task regression (or auto), or bin the target first")
    return requested


def split(X, y, task, seed, description, test_size=0.3):
    """The 70/30 train/test split of ``compare``: stratified for single-label
    classification when every class has two rows, drawn with ``seed``.

    Returns ``(X_train, X_test, y_train, y_test, what)``, ``what`` naming the split.
    """
    from sklearn.model_selection import train_test_split

    stratify = None
    if task == "classification" and np.ndim(y) == 1:
        if np.unique(y, return_counts=True)[1].min() > 1:
            stratify = y
    try:
        parts = train_test_split(X, y, test_size=test_size, random_state=seed,
                                 stratify=stratify)
    except ValueError as exc:
        raise UsageError(f"{description}: cannot split {len(X)} samples 70/30 ({exc})") from None
    return (*parts, "70/30 stratified split" if stratify is not None else "70/30 split")


def subsample(X, y, n, task, seed, description):
    """``n`` rows of ``(X, y)``, stratified for single-label classification."""
    from sklearn.model_selection import train_test_split

    if n >= len(y):
        raise UsageError(f"--train-size {n}: {description} has {len(y)} training rows; "
                         "choose fewer")
    stratify = y if task == "classification" and np.ndim(y) == 1 else None
    try:
        X, _, y, _ = train_test_split(X, y, train_size=n, random_state=seed, stratify=stratify)
    except ValueError as exc:
        raise UsageError(f"--train-size {n}: cannot draw a stratified subset of "
                         f"{description} ({_one_line(exc)})") from None
    return X, y


def encoder(categorical):
    """The feature encoding of ``compare``, to be fitted on the training part only.

    Numeric columns are standardised; categorical ones become one 0/1 input per
    category seen in the training part (in that order: numeric, then categorical). A
    category the training part lacks encodes as all zeros (``handle_unknown="ignore"``).

    Parameters
    ----------
    categorical : ndarray of shape (n_features,), bool
        True for the categorical columns.

    Returns
    -------
    encoder : :class:`~sklearn.compose.ColumnTransformer`
        Unfitted.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return ColumnTransformer([
        ("numeric", StandardScaler(), np.flatnonzero(~categorical)),
        ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
         np.flatnonzero(categorical)),
    ])


def split_and_encode(X, y, task, seed, description, *, categorical=None, train_size=None,
                     X_test=None, y_test=None):
    """One repeat's data: the train/test split drawn with ``seed`` (or the given test
    part), ``train_size`` rows of the training part, and the encoding fitted on the
    training part (:func:`encoder`), float32.

    Returns a dict with ``X_train``, ``X_test``, ``y_train``, ``y_test``, ``split`` (what
    split was made), ``encoder`` (fitted) and ``X_test_raw`` (the test part before the
    encoding).
    """
    if X_test is None:
        X_train, X_test, y_train, y_test, what = split(X, y, task, seed, description)
    else:
        X_train, y_train, what = X, y, "the given test part"
    if train_size is not None:
        X_train, y_train = subsample(X_train, y_train, train_size, task, seed, description)
    if task == "classification" and (len(np.unique(y_train)) if np.ndim(y_train) == 1
                                     else 2) < 2:
        raise UsageError(f"{description}: the training part has only one class; a classifier "
                         "needs at least two")
    mask = (np.zeros(np.shape(X_train)[1], dtype=bool) if categorical is None
            else np.asarray(categorical, dtype=bool))
    fitted = encoder(mask)
    X_train = fitted.fit_transform(X_train).astype(np.float32, copy=False)
    return {"X_train": X_train,
            "X_test": fitted.transform(X_test).astype(np.float32, copy=False),
            "y_train": y_train, "y_test": y_test, "split": what, "encoder": fitted,
            "X_test_raw": X_test}


# ---------------------------------------------------------------------------- fitting
def warm_up_rows(estimators, X, y, check=None):
    """One untimed 1-epoch fit of each estimator on :data:`WARMUP_ROWS` rows, so that
    torch's one-off start-up cost is charged to no row's fit time."""
    import warnings

    from sklearn.base import clone

    X, y = X[:WARMUP_ROWS], y[:WARMUP_ROWS]
    for name, estimator in estimators.items():
        params = estimator.get_params(deep=False)
        quick = {"max_epochs": 1, "verbose": 0}
        if "early_stopping" in params:
            quick["early_stopping"] = False
        if params.get("finetune_epochs"):
            quick["finetune_epochs"] = 1
        warm = clone(estimator).set_params(**quick)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                warm.fit(X, y)
        except (ValueError, RuntimeError):
            continue  # e.g. one class among these rows; the timed fit reports real problems
        if check is not None:
            check(name, warm)


def fit_and_score(name, estimator, data, task, *, n_trials=0, space=None, seed=0,
                  check=None):
    """Fit one row on ``data``'s training part (tuned first over ``space`` when
    ``n_trials``), score the test part once. Returns ``(fitted estimator, measurement
    dict)``."""
    from sklearn.metrics import accuracy_score, r2_score

    estimator, fitted = fit_counted(name, estimator, data, task, n_trials=n_trials,
                                    space=space, seed=seed, check=check)
    start = time.perf_counter()
    predicted = estimator.predict(data["X_test"])
    predict_seconds = time.perf_counter() - start
    score = (r2_score if task == "regression" else accuracy_score)(data["y_test"], predicted)
    return estimator, {"score": float(score), "density": float(estimator.density_),
                       "connections": int(estimator.n_connections_),
                       "epochs": int(estimator.n_iter_), "predict_seconds": predict_seconds,
                       **fitted}


def fit_counted(name, estimator, data, task, *, n_trials=0, space=None, seed=0, check=None):
    """Fit (or tune, then refit) one row on ``data``'s training part, reading nothing
    else; its ConvergenceWarnings are counted, not printed. ``check(name, fitted)`` runs
    after the fit. Returns ``(fitted estimator, {"fit_seconds", "trials", "chosen",
    "not_converged"})``."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        estimator, trials, chosen, fit_seconds = _fit_row(
            name, estimator, data, task, n_trials, space, seed)
    not_converged = 0
    for warning in caught:  # counted per row, not printed per fit; others pass on
        if issubclass(warning.category, ConvergenceWarning):
            not_converged += 1
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)
    if check is not None:
        check(name, estimator)
    return estimator, {"fit_seconds": fit_seconds, "trials": trials, "chosen": chosen,
                       "not_converged": not_converged}


def _fit_row(name, estimator, data, task, n_trials, space, seed):
    """Fit (or tune, then refit) one row on the training part: ``(estimator, trials,
    chosen, fit seconds)``."""
    start = time.perf_counter()
    trials, chosen = [], None
    try:
        if n_trials:
            estimator, trials, chosen, fit_seconds = tune(
                estimator, space or search_space(name), data["X_train"], data["y_train"],
                n_trials=n_trials, seed=seed, task=task)
        else:
            estimator.fit(data["X_train"], data["y_train"])
            fit_seconds = time.perf_counter() - start
    except ValueError as exc:
        description = data.get("description", "the data")
        raise UsageError(f"{name} could not be fitted on {description}: "
                         f"{_one_line(exc)}") from None
    return estimator, trials, chosen, fit_seconds


def _one_line(exc):
    return " ".join(str(exc).split())


# ---------------------------------------------------------------------------- stored bytes
#: Entry fields that hold a weight layer's weights in a compact file (the rest of the
#: entry -- intercepts, per-unit arrays, geometry -- is kept when the weights are rewritten).
_WEIGHT_FIELDS = ("kind", "mask", "value", "values", "weights")


def weight_entries(header):
    """The weighted layers of a compact file, from its JSON header.

    Yields ``(entry, shape, input_axis, paired)``: the layer's entry of the header (a
    dict), its weight shape as stored (``(n_in, n_out)`` for a multilayer file, torch's
    ``(out, in, ...)`` for a chain), which axis counts the inputs, and whether those
    inputs are paired ``[a, -a]`` (so that axis is twice the network's own width).
    """
    if header.get("network") == "chain":
        previous = None
        for op in header["ops"]:
            if "kind" in op:
                yield op, tuple(op["shape"]), 1, previous == "paired"
            previous = op["op"]
        return
    for member in header["members"]:
        for entry, shape in zip(member, header["layer_shapes"]):
            yield entry, tuple(shape), 0, bool(header.get("paired_inputs"))


def rewritten_file_bytes(path, rewrite):
    """Bytes of the compact file at ``path`` with its weights stored another way.

    ``rewrite(entry, shape, input_axis, paired, arrays)`` receives each weighted layer
    (see :func:`weight_entries`) and the file's arrays by key, and returns the new weight
    fields of that entry: JSON values, or ndarrays, which are stored as arrays of the
    file. The file is written exactly as :func:`sk_weightfree.io.dump` writes one (an
    uncompressed ``.npz`` of a JSON header and plain arrays), so the count includes the
    same per-array overhead; :func:`sk_weightfree.io.load` need not read it.
    """
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    header = json.loads(arrays.pop("header").tobytes())
    for entry, shape, input_axis, paired in weight_entries(header):
        fields = rewrite(entry, shape, input_axis, paired, arrays)
        for name in _WEIGHT_FIELDS:
            entry.pop(name, None)
        for name, value in fields.items():
            if isinstance(value, np.ndarray):
                key = f"a{len(arrays)}"
                arrays[key] = value
                value = key
            entry[name] = value
    used = json.dumps(header)
    kept = {key: value for key, value in arrays.items() if f'"{key}"' in used}
    header_array = np.frombuffer(used.encode("utf-8"), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as folder:
        rewritten = Path(folder) / "rewritten.npz"
        np.savez(rewritten, header=header_array, **kept)
        return rewritten.stat().st_size


def _as_dense_float32(entry, shape, input_axis, paired, arrays):
    """Every possible edge a float32; paired twins folded into one signed weight."""
    shape = list(shape)
    if paired:
        shape[input_axis] //= 2
    return {"kind": "dense", "weights": np.zeros(shape, dtype=np.float32)}


def stored_bytes(estimator):
    """Sizes of ``estimator``'s compact file, as ``compare`` reports them.

    Returns
    -------
    sizes : dict
        ``file_bytes``: what :func:`sk_weightfree.io.dump` writes (float32 precision);
        ``dense_float32_bytes``: the same file with every possible edge of the network
        stored as a float32 (the dense reference; paired ``[h, -h]`` inputs folded, so
        it is the network of the same widths); ``file_note``: None, or why ``io.dump``
        refused the model (both sizes are None then).
    """
    from . import io

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.npz"
        try:
            size = io.dump(estimator, path)
        except (ValueError, TypeError) as exc:
            return {"file_bytes": None, "dense_float32_bytes": None,
                    "file_note": f"io.dump refused it: {_one_line(exc)}"}
        return {"file_bytes": int(size),
                "dense_float32_bytes": rewritten_file_bytes(path, _as_dense_float32),
                "file_note": None}


# ---------------------------------------------------------------------------- the study
def format_table(rows, task="classification"):
    """Aligned text table of a comparison's rows (as :attr:`Comparison.rows` holds them).

    With one seed: the score of that seed. With several: mean ± std, the 95 % interval
    and the paired difference to the baseline row, ``*`` where its interval excludes 0.
    A row whose recipe differs from the others' is marked ``†`` and named below.
    """
    score_key, score_header, _ = METRICS[task]
    several = any(len(r.get("scores", ())) > 1 for r in rows)
    header = ["estimator", score_header + (" (mean ± std)" if several else "")]
    if several:
        baseline = next((r["difference"]["baseline"] for r in rows if r.get("difference")),
                        None)
        header += ["95% CI", f"vs {baseline} (95% CI)" if baseline else "difference"]
    header += ["density", "connections", "epochs", "fit s", "predict s", "file kB",
               "f32 dense kB"]
    body = []
    for r in rows:
        mark = " †" if r.get("recipe_differs") else ""
        line = [r["estimator"] + mark]
        if several:
            low, high = r["ci95"] or (float("nan"),) * 2
            line += [f"{r[score_key]:.4f} ± {r['std']:.4f}", f"[{low:.4f}, {high:.4f}]",
                     _difference_cell(r.get("difference"))]
        else:
            line.append(f"{r[score_key]:.4f}")
        line += [f"{r['density']:.3f}", f"{r['connections']:,}", str(r["epochs"]),
                 f"{r['fit_seconds']:.2f}", f"{r['predict_seconds']:.3f}",
                 _kilobytes(r.get("file_bytes")), _kilobytes(r.get("dense_float32_bytes"))]
        body.append(line)
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = [header, ["-" * w for w in widths], *body]
    table = "\n".join(
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                  for i, (cell, w) in enumerate(zip(line, widths)))
        for line in lines
    )
    notes = [f"n/a ({r['estimator']}): {r['file_note']}" for r in rows if r.get("file_note")]
    notes += [f"† {r['estimator']}: its recipe differs from the others' in "
              + ", ".join(f"{p}={r['recipe'][p]}" for p in r["recipe_differs"])
              for r in rows if r.get("recipe_differs")]
    if several:
        notes.append("* the paired difference's 95% interval excludes 0 (t interval over "
                     "seeds; std is the sample std)")
    return "\n".join([table, *notes]) + (
        "\nfile kB: the sk_weightfree.io.dump file; f32 dense kB: the same network with every "
        "possible edge a float32 (1 kB = 1,000 bytes)")


def _difference_cell(difference):
    if not difference:
        return "(baseline)" if difference is None else ""
    low, high = difference["ci95"]
    return (f"{difference['mean']:+.4f} [{low:+.4f}, {high:+.4f}]"
            + ("*" if difference["excludes_zero"] else ""))


def _kilobytes(size):
    return "n/a" if size is None else f"{size / 1000:,.1f}"


def format_matrix(names, matrix):
    """Aligned text rendering of a labelled square matrix."""
    width = max(len(n) for n in names)
    head = " " * width + "  " + "  ".join(n.rjust(max(6, len(n))) for n in names)
    lines = [head]
    for name, row in zip(names, matrix):
        lines.append(name.ljust(width) + "  " + "  ".join(
            f"{v:.3f}".rjust(max(6, len(n))) for n, v in zip(names, row)))
    return "\n".join(lines)


def jsonable(value):
    """JSON for what ``get_params`` may hold besides plain values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return repr(value)


def versions():
    """Versions of the package and what it runs on, for ``results.json``."""
    import scipy
    import skorch
    import sklearn
    import torch

    from . import __version__

    return {"sk_weightfree": __version__, "python": platform.python_version(),
            "numpy": np.__version__, "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__, "torch": torch.__version__,
            "skorch": skorch.__version__}


def device_name(device):
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


TIMING_NOTE = (f"fit_seconds is the wall time of fit(), measured after one untimed warm-up "
               f"fit of each estimator (1 epoch on {WARMUP_ROWS} training rows) so that "
               "torch's one-off start-up cost is charged to none of them (with tune, the "
               "refit of the chosen configuration on the whole training part); "
               "predict_seconds is one predict() on the test part; both are means over seeds")
BUDGET_NOTE = ("every estimator trains for the same number of epochs (epoch_budget): "
               "max_epochs = epoch_budget; the pruned family's retraining counts inside it "
               "(epoch_budget - n_rounds * finetune_epochs dense epochs, then the "
               "retraining), with finetune_epochs = (epoch_budget // 3) // n_rounds unless "
               "set with --set. "
               "The 'epochs' of each result is the number it ran (n_iter_; less with early "
               "stopping)")
ROW_NOTE = ("score: mean over seeds of the test score; scores: one per seed (seed = "
            "random_state + repeat: the split, the initialisation and the tuning of that "
            "repeat); std: sample std (ddof=1); ci95: t interval of the mean; difference: "
            "this row minus the baseline row, paired by seed, with its t interval; density, "
            "connections, epochs and the file sizes are of the first seed's fitted model; "
            "recipe_differs: the recipe parameters in which this row differs from the "
            "comparison's shared recipe; trials: every tuning trial (validation split "
            "carved from the training part), chosen: the configuration refitted per seed "
            "(with tune, recipe is the untuned starting point: the schedule and the rate "
            "each seed trained with are in chosen); not_converged: how many of the row's "
            "fits (tuning trials included) ended at max_epochs while still improving by "
            "more than tol (scikit-learn's ConvergenceWarning, counted rather than printed)")


class Comparison:
    """The result of :func:`compare`: one row per estimator, over seeds.

    Attributes
    ----------
    rows : list of dict
        One per row name, the ``results`` of ``results.json``: ``estimator``, the mean
        test score (``test_accuracy`` or ``test_r2``), ``scores`` and ``seeds`` (one per
        seed), ``std``, ``ci95``, ``difference`` (to the baseline, paired by seed),
        ``density``, ``connections``, ``epochs``, ``fit_seconds``, ``predict_seconds``,
        ``file_bytes``, ``dense_float32_bytes``, ``file_note``, ``recipe``,
        ``recipe_differs``, ``trials`` and ``chosen`` (see ``results["row_note"]``).
    results : dict
        Everything ``results.json`` holds about the comparison: the rows, the shared
        recipe, every estimator's parameters, seeds, device, versions, the spectral
        similarity of the first seed's fitted networks.
    estimators_ : dict
        ``{name: fitted estimator}`` of the first seed.
    similarity_ : ndarray of shape (n_rows, n_rows)
    """

    def __init__(self, results, estimators):
        self.results = results
        self.rows = results["results"]
        self.estimators_ = estimators
        self.similarity_ = np.array(results["spectral_similarity"]["matrix"])

    def __repr__(self):
        return f"Comparison({[r['estimator'] for r in self.rows]}, seeds={self.results['seeds']})"

    def table(self):
        """The aligned text table ``sk-weightfree compare`` prints."""
        return format_table(self.rows, self.results["task"])

    def to_json(self, path):
        """Write :attr:`results` as JSON to ``path``; returns the path."""
        Path(path).write_text(json.dumps(self.results, indent=2, default=jsonable))
        return path

    def plot(self, path, title=None, image_shape=None):
        """Write the report figure (score vs density with 95 % error bars, the
        spectral similarity heatmap, the spectral densities and, when a weight-free row
        was fitted, what it learned: its receptive fields as images of ``image_shape``
        (e.g. ``(8, 8)`` for digits), or its degree distributions without one) to
        ``path``."""
        from . import spectral_density
        from ._report import plot_report

        names = list(self.estimators_)
        seed = self.results["seeds"][0]
        densities = {name: spectral_density(est, random_state=seed)
                     for name, est in self.estimators_.items()}
        score_key, _, label = METRICS[self.results["task"]]
        learned = next((est for name, est in self.estimators_.items()
                        if split_name(name)[0] == "weight-free"), None)
        return plot_report(self.rows, names, self.similarity_, densities, path,
                           title=title or f"sk-weightfree compare: "
                                          f"{self.results.get('description', '')}",
                           score_key=score_key, score_label=label, learned=learned,
                           image_shape=image_shape)


def check_seeds(seeds):
    if isinstance(seeds, bool) or not isinstance(seeds, (int, np.integer)) or seeds < 1:
        raise UsageError(f"--seeds must be a positive integer (the number of repeats); "
                         f"got {seeds!r}")


def check_tune(n_trials):
    if isinstance(n_trials, bool) or not isinstance(n_trials, (int, np.integer)) \
            or n_trials < 0:
        raise UsageError(f"--tune must be an integer >= 0 (trials per family; 0: no "
                         f"tuning); got {n_trials!r}")


def run_study(names, make_data, classes, task, *, epochs=None, seeds=1, n_trials=0,
              baseline=None, settings=None, model=None, random_state=0, device="cpu",
              verbose=0, search=None, check=None, say=None, announce=None):
    """The study behind :func:`compare` and ``sk-weightfree compare``.

    ``make_data(seed)`` returns one repeat's data (the dict of :func:`split_and_encode`);
    ``classes`` maps each family to its estimator class; ``search`` (``{name: {param:
    values}}``, reaching rows as ``settings`` do) replaces or adds parameters of each
    row's :func:`search_space`. Everything is checked (names,
    settings, recipe, search spaces, the size of the validation split) before the first
    fit; ``check(name, fitted)`` runs after each fit (the command's Ctrl-C check);
    ``say`` prints status lines; ``announce(budget, warnings)`` runs once every check
    has passed, before the first fit. Returns a :class:`Comparison`.
    """
    import warnings as _warnings

    import sk_weightfree

    names = list(names)
    check_names(names)
    check_seeds(seeds)
    check_tune(n_trials)
    if baseline is None:
        baseline = "dense" if "dense" in names else names[0]
    if baseline not in names:
        raise UsageError(f"--baseline {baseline!r} is not among the estimators compared "
                         f"({', '.join(names)})")
    repeat_seeds = [random_state + r for r in range(seeds)]
    first = make_data(repeat_seeds[0])
    built, budget, warned_now = build_estimators(
        names, classes, settings or {}, budget=epochs, seed=repeat_seeds[0], device=device,
        verbose=verbose, model=model)
    warned = warned_now
    spaces = search_spaces(names, search)
    if n_trials:
        check_tunable(first["y_train"], task)
        for name, estimator in built.items():
            check_search_space(name, estimator, spaces[name], n_trials)
    if announce is not None:
        announce(budget, warned)
    each_recipe, shared, differs = recipes(built)
    score_key = METRICS[task][0]
    measured = {name: [] for name in names}
    fitted_first = {}
    with _warnings.catch_warnings():
        # the command reports an interrupt itself, in one line
        _warnings.filterwarnings("ignore", message="Training interrupted by the user")
        for repeat, seed in enumerate(repeat_seeds):
            data = first if repeat == 0 else make_data(seed)
            data.setdefault("description", first.get("description", "the data"))
            estimators = built if repeat == 0 else build_estimators(
                names, classes, settings or {}, budget=epochs, seed=seed, device=device,
                verbose=verbose, model=model)[0]
            if repeat == 0:
                warm_up_rows(estimators, data["X_train"], data["y_train"], check)
            if say is not None and seeds > 1:
                say(f"seed {seed} ({repeat + 1} of {seeds})")
            for name, estimator in estimators.items():
                fitted, row = fit_and_score(name, estimator, data, task, n_trials=n_trials,
                                            space=spaces[name], seed=seed, check=check)
                measured[name].append(row)
                if repeat == 0:
                    fitted_first[name] = fitted

    similarity = sk_weightfree.pairwise_spectral_similarity(list(fitted_first.values()),
                                                            random_state=repeat_seeds[0])
    reference = [m["score"] for m in measured[baseline]]
    rows = []
    for name in names:
        scores = [m["score"] for m in measured[name]]
        mean, low, high = mean_interval(scores)
        first_fit = measured[name][0]
        difference = None
        if name != baseline:
            difference = difference_to(scores, reference, baseline)
        rows.append({
            "estimator": name, score_key: mean, "scores": scores, "seeds": repeat_seeds,
            "std": float(np.std(scores, ddof=1)) if len(scores) > 1 else None,
            "ci95": None if np.isnan(low) else [low, high], "difference": difference,
            "density": first_fit["density"], "connections": first_fit["connections"],
            "epochs": first_fit["epochs"],
            "threads": getattr(fitted_first[name], "n_threads_", None),
            "fit_seconds": float(np.mean([m["fit_seconds"] for m in measured[name]])),
            "predict_seconds": float(np.mean([m["predict_seconds"] for m in measured[name]])),
            **stored_bytes(fitted_first[name]),
            "recipe": each_recipe[name], "recipe_differs": differs[name],
            "trials": [{"seed": seed, **trial} for seed, m in zip(repeat_seeds, measured[name])
                       for trial in m["trials"]],
            "chosen": [m["chosen"] for m in measured[name]] if n_trials else [],
            "not_converged": sum(m["not_converged"] for m in measured[name]),
        })
    results = {
        "task": task, "metric": score_key, "seed": random_state, "seeds": repeat_seeds,
        "tune": n_trials, "baseline": baseline, "recipe": shared,
        "search_spaces": ({name: {param: _described(values) for param, values in space.items()}
                           for name, space in spaces.items()} if n_trials else None),
        "recipe_note": (f"one recipe: every row trains with lr_schedule={SHARED_SCHEDULE!r} "
                        f"and the same epoch budget unless --set changed it; a row whose "
                        f"recipe differs from the shared one is flagged (recipe_differs)"
                        + (f"; tune={n_trials}: every row gets exactly {n_trials} trials of "
                           f"seeded random search over its search space, scored on a "
                           f"validation split of {VALIDATION_SIZE:.0%} of the training part"
                           if n_trials else "")),
        "device": str(device), "threads": _thread_count(), "threads_note": threads_note("row"),
        "warnings": warned,
        "device_name": device_name(_as_device(device)), "epoch_budget": budget,
        "epoch_budget_note": BUDGET_NOTE, "timing_note": TIMING_NOTE, "row_note": ROW_NOTE,
        "versions": versions(),
        "estimators": [{"name": name, "class": f"sk_weightfree.{type(est).__name__}",
                        "params": est.get_params(deep=False)}
                       for name, est in built.items()],
        "results": rows,
        "spectral_similarity": {"estimators": names, "matrix": similarity.tolist()},
    }
    return Comparison(results, fitted_first)


def _described(values):
    """A search-space entry for results.json: the list, or a distribution's name and
    arguments (``{"dist": "loguniform", "args": [0.0001, 0.01]}``)."""
    if not hasattr(values, "rvs"):
        return values
    return {"dist": getattr(getattr(values, "dist", None), "name", type(values).__name__),
            "args": [_plain(a) for a in getattr(values, "args", ())],
            "kwds": {k: _plain(v) for k, v in getattr(values, "kwds", {}).items()}}


def _as_device(device):
    import torch

    return torch.device(device)


def threads_note(entry="row"):
    """The results' note on their two thread counts; ``entry`` names what holds the
    second (a compare row, a disentangle cell)."""
    return (f"threads: torch's setting during the study, the most a fit may use; each "
            f"{entry}'s threads: what its fits used (the estimators' n_threads_: one thread "
            f"for a small network)")


def _thread_count():
    import torch

    return torch.get_num_threads()


def prepare_arrays(X, y, *, task="auto", X_test=None, y_test=None, train_size=None,
                   device="auto"):
    """The input checks of :func:`compare` (and :func:`sk_weightfree.disentangle`) on
    arrays: the task decided (or refused), class labels given as floats made integers,
    the device resolved, a given test part checked, all before any fit.

    Returns ``(make_data, task, device, description)``: ``make_data(seed)`` is one
    repeat's data, :func:`split_and_encode` with ``train_size`` and the given test part.
    """
    from ._base import resolve_device

    X, y = np.asarray(X), np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    description = f"data ({X.shape[0]} rows, {X.shape[1]} features)"
    task = resolve_task(task, detect_task(y, description), y, description)
    if task == "classification" and y.dtype.kind == "f" and np.all(y == np.round(y)):
        y = y.astype(np.int64)
    try:
        device = resolve_device(device)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if (X_test is None) != (y_test is None):
        raise UsageError("X_test and y_test go together: give both (a fixed test part) or "
                         "neither (a 70/30 split per seed)")
    if X_test is not None:
        X_test, y_test = np.asarray(X_test), np.asarray(y_test)
        if y_test.ndim == 2 and y_test.shape[1] == 1:
            y_test = y_test.ravel()
        if len(X_test) != len(y_test) or X_test.ndim != 2 or X_test.shape[1] != X.shape[1]:
            raise UsageError(f"the test part must have one target per row and X's "
                             f"{X.shape[1]} features; got X_test of shape {X_test.shape} "
                             f"and {len(y_test)} targets")
        detect_task(y_test, "the test part")  # NaN, infinite or unusable targets

    def make_data(seed):
        data = split_and_encode(X, y, task, seed, description, train_size=train_size,
                                X_test=X_test, y_test=y_test)
        data["description"] = description
        return data

    return make_data, task, device, description


def compare(X, y, *, estimators=None, epochs=None, seeds=1, tune=0, baseline=None,
            settings=None, task="auto", random_state=0, X_test=None, y_test=None,
            train_size=None, search=None, device="auto", verbose=0):
    """Compare the families on ``(X, y)``: one recipe, an equal tuning budget, seeds.

    The study behind ``sk-weightfree compare``. For each of ``seeds`` repeats (seed
    ``random_state + repeat``): a 70/30 train/test split (stratified for
    classification; or the given ``X_test, y_test``), features standardised on the
    training part, every row fitted on the training part with the shared recipe
    (``lr_schedule`` and ``max_epochs`` equal; ``tune=N``: N trials of seeded random
    search on a validation split carved from the training part, then a refit on all of
    it), and the test part scored once.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Numeric features.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    estimators : list of str, default=None
        Row names: families (``"dense"``, ``"weight-free"``, ``"pruned"``,
        ``"weight-agnostic"``, ``"random"``; default all) or ``"FAMILY:RULE"``
        (``"weight-free:edge-popup"``).
    epochs : int, default=None
        The epoch budget of every row (None: the estimators' default ``max_epochs``).
    seeds : int, default=1
        Number of repeats.
    tune : int, default=0
        Trials of random search per row (:func:`search_space`); 0: no tuning.
    baseline : str, default=None
        The row every other is differenced against, paired by seed (None: dense, or
        the first row).
    settings : dict, default=None
        ``{name: {param: value}}``; a family name reaches every row of the family, a
        ``"FAMILY:RULE"`` name that row alone. A row whose recipe then differs from the
        others' is flagged (``recipe_differs``).
    task : {"auto", "classification", "regression"}, default="auto"
    random_state : int, default=0
        The first repeat's seed.
    X_test, y_test : array-like, default=None
        A fixed test part (then ``X, y`` is the whole training part).
    train_size : int, default=None
        Fit on that many rows of the training part (drawn per repeat).
    search : dict, default=None
        ``{name: {param: [values]}}`` replacing or adding parameters of the rows' search
        spaces (:func:`search_space`) for ``tune``.
    device : str, default="auto"
    verbose : int, default=0

    Returns
    -------
    comparison : Comparison
        ``rows``, ``results``, ``to_json(path)``, ``plot(path)``, ``table()``.

    Raises
    ------
    ValueError
        Bad input (:class:`UsageError`), before anything is fitted.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_weightfree import compare
    >>> X, y = load_digits(return_X_y=True)
    >>> result = compare(X, y, estimators=["dense", "weight-free"], epochs=2, seeds=2,
    ...                  settings={"dense": {"hidden_layer_sizes": [16]},
    ...                            "weight-free": {"hidden_layer_sizes": [16]}},
    ...                  device="cpu")
    >>> [len(row["scores"]) for row in result.rows]
    [2, 2]
    """
    if isinstance(estimators, str):
        estimators = [estimators]
    make_data, task, device, description = prepare_arrays(
        X, y, task=task, X_test=X_test, y_test=y_test, train_size=train_size, device=device)
    comparison = run_study(list(estimators or FAMILIES), make_data, family_classes(task),
                           task, epochs=epochs, seeds=seeds, n_trials=tune,
                           baseline=baseline, settings=settings, search=search,
                           random_state=random_state,
                           device=device, verbose=verbose)
    comparison.results["description"] = description
    return comparison
