"""The figure written by ``sk-weightfree compare``."""

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.ticker  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402


def plot_report(rows, names, similarity, densities, path, title=""):
    """Accuracy vs density, the spectral-similarity heatmap and the spectral densities."""
    fig, (ax_acc, ax_sim, ax_spec) = plt.subplots(1, 3, figsize=(17, 5.2),
                                                  layout="constrained")
    colors = {name: f"C{i}" for i, name in enumerate(names)}
    for row in rows:
        ax_acc.scatter(row["density"], row["test_accuracy"], s=70,
                       color=colors[row["estimator"]], label=row["estimator"], zorder=3)
    ax_acc.set_xscale("log")
    ax_acc.set_xlabel("density (fraction of edges kept, log scale)")
    ax_acc.set_ylabel("test accuracy")
    ax_acc.set_title("accuracy versus density")
    ax_acc.grid(alpha=0.3, which="both")
    ax_acc.legend(loc="best", fontsize=9)
    low = min(r["density"] for r in rows)
    ax_acc.set_xlim(low / 2, 2.0)
    ticks = [t for t in (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
             if low / 2 <= t <= 2.0]
    ax_acc.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax_acc.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())

    image = ax_sim.imshow(similarity, vmin=0, vmax=1, cmap="viridis")
    ax_sim.set_xticks(range(len(names)), names, rotation=35, ha="right")
    ax_sim.set_yticks(range(len(names)), names)
    for i in range(len(names)):
        for j in range(len(names)):
            value = similarity[i, j]
            ax_sim.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=9,
                        color="black" if value > 0.6 else "white")
    ax_sim.set_title("spectral similarity")
    fig.colorbar(image, ax=ax_sim, fraction=0.046, pad=0.04)

    for name in names:
        grid, density = densities[name]
        ax_spec.plot(grid, density, color=colors[name], label=name, lw=1.4)
    ax_spec.set_xlabel("eigenvalue of the normalised Laplacian")
    ax_spec.set_ylabel("spectral density")
    ax_spec.set_title("spectral densities")
    ax_spec.set_xlim(0, 2)
    ax_spec.set_yscale("symlog", linthresh=0.1)
    ax_spec.set_ylim(bottom=0)
    ax_spec.legend(fontsize=9)
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
