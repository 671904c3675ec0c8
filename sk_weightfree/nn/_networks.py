"""Multilayer networks built from plain, scored-mask and shared-weight layers."""

import copy
import math
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from .._inference import ACTIVATIONS as ACTIVATION_NAMES
from ._layers import (OutputAffine, PairedInput, PooledMoments, ScoredMaskLinear, UnitSigns,
                      batch_norm_affine, dense_connection, random_signs,
                      recalibrate_batch_norms, weighted_batches, weighted_moments)
from ._rules import ThresholdRule, default_rule


class TorchActivation(NamedTuple):
    """An activation in torch: its module, and how a traced template may call it."""

    module: type
    """The ``nn.Module`` class."""
    functions: tuple = ()
    """The torch functions computing it (``torch.relu``, ``F.relu``)."""
    method: str = None
    """The name of the tensor method computing it (``x.relu()``)."""


_TORCH = {
    "relu": TorchActivation(nn.ReLU, (torch.relu, F.relu), "relu"),
    "tanh": TorchActivation(nn.Tanh, (torch.tanh, F.tanh), "tanh"),
    "logistic": TorchActivation(nn.Sigmoid, (torch.sigmoid, F.sigmoid), "sigmoid"),
    "identity": TorchActivation(nn.Identity),
}
# Derived by name from the one list of names (numpy's, sk_weightfree._inference): a name
# without a torch entry fails here, at import.
TORCH_ACTIVATIONS = {name: _TORCH[name] for name in ACTIVATION_NAMES}
ACTIVATIONS = {name: activation.module for name, activation in TORCH_ACTIVATIONS.items()}


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
        """``(weight, mask)`` per layer, both shaped (out, in). A layer pruned with
        ``torch.nn.utils.prune`` reports its pruning mask; otherwise mask is ``w != 0``."""
        return [dense_connection(layer) for layer in self.linears]

    def weight_layers(self):
        """The ``nn.Linear`` layers, input to output."""
        return list(self.linears)

    def unit_arrays(self):
        """Per-unit tensors of the export: the biases as ``intercepts``."""
        return {"intercepts": [layer.bias.detach() for layer in self.linears]}

    def to_module(self):
        """A plain ``nn.Sequential`` of ``nn.Linear`` layers and activations (a layer
        pruned with ``torch.nn.utils.prune`` holds its pruned weight, without the hook)."""
        parts = []
        for i, layer in enumerate(self.linears):
            plain = nn.Linear(layer.in_features, layer.out_features,
                              device=layer.bias.device, dtype=layer.bias.dtype)
            with torch.no_grad():
                plain.weight.copy_(dense_connection(layer)[0])
                plain.bias.copy_(layer.bias)
            parts.append(plain)
            if i < len(self.linears) - 1:
                parts.append(copy.deepcopy(self.activation))
        return nn.Sequential(*parts).eval()


UNIT_SIGN_MODES = ("paired", "fixed", "random", "none")


def layer_signs(mode):
    """The :class:`ScoredMask` ``signs`` of a layer under the network's sign ``mode``:
    per-unit signs ("random") are the network's, so its layers are unsigned."""
    return mode if mode in ("paired", "fixed") else "none"


def unit_sign_mode(unit_signs):
    """The ``unit_signs`` option as one of :data:`UNIT_SIGN_MODES` (True: "random",
    False: "none")."""
    if unit_signs is True:
        return "random"
    if unit_signs is False:
        return "none"
    if unit_signs not in UNIT_SIGN_MODES:
        raise ValueError(f"unit_signs must be one of {UNIT_SIGN_MODES}, True or False; "
                         f"got {unit_signs!r}")
    return unit_signs


class WeightFreeMLP(nn.Module):
    """Network whose every connection weight is 0 or 1; the edge set is learned.

    Each layer is ``ScoredMaskLinear -> BatchNorm1d``; hidden layers then apply the
    activation and, with ``unit_signs="random"``, a fixed random sign per unit. Real-valued
    quantities belong to units, never to links: the normalisation statistics, its per-unit
    affine scale and shift, and the fixed unit signs.

    Why signs: with {0,1} weights and a monotone activation, a unit can only add its inputs
    up, never count one *against* another. The batch-norm scale gives each unit a learned
    sign of its whole output, but not a sign per edge. ``unit_signs="paired"`` (default of
    the estimators) gives every edge one: each layer sees its input as ``[h, -h]`` and the
    {0,1} mask over the doubled input picks +1, -1 or 0 for each pair of units.
    ``"fixed"`` draws a fixed random sign per edge instead (only the twin line of that sign
    may be on); ``"random"`` draws a fixed ±1 per hidden unit; ``"none"`` relies on the
    batch-norm scales alone. How the scores become the mask is ``rule``'s business
    (:mod:`sk_weightfree.nn` mask rules).

    Parameters
    ----------
    n_features, n_outputs : int
        Input and output sizes.
    hidden_layer_sizes : sequence of int
        Hidden layer widths.
    activation : str, default="relu"
        Key of :data:`ACTIVATIONS`.
    rule : MaskRule, optional
        The mask rule of every layer (one object shared by the layers; default: a fresh
        :class:`ThresholdRule`).
    unit_signs : {"paired", "fixed", "random", "none"} or bool, default="paired"
        How edges get signs (see above; True means "random", False "none").
    generator : torch.Generator, optional
        Random source of scores and signs.
    """

    def __init__(self, n_features, hidden_layer_sizes, n_outputs, *, activation="relu",
                 rule=None, unit_signs="paired", generator=None):
        super().__init__()
        mode = unit_sign_mode(unit_signs)
        rule = ThresholdRule() if rule is None else rule
        self.paired = mode in ("paired", "fixed")
        shapes = _layer_sizes(n_features, hidden_layer_sizes, n_outputs)
        self.linears = nn.ModuleList(
            ScoredMaskLinear(n_in, n_out, rule=rule, signs=layer_signs(mode),
                             generator=generator)
            for n_in, n_out in shapes
        )
        self.norms = nn.ModuleList(nn.BatchNorm1d(n_out) for _, n_out in shapes)
        self.signs = nn.ModuleList(
            UnitSigns(random_signs(n_out, generator) if mode == "random"
                      else torch.ones(n_out))
            for _, n_out in shapes[:-1]
        )
        self.activation = ACTIVATIONS[activation]()
        self.sign_mode = mode

    def forward(self, x):
        # the unit signs are all +1 unless drawn at random: a multiplication saved
        signed = getattr(self, "sign_mode", "random") == "random"
        for i, (linear, norm) in enumerate(zip(self.linears, self.norms)):
            x = norm(linear(x))
            if i < len(self.signs):
                x = self.activation(x)
                if signed:
                    x = self.signs[i](x)
        return x

    def scored_layers(self):
        """The {0,1}-scored layers, input to output."""
        return list(self.linears)

    @torch.no_grad()
    def recalibrate_norms(self, batches):
        """Re-estimate the batch-norm statistics with the final hard masks.

        During the search the statistics track masks that keep changing (or are sampled);
        one pass over ``batches`` (an iterable of input tensors) with the hard masks makes
        the statistics match the network that predicts.
        """
        recalibrate_batch_norms(self, batches)

    def connections(self):
        """``(weight, mask)`` per layer, shaped (out, in) — (out, 2 * in) when paired;
        the weight is the {0,1} mask."""
        out = []
        for linear in self.linears:
            mask = linear.hard_mask()
            out.append((mask.to(torch.float32), mask))
        return out

    def unit_arrays(self):
        """Per-unit tensors of the export: ``unit_scales``, ``intercepts`` (batch norm in
        eval mode as ``z * scale + offset``) and, for hidden layers, ``unit_signs``."""
        # in float64, as the prediction copy computes them
        scales, offsets = (list(a) for a in zip(*map(batch_norm_affine, self.norms)))
        arrays = {"unit_scales": scales, "intercepts": offsets}
        if self.sign_mode == "random":
            arrays["unit_signs"] = [s.signs.detach() for s in self.signs]
        return arrays

    def to_module(self):
        """A plain ``nn.Sequential`` predicting with the {0,1} weights alone.

        Each layer becomes ``nn.Linear(bias=False)`` whose weight is the hard mask (preceded
        by :class:`PairedInput` when paired), followed by a copy of the (eval-mode) batch
        norm and, for hidden layers, the activation and :class:`UnitSigns`.
        """
        parts = []
        for i, (linear, norm) in enumerate(zip(self.linears, self.norms)):
            if self.paired:
                parts.append(PairedInput())
            parts += [linear.to_plain(), copy.deepcopy(norm)]
            if i < len(self.signs):
                parts += [copy.deepcopy(self.activation), copy.deepcopy(self.signs[i])]
        return nn.Sequential(*parts).eval()


class SharedValueNetwork(nn.Module):
    """What networks with one shared weight value have in common.

    In training mode, and in any mode while ``searching`` is True, the forward pass
    evaluates every value of ``weight_values`` at once and returns outputs shaped
    (n_values, batch, n_outputs); so does ``ensemble=True`` after the search (the estimator
    combines them); otherwise it uses ``shared_weight`` (``weight_values[shared_index]``).

    With ``normalize_output=True`` (regression) each value's outputs are standardised by
    statistics estimated from the data, as a batch norm: the output of a ReLU network
    grows roughly as a power of ``w``, and one mask cannot fit targets on the scales of all
    values otherwise. A learned scale and offset per value and output
    (``output_scale``, ``output_offset``) follow the standardisation, so that the network
    can predict with less variance than the target (shrink towards its mean) — without
    them every prediction spreads exactly as widely as ``y``. They are the only real
    values trained, and they are folded into the last layer's exported arrays.

    Subclasses implement :meth:`forward_values`, :meth:`edge_masks`, :meth:`bias_masks`
    and :meth:`layer_scales`.
    """

    def _init_values(self, weight_values, n_outputs, normalize_output):
        self.register_buffer("weight_values", torch.as_tensor(weight_values, dtype=torch.float32))
        self.register_buffer("shared_weight", self.weight_values[:1].clone())
        self.shared_index = 0
        self.normalize_output = normalize_output
        if normalize_output:
            shape = (len(self.weight_values), n_outputs)
            self.register_buffer("output_mean", torch.zeros(shape))
            self.register_buffer("output_var", torch.ones(shape))
            self.output_scale = nn.Parameter(torch.ones(shape))
            self.output_offset = nn.Parameter(torch.zeros(shape))
            self.output_momentum = 0.1
        self.ensemble = False
        self.searching = True

    def _values(self, index):
        return self.weight_values if index is None else self.weight_values[index:index + 1]

    # Per-sample weights of the batch in a training forward pass (nn.sample_weighted sets
    # them), and the pooled moments of a weighted recalibration pass.
    batch_sample_weight = None
    _output_pool = None

    def _normalize(self, h, index):
        if self.training and index is None:
            if self.batch_sample_weight is None:
                mean, var, moments = h.mean(dim=1), h.var(dim=1, unbiased=False), None
            else:
                # (values, batch, outputs): every value and output is a channel
                moments = weighted_moments(h.transpose(0, 1).flatten(1),
                                           self.batch_sample_weight)
                mean = moments.mean.view(h.shape[0], h.shape[2])
                var = moments.var.view(h.shape[0], h.shape[2])
            with torch.no_grad():
                self._track_output_statistics(mean.detach(), var.detach(), moments)
        else:
            mean, var = self.output_mean[self._rows(index)], self.output_var[self._rows(index)]
        h = (h - mean.unsqueeze(1)) / torch.sqrt(var.unsqueeze(1) + 1e-5)
        scale, offset = self._output_affine(index)
        return h * scale.to(h.dtype).unsqueeze(1) + offset.to(h.dtype).unsqueeze(1)

    def _track_output_statistics(self, mean, var, moments):
        """Running output statistics: a moving average while training (a batch of weight
        0 changes nothing), pooled moments in a recalibration pass."""
        if self._output_pool is not None:
            self._output_pool.add(moments)
            return
        momentum = self.output_momentum
        if moments is not None:
            momentum = momentum * (moments.weight > 0).to(mean.dtype)
        self.output_mean.lerp_(mean.to(self.output_mean.dtype), momentum)
        self.output_var.lerp_(var.to(self.output_var.dtype), momentum)

    @staticmethod
    def _rows(index):
        return slice(None) if index is None else slice(index, index + 1)

    def _output_affine(self, index):
        """The learned ``(scale, offset)`` after the standardisation, for every value or
        value ``index`` (identity for a network pickled before they existed)."""
        if not hasattr(self, "output_scale"):
            mean = self.output_mean[self._rows(index)]
            return torch.ones_like(mean), torch.zeros_like(mean)
        rows = self._rows(index)
        return self.output_scale[rows], self.output_offset[rows]

    @torch.no_grad()
    def recalibrate_norms(self, batches):
        """Re-estimate the output statistics with the final hard masks: the pooled
        (weighted) moments of one pass over ``batches`` (inputs, or ``(input,
        sample_weight)`` pairs)."""
        if not self.normalize_output:
            return
        was_training, self._output_pool = self.training, PooledMoments()
        self.train()
        try:
            for X, sample_weight in weighted_batches(batches):
                self.batch_sample_weight = sample_weight
                self.forward_values(X)
            pool = self._output_pool
            if pool.weight is not None and pool.weight > 0:
                shape = self.output_mean.shape
                self.output_mean.copy_(pool.mean.view(shape))
                self.output_var.copy_(pool.var(unbiased=False).view(shape))
        finally:
            self._output_pool = None
            self.__dict__.pop("batch_sample_weight", None)
            self.train(was_training)

    def forward(self, x):
        # While searching (training and validation alike) the output covers every value,
        # so the averaged loss is what both watch; after the search, one value — or every
        # value again for an ensemble, whose members the estimator combines.
        if self.training or self.searching or self.ensemble:
            return self.forward_values(x)
        return self.forward_values(x, self.shared_index)[0]

    def connections(self):
        """``(weight, mask)`` per layer in torch layout; weight is ``shared_weight * mask``."""
        w = float(self.shared_weight)
        return [(mask.to(torch.float32) * w, mask) for mask in self.edge_masks()]

    def member_arrays(self, index):
        """``unit_scales`` and ``intercepts`` (float64, per layer) of the network with
        value ``index``: the fixed layer scale, the bias edges times the value and, with
        ``normalize_output``, the output statistics and the learned output scale and
        offset folded into the last layer."""
        w = float(self.weight_values[index])
        scales = [torch.full((n_out,), scale, dtype=torch.float64)
                  for scale, n_out in self.layer_scales()]
        intercepts = [b.double() * w for b in self.bias_masks()]
        if self.normalize_output:
            gain, mean, offset = self._output_map(index)
            scales[-1] = scales[-1] * gain
            intercepts[-1] = (intercepts[-1] - mean) * gain + offset
        return {"unit_scales": scales, "intercepts": intercepts}

    def _output_map(self, index):
        """What ``normalize_output`` does to value ``index``'s outputs, as ``(h - mean) *
        gain + offset`` in float64: the standardisation and the learned scale and offset."""
        gain, offset = (t[0].detach().double() for t in self._output_affine(index))
        return (gain / torch.sqrt(self.output_var[index].double() + 1e-5),
                self.output_mean[index].double(), offset)

    def unit_arrays(self):
        """Per-unit tensors of the export for ``shared_weight``: :meth:`member_arrays`."""
        return self.member_arrays(self.shared_index)

    def to_module(self):
        """Plain torch layers predicting with the fitted shared value
        (``weight_values[shared_index]``): kept edges as ``nn.Linear``/``nn.Conv2d``
        weights ``w * scale`` (bias: ``w`` times the bias node's edges), the activations
        and unit signs, and with ``normalize_output`` the output statistics and learned
        scale as one :class:`OutputAffine`. With ``ensemble=True``, a module returning
        every value's outputs stacked, shape (n_values, batch, n_outputs), as the
        network's own forward does (the estimator combines them).
        """
        if self.ensemble:
            return ValueEnsemble([self.value_module(index)
                                  for index in range(len(self.weight_values))]).eval()
        return self.value_module(self.shared_index)

    def value_module(self, index):
        """The network at value ``weight_values[index]`` as a plain ``nn.Sequential``."""
        parts = self._plain_layers(float(self.weight_values[index]))
        if self.normalize_output:
            gain, mean, offset = self._output_map(index)
            dtype = self.output_mean.dtype
            parts.append(OutputAffine(gain.to(dtype), (offset - mean * gain).to(dtype)))
        return nn.Sequential(*parts).eval()

    def _plain_layers(self, value):
        """The layers of :meth:`value_module` before the output map."""
        raise NotImplementedError


class SharedWeightMLP(SharedValueNetwork):
    """Network in which every kept edge carries one shared weight value ``w``.

    Masks are :class:`ScoredMaskLinear` layers; each layer's pre-activation is
    ``w * ((x @ M.T) / sqrt(fan_in) + b)`` (a fixed per-layer scale keeps activations of
    order one), hidden units then apply the activation and a fixed random sign. ``b`` is
    the {0,1} mask of a bias node (Gaier & Ha): a constant input of each layer, the mask's
    last column, whose kept edges carry ``w`` too. Without it a ReLU network is
    positively homogeneous, its class constant along every ray from the origin. Values,
    search and ensemble modes and ``normalize_output``: see :class:`SharedValueNetwork`.
    """

    def __init__(self, n_features, hidden_layer_sizes, n_outputs, *, weight_values,
                 activation="relu", rule=None, unit_signs=True, normalize_output=False,
                 generator=None):
        super().__init__()
        shapes = _layer_sizes(n_features, hidden_layer_sizes, n_outputs)
        rule = default_rule() if rule is None else rule
        self.linears = nn.ModuleList(
            ScoredMaskLinear(n_in + 1, n_out, rule=rule, generator=generator)  # + bias node
            for n_in, n_out in shapes
        )
        self.scales = [1.0 / math.sqrt(n_in) for n_in, _ in shapes]
        self.signs = nn.ModuleList(
            UnitSigns(random_signs(n_out, generator) if unit_signs else torch.ones(n_out))
            for _, n_out in shapes[:-1]
        )
        self.activation = ACTIVATIONS[activation]()
        self._init_values(weight_values, n_outputs, normalize_output)

    def forward_values(self, x, index=None):
        """Outputs for every shared value (``index=None``): shape (n_values, batch,
        n_outputs), or for value ``index`` alone: shape (1, batch, n_outputs)."""
        w = self._values(index).to(x.dtype).view(-1, 1, 1)
        h = x.unsqueeze(0)
        for i, linear in enumerate(self.linears):
            mask = linear.mask()
            h = w * (F.linear(h, mask[:, :-1]) * self.scales[i] + mask[:, -1])
            if i < len(self.signs):
                h = self.signs[i](self.activation(h))
        if self.normalize_output:
            h = self._normalize(h, index)
        return h

    def edge_masks(self):
        """The hard edge masks, shaped (out, in) (without the bias node)."""
        return [linear.hard_mask()[:, :-1] for linear in self.linears]

    def bias_masks(self):
        """The bias node's {0,1} edges: one float tensor of shape (out,) per layer."""
        return [linear.hard_mask()[:, -1].to(torch.float32) for linear in self.linears]

    def layer_scales(self):
        """``(scale, n_out)`` per layer: the fixed factor ``1 / sqrt(fan_in)``."""
        return [(scale, linear.out_features)
                for linear, scale in zip(self.linears, self.scales)]

    def _plain_layers(self, value):
        parts = []
        for i, (linear, scale) in enumerate(zip(self.linears, self.scales)):
            mask = linear.hard_mask().to(self.weight_values.dtype)
            plain = nn.Linear(linear.in_features - 1, linear.out_features,
                              device=mask.device, dtype=mask.dtype)
            with torch.no_grad():
                plain.weight.copy_(mask[:, :-1] * (value * scale))
                plain.bias.copy_(mask[:, -1] * value)
            parts.append(plain)
            if i < len(self.signs):
                parts += [copy.deepcopy(self.activation), copy.deepcopy(self.signs[i])]
        return parts

    def unit_arrays(self):
        """Per-unit tensors of the export for ``shared_weight``: :meth:`member_arrays`
        and the ``unit_signs``."""
        return {**super().unit_arrays(),
                "unit_signs": [s.signs.detach() for s in self.signs]}


class ValueEnsemble(nn.Module):
    """Plain networks, one per shared value, whose outputs are stacked: shape
    (n_values, batch, n_outputs)."""

    def __init__(self, members):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x):
        return torch.stack([member(x) for member in self.members])
