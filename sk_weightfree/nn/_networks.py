"""Multilayer networks built from plain, scored-mask and shared-weight layers."""

import math

import torch
from torch import nn

from ._layers import ScoredMaskLinear, UnitSigns, random_signs

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "logistic": nn.Sigmoid,
    "identity": nn.Identity,
}


def _layer_sizes(n_features, hidden_layer_sizes, n_outputs):
    sizes = [n_features, *hidden_layer_sizes, n_outputs]
    return list(zip(sizes[:-1], sizes[1:]))


def _init_linear(n_in, n_out, generator):
    """``nn.Linear`` with PyTorch's default initialisation, drawn from ``generator``."""
    layer = nn.utils.skip_init(nn.Linear, n_in, n_out)
    nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
    bound = 1.0 / math.sqrt(n_in)
    nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    return layer


class DenseMLP(nn.Module):
    """Fully connected network with real weights: ``Linear -> activation`` per hidden layer.

    Parameters
    ----------
    n_features, n_outputs : int
        Input and output sizes.
    hidden_layer_sizes : sequence of int
        Hidden layer widths.
    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
    generator : torch.Generator, optional
        Random source of the initial weights.
    """

    def __init__(self, n_features, hidden_layer_sizes, n_outputs, *, activation="relu",
                 generator=None):
        super().__init__()
        self.linears = nn.ModuleList(
            _init_linear(n_in, n_out, generator)
            for n_in, n_out in _layer_sizes(n_features, hidden_layer_sizes, n_outputs)
        )
        self.activation = ACTIVATIONS[activation]()

    def forward(self, x):
        *hidden, last = self.linears
        for layer in hidden:
            x = self.activation(layer(x))
        return last(x)

    def connections(self):
        """``(weight, mask)`` per layer, both shaped (out, in); mask is True where w != 0."""
        return [(layer.weight.detach(), layer.weight.detach() != 0) for layer in self.linears]


class WeightFreeMLP(nn.Module):
    """Network whose every connection weight is 0 or 1; the edge set is learned.

    Each layer is ``ScoredMaskLinear -> BatchNorm1d``; hidden layers then apply the
    activation and a fixed random sign per unit. Real-valued quantities belong to units,
    never to links: the normalisation statistics and its per-unit affine scale and shift,
    and the fixed unit signs.

    Why the signs: with {0,1} weights, a positive normalisation scale and a monotone
    activation, the network is monotone non-decreasing in every input, so no unit can count
    a feature *against* a class. A fixed inhibitory/excitatory sign per hidden unit removes
    that restriction without giving any link a real value.

    Parameters
    ----------
    n_features, n_outputs : int
        Input and output sizes.
    hidden_layer_sizes : sequence of int
        Hidden layer widths.
    activation : str, default="relu"
        Key of :data:`ACTIVATIONS`.
    sampling : {"threshold", "bernoulli"}, default="threshold"
    density : float or None, default=None
        Target fraction of edges kept per layer (None: learned freely).
    init_density : float, default=0.5
        Initial fraction of edges kept when ``density`` is None.
    score_std : float, default=1.0
        Standard deviation of the initial edge scores.
    unit_signs : bool, default=True
        Draw a fixed ±1 sign per hidden unit (all +1 when False).
    generator : torch.Generator, optional
        Random source of scores and signs.
    """

    def __init__(self, n_features, hidden_layer_sizes, n_outputs, *, activation="relu",
                 sampling="threshold", density=None, init_density=0.5, score_std=1.0,
                 unit_signs=True, generator=None):
        super().__init__()
        shapes = _layer_sizes(n_features, hidden_layer_sizes, n_outputs)
        self.linears = nn.ModuleList(
            ScoredMaskLinear(n_in, n_out, sampling=sampling, density=density,
                             init_density=init_density, score_std=score_std,
                             generator=generator)
            for n_in, n_out in shapes
        )
        self.norms = nn.ModuleList(nn.BatchNorm1d(n_out) for _, n_out in shapes)
        self.signs = nn.ModuleList(
            UnitSigns(random_signs(n_out, generator) if unit_signs else torch.ones(n_out))
            for _, n_out in shapes[:-1]
        )
        self.activation = ACTIVATIONS[activation]()

    def forward(self, x):
        for i, (linear, norm) in enumerate(zip(self.linears, self.norms)):
            x = norm(linear(x))
            if i < len(self.signs):
                x = self.signs[i](self.activation(x))
        return x

    @torch.no_grad()
    def recalibrate_norms(self, batches):
        """Re-estimate the batch-norm statistics with the final hard masks.

        During the search the statistics track masks that keep changing (or are sampled);
        one pass over ``batches`` (an iterable of input tensors) with the hard masks makes
        the statistics match the network that predicts.
        """
        was_training = self.training
        for norm in self.norms:
            norm.reset_running_stats()
            norm.momentum = None  # cumulative average over the pass
        self.train()
        for X in batches:
            self(X)
        for norm in self.norms:
            norm.momentum = 0.1
        self.train(was_training)

    def connections(self):
        """``(weight, mask)`` per layer, shaped (out, in); the weight is the {0,1} mask."""
        out = []
        for linear in self.linears:
            mask = linear.hard_mask()
            out.append((mask.to(torch.float32), mask))
        return out

    def to_module(self):
        """A plain ``nn.Sequential`` predicting with the {0,1} weights alone.

        Each layer becomes ``nn.Linear(bias=False)`` whose weight is the hard mask, followed
        by a copy of the (eval-mode) batch norm and, for hidden layers, the activation and
        :class:`UnitSigns`.
        """
        import copy

        parts = []
        for i, (linear, norm) in enumerate(zip(self.linears, self.norms)):
            plain = nn.Linear(linear.in_features, linear.out_features, bias=False,
                              device=linear.scores.device)
            with torch.no_grad():
                plain.weight.copy_(linear.hard_mask().to(plain.weight.dtype))
            parts += [plain, copy.deepcopy(norm)]
            if i < len(self.signs):
                parts += [copy.deepcopy(self.activation), copy.deepcopy(self.signs[i])]
        return nn.Sequential(*parts).eval()


class SharedWeightMLP(nn.Module):
    """Network in which every kept edge carries one shared weight value ``w``.

    Masks are :class:`ScoredMaskLinear` layers; each layer's pre-activation is
    ``w * (x @ M.T) / sqrt(fan_in)`` (a fixed per-layer scale keeps activations of order
    one), hidden units then apply the activation and a fixed random sign. In training
    mode, and in any mode while ``searching`` is True, the forward pass evaluates every
    value of ``weight_values`` at once and returns logits shaped (n_values, batch,
    n_outputs); otherwise it uses ``shared_weight``, or with ``ensemble=True`` returns the
    log of the mean probability over all values.
    """

    def __init__(self, n_features, hidden_layer_sizes, n_outputs, *, weight_values,
                 activation="relu", sampling="threshold", init_density=0.5, score_std=1.0,
                 unit_signs=True, generator=None):
        super().__init__()
        shapes = _layer_sizes(n_features, hidden_layer_sizes, n_outputs)
        self.linears = nn.ModuleList(
            ScoredMaskLinear(n_in, n_out, sampling=sampling, init_density=init_density,
                             score_std=score_std, generator=generator)
            for n_in, n_out in shapes
        )
        self.scales = [1.0 / math.sqrt(n_in) for n_in, _ in shapes]
        self.signs = nn.ModuleList(
            UnitSigns(random_signs(n_out, generator) if unit_signs else torch.ones(n_out))
            for _, n_out in shapes[:-1]
        )
        self.activation = ACTIVATIONS[activation]()
        self.register_buffer("weight_values", torch.as_tensor(weight_values, dtype=torch.float32))
        self.register_buffer("shared_weight", self.weight_values[:1].clone())
        self.ensemble = False
        self.searching = True

    def forward_values(self, x, values):
        """Logits for each shared value in ``values``: shape (len(values), batch, n_outputs)."""
        w = values.to(x.dtype).view(-1, 1, 1)
        h = x.unsqueeze(0)
        for i, linear in enumerate(self.linears):
            h = w * linear(h) * self.scales[i]
            if i < len(self.signs):
                h = self.signs[i](self.activation(h))
        return h

    def forward(self, x):
        # While searching (training and validation alike) the output covers every value,
        # so the averaged loss is what both watch; after the search, one value or the mean.
        if self.training or self.searching:
            return self.forward_values(x, self.weight_values)
        if self.ensemble:
            logits = self.forward_values(x, self.weight_values)
            return torch.log(torch.softmax(logits, dim=-1).mean(dim=0))
        return self.forward_values(x, self.shared_weight)[0]

    def connections(self):
        """``(weight, mask)`` per layer, shaped (out, in); weight is ``shared_weight * mask``."""
        w = float(self.shared_weight)
        return [(linear.hard_mask().to(torch.float32) * w, linear.hard_mask())
                for linear in self.linears]


class MeanOverValuesLoss(nn.Module):
    """Cross-entropy averaged over the leading (shared-value) axis of the logits."""

    def __init__(self):
        super().__init__()
        self.cross_entropy = nn.CrossEntropyLoss()

    def forward(self, logits, target):
        if logits.dim() == 2:
            return self.cross_entropy(logits, target)
        n_values = logits.shape[0]
        return self.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.repeat(n_values))
