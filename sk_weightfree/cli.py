"""The ``sk-weightfree`` command: ``sk-weightfree compare`` fits every estimator and reports."""

import argparse
import csv
import hashlib
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

ESTIMATOR_NAMES = ("dense", "weight-free", "pruned", "weight-agnostic", "random")
_CLASSIFIERS = ("DenseClassifier", "WeightFreeClassifier", "PrunedClassifier",
                "WeightAgnosticClassifier", "RandomNetworkClassifier")
_REGRESSORS = ("DenseRegressor", "WeightFreeRegressor", "PrunedRegressor",
               "WeightAgnosticRegressor", "RandomNetworkRegressor")

CLASSIFICATION_DATASETS = ("digits", "fashion-mnist")
REGRESSION_DATASETS = ("diabetes", "friedman1")

#: Per task: the results key, the table header and the figure's axis label of the score.
_METRICS = {
    "classification": ("test_accuracy", "test acc", "test accuracy"),
    "regression": ("test_r2", "test R²", "test R² (coefficient of determination)"),
}

#: Rows of the untimed warm-up fit of each estimator (one epoch).
_WARMUP_ROWS = 64

#: Exit status after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130

_TIMING_NOTE = (f"fit_seconds is the wall time of fit(), measured after one untimed warm-up fit "
                f"of each estimator (1 epoch on {_WARMUP_ROWS} training rows) so that torch's "
                "one-off start-up cost is charged to none of them; predict_seconds is one "
                "predict() on the test part")
_BUDGET_NOTE = ("every estimator trains for the same number of epochs (epoch_budget): "
                "max_epochs = epoch_budget; the pruned family's retraining counts inside it "
                "(epoch_budget - n_rounds * finetune_epochs dense epochs, then the "
                "retraining), with finetune_epochs = (epoch_budget // 3) // n_rounds unless "
                "set with --set. "
                "The 'epochs' of each result is the number it ran (n_iter_; less with early "
                "stopping)")


class UsageError(Exception):
    """Bad input from the user: reported in one line with exit status 2."""


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


def split_name(name):
    """``"weight-free:edge-popup"`` -> ``("weight-free", "edge-popup")``; ``"dense"`` ->
    ``("dense", None)``: an ``--estimators`` name is a family, optionally with the mask
    rule it is built with."""
    family, colon, rule = name.partition(":")
    return family, (rule if colon else None)


def check_names(names):
    """Refuse unknown families, empty rules and repeated names (``--estimators``)."""
    unknown = [n for n in names if split_name(n)[0] not in ESTIMATOR_NAMES]
    if unknown:
        raise UsageError(f"unknown estimator(s) {unknown}; choose from {list(ESTIMATOR_NAMES)}"
                         " (a family may name its mask rule: weight-free:edge-popup)")
    empty = [n for n in names if split_name(n)[1] == ""]
    if empty:
        raise UsageError(f"--estimators {empty[0]!r} names no mask rule after ':' (e.g. "
                         "weight-free:edge-popup)")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UsageError(f"--estimators names {', '.join(repeated)} more than once")


def parse_settings(texts, names):
    """Parse ``--set NAME.PARAM=VALUE`` options into ``{name: {param: value}}``.

    ``NAME`` is one of the compared ``names``, exactly as ``--estimators`` spells it
    (``weight-free``, or ``weight-free:edge-popup`` for that row alone). ``VALUE`` is
    read as JSON (``3``, ``0.5``, ``true``, ``null``, ``[64, 32]``, ``"relu"``) and,
    when it is not valid JSON, kept as a plain string (``tanh``).
    """
    settings = {}
    for text in texts or ():
        target, sep, raw = text.partition("=")
        name, dot, param = target.strip().partition(".")
        if not sep or not dot or not name or not param:
            raise UsageError(f"--set needs FAMILY.PARAM=VALUE (e.g. "
                             f"weight-free.activation=tanh); got {text!r}")
        if split_name(name)[0] not in ESTIMATOR_NAMES:
            raise UsageError(f"--set {text!r}: unknown estimator {split_name(name)[0]!r}; "
                             f"choose from {list(ESTIMATOR_NAMES)}")
        if name not in names:
            raise UsageError(f"--set {text!r}: {name!r} is not among the estimators "
                             f"compared ({', '.join(names)})")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        settings.setdefault(name, {})[param] = value
    return settings


def _pruned_budget(estimator, budget, explicit, warned):
    """``max_epochs`` (the whole budget, retraining included) and ``finetune_epochs``.

    Appends to ``warned`` when the budget leaves no fine-tuning after pruning.
    """
    n_rounds = estimator.get_params()["n_rounds"]
    if "max_epochs" in explicit:  # the user chose; report what runs
        return {}
    if "finetune_epochs" in explicit:
        finetune = explicit["finetune_epochs"]
    else:
        finetune = (budget // 3) // n_rounds if isinstance(n_rounds, int) and n_rounds > 0 else 0
    if not isinstance(finetune, int) or not isinstance(n_rounds, int):
        return {}  # left to the estimator's own parameter check
    if budget - n_rounds * finetune < 1:
        raise UsageError(f"pruned: n_rounds={n_rounds} x finetune_epochs={finetune} leaves no "
                         f"epoch of initial training in the budget of {budget} epochs; lower "
                         "them or raise --epochs")
    if finetune == 0 and "finetune_epochs" not in explicit:
        warned.append(
            f"pruned: a budget of {budget} epoch{'' if budget == 1 else 's'} leaves no "
            f"fine-tuning after pruning (finetune_epochs = ({budget} // 3) // "
            f"n_rounds={n_rounds} = 0), so the network is scored as pruned, untrained "
            f"since (a pruned CNN is then near chance); pruning needs --epochs >= "
            f"{3 * n_rounds} (one fine-tune epoch per round) or --set "
            "pruned.finetune_epochs=N")
    return {"max_epochs": budget, "finetune_epochs": finetune}


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


def build_estimators(names, task, settings, *, budget, seed, device, verbose, model=None):
    """Construct and validate every estimator before anything is fitted.

    Returns ``({name: estimator}, budget, warnings)``. Each gets ``random_state=seed``,
    ``device``, ``verbose`` and an equal epoch ``budget`` (see ``--help``; None means
    the dense estimator's default ``max_epochs``); ``settings`` (from ``--set``)
    override those, and ``model`` (from :func:`model_params`) comes first. A name
    ``FAMILY:RULE`` builds the family with ``mask_rule=RULE``. Parameters are checked
    by the estimators' own constraints (``_parameter_constraints``), cross-parameter
    checks and the device check, so a bad name or value fails here, before any fit.
    ``warnings`` lists what runs but is likely not what the user wants (one line each).
    """
    from ._base import resolve_device

    classes = _estimator_classes(task)
    if budget is None:
        budget = classes["dense"]().max_epochs
    estimators, warned = {}, []
    for name in names:
        family, rule = split_name(name)
        estimator = classes[family]()
        valid = estimator.get_params(deep=False)
        explicit = settings.get(name, {})
        unknown = sorted(set(explicit) - set(valid))
        if unknown:
            raise UsageError(f"--set {name}.{unknown[0]}: {type(estimator).__name__} has no "
                             f"parameter {unknown[0]!r}; it has {', '.join(sorted(valid))}")
        params = {"random_state": seed, "device": str(device), "verbose": verbose,
                  "max_epochs": budget, **(model or {}).get(family, {})}
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
            _validate(estimator)
            resolve_device(estimator.get_params()["device"])  # fit would check it, too late
        except (ValueError, TypeError) as exc:
            raise UsageError(f"{name}: {exc}") from None
        estimators[name] = estimator
    return estimators, budget, warned


def _validate(estimator):
    """Run the checks ``fit`` runs on the parameters, without fitting."""
    estimator._validate_params()  # scikit-learn's _parameter_constraints
    for check in ("_check_hidden_layer_sizes", "_check_template_params",
                  "_check_params"):  # cross-parameter checks
        if callable(getattr(estimator, check, None)):
            getattr(estimator, check)()


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
    if name == "fashion-mnist":
        from .datasets import load_fashion_mnist

        try:
            X_train, y_train = load_fashion_mnist(subset="train", return_X_y=True)
            X_test, y_test = load_fashion_mnist(subset="test", return_X_y=True)
        except (FileNotFoundError, ValueError) as exc:
            raise UsageError(str(exc)) from None
        task = _resolve_task(task, "classification", y_train, "Fashion-MNIST")
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
        X_train, X_test, y_train, y_test, split = _split(X, y, task, seed, description)
        description += f" ({split})"
        info["split"] = f"{split}, sklearn train_test_split(test_size=0.3, random_state={seed})"
    if train_size is not None:
        X_train, y_train = _subsample(X_train, y_train, train_size, task, seed, description)
        description += f", {train_size} training rows drawn with seed {seed}"
        info["train_size"] = train_size
    if task == "classification" and _n_classes(y_train) < 2:
        raise UsageError(f"{description}: the training part has only one class; a classifier "
                         "needs at least two")
    names, mask = columns or (None, np.zeros(X_train.shape[1], dtype=bool))
    encoder = _encoder(mask)
    encoded = encoder.fit_transform(X_train).astype(np.float32, copy=False)
    categories = _categories(encoder, names, mask)
    info.update(task=task, n_train=len(X_train), n_test=len(X_test),
                n_features=int(encoded.shape[1]),
                categorical={name: values.tolist() for name, values in categories.items()},
                one_hot_width=sum(map(len, categories.values())),
                test_rows_with_unseen_categories=_unseen_rows(X_test, mask, categories),
                preprocessing="StandardScaler on the numeric columns and "
                              "OneHotEncoder(handle_unknown='ignore') on the categorical "
                              "ones (if any), fitted on the training part, then float32")
    return {"X_train": encoded,
            "X_test": encoder.transform(X_test).astype(np.float32, copy=False),
            "y_train": y_train, "y_test": y_test, "task": task,
            "description": description, "info": info}


def _encoder(categorical):
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


def load_dataset(name, target=None, seed=0):
    """Return ``(X_train, X_test, y_train, y_test, description)`` for ``--dataset``.

    Features are standardised with statistics of the training part.
    """
    data = prepare_dataset(name, target, seed)
    return (data["X_train"], data["X_test"], data["y_train"], data["y_test"],
            data["description"])


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


def _detect_task(y, description):
    """"regression" for a continuous target, else "classification" (type_of_target)."""
    from sklearn.utils.multiclass import type_of_target

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


def _resolve_task(requested, detected, y, description):
    if requested in ("auto", None):
        return detected
    if requested == "regression" and y.dtype.kind not in "biuf":
        raise UsageError(f"{description}: --task regression needs a numeric target")
    return requested


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


def _split(X, y, task, seed, description):
    from sklearn.model_selection import train_test_split

    stratify = None
    if task == "classification" and y.ndim == 1:
        if np.unique(y, return_counts=True)[1].min() > 1:
            stratify = y
    try:
        parts = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=stratify)
    except ValueError as exc:
        raise UsageError(f"{description}: cannot split {len(X)} samples 70/30 ({exc})") from None
    return (*parts, "70/30 stratified split" if stratify is not None else "70/30 split")


def _subsample(X, y, n, task, seed, description):
    """``n`` rows of ``(X, y)``, stratified for single-label classification."""
    from sklearn.model_selection import train_test_split

    if n >= len(y):
        raise UsageError(f"--train-size {n}: {description} has {len(y)} training rows; "
                         "choose fewer")
    stratify = y if task == "classification" and y.ndim == 1 else None
    try:
        X, _, y, _ = train_test_split(X, y, train_size=n, random_state=seed, stratify=stratify)
    except ValueError as exc:
        raise UsageError(f"--train-size {n}: cannot draw a stratified subset of "
                         f"{description} ({_one_line(exc)})") from None
    return X, y


def _n_classes(y):
    return len(np.unique(y)) if y.ndim == 1 else 2


# ---------------------------------------------------------------------------- the run
def run_compare(args, argv=()):
    """Fit the chosen estimators, print the table and similarity matrix, write the report.

    Every check (names, ``--set``, device, data, output folder) runs before the first
    fit; the files are written only once everything succeeded, all at once.
    """
    from . import pairwise_spectral_similarity, spectral_density
    from ._base import resolve_device

    names = list(args.estimators or ESTIMATOR_NAMES)
    check_names(names)
    settings = parse_settings(args.set, names)
    model = model_params(args.model, args.dataset)
    out = None if args.no_output or not args.out else Path(args.out)
    if out is not None:
        _check_output_folder(out)
    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    data = prepare_dataset(args.dataset, args.target, args.seed, args.task,
                           train_size=args.train_size, categorical=args.categorical,
                           max_categories=args.max_categories)
    task, description = data["task"], data["description"]
    estimators, budget, warned = build_estimators(names, task, settings, budget=args.epochs,
                                                  seed=args.seed, device=device,
                                                  verbose=0 if args.quiet else 1, model=model)
    for warning in warned:  # shown with --quiet too: they are about the results
        print(f"sk-weightfree: warning: {warning}", file=sys.stderr)
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    say(f"data: {description}, {task}; train {data['X_train'].shape}, "
        f"test {data['X_test'].shape}{_one_hot_summary(data['info'])}; device: {device}; "
        f"{budget} epoch{'' if budget == 1 else 's'} each")

    score_key = _METRICS[task][0]
    with warnings.catch_warnings(), _CtrlC() as ctrl_c:
        # the CLI reports an interrupt itself, in one line
        warnings.filterwarnings("ignore", message="Training interrupted by the user")
        _warm_up(estimators, data, ctrl_c)
        rows = [_fit_and_score(name, estimator, data, score_key, ctrl_c)
                for name, estimator in estimators.items()]

    fitted = list(estimators.values())
    similarity = pairwise_spectral_similarity(fitted, random_state=args.seed)
    print(format_table(rows, task))
    print("")
    print("spectral similarity (1 = identical spectra)")
    print(format_matrix(names, similarity))

    results = {
        "command": ["sk-weightfree", *argv],
        "dataset": data["info"], "description": description, "task": task,
        "metric": score_key, "model": args.model, "seed": args.seed, "device": str(device),
        "threads": _thread_count(), "warnings": warned,
        "device_name": _device_name(device), "epoch_budget": budget,
        "epoch_budget_note": _BUDGET_NOTE, "timing_note": _TIMING_NOTE,
        "versions": _versions(),
        "estimators": [{"name": name, "class": f"sk_weightfree.{type(est).__name__}",
                        "params": est.get_params(deep=False)}
                       for name, est in estimators.items()],
        "results": rows,
        "spectral_similarity": {"estimators": names, "matrix": similarity.tolist()},
    }
    if out is not None:
        densities = {name: spectral_density(est, random_state=args.seed)
                     for name, est in estimators.items()}
        _write_outputs(out, results, rows, names, similarity, densities, task)
        say(f"\nwrote {out / 'results.json'}, {out / 'results.csv'}, {out / 'report.png'}")
    return results


def _one_hot_summary(info):
    """``"; one-hot: colour (3) = 3 of the 5 inputs"``, or "" without categorical columns."""
    if not info["categorical"]:
        return ""
    counts = ", ".join(f"{name} ({len(values)})" for name, values in info["categorical"].items())
    unseen = info["test_rows_with_unseen_categories"]
    return (f"; one-hot: {counts} = {info['one_hot_width']} of the {info['n_features']} inputs"
            + (f", {unseen} test row{'' if unseen == 1 else 's'} with a category unseen in "
               "training (encoded as zeros)" if unseen else ""))


class _torch_threads:
    """Run the block with ``n`` torch intra-op threads (None: as they are), then restore."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        if self.n is not None:
            import torch

            self._previous = torch.get_num_threads()
            torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc_info):
        if self.n is not None:
            import torch

            torch.set_num_threads(self._previous)
        return False


def _warm_up(estimators, data, ctrl_c):
    """One untimed 1-epoch fit of each estimator on a few rows (torch's start-up cost)."""
    from sklearn.base import clone

    X, y = data["X_train"][:_WARMUP_ROWS], data["y_train"][:_WARMUP_ROWS]
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
        _stop_if_interrupted(warm, name, ctrl_c)


def _fit_and_score(name, estimator, data, score_key, ctrl_c):
    from sklearn.metrics import accuracy_score, r2_score

    start = time.perf_counter()
    try:
        estimator.fit(data["X_train"], data["y_train"])
    except ValueError as exc:
        raise UsageError(f"{name} could not be fitted on {data['description']}: "
                         f"{_one_line(exc)}") from None
    fit_seconds = time.perf_counter() - start
    _stop_if_interrupted(estimator, name, ctrl_c)
    start = time.perf_counter()
    predicted = estimator.predict(data["X_test"])
    predict_seconds = time.perf_counter() - start
    score = (r2_score if score_key == "test_r2" else accuracy_score)(data["y_test"], predicted)
    return {"estimator": name, score_key: float(score), "density": float(estimator.density_),
            "connections": int(estimator.n_connections_), "epochs": int(estimator.n_iter_),
            "fit_seconds": fit_seconds, "predict_seconds": predict_seconds,
            **stored_bytes(estimator)}


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


def _write_outputs(out, results, rows, names, similarity, densities, task):
    """Write the three files into a temporary folder beside ``out``, then move them in.

    A failure or an interrupt while writing leaves ``out`` as it was.
    """
    from ._report import plot_report

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        (staging / "results.json").write_text(json.dumps(results, indent=2, default=_jsonable))
        _write_csv(staging / "results.csv", rows, names, similarity)
        plot_report(rows, names, similarity, densities, staging / "report.png",
                    title=f"sk-weightfree compare: {results['description']}",
                    score_key=_METRICS[task][0], score_label=_METRICS[task][2])
        out.mkdir(exist_ok=True)
        for name in ("results.json", "results.csv", "report.png"):
            os.replace(staging / name, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _jsonable(value):
    """JSON for what ``get_params`` may hold besides plain values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return repr(value)


def _thread_count():
    import torch

    return torch.get_num_threads()


def _device_name(device):
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def _one_line(exc):
    return " ".join(str(exc).split())


def format_table(rows, task="classification"):
    """Aligned text table of the per-estimator results."""
    score_key, score_header, _ = _METRICS[task]
    header = ["estimator", score_header, "density", "connections", "epochs", "fit s",
              "predict s", "file kB", "f32 dense kB"]
    body = [[r["estimator"], f"{r[score_key]:.4f}", f"{r['density']:.3f}",
             f"{r['connections']:,}", str(r["epochs"]), f"{r['fit_seconds']:.2f}",
             f"{r['predict_seconds']:.3f}", _kilobytes(r.get("file_bytes")),
             _kilobytes(r.get("dense_float32_bytes"))]
            for r in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = [header, ["-" * w for w in widths], *body]
    table = "\n".join(
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                  for i, (cell, w) in enumerate(zip(line, widths)))
        for line in lines
    )
    notes = [f"n/a ({r['estimator']}): {r['file_note']}" for r in rows if r.get("file_note")]
    return "\n".join([table, *notes]) + (
        "\nfile kB: the sk_weightfree.io.dump file; f32 dense kB: the same network with every "
        "possible edge a float32 (1 kB = 1,000 bytes)")


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


def _write_csv(path, rows, names, similarity):
    """One row per estimator; run-level fields live in results.json only."""
    fields = list(rows[0]) + [f"similarity_{n}" for n in names]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for row, sims in zip(rows, similarity):
            writer.writerow({**row, **{f"similarity_{n}": float(s) for n, s in zip(names, sims)}})


def _versions():
    import scipy
    import skorch
    import sklearn
    import torch

    from . import __version__

    return {"sk_weightfree": __version__, "python": platform.python_version(),
            "numpy": np.__version__, "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__, "torch": torch.__version__,
            "skorch": skorch.__version__}


# ---------------------------------------------------------------------------- the command
def build_parser():
    parser = argparse.ArgumentParser(
        prog="sk-weightfree", description="Weight-free neural networks, compared.")
    commands = parser.add_subparsers(dest="command", required=True)
    compare = commands.add_parser(
        "compare", help="fit every estimator on one data set and compare them",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Fit the estimators on a fixed train/test split; print the test score "
                    "(accuracy for classification, R² for regression), density, connections, "
                    "epochs, timings, the bytes of each model's sk_weightfree.io.dump file "
                    "(beside the same network as float32 dense weights) and the spectral "
                    "similarity matrix.",
        epilog="Fair comparison: every estimator gets the same epoch budget (--epochs); the "
               "pruned family's\nretraining counts inside it (max_epochs + n_rounds * "
               "finetune_epochs = budget, with\nfinetune_epochs = (budget // 3) // n_rounds "
               "unless --set); --set FAMILY.max_epochs=N overrides the\nbudget of that "
               "family, and the table's 'epochs' column shows what each one ran. Fit times "
               "are\nmeasured after one untimed warm-up fit of each estimator.\n\n"
               "One Ctrl-C stops the whole run: the fit in progress ends and no further "
               "estimator is\nfitted; nothing is written and the exit status is 130. Bad input is "
               "one line on standard\nerror and exit status 2; nothing is written then "
               "either: the files are written together\nat the end of a run.\n\n"
               "results.json records the command line, the data set (source, split, sha256 "
               "of a file),\nevery estimator's full parameters, the seed, the device and the "
               "package versions.")
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
    compare.add_argument("--threads", type=_positive_int,
                         help="torch intra-op threads for the fits (default: torch's own "
                              "choice). On a loaded machine 1 thread is often much faster; "
                              "a fit is reproducible bit for bit at the same thread count")
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
    return parser


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
        with _torch_threads(args.threads):
            run_compare(args, argv)
    except UsageError as exc:
        print(f"sk-weightfree: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except (Interrupted, KeyboardInterrupt) as exc:
        reason = str(exc) if isinstance(exc, Interrupted) else "interrupted by the user"
        print(f"sk-weightfree: {reason}; stopped, nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0
