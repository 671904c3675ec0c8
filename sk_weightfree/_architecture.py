"""A network's architecture as data: which edges exist, one boolean array per layer.

The form every function here takes and returns (and the estimators' ``architecture=``
parameter): a list with one boolean array per weight layer, in the order of ``coefs_``,
shaped ``(n_in, n_out)`` for a fully connected layer and ``(out_channels, in_channels,
kh, kw)`` for a convolution's kernel taps — ``coefs_``'s shapes without the ``[h, -h]``
pairing. numpy only.
"""

import sys

import numpy as np
from sklearn.utils import check_random_state


def architecture_of(estimator):
    """The edges of a fitted network, as boolean arrays shaped like its ``coefs_``.

    Parameters
    ----------
    estimator : fitted estimator of sk_weightfree
        Any of the ten estimators, an MLP or a template. A network with paired lines
        (``paired_inputs_``, every layer reading ``[h, -h]``) has an edge wherever
        either of its two twin lines is on.

    Returns
    -------
    architecture : list of ndarray of bool
        One array per weight layer, ``(n_in, n_out)`` or ``(out, in, kh, kw)``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_weightfree import WeightFreeClassifier, architecture_of
    >>> X, y = load_digits(return_X_y=True)
    >>> wf = WeightFreeClassifier(hidden_layer_sizes=(32,), max_epochs=2,
    ...                           random_state=0).fit(X / 16, y)  # doctest: +SKIP
    >>> [a.shape for a in architecture_of(wf)]  # doctest: +SKIP
    [(64, 32), (32, 10)]
    """
    check_network(estimator, "architecture_of", sklearn_mlp=False,
                  pipeline_advice="pass its last step (pipeline[-1]).")
    paired = bool(getattr(estimator, "paired_inputs_", False))
    return [_either_twin(np.asarray(mask, dtype=bool)) if paired
            else np.array(mask, dtype=bool) for mask in estimator.masks_]


def check_network(estimator, caller, *, pipeline_advice, sklearn_mlp=True):
    """Refuse what ``caller`` cannot read: ``TypeError`` for what is not a network of this
    package (or, with ``sklearn_mlp``, scikit-learn's ``MLPClassifier``/``MLPRegressor``)
    — a pipeline gets ``pipeline_advice`` —, ``NotFittedError`` for a network not fitted.

    Needs no torch: an estimator of this package exists only once its base module has
    been imported.
    """
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    base = sys.modules.get("sk_weightfree._base")
    ours = base is not None and isinstance(estimator, base.BaseNetwork)
    mlp = sklearn_mlp and isinstance(estimator, (MLPClassifier, MLPRegressor))
    name = type(estimator).__name__
    if not (ours or mlp):
        if hasattr(estimator, "steps") and hasattr(estimator, "named_steps"):
            raise TypeError(f"{caller} reads one network, not a {name}: {pipeline_advice}")
        accepted = "sk_weightfree's estimators" + (
            " and scikit-learn's MLPClassifier/MLPRegressor" if sklearn_mlp else "")
        raise TypeError(f"{caller} reads the networks of {accepted}; got a {name}.")
    if not hasattr(estimator, "coefs_"):
        from sklearn.exceptions import NotFittedError

        raise NotFittedError(f"This {name} instance is not fitted yet; call fit first.")


def _either_twin(mask):
    """An edge where either line of a ``[h, -h]`` pair is on (inputs on axis 0 of a
    linear layer, input channels on axis 1 of a convolution)."""
    axis = 0 if mask.ndim == 2 else 1
    n_in = mask.shape[axis] // 2
    first, second = np.split(mask, [n_in], axis=axis)
    return first | second


def check_architecture(architecture, shapes=None):
    """Validate an architecture; return it as a list of boolean arrays.

    Parameters
    ----------
    architecture : sequence of array-like
        One array per weight layer, of booleans or of the numbers 0 and 1.
    shapes : sequence of tuple, optional
        The shape each layer must have (the network's ``coefs_`` shapes without the
        pairing). Without it only the form is checked.

    Returns
    -------
    architecture : list of ndarray of bool

    Raises
    ------
    TypeError
        If ``architecture`` is not a sequence of arrays.
    ValueError
        If a layer is not 2-D or 4-D, holds values other than 0/1 or has no edge, or the
        number of layers or a layer's shape differs from ``shapes``; the message names the
        layer.
    """
    if (isinstance(architecture, (str, bytes, np.ndarray)) or hasattr(architecture, "fit")
            or not hasattr(architecture, "__len__")):
        raise TypeError(
            "architecture must be a list of boolean arrays, one per weight layer (as "
            f"architecture_of returns); got {type(architecture).__name__}.")
    if shapes is not None and len(architecture) != len(shapes):
        raise ValueError(f"architecture has {len(architecture)} layer(s); the network has "
                         f"{len(shapes)} weight layer(s) of shapes {list(map(tuple, shapes))}.")
    checked = []
    for i, layer in enumerate(architecture):
        try:
            values = np.asarray(layer)
        except Exception as exc:  # ragged nested lists and the like
            raise ValueError(f"architecture layer {i} is not an array: {exc}") from None
        if values.dtype != bool:
            if values.dtype.kind not in "iuf" or not np.isin(values, (0, 1)).all():
                raise ValueError(f"architecture layer {i} must hold booleans (or 0/1); got "
                                 f"dtype {values.dtype} with other values.")
            values = values.astype(bool)
        if values.ndim not in (2, 4):
            raise ValueError(f"architecture layer {i} must be 2-D (n_in, n_out) or 4-D (out, "
                             f"in, kh, kw); got shape {values.shape}.")
        if shapes is not None and values.shape != tuple(shapes[i]):
            raise ValueError(f"architecture layer {i} has shape {values.shape}; the network's "
                             f"layer {i} has shape {tuple(shapes[i])}.")
        if not values.any():
            raise ValueError(f"architecture layer {i} has no edge: nothing would reach the "
                             "next layer.")
        checked.append(values)
    return checked


def random_architecture(architecture, random_state=None):
    """An architecture with the same number of edges in each layer, placed at random.

    The null model for "which edges, beyond how many": each layer keeps its shape and
    density, and its edges are drawn uniformly without replacement.

    Parameters
    ----------
    architecture : list of array-like of bool, or fitted estimator
        The architecture to match (an estimator's is :func:`architecture_of`).
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    architecture : list of ndarray of bool
    """
    if hasattr(architecture, "masks_") or hasattr(architecture, "fit"):
        architecture = architecture_of(architecture)
    rng = check_random_state(random_state)
    drawn = []
    for layer in check_architecture(architecture):
        flat = np.zeros(layer.size, dtype=bool)
        flat[rng.choice(layer.size, size=int(layer.sum()), replace=False)] = True
        drawn.append(flat.reshape(layer.shape))
    return drawn


def rewire_architecture(architecture, rng, n_swaps):
    """Degree-preserving rewiring of an architecture in its own form (see
    :func:`sk_weightfree.rewire`): each layer as a bipartite graph between its inputs and
    its outputs (a convolution's inputs are its ``(in_channel, tap)`` pairs)."""
    from scipy import sparse

    from ._spectral import _rewire_layer

    rewired = []
    for layer in check_architecture(architecture):
        graph = layer if layer.ndim == 2 else layer.reshape(layer.shape[0], -1).T
        edges = _rewire_layer(sparse.csr_matrix(graph, dtype=np.float64), rng, n_swaps)
        edges = edges.toarray() != 0
        rewired.append(edges if layer.ndim == 2 else edges.T.reshape(layer.shape))
    return rewired


def is_architecture(value):
    """Whether ``value`` is a list of boolean numpy arrays (the architecture form)."""
    return (isinstance(value, (list, tuple)) and len(value) > 0
            and all(isinstance(v, np.ndarray) and v.dtype == bool for v in value))
