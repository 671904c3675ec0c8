"""Accuracy per stored byte on Fashion-MNIST: weight-free networks against compressed dense ones.

Every point is one network family at one size: its accuracy (mean ± std over seeds 0, 1, 2)
against the bytes of its model file. The families:

- ``weight-free``: :class:`~sk_weightfree.WeightFreeClassifier` (defaults: paired ``[h, -h]``
  inputs) at several widths; bytes = what :func:`sk_weightfree.io.dump` writes (one bit per
  possible edge, per-unit arrays).
- ``dense`` at several widths, and three variants of each fitted dense network (post-hoc,
  no retraining):

  - ``float32``: the network as ``io.dump`` writes it;
  - ``int8``: weight-only post-training quantisation, symmetric, one float32 scale per
    output unit (``scale = max|w| / 127``, ``q = round(w / scale)``), rounded in numpy.
    Chosen over torch's dynamic/static quantisation because what is measured is the
    *stored* model: torch's schemes also quantise activations for speed, need calibration
    data (static), and store their own format; per-channel weight rounding is the
    standard storage-side int8 baseline and the most accurate of the plain ones.
    Intercepts stay float32;
  - ``ternary``: each layer's weights become ``alpha * {-1, 0, +1}`` (two bits per edge,
    one float32 ``alpha`` per layer): ``|w| <= t * mean|w|`` becomes 0 and ``alpha`` is the
    mean ``|w|`` of the rest (the ternary-weight-network rule). ``t`` is chosen per width
    on the validation split, from ``TERNARY_FACTORS``.

- ``weight-free:RULE`` (``--families rules``): the same estimator with ``mask_rule=RULE``
  for the other mask rules, at one width.
- ``pruned``: :class:`~sk_weightfree.PrunedClassifier` (one shot, global magnitude
  pruning of a dense network, then fine-tuning) at several densities; the kept positions
  are stored as a bitmap (what ``io.dump`` writes) or as CSR (one row per output unit,
  ``uint16`` column indices, row pointers), whichever is smaller, layer by layer.

Formats that ``io.dump`` does not write (int8, ternary, CSR) are counted by the same
writer: the dumped file with its weight arrays swapped for the other format's arrays
(:func:`sk_weightfree.cli.rewritten_file_bytes`), so per-array overhead is counted alike.

Protocol (``sk_weightfree._study``): fitted on 50,000 training images, scored on the 10,000-image
validation split carved from the training part; then (``--final``) refitted on all 60,000
and scored on the test split, read once for the whole run, after every choice. Every fit
gets ``epochs`` passes (10 by default; the pruned family 7 + 3 fine-tune epochs, as
``sk-weightfree compare`` splits a budget of 10).

Results go to ``benchmarks/results/pareto.json`` (merged, one entry per configuration and
split, written after each configuration); ``python benchmarks/report.py`` draws the
figure and prints the table from it::

    python benchmarks/pareto.py --threads 1                  # validation, every family
    python benchmarks/pareto.py --threads 1 --final-only     # then the test split
    python benchmarks/pareto.py --max-rows 3000 --seeds 0 --out /tmp/smoke.json   # smoke
"""

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from sk_weightfree._study import Protocol, machine_line

import sk_weightfree
from sk_weightfree import DenseClassifier, PrunedClassifier, WeightFreeClassifier
from sk_weightfree import io as skio
from sk_weightfree.cli import rewritten_file_bytes

DEFAULT_OUT = Path(__file__).parent / "results" / "pareto.json"
WEIGHT_FREE_WIDTHS = ((100,), (300, 100), (600, 200))
DENSE_WIDTHS = ((32,), (100,), (300, 100))
PRUNED_WIDTH = (300, 100)
PRUNED_DENSITIES = (0.02, 0.05, 0.2)
TERNARY_FACTORS = (0.5, 0.7, 1.0)
#: The other mask rules of WeightFreeClassifier (``mask_rule``), at one width.
RULES = ("edge-popup", "supermask", "signed-supermask")
RULE_WIDTH = (100,)
INT8_MAX = 127


# ---------------------------------------------------------------------------- formats
def per_channel_int8(weights, output_axis=0):
    """``(codes, scales)``: ``weights`` as int8 codes times one float32 scale per output unit
    (``output_axis`` counts the units: 0 in torch's layout, 1 in ``coefs_``'s)."""
    others = tuple(i for i in range(weights.ndim) if i != output_axis)
    scales = np.abs(weights).max(axis=others, keepdims=True) / INT8_MAX
    scales = np.where(scales > 0, scales, 1.0).astype(np.float32)
    codes = np.clip(np.round(weights / scales), -INT8_MAX, INT8_MAX).astype(np.int8)
    return codes, scales


def ternary(weights, factor):
    """``(signs, alpha)``: ``weights`` as ``alpha * signs``, ``signs`` in {-1, 0, 1}."""
    magnitude = np.abs(weights)
    kept = magnitude > factor * magnitude.mean()
    alpha = float(magnitude[kept].mean()) if kept.any() else 0.0
    return (np.sign(weights) * kept).astype(np.int8), alpha


def _int8_entry(entry, shape, input_axis, paired, arrays):
    codes, scales = per_channel_int8(arrays[entry["weights"]].reshape(shape), 1 - input_axis)
    return {"kind": "int8", "codes": codes, "scales": scales.ravel()}


def _ternary_entry(factor):
    def rewrite(entry, shape, input_axis, paired, arrays):
        signs, alpha = ternary(arrays[entry["weights"]].reshape(shape), factor)
        # two bits per edge: 0, +1, -1 as 0b00, 0b01, 0b10
        codes = np.where(signs < 0, 2, signs).astype(np.uint8).ravel()
        codes = np.pad(codes, (0, -len(codes) % 4)).reshape(-1, 4)
        packed = (codes << np.array([6, 4, 2, 0], dtype=np.uint8)).sum(axis=1)
        return {"kind": "ternary", "codes": packed.astype(np.uint8), "value": alpha}
    return rewrite


def _smallest_uint(largest):
    return next(t for t in (np.uint8, np.uint16, np.uint32) if largest <= np.iinfo(t).max)


def _bitmap_or_csr_entry(entry, shape, input_axis, paired, arrays):
    """A pruned layer's kept positions as a bitmap (as dumped) or CSR, the smaller one."""
    if entry["kind"] != "sparse":  # io.dump found dense storage smaller: kept as it is
        return {name: arrays[value] if name in ("mask", "values", "weights") else value
                for name, value in entry.items() if name in ("kind", "value", "mask",
                                                              "values", "weights")}
    kept = np.unpackbits(arrays[entry["mask"]], count=int(np.prod(shape))).reshape(shape)
    output_axis = 1 - input_axis
    by_unit = np.moveaxis(kept, output_axis, 0).reshape(shape[output_axis], -1).astype(bool)
    indices = np.nonzero(by_unit)[1].astype(_smallest_uint(by_unit.shape[1] - 1))
    pointers = np.concatenate([[0], np.cumsum(by_unit.sum(axis=1))])
    pointers = pointers.astype(_smallest_uint(int(pointers[-1])))
    bitmap = arrays[entry["mask"]]
    values = arrays[entry["values"]]
    if indices.nbytes + pointers.nbytes < bitmap.nbytes:
        return {"kind": "csr", "indices": indices, "pointers": pointers, "values": values}
    return {"kind": "sparse", "mask": bitmap, "values": values}


def _with_weights(path, transform):
    """The numpy predictor of the file at ``path``, every weight layer ``transform``-ed.

    The weights are changed before the predictor's first call, so the plan it compiles
    (and caches) at that call is built from the transformed ones.
    """
    predictor = skio.load(path)
    for member in predictor.chain.members:
        for op in member:
            if op.op in ("linear", "conv2d"):
                op.weight, op.value = transform(op.weights), None
    return predictor


def _dequantised_int8(weights):  # torch layout: output units on axis 0
    codes, scales = per_channel_int8(weights.astype(np.float32), output_axis=0)
    return codes.astype(np.float64) * scales


def _dequantised_ternary(factor):
    def transform(weights):
        signs, alpha = ternary(weights.astype(np.float32), factor)
        return signs.astype(np.float64) * alpha
    return transform


def variants(estimator, family):
    """``{variant: (bytes, score(X, y) callable)}`` of one fitted network."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.npz"
        dumped = skio.dump(estimator, path)
        if family.startswith("weight-free"):
            return {"bits": (dumped, estimator.score)}
        if family == "pruned":
            return {"bitmap-or-csr": (rewritten_file_bytes(path, _bitmap_or_csr_entry),
                                      estimator.score)}
        found = {"float32": (dumped, estimator.score),
                 "int8": (rewritten_file_bytes(path, _int8_entry),
                          _with_weights(path, _dequantised_int8).score)}
        for factor in TERNARY_FACTORS:
            found[f"ternary-t{factor}"] = (
                rewritten_file_bytes(path, _ternary_entry(factor)),
                _with_weights(path, _dequantised_ternary(factor)).score)
        return found


# ---------------------------------------------------------------------------- runs
def configurations(families, epochs):
    """``[(family, label, make_estimator(seed))]`` of every network fitted."""
    common = {"max_epochs": epochs, "device": "cpu"}
    configs = []
    if "weight-free" in families:
        configs += [("weight-free", _width(w), _maker(WeightFreeClassifier, common,
                                                     hidden_layer_sizes=w))
                    for w in WEIGHT_FREE_WIDTHS]
    if "rules" in families:
        configs += [(f"weight-free:{rule}", _width(RULE_WIDTH),
                     _maker(WeightFreeClassifier, common, hidden_layer_sizes=RULE_WIDTH,
                            mask_rule=rule))
                    for rule in RULES]
    if "dense" in families:
        configs += [("dense", _width(w), _maker(DenseClassifier, common, hidden_layer_sizes=w))
                    for w in DENSE_WIDTHS]
    if "pruned" in families:
        finetune = epochs // 3  # as compare splits the budget: 7 + 3 for 10 epochs
        configs += [("pruned", f"{_width(PRUNED_WIDTH)} @ {d}",
                     _maker(PrunedClassifier, {**common, "max_epochs": epochs - finetune},
                            hidden_layer_sizes=PRUNED_WIDTH, density=d,
                            finetune_epochs=finetune))
                    for d in PRUNED_DENSITIES]
    return configs


def _width(widths):
    return "-".join(str(w) for w in widths)


def _maker(cls, common, **params):
    return lambda seed: cls(**common, **params, random_state=seed)


def run_config(family, label, make, seeds, X_fit, y_fit, X_score, y_score):
    """Fit once per seed; per variant, scores and bytes per seed, and the fit records."""
    per_variant, fits = {}, []
    for seed in seeds:
        estimator = make(seed)
        start = time.perf_counter()
        estimator.fit(X_fit, y_fit)
        seconds = time.perf_counter() - start
        fits.append({"seed": seed, "fit_seconds": seconds, "n_iter": int(estimator.n_iter_),
                     "density": float(estimator.density_),
                     "connections": int(estimator.n_connections_),
                     "load_average": list(os.getloadavg())})
        for variant, (size, score) in variants(estimator, family).items():
            entry = per_variant.setdefault(variant, {"scores": [], "bytes": []})
            entry["scores"].append(float(score(X_score, y_score)))
            entry["bytes"].append(int(size))
        print(f"  {family} {label} seed {seed}: {seconds:.1f} s, "
              + ", ".join(f"{v} {e['scores'][-1]:.4f} ({e['bytes'][-1]:,} B)"
                          for v, e in per_variant.items())
              + f"; load average {os.getloadavg()[0]:.2f}", flush=True)
        params = estimator.get_params(deep=False)
    return per_variant, fits, params


def chosen_ternary_factor(results, label):
    """The ternary threshold factor with the best mean validation score for ``label``."""
    validation = [r for r in results["rows"] if r["family"] == "dense" and r["label"] == label
                  and r["split"] == "validation" and r["variant"].startswith("ternary-t")]
    if not validation:
        raise SystemExit(f"no validation run of dense {label} to choose the ternary factor "
                         "from; run the validation split first")
    best = max(validation, key=lambda r: np.mean(r["scores"]))
    return best["variant"]


def code_version():
    """The git commit of the package that runs (``+ changes`` when its files differ)."""
    import subprocess

    folder = Path(sk_weightfree.__file__).parent
    try:
        commit = subprocess.run(["git", "-C", str(folder), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        changed = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "."],
                                 capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"not a git checkout ({folder})"
    return commit + (" + uncommitted changes in sk_weightfree/" if changed else "")


def load_results(path):
    if path.exists():
        return json.loads(path.read_text())
    return {"rows": [], "runs": []}


def save(results, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(results, indent=1, default=repr))
    os.replace(partial, path)


def record(results, family, label, split, per_variant, fits, params, keep=None):
    results["rows"] = [r for r in results["rows"]
                       if (r["family"], r["label"], r["split"]) != (family, label, split)]
    for variant, entry in per_variant.items():
        if keep is not None and variant not in keep:
            continue
        results["rows"].append({
            "family": family, "label": label, "variant": variant, "split": split,
            "scores": entry["scores"], "bytes": entry["bytes"],
            "mean": float(np.mean(entry["scores"])), "std": float(np.std(entry["scores"])),
            "fits": fits, "params": params})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=["weight-free", "dense", "pruned"],
                        choices=["weight-free", "dense", "pruned", "rules"],
                        help="rules: WeightFreeClassifier with each of RULES as mask_rule")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--max-rows", type=int, help="stratified subset (smoke runs only)")
    parser.add_argument("--final-only", action="store_true",
                        help="refit on the whole training part and score the test split")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    protocol = Protocol("fashion-mnist", max_rows=args.max_rows)
    results = load_results(args.out)
    split = "test" if args.final_only else "validation"
    run = {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "split": split, "command": ["python", "benchmarks/pareto.py", *os.sys.argv[1:]],
           "machine": machine_line("cpu"), "platform": platform.platform(),
           "cpu_count": os.cpu_count(), "load_average_at_start": list(os.getloadavg()),
           "sk_weightfree": sk_weightfree.__version__, "code": code_version(),
           "numpy": np.__version__,
           "protocol": protocol.describe(), "epochs": args.epochs, "seeds": args.seeds,
           "max_rows": args.max_rows}
    print(run["machine"], "| load average", run["load_average_at_start"])
    print(protocol.describe(), flush=True)
    if args.final_only:
        X_fit, y_fit, X_score, y_score = protocol.final_data()  # the one test read
    else:
        X_fit, y_fit, X_score, y_score = (protocol.X_fit, protocol.y_fit, protocol.X_val,
                                          protocol.y_val)
    start = time.perf_counter()
    for family, label, make in configurations(args.families, args.epochs):
        keep = None
        if args.final_only and family == "dense":
            keep = {"float32", "int8", chosen_ternary_factor(results, label)}
        per_variant, fits, params = run_config(family, label, make, args.seeds,
                                               X_fit, y_fit, X_score, y_score)
        record(results, family, label, split, per_variant, fits, params, keep)
        save(results, args.out)
    run["seconds"] = time.perf_counter() - start
    run["load_average_at_end"] = list(os.getloadavg())
    results["runs"].append(run)
    save(results, args.out)
    print(f"done in {run['seconds'] / 60:.1f} min; wrote {args.out}")


if __name__ == "__main__":
    main()
