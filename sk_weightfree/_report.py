"""The figure written by ``sk-weightfree compare``."""

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.ticker  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402

#: Markers of the estimators, in order: two estimators at one point stay distinguishable.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
#: Horizontal step between estimators that share a point, in decades of the log axis.
SPREAD_DECADES = 0.04


def marker_positions(rows, score_key):
    """Where each row's marker goes: ``(x, y, slot)``.

    ``(x, y)`` is ``(density, score)``, spread sideways where rows share a point (same
    density to 3 significant digits, same score to 4 decimals); ``slot`` is None for a
    row alone at its point, else its place in the group (negative: left of the point,
    0: on it, positive: right). The spread is symmetric on the log axis, so a group stays
    centred on its point and a lone row is drawn where it is.
    """
    keys = [(float(f"{r['density']:.3g}"), round(r[score_key], 4)) for r in rows]
    positions = []
    for row, key in zip(rows, keys):
        group = [i for i, other in enumerate(keys) if other == key]
        slot = group.index(len(positions)) - (len(group) - 1) / 2
        positions.append((row["density"] * 10 ** (SPREAD_DECADES * slot), row[score_key],
                          slot if len(group) > 1 else None))
    return positions


def _label_placement(slot):
    """Text offset (points) and alignment of a shared marker's label: outwards."""
    if slot < 0:
        return (-7, 0), "right", "center"
    if slot > 0:
        return (7, 0), "left", "center"
    return (0, 8), "center", "bottom"


def plot_report(rows, names, similarity, densities, path, title="", *,
                score_key="test_accuracy", score_label="test accuracy", learned=None,
                image_shape=None):
    """Score vs density, the spectral-similarity heatmap and the spectral densities;
    below them, what a weight-free network learned.

    Parameters
    ----------
    rows : list of dict
        One per estimator, with keys ``"estimator"``, ``"density"`` and ``score_key``;
        a row with ``"ci95"`` (``[low, high]``, over seeds) gets that error bar.
    names : list of str
        The estimators, in the order of ``similarity``'s rows (any subset, each once).
    similarity : ndarray of shape (len(names), len(names))
    densities : dict
        ``name -> (grid, density)`` as returned by :func:`~sk_weightfree.spectral_density`.
    path : path-like
        The PNG file to write.
    title : str, default=""
    score_key, score_label : str
        Which entry of each row is plotted against density (``"test_accuracy"`` for
        classifiers, ``"test_r2"`` for regressors) and the axis label saying so.
    learned : fitted estimator, default=None
        A weight-free network: a bottom row shows its receptive fields when the data are
        images (``image_shape``), its degree distributions beside a random network's
        otherwise (:func:`sk_weightfree.plotting.plot_learned_architecture`).
    image_shape : tuple of int, default=None
        One input row as an image, e.g. ``(8, 8)`` for digits.
    """
    if len(set(names)) != len(names) or similarity.shape != (len(names), len(names)):
        raise ValueError(f"names must be distinct and match the similarity matrix; got "
                         f"{list(names)} and a matrix of shape {similarity.shape}")
    if learned is None:
        fig, (ax_acc, ax_sim, ax_spec) = plt.subplots(1, 3, figsize=(17, 5.2),
                                                      layout="constrained")
    else:
        fig = plt.figure(figsize=(17, 10), layout="constrained")
        top, bottom = fig.subfigures(2, 1, height_ratios=(5.2, 4.8))
        ax_acc, ax_sim, ax_spec = top.subplots(1, 3)
        _plot_learned(learned, bottom, image_shape)
    colors = {name: f"C{i}" for i, name in enumerate(names)}
    markers = {name: MARKERS[i % len(MARKERS)] for i, name in enumerate(names)}
    positions = marker_positions(rows, score_key)
    for row, (x, y, slot) in zip(rows, positions):
        if row.get("ci95"):  # over seeds: the 95 % interval of the mean
            low, high = row["ci95"]
            ax_acc.errorbar(x, y, yerr=[[y - low], [high - y]], color=colors[row["estimator"]],
                            capsize=3, lw=1, zorder=2)
        ax_acc.scatter(x, y, s=70, color=colors[row["estimator"]],
                       marker=markers[row["estimator"]], label=row["estimator"], zorder=3,
                       edgecolors="white", linewidths=0.6)
        if slot is not None:  # a shared point: the name says which marker is which
            offset, ha, va = _label_placement(slot)
            ax_acc.annotate(row["estimator"], (x, y), textcoords="offset points",
                            xytext=offset, ha=ha, va=va, fontsize=7,
                            color=colors[row["estimator"]])
    ax_acc.set_xscale("log")
    ax_acc.set_xlabel("density (fraction of edges kept, log scale)")
    ax_acc.set_ylabel(score_label)
    ax_acc.set_title(f"{score_label.split(' (')[0]} versus density")
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


def _plot_learned(estimator, figure, image_shape):
    """The weight-free network's receptive fields or degree distributions, in ``figure``."""
    from .plotting import plot_learned_architecture

    ax = figure.subplots()
    plot_learned_architecture(estimator, ax=ax, image_shape=image_shape, n_units=16, n_cols=8)
    what = "receptive fields" if image_shape is not None else "degree distributions"
    figure.suptitle(f"what the weight-free network learned: "
                    f"{'first-layer ' if image_shape is not None else ''}{what}")
