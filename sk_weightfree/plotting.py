"""Pictures of a fitted network's architecture, as scikit-learn ``Display`` objects.

Each display holds the computed values (its constructor takes them),
``from_estimator(est, ...)`` computes them from a fitted network and draws, and
``plot(ax=None, ...)`` draws and returns the display with ``figure_``, ``ax_`` and
``axes_`` set. matplotlib is imported only inside ``plot``.

The displays read a fitted estimator through its public arrays only (``coefs_``,
``paired_inputs_``, ``n_features_in_``), with the fold the spectral functions use:
a paired network's ``[h, -h]`` twin lines make one signed edge, ``+1``, ``-1`` or
none. They accept every estimator of this package and scikit-learn's
``MLPClassifier``/``MLPRegressor``.
"""

import math
from numbers import Integral

import numpy as np
from sklearn.utils import check_random_state
from sklearn_compat.utils._optional_dependencies import check_matplotlib_support

from ._architecture import check_network
from ._spectral import _as_layers, _fold_paired

__all__ = [
    "DegreeDisplay",
    "NetworkDisplay",
    "ReceptiveFieldDisplay",
    "plot_learned_architecture",
]

#: The colours of an edge: excitatory (+), inhibitory (-), absent.
POSITIVE, NEGATIVE, ABSENT = "#c0392b", "#2166ac", "#e8e8e8"
#: Edges of a convolution between channels (a set of taps with mixed signs).
CHANNEL_LINK = "#7f7f7f"
#: The learned network and the random network it is compared with.
LEARNED, NULL = "#1b7837", "#bdbdbd"


# --------------------------------------------------------------------------
# Reading a fitted network
# --------------------------------------------------------------------------
def _check_network(estimator):
    """Refuse what is not a fitted network of this package or an MLP."""
    check_network(estimator, "a display",
                  pipeline_advice="for a Pipeline, pass its last step (pipe[-1]).")


def _is_paired(estimator):
    return bool(getattr(estimator, "paired_inputs_", False))


def _first_layer(estimator):
    """The first weight layer with its twin lines folded into signs.

    ``(n_in, n_out)`` for a linear layer, ``(out, in, kh, kw)`` for a convolution.
    """
    raw = np.asarray(estimator.coefs_[0], dtype=np.float64)
    return _fold_paired(raw, 0) if _is_paired(estimator) else raw


def _is_zero_one(estimator):
    """Whether the first layer's weights are all 0 or 1 (the {0,1} families)."""
    return bool(np.isin(np.asarray(estimator.coefs_[0]), (0.0, 1.0)).all())


def _graph_layers(estimator):
    """Signed weight matrices ``(n_in, n_out)``, which layers are convolutions, and
    which link channels (a convolution, or a linear layer reading its flattened
    output) rather than single units.

    As the spectral functions read the network: a channel link weighs ``sum |w|``
    over its taps or rows, so it has no sign.
    """
    layers = [layer.toarray() for layer in _as_layers(estimator)]
    raw = [np.shape(w) for w in estimator.coefs_]
    is_conv = [len(shape) == 4 for shape in raw]
    twins = 2 if _is_paired(estimator) else 1
    channel_links = [conv or shape[0] != twins * w.shape[0]
                     for conv, shape, w in zip(is_conv, raw, layers)]
    return layers, is_conv, channel_links


def _layer_names(is_conv):
    """Names of the node layers: the input, then each weight layer's outputs."""
    names = ["input"]
    for i, conv in enumerate(is_conv, start=1):
        if i == len(is_conv):
            names.append("output")
        else:
            names.append(f"conv {i}" if conv else f"hidden {i}")
    return names


# --------------------------------------------------------------------------
# Axes
# --------------------------------------------------------------------------
def _panel_axes(ax, n_panels, n_cols, panel_size, caller, legend_row=False):
    """The figure, the bounding axes, an ``(n_rows, n_cols)`` grid of panels and
    the axes of the legend row (None unless ``legend_row``).

    As in scikit-learn's ``PartialDependenceDisplay``: ``ax=None`` makes a
    figure, one ``Axes`` is divided into the grid (and switched off), an array
    of ``Axes`` with one per panel is used as it is (a legend then goes on the
    figure).
    """
    check_matplotlib_support(caller)
    import matplotlib.pyplot as plt
    from matplotlib.gridspec import GridSpecFromSubplotSpec

    if ax is None or isinstance(ax, plt.Axes):
        n_cols = max(1, min(n_cols, n_panels))
        n_rows = math.ceil(n_panels / n_cols)
        if ax is None:
            width, height = panel_size
            _, ax = plt.subplots(figsize=(width * n_cols, height * n_rows + 0.4),
                                 layout="constrained")
        elif not ax.axison:
            raise ValueError("The ax was already divided by another display; pass "
                             "display.axes_ to draw on its panels instead.")
        ax.set_axis_off()
        figure = ax.figure
        ratios = [1.0] * n_rows + ([0.12 * min(n_rows, 4)] if legend_row else [])
        grid = GridSpecFromSubplotSpec(len(ratios), n_cols, height_ratios=ratios,
                                       subplot_spec=ax.get_subplotspec())
        axes = np.empty((n_rows, n_cols), dtype=object)
        for i in range(n_panels):
            axes.flat[i] = figure.add_subplot(grid[i // n_cols, i % n_cols])
        legend_ax = None
        if legend_row:
            legend_ax = figure.add_subplot(grid[n_rows, :])
            legend_ax.set_axis_off()
        return figure, ax, axes, legend_ax
    axes = np.asarray(ax, dtype=object)
    if axes.size != n_panels:
        raise ValueError(f"Expected ax to hold {n_panels} axes (one per panel), got "
                         f"{axes.size}.")
    axes = axes.reshape(axes.shape if axes.ndim == 2 else (1, -1))
    return axes.flat[0].figure, None, axes, None


def _tile_channels(field):
    """A 2-D image of a ``(h, w)`` or ``(channels, h, w)`` field, channels side by
    side with a blank column between them."""
    if field.ndim == 2:
        return field
    gap = np.full((field.shape[1], 1), np.nan)
    parts = []
    for channel in field:
        parts += [channel, gap]
    return np.hstack(parts[:-1])


# --------------------------------------------------------------------------
# Receptive fields
# --------------------------------------------------------------------------
class ReceptiveFieldDisplay:
    """The incoming edges of first-layer units, each drawn as an image of the input.

    For the {0,1} families every edge is ``+1``, ``-1`` (a paired network's
    inhibitory twin line) or absent, drawn in three colours; real weights
    (dense, pruned, weight-agnostic, ``MLPClassifier``) use a diverging colour
    map centred at 0. For a template whose first weight layer is a convolution
    the "units" are its output channels and each image is a kernel.

    Use :meth:`from_estimator` to compute the fields from a fitted network.

    Parameters
    ----------
    fields : ndarray of shape (n_units, height, width) or (n_units, channels, height, width)
        The incoming weights of each shown unit, laid out as its input.
    units : ndarray of shape (n_units,)
        Each field's unit (column of the first layer, or output channel).
    degrees : ndarray of shape (n_units,)
        Each unit's number of incoming edges (non-zero entries of its field).
    signs : bool
        True when the fields hold only -1, 0 and +1 (three colours); False for
        real weights (a diverging colour map).
    unit_name : str, default="unit"
        What a field belongs to, for the titles (``"channel"`` for kernels).

    Attributes
    ----------
    figure_ : matplotlib Figure
        The figure drawn on.
    ax_ : matplotlib Axes or None
        The axes divided into the panels (None when an array of axes was given).
    axes_ : ndarray of matplotlib Axes
        One panel per unit, ``(n_rows, n_cols)``; unused grid cells are None.
    images_ : list of matplotlib AxesImage
        One image per unit.

    See Also
    --------
    DegreeDisplay : The degree distributions of every layer.
    NetworkDisplay : The whole network drawn as nodes and signed edges.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from sk_weightfree import WeightFreeClassifier
    >>> from sk_weightfree.plotting import ReceptiveFieldDisplay
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = WeightFreeClassifier(hidden_layer_sizes=(16,), max_epochs=2, device="cpu",
    ...                            random_state=0).fit(X / 16, y)
    >>> display = ReceptiveFieldDisplay.from_estimator(clf, image_shape=(8, 8), n_units=4)
    >>> display.fields.shape
    (4, 8, 8)
    """

    def __init__(self, fields, units, degrees, *, signs, unit_name="unit"):
        self.fields = fields
        self.units = units
        self.degrees = degrees
        self.signs = signs
        self.unit_name = unit_name

    @classmethod
    def from_estimator(cls, estimator, *, image_shape=None, units=None, n_units=16,
                       ax=None, n_cols=None, cmap=None):
        """Compute the receptive fields of a fitted network and draw them.

        Parameters
        ----------
        estimator : estimator
            A fitted estimator of this package, or an ``MLPClassifier``/
            ``MLPRegressor``.
        image_shape : tuple of int, default=None
            The shape of one input row as an image, ``(height, width)`` or
            ``(channels, height, width)``; its product must be
            ``n_features_in_``. None takes the estimator's ``input_shape``.
            A convolution's kernels have their own shape, so a template whose
            first weight layer is a convolution needs none.
        units : array-like of int, default=None
            The units (or output channels) to show, in this order. None shows
            the ``n_units`` most connected, most connected first.
        n_units : int, default=16
            How many units to show when ``units`` is None.
        ax : matplotlib Axes or array of Axes, default=None
            Where to draw (see :meth:`plot`).
        n_cols : int, default=None
            Panels per row (see :meth:`plot`).
        cmap : str or Colormap, default=None
            Colour map for real weights (see :meth:`plot`).

        Returns
        -------
        display : ReceptiveFieldDisplay
        """
        _check_network(estimator)
        first = _first_layer(estimator)
        shape = _check_image_shape(estimator, image_shape, required=first.ndim == 2)
        if first.ndim == 4:  # (out, in, kh, kw): each output channel's kernel
            fields, unit_name = first, "channel"
        else:
            fields, unit_name = first.T.reshape((first.shape[1],) + shape), "unit"
        if fields.ndim == 4 and fields.shape[1] == 1:
            fields = fields[:, 0]
        degrees = np.count_nonzero(fields.reshape(len(fields), -1), axis=1)
        units = _choose_units(units, n_units, degrees, unit_name)
        display = cls(fields[units], units, degrees[units], signs=_is_zero_one(estimator),
                      unit_name=unit_name)
        return display.plot(ax=ax, n_cols=n_cols, cmap=cmap)

    def plot(self, ax=None, *, n_cols=None, cmap=None):
        """Draw the fields.

        Parameters
        ----------
        ax : matplotlib Axes or array of Axes, default=None
            None draws on a new figure; one ``Axes`` is divided into a grid of
            panels; an array of ``Axes`` holds one panel per unit.
        n_cols : int, default=None
            Panels per row; None makes the grid about square.
        cmap : str or Colormap, default=None
            Colour map for real weights; None is ``"RdBu_r"``, centred at 0 (the
            three sign colours are fixed).

        Returns
        -------
        display : ReceptiveFieldDisplay
            The display, with ``figure_``, ``ax_``, ``axes_`` and ``images_``.
        """
        n = len(self.fields)
        n_cols = n_cols or math.ceil(math.sqrt(n))
        figure, bounding, axes, legend_ax = _panel_axes(
            ax, n, n_cols, (1.5, 1.6), "ReceptiveFieldDisplay.plot", legend_row=self.signs)
        import matplotlib
        from matplotlib.colors import ListedColormap
        from matplotlib.patches import Patch

        if self.signs:
            colours = ListedColormap([NEGATIVE, ABSENT, POSITIVE])
            limits = {"vmin": -1.5, "vmax": 1.5}  # -1, 0, +1 at the three colours' centres
        else:
            colours = matplotlib.colormaps.get_cmap(cmap or "RdBu_r")
            top = float(np.nanmax(np.abs(self.fields))) if n else 0.0
            limits = {"vmin": -(top or 1.0), "vmax": top or 1.0}
        colours = colours.with_extremes(bad="white")  # the gap between channels
        self.images_ = []
        for panel, field, unit, degree in zip(axes.flat, self.fields, self.units,
                                              self.degrees):
            image = panel.imshow(_tile_channels(np.asarray(field, dtype=float)),
                                 cmap=colours, interpolation="nearest", **limits)
            panel.set_xticks([])
            panel.set_yticks([])
            panel.set_title(f"{self.unit_name} {unit}\ndegree {degree}", fontsize=8)
            self.images_.append(image)
        drawn = [a for a in axes.flat if a is not None]
        if self.signs:
            handles = [Patch(facecolor=POSITIVE, label="+1"),
                       Patch(facecolor=NEGATIVE, label="\N{MINUS SIGN}1"),
                       Patch(facecolor=ABSENT, edgecolor="#999999", label="no edge")]
            where = legend_ax if legend_ax is not None else figure
            where.legend(handles=handles, loc="center" if legend_ax else "lower center",
                         ncol=3, fontsize=8, frameon=False)
        elif self.images_:
            figure.colorbar(self.images_[0], ax=drawn, shrink=0.8, label="weight")
        self.figure_, self.ax_, self.axes_ = figure, bounding, axes
        return self


def _check_image_shape(estimator, image_shape, required):
    """``image_shape`` (or the estimator's ``input_shape``) as a checked tuple."""
    given = image_shape
    if image_shape is None:
        image_shape = getattr(estimator, "input_shape", None)
    if image_shape is None:
        if required:
            raise ValueError(
                "image_shape is required: the shape of one input row as an image, "
                "e.g. (8, 8) for the 64 pixels of digits; its product must be the "
                f"network's {estimator.n_features_in_} input features (n_features_in_).")
        return None
    entries = np.atleast_1d(np.asarray(image_shape, dtype=object))
    if not all(isinstance(s, Integral) and not isinstance(s, bool) for s in entries):
        raise ValueError("image_shape must be (height, width) or (channels, height, "
                         f"width) of positive integers; got {image_shape!r}.")
    shape = tuple(int(s) for s in entries)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ValueError("image_shape must be (height, width) or (channels, height, "
                         f"width) of positive integers; got {image_shape!r}.")
    if math.prod(shape) != estimator.n_features_in_:
        what = "image_shape" if given is not None else "input_shape"
        raise ValueError(
            f"{what}={shape} holds {math.prod(shape)} values, but the network reads "
            f"{estimator.n_features_in_} input features (n_features_in_).")
    return shape


def _choose_units(units, n_units, degrees, unit_name):
    """The units to show: those given, or the most connected first."""
    n_total = len(degrees)
    if units is None:
        if not isinstance(n_units, Integral) or n_units < 1:
            raise ValueError(f"n_units must be a positive integer; got {n_units!r}.")
        return np.argsort(-degrees, kind="stable")[:n_units]
    units = np.asarray(units)
    if units.ndim != 1 or units.size == 0 or units.dtype.kind not in "iu":
        raise ValueError(f"units must be a non-empty list of integers; got {units!r}.")
    if units.min() < 0 or units.max() >= n_total:
        raise ValueError(f"units must lie in [0, {n_total}): the first layer has "
                         f"{n_total} {unit_name}s; got {units.tolist()}.")
    return units


# --------------------------------------------------------------------------
# Degree distributions
# --------------------------------------------------------------------------
class DegreeDisplay:
    """Each layer's in- and out-degree distributions beside a random network's.

    A layer's *in-degree* counts the incoming edges of each of its units, its
    *out-degree* the outgoing edges of each of its inputs. The null is a random
    network of the same shape with the same number of edges in every layer
    (drawn uniformly, as :class:`~sk_weightfree.RandomNetworkClassifier` draws
    its mask): a learned architecture that differs from it is structured.
    A paired network's twin lines count as one signed edge; in a convolution the
    channels are the nodes (as in :func:`~sk_weightfree.spectral_density`).

    Use :meth:`from_estimator` to compute the degrees from a fitted network.

    Parameters
    ----------
    in_degrees, out_degrees : list of ndarray
        Per layer, the in-degree of each output unit and the out-degree of each input.
    null_in_degrees, null_out_degrees : list of ndarray
        The same for the random network.
    layer_names : list of str
        Per layer, its title.

    Attributes
    ----------
    figure_ : matplotlib Figure
    ax_ : matplotlib Axes or None
        The axes divided into the panels (None when an array of axes was given).
    axes_ : ndarray of matplotlib Axes of shape (n_layers, 2)
        Per layer, the in-degree panel and the out-degree panel.

    See Also
    --------
    ReceptiveFieldDisplay : The first layer's units as images of the input.
    NetworkDisplay : The whole network drawn as nodes and signed edges.
    """

    def __init__(self, in_degrees, out_degrees, null_in_degrees, null_out_degrees,
                 layer_names):
        self.in_degrees = in_degrees
        self.out_degrees = out_degrees
        self.null_in_degrees = null_in_degrees
        self.null_out_degrees = null_out_degrees
        self.layer_names = layer_names

    @classmethod
    def from_estimator(cls, estimator, *, random_state=0, ax=None):
        """Compute the degrees of a fitted network and of its null, and draw them.

        Parameters
        ----------
        estimator : estimator
            A fitted estimator of this package, or an ``MLPClassifier``/
            ``MLPRegressor``.
        random_state : int, RandomState instance or None, default=0
            Seeds the random network.
        ax : matplotlib Axes or array of Axes, default=None
            Where to draw (see :meth:`plot`).

        Returns
        -------
        display : DegreeDisplay
        """
        _check_network(estimator)
        rng = check_random_state(random_state)
        layers, is_conv, _ = _graph_layers(estimator)
        nodes = _layer_names(is_conv)
        degrees = {"in": [], "out": [], "null_in": [], "null_out": []}
        names = []
        for i, weights in enumerate(layers):
            n_in, n_out = weights.shape
            edges = weights != 0
            degrees["in"].append(edges.sum(axis=0))
            degrees["out"].append(edges.sum(axis=1))
            drawn = rng.choice(n_in * n_out, size=int(edges.sum()), replace=False)
            degrees["null_in"].append(np.bincount(drawn % n_out, minlength=n_out))
            degrees["null_out"].append(np.bincount(drawn // n_out, minlength=n_in))
            names.append(f"{nodes[i]} \N{RIGHTWARDS ARROW} {nodes[i + 1]} "
                         f"({n_in} \N{RIGHTWARDS ARROW} {n_out}"
                         + (" channels)" if is_conv[i] else ")"))
        display = cls(degrees["in"], degrees["out"], degrees["null_in"],
                      degrees["null_out"], names)
        return display.plot(ax=ax)

    def plot(self, ax=None):
        """Draw the distributions, one row of panels per layer.

        Parameters
        ----------
        ax : matplotlib Axes or array of Axes, default=None
            None draws on a new figure; one ``Axes`` is divided into the panels;
            an array of ``Axes`` holds two per layer (in-degree, out-degree).

        Returns
        -------
        display : DegreeDisplay
            The display, with ``figure_``, ``ax_`` and ``axes_``.
        """
        n_layers = len(self.layer_names)
        figure, bounding, axes, legend_ax = _panel_axes(
            ax, 2 * n_layers, 2, (3.4, 2.2), "DegreeDisplay.plot", legend_row=True)
        from matplotlib.ticker import MaxNLocator

        axes = axes.reshape(n_layers, 2)
        rows = zip(self.layer_names, self.in_degrees, self.null_in_degrees,
                   self.out_degrees, self.null_out_degrees)
        for row, (name, d_in, n_in, d_out, n_out) in enumerate(rows):
            for panel, learned, null, what, of in (
                    (axes[row, 0], d_in, n_in, "in-degree", "units"),
                    (axes[row, 1], d_out, n_out, "out-degree", "inputs")):
                panel.hist([np.asarray(learned), np.asarray(null)],
                           bins=_degree_bins(learned, null),
                           color=[LEARNED, NULL],
                           label=["learned", "random, same density"])
                panel.set_xlabel(what, fontsize=8)
                panel.set_ylabel(of, fontsize=8)
                panel.set_title(name, fontsize=8)
                panel.tick_params(labelsize=7)
                panel.xaxis.set_major_locator(MaxNLocator(integer=True))
                panel.yaxis.set_major_locator(MaxNLocator(integer=True))
        handles, labels = axes[0, 0].get_legend_handles_labels()
        where = legend_ax if legend_ax is not None else figure
        where.legend(handles, labels, loc="center" if legend_ax else "lower center",
                     ncol=2, fontsize=8, frameon=False)
        self.figure_, self.ax_, self.axes_ = figure, bounding, axes
        return self


def _degree_bins(*degrees):
    """One bin per degree over the range seen (up to 40 of them), else 30 equal bins."""
    low = int(min(np.min(d) for d in degrees))
    top = int(max(np.max(d) for d in degrees))
    if top - low < 2:  # a single degree: show its neighbours, for integer ticks
        low, top = max(low - 1, 0), top + 1
    if top - low <= 40:
        return np.arange(low, top + 2) - 0.5
    return np.linspace(low - 0.5, top + 0.5, 31)


# --------------------------------------------------------------------------
# The network drawn
# --------------------------------------------------------------------------
class NetworkDisplay:
    """The network as layers of nodes joined by signed edges.

    Excitatory edges are drawn in one colour, inhibitory ones in another (for
    real weights, the line width follows ``|w|``); a convolution's channels are
    nodes joined by a grey link when any tap between them is on. Layers wider
    than ``max_units`` show their most connected units only, with a note. Per-unit
    factors (``unit_scales_``, ``unit_signs_``) are not drawn: the edges are the
    architecture.

    Use :meth:`from_estimator` to compute the drawing from a fitted network.

    Parameters
    ----------
    weights : list of ndarray
        Per layer, the signed weights among the shown units,
        ``(len(units[i]), len(units[i + 1]))``.
    units : list of ndarray
        Per node layer (input first), the indices of the shown units.
    layer_sizes : list of int
        Per node layer, its number of units.
    layer_names : list of str
        Per node layer, its name (with its size below it in the drawing).
    channel_links : list of bool
        Per layer, whether its edges link channels (a convolution, or a linear
        layer reading a convolution's flattened output): unsigned ``sum |w|``.
    channel_nodes : list of bool, default=None
        Per node layer, whether its nodes are channels (the input and output of
        a convolution); None: all are units.

    Attributes
    ----------
    figure_ : matplotlib Figure
    ax_ : matplotlib Axes
    edges_ : list of matplotlib LineCollection
        Per layer, its edges.
    nodes_ : list of matplotlib PathCollection
        Per node layer, its nodes.
    """

    def __init__(self, weights, units, layer_sizes, layer_names, channel_links,
                 channel_nodes=None):
        self.weights = weights
        self.units = units
        self.layer_sizes = layer_sizes
        self.layer_names = layer_names
        self.channel_links = channel_links
        self.channel_nodes = channel_nodes

    @classmethod
    def from_estimator(cls, estimator, *, max_units=24, ax=None):
        """Compute the drawing of a fitted network and draw it.

        Parameters
        ----------
        estimator : estimator
            A fitted estimator of this package, or an ``MLPClassifier``/
            ``MLPRegressor``.
        max_units : int, default=24
            The most units drawn in one layer; a wider layer shows its
            ``max_units`` most connected units (in- plus out-degree) and the
            edges among the shown units.
        ax : matplotlib Axes, default=None
            Where to draw; None makes a figure.

        Returns
        -------
        display : NetworkDisplay
        """
        _check_network(estimator)
        if not isinstance(max_units, Integral) or max_units < 2:
            raise ValueError(f"max_units must be an integer >= 2; got {max_units!r}.")
        layers, is_conv, channel_links = _graph_layers(estimator)
        sizes = [layers[0].shape[0]] + [w.shape[1] for w in layers]
        degree = [np.zeros(n) for n in sizes]
        for i, w in enumerate(layers):
            edges = w != 0
            degree[i] += edges.sum(axis=1)
            degree[i + 1] += edges.sum(axis=0)
        units = [np.arange(n) if n <= max_units
                 else np.sort(np.argsort(-d, kind="stable")[:max_units])
                 for n, d in zip(sizes, degree)]
        weights = [w[np.ix_(units[i], units[i + 1])] for i, w in enumerate(layers)]
        channel_nodes = [a or b for a, b in zip([False] + is_conv, is_conv + [False])]
        display = cls(weights, units, sizes, _layer_names(is_conv), channel_links,
                      channel_nodes)
        return display.plot(ax=ax)

    def plot(self, ax=None):
        """Draw the network.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to draw; None makes a figure.

        Returns
        -------
        display : NetworkDisplay
            The display, with ``figure_``, ``ax_``, ``edges_`` and ``nodes_``.
        """
        check_matplotlib_support("NetworkDisplay.plot")
        import matplotlib.pyplot as plt
        from matplotlib.collections import LineCollection
        from matplotlib.lines import Line2D

        widest = max(len(u) for u in self.units)
        channel_nodes = self.channel_nodes or [False] * len(self.units)
        if ax is None:
            _, ax = plt.subplots(figsize=(2.0 + 1.8 * len(self.units),
                                          1.0 + 0.22 * widest), layout="constrained")
        step = 1.0 / max(widest - 1, 1)
        # a narrow layer is spread wider than the widest one's spacing, up to 3 steps
        heights = [(np.arange(len(u)) - (len(u) - 1) / 2)
                   * min(3 * step, 1.0 / max(len(u) - 1, 1)) for u in self.units]
        real = any(np.any(~np.isin(w, (-1.0, 0.0, 1.0))) for w in self.weights)
        self.edges_ = []
        for i, w in enumerate(self.weights):
            src, dst = np.nonzero(w)
            values = w[src, dst]
            segments = np.stack([np.column_stack([np.full(len(src), i), heights[i][src]]),
                                 np.column_stack([np.full(len(dst), i + 1),
                                                  heights[i + 1][dst]])], axis=1)
            if self.channel_links[i]:
                colours = [CHANNEL_LINK] * len(values)
            else:
                colours = np.where(values > 0, POSITIVE, NEGATIVE)
            if real and len(values):
                widths = 0.2 + 1.6 * np.abs(values) / np.abs(values).max()
            else:
                widths = 0.8
            alpha = float(np.clip(40.0 / max(len(values), 1), 0.25, 0.9))
            lines = LineCollection(segments, colors=colours, linewidths=widths,
                                   alpha=alpha, zorder=1)
            ax.add_collection(lines)
            self.edges_.append(lines)
        self.nodes_ = []
        for i, (h, units) in enumerate(zip(heights, self.units)):
            self.nodes_.append(ax.scatter(np.full(len(h), i), h, s=36, zorder=2,
                                          facecolor="white", edgecolor="#333333"))
            size, shown = self.layer_sizes[i], len(units)
            nodes = "channel" if channel_nodes[i] else "unit"
            count = f"{size} {nodes}" + ("s" if size != 1 else "")
            if shown < size:
                count = f"{shown} of {count} shown"
            ax.text(i, -0.5 - 0.6 * step, f"{self.layer_names[i]}\n{count}", ha="center",
                    va="top", fontsize=8)
        if any(len(u) < n for u, n in zip(self.units, self.layer_sizes)):
            ax.set_title(f"Layers wider than {widest} units: the {widest} most "
                         "connected shown, with the edges among them", fontsize=8)
        handles = [Line2D([], [], color=POSITIVE, label="+ edge"),
                   Line2D([], [], color=NEGATIVE, label="\N{MINUS SIGN} edge")]
        if any(self.channel_links):
            handles.append(Line2D([], [], color=CHANNEL_LINK, label="channel link"))
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0),
                  fontsize=8, frameon=False)
        ax.set_xlim(-0.3, len(self.units) - 0.7)
        ax.set_ylim(-0.5 - 3.5 * step, 0.5 + step)
        ax.set_axis_off()
        self.figure_, self.ax_ = ax.figure, ax
        return self


def plot_learned_architecture(estimator, ax=None, *, image_shape=None, n_units=16,
                              n_cols=None):
    """One panel of what a network learned: receptive fields or degree distributions.

    The receptive fields (:class:`ReceptiveFieldDisplay`) when the input is an
    image — ``image_shape`` is given, the estimator has an ``input_shape``, or its
    first weight layer is a convolution — and the degree distributions
    (:class:`DegreeDisplay`) otherwise.

    Parameters
    ----------
    estimator : estimator
        A fitted estimator of this package, or an ``MLPClassifier``/``MLPRegressor``.
    ax : matplotlib Axes, default=None
        The axes divided into the display's panels; None makes a figure.
    image_shape : tuple of int, default=None
        The shape of one input row as an image (see
        :meth:`ReceptiveFieldDisplay.from_estimator`).
    n_units : int, default=16
        How many receptive fields to show.
    n_cols : int, default=None
        Receptive fields per row (None: a square grid).

    Returns
    -------
    display : ReceptiveFieldDisplay or DegreeDisplay
    """
    _check_network(estimator)
    if (image_shape is not None or getattr(estimator, "input_shape", None) is not None
            or np.ndim(estimator.coefs_[0]) == 4):
        return ReceptiveFieldDisplay.from_estimator(estimator, image_shape=image_shape,
                                                    n_units=n_units, ax=ax, n_cols=n_cols)
    return DegreeDisplay.from_estimator(estimator, ax=ax)
