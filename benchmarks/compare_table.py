"""Markdown table of a ``sk-weightfree compare --seeds K`` run, from its results.json.

::

    python benchmarks/compare_table.py benchmarks/results/compare_fashion_mnist/results.json

Prints the command, the machine line and one row per estimator: mean ± sample std of the
test score over seeds, its 95 % t interval, the difference to the baseline paired by seed
with its interval (``*``: the interval excludes 0), the per-seed scores and density.
"""

import json
import sys
from pathlib import Path

from sk_weightfree._study import markdown_table


def table(path):
    results = json.loads(Path(path).read_text())
    key = results["metric"]
    header = ["estimator", f"{key} (mean ± std)", "95% CI",
              f"− {results['baseline']} (paired, 95% CI)", "per seed", "density"]
    rows = []
    for r in results["results"]:
        low, high = r["ci95"] or (float("nan"),) * 2
        d = r["difference"]
        cell = "(baseline)" if d is None else (
            f"{d['mean']:+.4f} [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]"
            + ("*" if d["excludes_zero"] else ""))
        rows.append([r["estimator"], f"{r[key]:.4f} ± {r['std']:.4f}",
                     f"[{low:.4f}, {high:.4f}]", cell,
                     ", ".join(f"{s:.4f}" for s in r["scores"]), f"{r['density']:.3f}"])
    machine = (f"{results['device_name']} ({results['device']}), {results['threads']} thread"
               f"{'' if results['threads'] == 1 else 's'}, torch {results['versions']['torch']}")
    return (f"`{' '.join(results['command'])}` — {results['description']}; "
            f"{results['epoch_budget']} epochs, "
            + (f"tune={results['tune']} (lr, schedule and the family's knobs chosen per row "
               f"and seed on a validation split)" if results["tune"] else
               f"lr_schedule={results['recipe']['lr_schedule']}, untuned")
            + f", seeds {results['seeds']}; {machine}\n\n"
            + markdown_table(header, rows))


if __name__ == "__main__":
    for path in sys.argv[1:]:
        print(table(path) + "\n")
