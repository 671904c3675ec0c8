"""Parameter constraints that scikit-learn's set lacks, as data.

Each is a small constraint object for ``_parameter_constraints``, checked once by
scikit-learn's ``_validate_params`` (at ``fit``, or through ``validate_params()``), with
scikit-learn's message. scikit-learn's ``make_constraint`` accepts only its own classes, so
these are :class:`~sklearn.utils._param_validation.Options` in name only: each defines its
own test and description.
"""

from numbers import Integral

import numpy as np
import torch
from skorch.callbacks import Callback
from sklearn.utils._param_validation import Options


class _Constraint(Options):
    """A constraint with its own ``is_satisfied_by`` and ``__str__``."""

    def __init__(self):
        super().__init__(object, set())


def positive_ints(value):
    """``value`` as a tuple of positive Python ints, or None when it is not one."""
    values = [value] if isinstance(value, Integral) else value
    try:
        values = list(values)
    except TypeError:
        return None
    if not all(isinstance(v, Integral) and not isinstance(v, (bool, np.bool_)) and v > 0
               for v in values):
        return None
    return tuple(int(v) for v in values)


class PositiveInts(_Constraint):
    """An int, or a sequence of ints, all > 0 (``allow_empty``: the empty sequence too)."""

    def __init__(self, allow_empty=True):
        super().__init__()
        self.allow_empty = allow_empty

    def is_satisfied_by(self, val):
        sizes = positive_ints(val)
        return sizes is not None and (self.allow_empty or len(sizes) > 0)

    def __str__(self):
        return "a tuple of positive integers" + ("" if self.allow_empty else " (not empty)")


def parse_device(device):
    """The ``torch.device`` that a ``device`` string names ("auto" is "cuda" or "cpu"),
    or None when it names none of cpu, cuda, cuda:N, mps."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        return None
    return resolved if resolved.type in ("cpu", "cuda", "mps") else None


class DeviceString(_Constraint):
    """'auto', 'cpu', 'cuda', 'cuda:N' or 'mps' (whether it is available is the fit's
    question: :func:`~sk_weightfree._base.resolve_device`)."""

    def is_satisfied_by(self, val):
        return isinstance(val, str) and parse_device(val) is not None

    def __str__(self):
        return "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"


class WeightValues(_Constraint):
    """A non-empty array-like of finite numbers, none of them 0."""

    def is_satisfied_by(self, val):
        if np.ndim(val) == 0:  # a number, a string: not a sequence
            return False
        try:
            values = np.asarray(val, dtype=float).ravel()
        except (TypeError, ValueError):
            return False
        return values.size > 0 and bool(np.isfinite(values).all()) and not (values == 0).any()

    def __str__(self):
        return ("a non-empty array-like of finite numbers, none of them 0 (with w = 0 "
                "every edge, bias-node edges too, is zero: the network outputs a constant "
                "and its mask cannot be searched)")


def named_callback(item):
    """``(name, callback)`` for an entry of ``callbacks`` as skorch names it (a pair's
    name, else the callback's class name), or None when the entry is neither a skorch
    ``Callback`` instance nor a ``(str, Callback)`` pair."""
    if isinstance(item, Callback):
        return type(item).__name__, item
    if (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)
            and isinstance(item[1], Callback)):
        return tuple(item)
    return None


class SkorchCallbacks(_Constraint):
    """A list or tuple of skorch callbacks: ``Callback`` instances or ``(name, callback)``
    pairs (whether their names are free is the fit's question:
    :meth:`~sk_weightfree._net.NetMixin._check_callbacks`)."""

    def is_satisfied_by(self, val):
        return isinstance(val, (list, tuple)) and all(
            named_callback(item) is not None for item in val)

    def __str__(self):
        return ("a list of skorch callbacks (skorch.callbacks.Callback instances or "
                "(name, callback) pairs)")


class ArchitectureList(_Constraint):
    """A non-empty list or tuple (of boolean arrays, one per weight layer: their form is
    checked by :func:`~sk_weightfree._architecture.check_architecture`, whose messages
    name the layer)."""

    def is_satisfied_by(self, val):
        return isinstance(val, (list, tuple)) and len(val) > 0

    def __str__(self):
        return "a list of boolean arrays, one per weight layer (as architecture_of returns)"
