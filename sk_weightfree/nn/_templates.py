"""Any torch module as a template: the ready-made small CNN, and the step that turns a
template into each family's network.

A template is an ordinary ``nn.Module``. Its ``nn.Linear`` and ``nn.Conv2d`` layers are the
*weight layers*; every other layer (pooling, flatten, activations, dropout, normalisation)
is kept as it is. Like ``torch.nn.utils.prune``, the conversion replaces submodules in
place, so the template's ``forward`` must call its weight layers as modules (``self.fc(x)``),
not read their ``weight`` directly.
"""

import copy
import math

import torch
from torch import nn
from torch.nn.utils import prune

from ._layers import (PairedInput, ScoredMask, ScoredMaskConv2d, ScoredMaskLinear,
                      batch_norm_affine, dense_connection, recalibrate_batch_norms)
from ._networks import SharedValueNetwork
from ._rules import default_rule

WEIGHT_LAYERS = (nn.Linear, nn.Conv2d)


class SmallCNN(nn.Module):
    """A small convolutional network, the ready-made image template.

    ``conv(k×k, channels[0]) -> ReLU -> max-pool 2 -> conv(k×k, channels[1]) -> ReLU ->
    max-pool 2 -> flatten -> linear(hidden) -> ReLU -> linear(n_outputs)``, convolutions
    padded to keep the image size. With the defaults on ``(1, 28, 28)`` images: 32 and 64
    channels of 3×3 kernels, 3136 → 128 → 10 linear layers.

    Parameters
    ----------
    input_shape : tuple of int, default=(1, 28, 28)
        ``(channels, height, width)`` of an image.
    n_outputs : int, default=10
        Output units (classes, or regression outputs).
    channels : tuple of int, default=(32, 64)
        Output channels of each convolution (one max-pooling after each).
    hidden : int, default=128
        Width of the hidden linear layer.
    kernel_size : int, default=3
        Side of the square kernels.
    batch_norm : bool, default=False
        Put a batch normalisation after every hidden weight layer. The weight-free, random
        and weight-agnostic families bring their own per-unit normalisation; use this for
        the dense and pruned references.

    Examples
    --------
    >>> from sk_weightfree import WeightFreeClassifier
    >>> from sk_weightfree.nn import SmallCNN
    >>> clf = WeightFreeClassifier(module=SmallCNN, input_shape=(1, 28, 28))
    """

    def __init__(self, input_shape=(1, 28, 28), n_outputs=10, *, channels=(32, 64),
                 hidden=128, kernel_size=3, batch_norm=False):
        super().__init__()
        shape = tuple(int(s) for s in input_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"SmallCNN needs input_shape=(channels, height, width) of "
                             f"positive sizes; got {input_shape!r}.")
        in_channels, height, width = shape
        layers = []
        for out_channels in channels:
            layers.append(nn.Conv2d(in_channels, out_channels, kernel_size,
                                    padding=kernel_size // 2))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers += [nn.ReLU(), nn.MaxPool2d(2)]
            in_channels = out_channels
            height, width = height // 2, width // 2  # 'same' padding for odd kernels
        if min(height, width) < 1:
            raise ValueError(f"input_shape {shape} is too small for {len(channels)} "
                             f"poolings by 2.")
        layers += [nn.Flatten(), nn.Linear(in_channels * height * width, hidden)]
        if batch_norm:
            layers.append(nn.BatchNorm1d(hidden))
        layers += [nn.ReLU(), nn.Linear(hidden, n_outputs)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


def replace_layers(module, make):
    """Replace every ``nn.Linear``/``nn.Conv2d`` inside ``module`` by ``make(layer)``, in
    place and in registration order; returns the module (or ``make(module)`` when the
    module is itself a weight layer)."""
    if isinstance(module, WEIGHT_LAYERS):
        return make(module)
    for name, child in module.named_children():
        if isinstance(child, WEIGHT_LAYERS):
            setattr(module, name, make(child))
        else:
            replace_layers(child, make)
    return module


def _check_convertible(layer):
    if isinstance(layer, nn.Conv2d) and (layer.groups != 1 or layer.padding_mode != "zeros"):
        raise ValueError(
            f"{layer} cannot be turned into a masked layer: only groups=1 and "
            f"padding_mode='zeros' are supported."
        )


def _masked_layer(layer, **options):
    """The {0,1}-scored twin of a template weight layer, and its unit count."""
    _check_convertible(layer)
    if isinstance(layer, nn.Conv2d):
        return ScoredMaskConv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                                layer.stride, layer.padding, layer.dilation, **options)
    return ScoredMaskLinear(layer.in_features, layer.out_features, **options)


class MaskedUnit(nn.Module):
    """A {0,1} weight layer and its per-unit batch normalisation: ``norm(masked(x))``."""

    def __init__(self, masked):
        super().__init__()
        self.masked = masked
        n_out = masked.scores.shape[0]
        conv = isinstance(masked, ScoredMaskConv2d)
        self.norm = nn.BatchNorm2d(n_out) if conv else nn.BatchNorm1d(n_out)

    def forward(self, x):
        _check_linear_input(self.masked, x)
        return self.norm(self.masked(x))

    def to_plain(self):
        """The unit as plain torch layers holding the hard mask (eval-mode batch norm)."""
        parts = ([PairedInput(dim=1)] if self.masked.paired else []) + [
            self.masked.to_plain(), copy.deepcopy(self.norm)]
        return nn.Sequential(*parts).eval()


def _check_linear_input(layer, x):
    # The per-unit normalisation and bias act on axis 1: a linear layer applied to the
    # last axis of an N-D input would be normalised over the wrong axis.
    if isinstance(layer, ScoredMaskLinear) and x.dim() != 2:
        raise ValueError(
            f"A template's nn.Linear must receive (batch, features) input once converted; "
            f"it got shape {tuple(x.shape)}. Flatten before the layer."
        )


def _check_converted(body, unit_type, allow_norms, family):
    """Refuse real-valued parameters that the conversion left in place."""
    converted = {id(p) for unit in body.modules() if isinstance(unit, unit_type)
                 for p in unit.parameters()}
    norms = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)
    for name, module in body.named_modules():
        own = [p for p in module.parameters(recurse=False) if id(p) not in converted]
        if own and not (allow_norms and isinstance(module, norms)):
            raise ValueError(
                f"The template's {name or 'module'} ({type(module).__name__}) has "
                f"real-valued parameters that the {family} conversion leaves in place: only "
                f"nn.Linear and nn.Conv2d become {{0,1}} layers"
                f"{', and normalisation layers are kept' if allow_norms else ''}."
            )
    return body


def weight_free_from_template(template, *, signs="paired", rule=None, generator=None):
    """A copy of ``template`` whose weight layers are {0,1}-masked :class:`MaskedUnit`\\ s.

    Parameters
    ----------
    template : nn.Module
    signs : {"paired", "fixed", "none"}, default="paired"
        Where each edge's sign comes from (see :class:`ScoredMask`); "paired": each masked
        layer sees its input as ``[h, -h]`` (features or channels).
    rule : MaskRule, optional
        The mask rule of every layer (shared; default: :func:`default_rule`).
    generator : torch.Generator, optional
    """
    rule = default_rule() if rule is None else rule
    options = dict(signs=signs, rule=rule, generator=generator)
    body = replace_layers(copy.deepcopy(template),
                          lambda layer: MaskedUnit(_masked_layer(layer, **options)))
    return _check_converted(body, MaskedUnit, True, "weight-free")


class TemplateNetwork(nn.Module):
    """A (converted) template that takes flat rows: ``body(x.reshape(-1, *input_shape))``.

    Its weight layers are the template's ``nn.Linear``/``nn.Conv2d`` (dense and pruned
    families) or their :class:`MaskedUnit` replacements (weight-free and random families).

    Parameters
    ----------
    body : nn.Module
    input_shape : tuple of int or None
        Shape of one sample; None feeds the rows as they are.
    """

    def __init__(self, body, input_shape=None):
        super().__init__()
        self.body = body
        self.input_shape = None if input_shape is None else tuple(input_shape)
        self.paired = any(layer.paired for layer in self.scored_layers())

    def forward(self, x):
        if self.input_shape is not None:
            x = x.reshape(x.shape[0], *self.input_shape)
        return self.body(x)

    def scored_layers(self):
        """The {0,1}-scored layers, in registration order."""
        return [m for m in self.body.modules() if isinstance(m, ScoredMask)]

    def weight_layers(self):
        """The real-weight ``nn.Linear``/``nn.Conv2d`` layers, in registration order."""
        return [m for m in self.body.modules() if isinstance(m, WEIGHT_LAYERS)]

    def _units(self):
        return [m for m in self.body.modules() if isinstance(m, MaskedUnit)]

    def connections(self):
        """``(weight, mask)`` per weight layer in torch layout: (out, in) for linear
        layers, (out, in, kh, kw) for convolutions; the input axis doubles when paired."""
        units = self._units()
        if units:
            masks = [unit.masked.hard_mask() for unit in units]
            return [(mask.to(torch.float32), mask) for mask in masks]
        return [dense_connection(layer) for layer in self.weight_layers()]

    def unit_arrays(self):
        """Per-unit tensors of the export: ``unit_scales`` and ``intercepts`` (the batch
        norm of each masked unit), or the layers' biases (zeros where there is none)."""
        units = self._units()
        if units:
            scales, offsets = zip(*(batch_norm_affine(unit.norm) for unit in units))
            return {"unit_scales": list(scales), "intercepts": list(offsets)}
        return {"intercepts": [
            layer.bias.detach() if layer.bias is not None
            else torch.zeros(layer.weight.shape[0], device=layer.weight.device)
            for layer in self.weight_layers()]}

    def recalibrate_norms(self, batches):
        """With masked units, re-estimate every batch norm with the final hard masks."""
        if self._units():
            recalibrate_batch_norms(self, batches)

    def to_module(self):
        """A plain ``nn.Sequential`` (reshape, then the body with each masked unit as
        ``PairedInput -> Conv2d/Linear(bias=False) -> batch norm``) predicting with the
        {0,1} weights alone."""
        body = replace_units(copy.deepcopy(self.body))
        for layer in body.modules():  # pruned template layers keep their pruned weights
            for hook in list(layer._forward_pre_hooks.values()):
                if isinstance(hook, prune.BasePruningMethod):
                    prune.remove(layer, hook._tensor_name)
        return _with_reshape(self.input_shape, body)


def _with_reshape(input_shape, body):
    parts = [nn.Unflatten(1, input_shape)] if input_shape else []
    return nn.Sequential(*parts, body).eval()


def replace_units(module, unit_type=None, plain=None):
    """Replace every :class:`MaskedUnit` (or ``unit_type``) inside ``module`` by its plain
    layers (``plain(unit)``; default: ``unit.to_plain()``)."""
    unit_type = MaskedUnit if unit_type is None else unit_type
    if isinstance(module, unit_type):
        return module.to_plain() if plain is None else plain(module)
    for name, child in module.named_children():
        setattr(module, name, replace_units(child, unit_type, plain))
    return module


class SharedWeightUnit(nn.Module):
    """A template weight layer whose kept edges all carry the shared value ``w``.

    Computes ``w * (conv_or_linear(x, M₊ - M₋) / sqrt(fan_in) + b)``: the input is paired
    (a sign per edge; without signs every unit after the first would only add non-negative
    inputs up), ``b`` is the {0,1} mask of a bias node. The batch holds one block of rows
    per shared value (the leading axis of ``values``, set by the owning network).
    """

    def __init__(self, layer, *, rule, generator=None):
        super().__init__()
        self.masked = _masked_layer(layer, signs="paired", rule=rule, generator=generator)
        n_out = self.masked.scores.shape[0]
        self.bias_node = ScoredMaskLinear(1, n_out, rule=rule, generator=generator)
        self.scale = 1.0 / math.sqrt(self.masked.scores[0].numel() // 2)  # fan-in
        self.values = None

    def bias_mask(self):
        """The bias node's hard {0,1} edges, shape (n_out,)."""
        return self.bias_node.hard_mask()[:, 0].to(torch.float32)

    def to_plain(self, value):
        """The unit at shared value ``value`` as ``PairedInput -> Linear/Conv2d`` whose
        weight is ``value / sqrt(fan_in)`` times the hard mask, bias ``value * b``."""
        plain = self.masked.to_plain()
        with torch.no_grad():
            plain.weight.mul_(value * self.scale)
        plain.bias = nn.Parameter(self.bias_mask().to(plain.weight) * value)
        return nn.Sequential(PairedInput(dim=1), plain).eval()

    def forward(self, x):
        _check_linear_input(self.masked, x)
        h = self.masked(x) * self.scale
        b = self.bias_node.mask()[:, 0]
        h = h + b.view(1, -1, *([1] * (h.dim() - 2)))
        values = self.values.to(h.dtype)
        blocks = h.view(len(values), -1, *h.shape[1:])
        return (blocks * values.view(-1, *([1] * (blocks.dim() - 1)))).view(h.shape)


def shared_weight_from_template(template, *, rule=None, generator=None):
    """A copy of ``template`` whose weight layers are :class:`SharedWeightUnit`\\ s (a
    template with other real-valued parameters, normalisation included, is refused: no
    real value is trained in a weight-agnostic network). ``rule`` is the mask rule of
    every layer (default: :func:`default_rule`)."""
    rule = default_rule() if rule is None else rule
    body = replace_layers(copy.deepcopy(template), lambda layer: SharedWeightUnit(
        layer, rule=rule, generator=generator))
    return _check_converted(body, SharedWeightUnit, False, "weight-agnostic")


class SharedWeightTemplate(SharedValueNetwork):
    """A template whose weight layers are :class:`SharedWeightUnit`\\ s: every kept edge
    carries one shared value ``w`` (signed by the paired lines).

    Every value is evaluated in one pass, the batch repeated once per value. Values, search
    and ensemble modes and ``normalize_output``: see :class:`SharedValueNetwork`.

    Parameters
    ----------
    body : nn.Module
        The converted template (see :func:`shared_weight_from_template`).
    input_shape : tuple of int or None
    n_outputs : int
    weight_values : sequence of float
    normalize_output : bool, default=False
    """

    paired = True

    def __init__(self, body, input_shape, n_outputs, *, weight_values,
                 normalize_output=False):
        super().__init__()
        self.body = body
        self.input_shape = None if input_shape is None else tuple(input_shape)
        self._init_values(weight_values, n_outputs, normalize_output)

    def _units(self):
        return [m for m in self.body.modules() if isinstance(m, SharedWeightUnit)]

    def forward_values(self, x, index=None):
        """Outputs shaped (n_values, batch, n_outputs), or (1, batch, n_outputs) for value
        ``index`` alone."""
        values = self._values(index)
        for unit in self._units():
            unit.values = values
        batch = x.shape[0]
        x = x.repeat(len(values), *([1] * (x.dim() - 1)))
        if self.input_shape is not None:
            x = x.reshape(x.shape[0], *self.input_shape)
        h = self.body(x)
        h = h.view(len(values), batch, *h.shape[1:])
        if self.normalize_output:
            h = self._normalize(h, index)
        return h

    def _plain_layers(self, value):
        body = replace_units(copy.deepcopy(self.body), SharedWeightUnit,
                             lambda unit: unit.to_plain(value))
        return list(_with_reshape(self.input_shape, body))

    def edge_masks(self):
        """Hard masks in torch layout, the input axis doubled (paired lines)."""
        return [unit.masked.hard_mask() for unit in self._units()]

    def bias_masks(self):
        return [unit.bias_mask() for unit in self._units()]

    def layer_scales(self):
        return [(unit.scale, unit.masked.scores.shape[0]) for unit in self._units()]
