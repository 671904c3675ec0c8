"""RandomNetworkClassifier: {0,1} weights on a random, unsearched structure."""

from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval

from ._base import BaseNetworkClassifier, store_params
from .nn import WeightFreeMLP


class RandomNetworkClassifier(BaseNetworkClassifier):
    """{0,1}-weight network whose hidden edges are drawn at random with probability ``density``.

    The hidden structure is never searched. With ``train_readout=True`` the output layer's
    {0,1} mask is searched with the surrogate method of :class:`WeightFreeClassifier` and the
    per-unit normalisation parameters are trained as there, so the only difference from
    :class:`WeightFreeClassifier` is the hidden-structure search. With
    ``train_readout=False`` nothing is trained (a chance-level reference); the
    normalisation statistics are still estimated from the data.

    Parameters
    ----------
    hidden_layer_sizes, activation, max_epochs, batch_size, lr, optimizer, lr_schedule, \
device, random_state, verbose, early_stopping, validation_fraction, n_iter_no_change, tol, \
precision, torch_compile
        As in :class:`WeightFreeClassifier`.
    density : float in (0, 1], default=0.5
        Probability that each hidden-layer edge exists.
    train_readout : bool, default=True
        Search the output layer's mask (and train unit normalisation parameters).

    Attributes
    ----------
    coefs_ : list of ndarray of shape (n_in, n_out)
        Exactly 0.0 or 1.0.
    masks_, unit_signs_, unit_scales_, unit_offsets_, density_, n_connections_, classes_, n_features_in_, history_, \
n_iter_, net_
        As in :class:`WeightFreeClassifier`.

    See Also
    --------
    WeightFreeClassifier : the same network with its hidden structure searched.
    """

    _parameter_constraints = {
        **BaseNetworkClassifier._parameter_constraints,
        # batch normalisation needs at least two samples per training batch
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "density": [Interval(Real, 0, 1, closed="right")],
        "train_readout": ["boolean"],
    }

    def __init__(self, hidden_layer_sizes=(300, 100), activation="relu", *, max_epochs=30,
                 batch_size=128, lr=0.05, optimizer="adam", lr_schedule="cosine",
                 device="auto", random_state=None, verbose=0, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=10, tol=1e-4,
                 precision="float32", torch_compile=False,
                 density=0.5,
                 train_readout=True):
        store_params(self, locals())

    def _build_module(self, n_features, n_classes, generator):
        density = min(self.density, 1.0 - 1e-7)  # ndtri(1) is infinite
        module = WeightFreeMLP(n_features, self._hidden_sizes, n_classes,
                               activation=self.activation, init_density=density,
                               generator=generator)
        *hidden, readout = module.linears
        for layer in hidden:
            layer.scores.requires_grad_(False)
        if self.train_readout:
            torch.nn.init.normal_(readout.scores, mean=0.0, std=1.0, generator=generator)
        else:
            module.requires_grad_(False)
        return module

    def _train(self, train_data):
        if self.train_readout:
            super()._train(train_data)
