"""WeightAgnosticClassifier: one shared weight value on every kept edge."""

import numpy as np
import torch

from ._base import BaseNetworkClassifier, SurrogateSearchMixin, store_params
from ._training import DeviceBatchIterator
from .nn import MeanOverValuesLoss, SharedWeightMLP, set_sample_seed


class WeightAgnosticClassifier(SurrogateSearchMixin, BaseNetworkClassifier):
    """Network in which every kept edge carries the same weight value ``w``.

    In the spirit of Gaier & Ha's weight-agnostic networks, the edge mask is searched with
    the surrogate-gradient method of :class:`WeightFreeClassifier` to minimise the loss
    averaged over every value in ``weight_values``, so the architecture works whatever
    ``w`` is. Each layer's pre-activation is ``w * (x @ M.T) / sqrt(fan_in)``; hidden units
    carry fixed random signs (``unit_signs_``). No real value is trained.

    Parameters
    ----------
    hidden_layer_sizes, activation, max_epochs, batch_size, lr, optimizer, lr_schedule, \
device, random_state, verbose, early_stopping, validation_fraction, n_iter_no_change, tol, \
precision, torch_compile
        As in :class:`WeightFreeClassifier`.
    weight_values : array-like of float, default=(-2, -1, -0.5, 0.5, 1, 2)
        The shared values the architecture is trained to work with.
    ensemble : bool, default=False
        Predict with the mean probability over all ``weight_values``; otherwise with
        ``shared_weight_``.
    sampling, temperature, final_temperature
        As in :class:`WeightFreeClassifier`.

    Attributes
    ----------
    shared_weight_ : float
        The value of ``weight_values`` scoring best on the training data.
    weight_scores_ : ndarray of shape (n_values,)
        Training accuracy with each value of ``weight_values``.
    layer_scales_ : ndarray of shape (n_layers,)
        The fixed per-layer factor ``1 / sqrt(fan_in)``: layer ``i`` computes
        ``layer_scales_[i] * (x @ coefs_[i])`` before the activation (not folded into
        ``coefs_``, which keeps the single shared value).
    coefs_ : list of ndarray of shape (n_in, n_out)
        ``shared_weight_`` where ``masks_`` is True, else 0.
    masks_, unit_signs_, density_, n_connections_, classes_, n_features_in_, history_, \
n_iter_, net_
        As in :class:`WeightFreeClassifier`.

    See Also
    --------
    WeightFreeClassifier : {0,1} weights (the special case w = 1, with trained unit scales).
    """

    _parameter_constraints = {
        **BaseNetworkClassifier._parameter_constraints,
        "weight_values": ["array-like"],
        "ensemble": ["boolean"],
        **SurrogateSearchMixin._surrogate_constraints,
    }

    def __init__(self, hidden_layer_sizes=(300, 100), activation="relu", *, max_epochs=30,
                 batch_size=128, lr=0.05, optimizer="adam", lr_schedule="cosine",
                 device="auto", random_state=None, verbose=0, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=10, tol=1e-4,
                 precision="float32", torch_compile=False, weight_values=(-2.0, -1.0, -0.5, 0.5, 1.0, 2.0), ensemble=False,
                 sampling="threshold", temperature=1.0, final_temperature=None):
        store_params(self, locals())

    def _check_params(self):
        try:
            values = np.asarray(self.weight_values, dtype=float).ravel()
        except (TypeError, ValueError):
            values = np.array([np.nan])
        if values.size == 0 or not np.isfinite(values).all():
            raise ValueError(
                f"weight_values must be a non-empty sequence of finite numbers; "
                f"got {self.weight_values!r}."
            )
        self._weight_values = values

    def _build_module(self, n_features, n_classes, generator):
        module = SharedWeightMLP(
            n_features, self._hidden_sizes, n_classes, weight_values=self._weight_values,
            activation=self.activation, sampling=self.sampling, generator=generator,
        )
        set_sample_seed(module, self._sample_seed)
        return module

    def _criterion(self):
        return MeanOverValuesLoss

    def _finish_training(self, train_data):
        module = self.net_.module_
        module.eval()
        module.searching = False
        correct = torch.zeros(len(self._weight_values), dtype=torch.float64)
        with torch.inference_mode():
            for X, y in DeviceBatchIterator(train_data, 4096):
                logits = module.forward_values(X, module.weight_values)
                correct += (logits.argmax(dim=-1) == y).sum(dim=1).cpu()
        self.weight_scores_ = (correct / len(train_data)).numpy().astype(float)
        best = int(np.argmax(self.weight_scores_))
        self.shared_weight_ = float(self._weight_values[best])
        module.shared_weight.fill_(self.shared_weight_)
        self.layer_scales_ = np.array(module.scales)

    def _forward_logits(self, X):
        if hasattr(self, "net_"):
            self.net_.module_.ensemble = self.ensemble
        return super()._forward_logits(X)
