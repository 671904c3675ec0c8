"""The ``sk-weightfree`` command: ``sk-weightfree compare`` fits every estimator and reports;
``sk-weightfree disentangle`` crosses architecture sources with weight regimes."""

import argparse
import csv
import hashlib
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

from ._study import (FAMILIES as ESTIMATOR_NAMES, UsageError, _one_line, check_names,
                     detect_task as _detect_task, format_matrix, jsonable as _jsonable,
                     resolve_task as _resolve_task, row_settings, run_study,
                     split_and_encode)
# What moved to the study module and is still read from here (tests, benchmarks/pareto.py).
from ._study import (WARMUP_ROWS as _WARMUP_ROWS, _as_dense_float32,  # noqa: F401
                     rewritten_file_bytes, stored_bytes)
from ._threads import torch_threads

_CLASSIFIERS = ("DenseClassifier", "WeightFreeClassifier", "PrunedClassifier",
                "WeightAgnosticClassifier", "RandomNetworkClassifier")
_REGRESSORS = ("DenseRegressor", "WeightFreeRegressor", "PrunedRegressor",
               "WeightAgnosticRegressor", "RandomNetworkRegressor")

CLASSIFICATION_DATASETS = ("digits", "fashion-mnist")
REGRESSION_DATASETS = ("diabetes", "friedman1")

#: Exit status after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


class Interrupted(Exception):
    """The user pressed Ctrl-C; the run stops and writes nothing."""


# ---------------------------------------------------------------------------- estimators
def _estimator_classes(task="classification"):
    """Map each family name to its classifier (or regressor) class.

    Imported here, not at module level, so that ``--help`` stays fast and the
    classification path does not depend on the regressors.
    """
    import sk_weightfree

    wanted = _REGRESSORS if task == "regression" else _CLASSIFIERS
    missing = [name for name in wanted if not hasattr(sk_weightfree, name)]
    if missing:
        raise UsageError(f"{task} needs {', '.join(missing)}, which this version of "
                         "sk_weightfree does not have")
    return {family: getattr(sk_weightfree, name)
            for family, name in zip(ESTIMATOR_NAMES, wanted)}


def parse_settings(texts, names, option="--set"):
    """Parse ``--set NAME.PARAM=VALUE`` options into ``{name: {param: value}}``.

    ``NAME`` is a family (``weight-free``: every row of that family, its ``FAMILY:RULE``
    rows included) or one row as ``--estimators`` spells it (``weight-free:edge-popup``:
    that row alone, winning over the family's value). ``VALUE`` is read as JSON (``3``,
    ``0.5``, ``true``, ``null``, ``[64, 32]``, ``"relu"``) and, when it is not valid
    JSON, kept as a plain string (``tanh``).
    """
    settings = {}
    for text in texts or ():
        target, sep, raw = text.partition("=")
        name, dot, param = target.strip().partition(".")
        if not sep or not dot or not name or not param:
            raise UsageError(f"{option} needs FAMILY.PARAM=VALUE (e.g. "
                             f"weight-free.activation=tanh); got {text!r}")
        try:
            row_settings({name: {}}, names, option)
        except UsageError as exc:
            raise UsageError(f"{option} {text!r}: {str(exc).split(': ', 1)[1]}") from None
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        settings.setdefault(name, {})[param] = value
    return settings


MODELS = ("mlp", "cnn")
# One image of each embedded image data set, for --model cnn.
IMAGE_SHAPES = {"digits": (1, 8, 8), "fashion-mnist": (1, 28, 28)}


def model_params(model, dataset):
    """``{family: parameters}`` that give every family the network of ``--model``.

    "cnn": :class:`sk_weightfree.nn.SmallCNN` on the data set's images; the dense and
    pruned references get its batch-normalised version (the other families bring their
    own per-unit normalisation).
    """
    if model == "mlp":
        return {}
    if dataset not in IMAGE_SHAPES:
        raise UsageError(f"--model cnn needs an image data set ({', '.join(IMAGE_SHAPES)}); "
                         f"got {dataset!r}")
    import functools

    from .nn import SmallCNN

    shape = IMAGE_SHAPES[dataset]
    normalised = functools.partial(SmallCNN, batch_norm=True)
    return {name: {"module": normalised if name in ("dense", "pruned") else SmallCNN,
                   "input_shape": shape} for name in ESTIMATOR_NAMES}


# ---------------------------------------------------------------------------- data
#: Most categories a categorical CSV column may have (``--max-categories``).
MAX_CATEGORIES = 100


def prepare_dataset(name, target=None, seed=0, task="auto", train_size=None, *,
                    categorical=None, max_categories=MAX_CATEGORIES):
    """Load ``--dataset``, decide the task, split 70/30 and encode the features.

    Parameters
    ----------
    name : str
        ``--dataset``: a built-in name or the path of a ``.npz`` or ``.csv`` file.
    target : str, default=None
        ``--target``, the target column of a CSV file.
    seed : int, default=0
        Seed of the split and of the ``train_size`` draw.
    task : {"auto", "classification", "regression"}, default="auto"
        ``--task``.
    train_size : int, default=None
        ``--train-size``: keep that many rows of the training part, drawn with
        ``seed`` (stratified for classification), before the encoding is fitted.
    categorical : list of str, default=None
        ``--categorical``: CSV columns to one-hot encode although their values are
        numbers (codes). Columns with text values are categorical anyway (see
        :func:`sk_weightfree.datasets.load_csv`).
    max_categories : int, default=MAX_CATEGORIES
        ``--max-categories``: a categorical column with more distinct values (in the
        whole file, the empty value included) is refused.

    Returns
    -------
    data : dict
        ``X_train``, ``X_test`` (float32; numeric columns standardised and
        categorical columns one-hot encoded, both fitted on the training part only,
        see :func:`_encoder`), ``y_train``, ``y_test``, ``task`` ("classification"
        or "regression"), ``description`` (one line) and ``info`` (what
        ``results.json`` records to reproduce the data, the categories and the
        one-hot width included).

    Raises
    ------
    UsageError
        For anything wrong with the data or the options naming its columns.
    """
    info = {"name": name, "target": target, "seed": seed}
    if name in CLASSIFICATION_DATASETS + REGRESSION_DATASETS:
        _refuse_column_options(target, categorical, name)
    columns = None  # (feature names, categorical mask) of a CSV file
    X_test = y_test = None
    if name == "fashion-mnist":
        from .datasets import load_fashion_mnist

        try:
            X, y = load_fashion_mnist(subset="train", return_X_y=True)
            X_test, y_test = load_fashion_mnist(subset="test", return_X_y=True)
        except (FileNotFoundError, ValueError) as exc:
            raise UsageError(str(exc)) from None
        task = _resolve_task(task, "classification", y, "Fashion-MNIST")
        description = "Fashion-MNIST (official 60k/10k split)"
        info.update(source="sk_weightfree.datasets.load_fashion_mnist",
                    split="official train/test files")
    else:
        X, y, detected, description, source, columns = _load_whole(
            name, target, categorical, max_categories)
        info.update(source)
        task = _resolve_task(task, detected, y, description)
        X, y = _check_data(X, y, task, description,
                           None if columns is None else columns[1])
    names, mask = columns or (None, np.zeros(X.shape[1], dtype=bool))
    data = split_and_encode(X, y, task, seed, description, categorical=mask,
                            train_size=train_size, X_test=X_test, y_test=y_test)
    if X_test is None:
        description += f" ({data['split']})"
        info["split"] = (f"{data['split']}, sklearn train_test_split(test_size=0.3, "
                         f"random_state={seed})")
    if train_size is not None:
        description += f", {train_size} training rows drawn with seed {seed}"
        info["train_size"] = train_size
    categories = _categories(data["encoder"], names, mask)
    info.update(task=task, n_train=len(data["X_train"]), n_test=len(data["X_test"]),
                n_features=int(data["X_train"].shape[1]),
                categorical={name: values.tolist() for name, values in categories.items()},
                one_hot_width=sum(map(len, categories.values())),
                test_rows_with_unseen_categories=_unseen_rows(data["X_test_raw"], mask,
                                                              categories),
                preprocessing="StandardScaler on the numeric columns and "
                              "OneHotEncoder(handle_unknown='ignore') on the categorical "
                              "ones (if any), fitted on the training part, then float32")
    return {"X_train": data["X_train"], "X_test": data["X_test"],
            "y_train": data["y_train"], "y_test": data["y_test"], "task": task,
            "description": description, "info": info}


def _categories(encoder, names, categorical):
    """``{column name: categories}`` the fitted ``encoder`` one-hot encodes."""
    if not categorical.any():
        return {}
    fitted = encoder.named_transformers_["categorical"].categories_
    return dict(zip(names[categorical], fitted))


def _unseen_rows(X, categorical, categories):
    """How many rows of ``X`` hold a category the encoder has not seen."""
    unseen = np.zeros(len(X), dtype=bool)
    for column, values in zip(np.flatnonzero(categorical), categories.values()):
        unseen |= ~np.isin(X[:, column], values)
    return int(unseen.sum())


def _load_whole(name, target, categorical=None, max_categories=MAX_CATEGORIES):
    """``(X, y, detected task, description, info, columns)`` of a data set split here.

    ``columns`` is ``(feature names, categorical mask)`` for a CSV file, else None
    (every feature numeric).
    """
    if name == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        return X, y, "classification", "digits", {
            "source": "sklearn.datasets.load_digits"}, None
    if name == "diabetes":
        from sklearn.datasets import load_diabetes

        X, y = load_diabetes(return_X_y=True)
        return X, y, "regression", "diabetes", {
            "source": "sklearn.datasets.load_diabetes"}, None
    if name == "friedman1":
        from sklearn.datasets import make_friedman1

        generator = {"n_samples": 2000, "n_features": 10, "noise": 1.0, "random_state": 0}
        X, y = make_friedman1(**generator)
        return X, y, "regression", "Friedman #1 (2,000 samples, noise 1.0)", {
            "source": "sklearn.datasets.make_friedman1", "generator": generator}, None
    return _load_file(Path(name), target, categorical, max_categories)


def _load_file(path, target, categorical=None, max_categories=MAX_CATEGORIES):
    from .datasets import load_csv, load_npz

    if not path.is_file():
        raise UsageError(f"data set {str(path)!r} is neither one of "
                         f"{', '.join(CLASSIFICATION_DATASETS + REGRESSION_DATASETS)} "
                         "nor an existing file")
    if path.suffix != ".csv":
        _refuse_column_options(target, categorical, path.name)
    if path.suffix == ".csv":
        if target is None:
            raise UsageError("a .csv data set needs --target COLUMN")

        def loader():
            data = load_csv(path, target, categorical=categorical or (), return_X_y=False)
            return data.data, data.target, (data.feature_names, data.categorical)
    elif path.suffix == ".npz":
        loader = lambda: (*load_npz(path), None)  # noqa: E731
    else:
        raise UsageError(f"unsupported data file {path.name!r}: use .npz (X, y) or .csv")
    try:
        X, y, columns = loader()
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if columns is not None:
        _check_categories(path, X, *columns, max_categories)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return X, y, _detect_task(y, str(path)), str(path), {
        "source": str(path.resolve()), "sha256": digest}, columns


def _refuse_column_options(target, categorical, name):
    """``--target`` and ``--categorical`` name CSV columns: refuse them for data set ``name``."""
    for option, value in (("--target", target), ("--categorical", categorical)):
        if value is not None:
            raise UsageError(f"{option} names a column of a .csv data set, not of {name!r}")


def _check_categories(path, X, names, categorical, max_categories):
    """Refuse a categorical column with more than ``max_categories`` distinct values."""
    for column in np.flatnonzero(categorical):
        count = len(set(X[:, column]))
        if count > max_categories:
            raise UsageError(
                f"{path}: column {names[column]!r} has {count:,} distinct values, more than "
                f"--max-categories {max_categories} (one input each; an identifier?); drop "
                "the column or raise --max-categories")


def _check_data(X, y, task, description, categorical=None):
    """Refuse what the estimators would refuse mid-run, in one line, before any fit.

    ``categorical`` (a bool mask over the columns, or None) marks the columns that are
    one-hot encoded; the others must be finite numbers.
    """
    numeric = np.ones(X.shape[1], dtype=bool) if categorical is None else ~categorical
    values = X[:, numeric].astype(np.float64) if X.dtype == object else X
    if values.dtype.kind not in "biuf":
        raise UsageError(f"{description}: the features must be numeric, got dtype {X.dtype}")
    bad = ~np.isfinite(values)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        column = np.flatnonzero(numeric)[column] if X.dtype == object else column
        raise UsageError(f"{description}: the features have missing (NaN) or infinite values "
                         f"(first at row {row}, feature {column}); impute or drop them first")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise UsageError(f"{description}: the target has missing (NaN) or infinite values")
    if task == "classification" and y.dtype.kind == "f" and np.all(y == np.round(y)):
        y = y.astype(np.int64)  # 0.0/1.0 read from a file are the labels 0/1
    if task == "regression":
        y = y.astype(np.float64)
    return X, y


# ---------------------------------------------------------------------------- the run
def run_compare(args, argv=()):
    """Load the data, run :func:`sk_weightfree.compare`'s study, print and write it.

    Every check (names, ``--set``, device, data, output folder, seeds, tuning) runs
    before the first fit; the files are written only once everything succeeded, all at
    once.
    """
    names = list(args.estimators or ESTIMATOR_NAMES)
    check_names(names)
    settings = parse_settings(args.set, names)
    model = model_params(args.model, args.dataset)
    out, device, prepared, make_data, say = _prepare_run(args)

    def announce(budget, warned):
        for warning in warned:  # shown with --quiet too: they are about the results
            print(f"sk-weightfree: warning: {warning}", file=sys.stderr)
        data = prepared[args.seed]
        say(_status_line(data, device, f"{budget} epoch{'' if budget == 1 else 's'} each, "
                         f"lr_schedule={args_schedule(settings)}", args, "row",
                         _one_hot_summary(data["info"])))

    task = prepare_task(make_data, args)
    with _CtrlC() as ctrl_c:
        comparison = run_study(
            names, make_data, _estimator_classes(task), task, epochs=args.epochs,
            seeds=args.seeds, n_trials=args.tune, baseline=args.baseline, settings=settings,
            model=model, random_state=args.seed, device=device,
            search=parse_settings(args.search, names, "--search"),
            verbose=0 if args.quiet else 1, announce=announce,
            check=lambda name, estimator: _stop_if_interrupted(estimator, name, ctrl_c),
            say=say)
        data = prepared[args.seed]
        comparison.results = {"command": ["sk-weightfree", *argv], "dataset": data["info"],
                              "description": data["description"], "model": args.model,
                              **comparison.results}
        print(comparison.table())
        unconverged = [f"{row['estimator']} ({row['not_converged']})"
                       for row in comparison.rows if row.get("not_converged")]
        if unconverged:  # one line, as scikit-learn's ConvergenceWarning, counted per row
            print(f"sk-weightfree: note: fits that ended at the epoch budget while still "
                  f"improving by more than tol: {', '.join(unconverged)}; more epochs "
                  f"(--epochs) may score higher (results.json: not_converged)",
                  file=sys.stderr)
        print("")
        print("spectral similarity (1 = identical spectra)")
        print(format_matrix(names, comparison.similarity_))
        if out is not None:
            _write_outputs(out, comparison, IMAGE_SHAPES.get(args.dataset))
            say(f"\nwrote {out / 'results.json'}, {out / 'results.csv'}, "
                f"{out / 'report.png'}")
    return comparison.results


def _prepare_run(args):
    """What both subcommands check and load before any fit: ``(out, device, prepared,
    make_data, say)``; ``make_data(seed)`` loads ``--dataset`` once per seed (kept in
    ``prepared``), ``say`` prints a status line unless ``--quiet``."""
    from ._base import resolve_device

    out = None if args.no_output or not args.out else Path(args.out)
    if out is not None:
        _check_output_folder(out)
    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    prepared = {}

    def make_data(seed):
        if seed not in prepared:
            prepared[seed] = prepare_dataset(
                args.dataset, args.target, seed, args.task, train_size=args.train_size,
                categorical=args.categorical, max_categories=args.max_categories)
        return prepared[seed]

    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    return out, device, prepared, make_data, say


def _status_line(data, device, budget, args, unit, extra=""):
    """The line a run prints before its first fit: data, device, budget, seeds, tuning."""
    return (f"data: {data['description']}, {data['task']}; train {data['X_train'].shape}, "
            f"test {data['X_test'].shape}{extra}; device: {device}; {budget}; {args.seeds} "
            f"seed{'' if args.seeds == 1 else 's'}"
            + (f"; tune {args.tune} trials per {unit}" if args.tune else ""))


def prepare_task(make_data, args):
    """The task of ``--dataset``: the first repeat's data is read and checked here."""
    return make_data(args.seed)["task"]


def args_schedule(settings):
    """The shared schedule, or "mixed" where ``--set`` changed a row's."""
    from ._study import SHARED_SCHEDULE

    changed = {p.get("lr_schedule") for p in settings.values() if "lr_schedule" in p}
    return SHARED_SCHEDULE if not changed - {SHARED_SCHEDULE} else "mixed (see †)"


def _one_hot_summary(info):
    """``"; one-hot: colour (3) = 3 of the 5 inputs"``, or "" without categorical columns."""
    if not info["categorical"]:
        return ""
    counts = ", ".join(f"{name} ({len(values)})" for name, values in info["categorical"].items())
    unseen = info["test_rows_with_unseen_categories"]
    return (f"; one-hot: {counts} = {info['one_hot_width']} of the {info['n_features']} inputs"
            + (f", {unseen} test row{'' if unseen == 1 else 's'} with a category unseen in "
               "training (encoded as zeros)" if unseen else ""))


def _stop_if_interrupted(estimator, name, ctrl_c):
    # skorch catches Ctrl-C inside fit and the estimator keeps its last complete epoch;
    # the flag on the net says so, and _CtrlC catches a press the loop swallowed unflagged
    # (e.g. between two epochs).
    if ctrl_c.pressed or getattr(getattr(estimator, "net_", None), "interrupted_", False):
        raise Interrupted(f"interrupted by the user while fitting {name!r}")


class _CtrlC:
    """Remember that Ctrl-C was pressed, even where a training loop swallows it.

    Inside the ``with`` block SIGINT still raises ``KeyboardInterrupt`` as usual; it
    also sets ``pressed``. Nothing changes outside the main thread or where SIGINT is
    ignored (a background job).
    """

    pressed = False

    def __enter__(self):
        self._previous = None
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN):
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.pressed = True
        signal.default_int_handler(signum, frame)  # raises KeyboardInterrupt

    def __exit__(self, *exc_info):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def _check_output_folder(out):
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {str(out)!r} exists and is not a folder")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--out {str(out)!r}: cannot write in {str(existing)!r}")


def _write_outputs(out, comparison, image_shape=None):
    """Write the three files into a temporary folder beside ``out``, then move them in
    (the report shows the weight-free network's receptive fields as ``image_shape``
    images, for the built-in image data sets).

    A failure or an interrupt while writing leaves ``out`` as it was.
    """
    _write_staged(out, {
        "results.json": comparison.to_json,
        "results.csv": lambda path: _write_csv(
            path, comparison.rows, comparison.results["spectral_similarity"]["estimators"],
            comparison.similarity_),
        "report.png": lambda path: comparison.plot(path, image_shape=image_shape)})


def _write_staged(out, writers):
    """Call each ``writers[name](path)`` in a temporary folder beside ``out``, then move
    the files into ``out`` together: a failure or an interrupt leaves ``out`` as it was."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        for name, write in writers.items():
            write(staging / name)
        out.mkdir(exist_ok=True)
        for name in writers:
            os.replace(staging / name, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_csv(path, rows, names, similarity):
    """One row per estimator; run-level fields live in results.json only. Per-seed
    lists and the tuning trials are JSON text in their cells."""
    fields = list(rows[0]) + [f"similarity_{n}" for n in names]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for row, sims in zip(rows, similarity):
            cells = {key: json.dumps(value, default=_jsonable)
                     if isinstance(value, (list, dict)) else value
                     for key, value in row.items()}
            writer.writerow({**cells,
                             **{f"similarity_{n}": float(s) for n, s in zip(names, sims)}})


# ---------------------------------------------------------------------------- the command
def build_parser():
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="sk-weightfree", description="Weight-free neural networks, compared.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    compare = commands.add_parser(
        "compare", help="fit every estimator on one data set and compare them",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Fit the estimators on a fixed train/test split; print the test score "
                    "(accuracy for classification, R² for regression), density, connections, "
                    "epochs, timings, the bytes of each model's sk_weightfree.io.dump file "
                    "(beside the same network as float32 dense weights) and the spectral "
                    "similarity matrix.",
        epilog="Fair comparison: every estimator trains on one recipe, the same schedule "
               "(lr_schedule=constant,\nevery family's default) and the same epoch budget "
               "(--epochs); a row whose recipe --set\nchanged is marked with a dagger. The "
               "pruned family's retraining counts inside the budget\n(max_epochs + n_rounds "
               "* finetune_epochs = budget, with finetune_epochs = (budget // 3) // n_rounds "
               "unless --set); --set FAMILY.max_epochs=N overrides the\nbudget of that "
               "family, and the table's 'epochs' column shows what each one ran. Fit times "
               "are\nmeasured after one untimed warm-up fit of each estimator.\n\n"
               "One Ctrl-C stops the whole run: the fit in progress ends and no further "
               "estimator is\nfitted; nothing is written and the exit status is 130. Bad input is "
               "one line on standard\nerror and exit status 2; nothing is written then "
               "either: the files are written together\nat the end of a run.\n\n"
               "results.json records the command line, the data set (source, split, sha256 "
               "of a file),\nevery estimator's full parameters, the seeds, every seed's "
               "score, every tuning trial, the\ndevice and the package versions.")
    compare.add_argument("--dataset", default="digits",
                         help="'digits' (default, embedded) or 'fashion-mnist' "
                              "(classification); 'diabetes' or 'friedman1' (regression, "
                              "the five regressors); or a path to a .npz (arrays X, y) or "
                              ".csv (with --target). A file's task follows its target: "
                              "continuous numbers mean regression (see --task)")
    compare.add_argument("--target",
                         help="target column of a .csv data set; every other column is a "
                              "feature: numeric columns are standardised, text columns "
                              "one-hot encoded (both fitted on the training part)")
    compare.add_argument("--categorical", nargs="+", metavar="COLUMN",
                         help="columns of a .csv data set to one-hot encode although "
                              "their values are numbers (integer codes); a column of text "
                              "values is one-hot encoded anyway. An empty field of a "
                              "categorical column is a category of its own")
    compare.add_argument("--max-categories", type=_positive_int, default=MAX_CATEGORIES,
                         metavar="N",
                         help="refuse a categorical column with more than N distinct "
                              f"values (default {MAX_CATEGORIES}): each is one input")
    compare.add_argument("--task", choices=("auto", "classification", "regression"),
                         default="auto",
                         help="auto (default: regression for a continuous target, as "
                              "sklearn's type_of_target says; integer targets are class "
                              "labels), or force one")
    compare.add_argument("--estimators", nargs="+", metavar="NAME",
                         help=f"subset of {', '.join(ESTIMATOR_NAMES)} (default: all), "
                              "each at most once; FAMILY:RULE builds that family with "
                              "mask_rule=RULE, so rules run side by side as rows of their "
                              "own (weight-free weight-free:edge-popup "
                              "weight-free:supermask)")
    compare.add_argument("--set", action="append", metavar="NAME.PARAM=VALUE",
                         help="an estimator parameter, e.g. weight-free.activation=tanh or "
                              "dense.hidden_layer_sizes=[64,32]; NAME as in --estimators "
                              "(weight-free:edge-popup.lr=0.1 sets that row only); VALUE is "
                              "JSON or else a plain string; repeatable; checked before any "
                              "fit")
    compare.add_argument("--model", choices=MODELS, default="mlp",
                         help="mlp (default: each family's multilayer network) or cnn "
                              "(sk_weightfree.nn.SmallCNN on the images of digits or "
                              "fashion-mnist; dense and pruned with batch norm)")
    compare.add_argument("--epochs", type=_positive_int,
                         help="epoch budget of every estimator (default: the estimators' "
                              "default max_epochs, 30)")
    compare.add_argument("--device", default="auto",
                         help="auto (default: cuda when available, else cpu), cpu, cuda, "
                              "cuda:N, mps")
    compare.add_argument("--seed", type=_seed, default=0,
                         help="seed of the split, the estimators and the spectral estimates "
                              f"(an integer from 0 to {MAX_SEED}; default 0)")
    compare.add_argument("--seeds", type=_integer, default=1, metavar="K",
                         help="repeat the comparison K times (seeds --seed ... --seed+K-1: "
                              "the split, the initialisation and the tuning of each "
                              "repeat); each row reports its per-seed test scores, mean "
                              "± std, a 95%% t interval, and its difference to --baseline "
                              "paired by seed (default 1)")
    compare.add_argument("--tune", type=_integer, default=0, metavar="N",
                         help="give every row exactly N trials of seeded random search "
                              "over its family's search space (log-uniform lr, schedule, "
                              "the family's own knobs; see the quick start), "
                              "scored on a validation split of 20%% of the training part; "
                              "the best is refitted on the whole training part and the "
                              "test part is scored once (default 0: the shared recipe, "
                              "untuned)")
    compare.add_argument("--search", action="append", metavar="NAME.PARAM=[VALUES]",
                         help="with --tune: replace or add a parameter of a row's search "
                              "space, a JSON list to draw from, e.g. "
                              "'weight-free.lr=[0.01,0.05]'; NAME as in --set; repeatable")
    compare.add_argument("--baseline", metavar="NAME",
                         help="the row the others are differenced against, paired by "
                              "seed (default: dense, else the first row)")
    compare.add_argument("--threads", type=_positive_int,
                         help="at most this many torch intra-op threads for the fits "
                              "(default: torch's own setting); each estimator takes one "
                              "thread for a small network. On a loaded machine 1 thread is "
                              "often much faster; a fit is reproducible bit for bit at the "
                              "same thread count")
    compare.add_argument("--train-size", type=_positive_int, metavar="N",
                         help="fit on N rows of the training part (stratified for "
                              "classification, drawn with --seed), e.g. a quick look at "
                              "fashion-mnist; the test part is unchanged")
    compare.add_argument("--out", default="compare-results",
                         help="folder for results.json, results.csv, report.png "
                              "(default: compare-results)")
    compare.add_argument("--no-output", action="store_true",
                         help="write no files (print the results only)")
    compare.add_argument("--quiet", action="store_true",
                         help="no progress bars or status lines; the results still print")
    add_disentangle_parser(commands, compare)
    return parser


#: Options ``disentangle`` takes from ``compare`` unchanged (the data and the run).
_SHARED_OPTIONS = ("dataset", "target", "categorical", "max_categories", "task", "epochs",
                   "device", "seed", "tune", "threads", "train_size", "no_output", "quiet")


def add_disentangle_parser(commands, compare):
    """The ``disentangle`` subcommand: ``compare``'s data and run options (the same
    argparse actions) and its own widths, seeds and output folder."""
    parser = commands.add_parser(
        "disentangle", help="cross architecture sources with weight regimes (issue 30)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="How much of the accuracy is the architecture and how much the "
                    "weights? Per seed: the architecture a weight-free network learns, a "
                    "dense network magnitude-pruned to its density, the learned one rewired "
                    "(degrees kept) and a random one (per-layer edge counts kept), each "
                    "trained with {0,1} learned signs, one shared value, trained real "
                    "weights and frozen random weights; the test score of every cell "
                    "(mean ± std over seeds) and the spectral similarity of the sources.",
        epilog="Every fit trains on one recipe (lr_schedule=constant, the same --epochs) "
               "on the training part;\nthe test part is scored once per seed, after every "
               "fit of that seed. Bad input is one line on\nstandard error and exit status "
               "2, before any fit; nothing is written then. results.json\nrecords the "
               "command line, the data, the split, the seeds, the versions and every\n"
               "cell's per-seed scores.")
    for action in compare._actions:
        if action.dest in _SHARED_OPTIONS:
            parser._add_action(action)  # the same option, help and default as compare's
    parser.add_argument("--hidden-layer-sizes", type=_positive_int, nargs="+", metavar="N",
                        help="widths of every network (default: the estimators' 300 100)")
    parser.add_argument("--seeds", type=_integer, default=3, metavar="K",
                        help="repeats, seeds --seed ... --seed+K-1 (default 3)")
    parser.add_argument("--out", default="disentangle-results",
                        help="folder for results.json, results.csv, disentangle.png "
                             "(default: disentangle-results)")
    return parser


def run_disentangle_command(args, argv=()):
    """Load the data, run :func:`sk_weightfree.disentangle`'s experiment, print and
    write it. Every check runs before the first fit; the files are written together at
    the end."""
    from ._disentangle import run_disentangle

    out, device, prepared, make_data, say = _prepare_run(args)

    def announce(budget, warned):
        for warning in warned:
            print(f"sk-weightfree: warning: {warning}", file=sys.stderr)
        data = prepared[args.seed]
        say(_status_line(data, device, f"{budget} epoch{'' if budget == 1 else 's'} each fit",
                         args, "fit"))

    task = prepare_task(make_data, args)
    with _CtrlC() as ctrl_c:
        result = run_disentangle(
            make_data, task, hidden_layer_sizes=args.hidden_layer_sizes, epochs=args.epochs,
            seeds=args.seeds, n_trials=args.tune, random_state=args.seed, device=device,
            verbose=0, announce=announce, say=say,
            check=lambda name, estimator: _stop_if_interrupted(estimator, name, ctrl_c))
        data = prepared[args.seed]
        result.results = {"command": ["sk-weightfree", *argv], "dataset": data["info"],
                          "description": data["description"], **result.results}
        print(result.table())
        print("")
        print("spectral similarity of the source architectures (1 = identical spectra)")
        print(result.similarity_table())
        if out is not None:
            _write_staged(out, {"results.json": result.to_json, "results.csv": result.to_csv,
                                "disentangle.png": result.plot})
            say(f"\nwrote {out / 'results.json'}, {out / 'results.csv'}, "
                f"{out / 'disentangle.png'}")
    return result.results


#: Largest seed numpy and scikit-learn accept (``random_state`` is a 32-bit seed).
MAX_SEED = 2**32 - 1


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(
            f"the seed must be >= 0 (and at most {MAX_SEED}), got {value}")
    return value


def _integer(text):
    """An integer; its range is checked with the other input, in one line (exit 2)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def main(argv=None):
    """Entry point of ``sk-weightfree``; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        run = run_disentangle_command if args.command == "disentangle" else run_compare
        with torch_threads(args.threads):
            run(args, argv)
        sys.stdout.flush()
    except BrokenPipeError:
        return _closed_pipe()
    except UsageError as exc:
        print(f"sk-weightfree: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except (Interrupted, KeyboardInterrupt) as exc:
        reason = str(exc) if isinstance(exc, Interrupted) else "interrupted by the user"
        print(f"sk-weightfree: {reason}; stopped, nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


#: Exit status after a closed pipe: 1, as Python's documentation prescribes for EPIPE
#: (the ``signal`` module's "Note on SIGPIPE").
EXIT_BROKEN_PIPE = 1


def _closed_pipe():
    """The reader went away (``sk-weightfree compare | head -3``): stop quietly.

    Python's convention (the ``signal`` module's "Note on SIGPIPE"): point standard
    output at ``/dev/null`` so that the interpreter's final flush raises nothing, and
    exit with status 1. Nothing is written then: the reader left before the end.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # stdout is not a file descriptor (captured); nothing to flush
    return EXIT_BROKEN_PIPE
