"""Figures and tables of the saved benchmark results, without retraining anything.

Reads ``benchmarks/results/pareto.json`` (written by ``pareto.py``), draws accuracy against
stored bytes (``docs/_static/pareto.png``) and prints the markdown table that
``benchmarks/README.md`` and ``docs/results.md`` show::

    python benchmarks/report.py
    python benchmarks/report.py --results /tmp/smoke.json --figure /tmp/pareto.png
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = ROOT / "benchmarks" / "results" / "pareto.json"
DEFAULT_FIGURE = ROOT / "docs" / "_static" / "pareto.png"

#: (family, variant prefix) -> (legend, colour, marker), in legend order.
SERIES = {
    ("weight-free", "bits"): ("weight-free {0,1} (io.dump)", "C0", "o"),
    ("dense", "float32"): ("dense float32 (io.dump)", "C1", "s"),
    ("dense", "int8"): ("dense int8, per-channel scale", "C2", "D"),
    ("dense", "ternary"): ("dense ternary, 2 bits + a scale per layer", "C3", "v"),
    ("pruned", "bitmap-or-csr"): ("pruned 300-100, bitmap or CSR", "C4", "^"),
    ("weight-free:edge-popup", "bits"): ("weight-free 100, edge-popup rule", "C5", "P"),
    ("weight-free:supermask", "bits"): ("weight-free 100, supermask rule", "C6", "X"),
    ("weight-free:signed-supermask", "bits"): ("weight-free 100, signed-supermask rule",
                                               "C7", "*"),
}


def chosen_rows(rows, split):
    """The rows of ``split``, the ternary variant reduced to the factor chosen on validation."""
    chosen = {}
    for row in rows:
        if row["split"] == "validation" and row["variant"].startswith("ternary-t"):
            best = chosen.get(row["label"])
            if best is None or row["mean"] > best["mean"]:
                chosen[row["label"]] = row
    keep = []
    for row in rows:
        if row["split"] != split:
            continue
        if row["variant"].startswith("ternary-t") and \
                row["variant"] != chosen.get(row["label"], {}).get("variant"):
            continue
        keep.append(row)
    return keep


def _series_key(row):
    variant = "ternary" if row["variant"].startswith("ternary-t") else row["variant"]
    return row["family"], variant


def _sizes(rows):
    return [float(np.mean(r["bytes"])) for r in rows]


def plot(results, path):
    """Accuracy (mean ± std over seeds) against bytes, one panel per split present."""
    splits = [s for s in ("validation", "test") if any(r["split"] == s for r in results["rows"])]
    fig, axes = plt.subplots(1, len(splits), figsize=(6.8 * len(splits), 4.8), squeeze=False,
                             layout="constrained")
    for ax, split in zip(axes[0], splits):
        rows = chosen_rows(results["rows"], split)
        for key, (legend, colour, marker) in SERIES.items():
            series = sorted((r for r in rows if _series_key(r) == key),
                            key=lambda r: np.mean(r["bytes"]))
            if not series:
                continue
            ax.errorbar(_sizes(series), [r["mean"] for r in series],
                        yerr=[r["std"] for r in series], color=colour, marker=marker,
                        capsize=3, label=legend)
            if len(series) == 1:
                continue  # one width (the rules): the legend names it, a label would crowd
            for row, size in zip(series, _sizes(series)):
                ax.annotate(_point_label(row), (size, row["mean"]),
                            textcoords="offset points", xytext=(4, -10), fontsize=7,
                            color=colour)
        ax.set_xscale("log")
        ax.set_xlabel("stored bytes (log scale)")
        ax.set_ylabel(f"{split} accuracy (mean ± std, {_n_seeds(rows)} seeds)")
        ax.set_title(f"Fashion-MNIST, {split} split")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="lower right")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _point_label(row):
    """The widths, or for pruned networks (one width) the density."""
    if "@" in row["label"]:
        return "density " + row["label"].split("@")[1].strip()
    return row["label"]


def _n_seeds(rows):
    return max((len(r["scores"]) for r in rows), default=0)


def table(results):
    """Markdown: one line per point, validation and (when run) test accuracy."""
    validation = {(r["family"], r["label"], r["variant"]): r
                  for r in chosen_rows(results["rows"], "validation")}
    test = {(r["family"], r["label"], r["variant"]): r
            for r in chosen_rows(results["rows"], "test")}
    lines = ["| family | size | stored as | bytes | validation acc | test acc | density |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    order = list(SERIES)
    for key in sorted(validation, key=lambda k: (order.index(_series_key(validation[k])),
                                                 np.mean(validation[k]["bytes"]))):
        row = validation[key]
        final = test.get(key)
        density = np.mean([fit["density"] for fit in row["fits"]])
        lines.append(
            f"| {row['family']} | {row['label']} | {_stored_as(row['variant'])} "
            f"| {np.mean(row['bytes']):,.0f} | {_accuracy(row)} "
            f"| {_accuracy(final) if final else 'not run'} | {density:.3f} |")
    return "\n".join(lines)


def _stored_as(variant):
    if variant.startswith("ternary-t"):
        return f"ternary (t = {variant[len('ternary-t'):]}, chosen on validation)"
    return {"bits": "{0,1} bits", "bitmap-or-csr": "float32 values + bitmap or CSR"}.get(
        variant, variant)


def _accuracy(row):
    return f"{row['mean']:.4f} ± {row['std']:.4f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--figure", type=Path, default=DEFAULT_FIGURE)
    args = parser.parse_args()
    results = json.loads(args.results.read_text())
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    plot(results, args.figure)
    print(table(results))
    for run in results.get("runs", []):
        print(f"\n{run['split']} run started {run['started']}: {run['seconds'] / 60:.1f} min, "
              f"{run['machine']}; load average at start {run['load_average_at_start'][0]:.2f}"
              f", at end {run['load_average_at_end'][0]:.2f}")
    print(f"\nwrote {args.figure}")


if __name__ == "__main__":
    main()
