"""Layers whose connections are {0,1} masks chosen by real-valued edge scores."""

import contextlib
import functools
import math
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from .._inference import fold_paired
from ._rules import SAMPLING_RULES, ThresholdRule

SIGN_MODES = ("paired", "fixed", "none")


class ScoredMask(nn.Module):
    """Base of the layers whose weight is a {0,1} mask chosen by real edge scores.

    Every possible edge has a real score; a :class:`~sk_weightfree.nn.MaskRule` (``rule``)
    turns the scores into the {0,1} mask and gives them their gradient. In training mode the
    layer uses the rule's training mask; in eval mode (or with gradients off, or frozen
    scores) the rule's hard mask, computed once and cached until the scores change (as
    ``torch.nn.utils.prune`` keeps a mask buffer). The cache is dropped on
    ``train()``/``eval()`` and ``load_state_dict`` and follows the scores' version counter;
    fused optimisers update in place without bumping it, so after stepping one while the
    layer is in eval mode, call ``eval()`` again.

    ``signs`` says where an edge's sign comes from:

    - ``"paired"``: the layer sees its input twice, as ``[x, -x]`` (features, or channels
      for a convolution); the mask's second axis doubles, ``[:n_in]`` are the excitatory
      lines and ``[n_in:]`` their inhibitory twins, so each (input, output) pair is
      connected with +1, -1 or 0 and the sign is learned. A rule with one score per edge
      (``scores_per_edge = 1``) drives both twins from that score.
    - ``"fixed"``: one score per edge and a fixed random sign per edge drawn at
      initialisation (``edge_signs``); in the paired form only the twin of that sign can
      ever be on (the signed-constant baseline of Zhou et al. and Ramanujan et al.).
    - ``"none"``: the mask is the weight.

    The product uses the signed weight ``M₊ - M₋``, one operation of the original size.

    ``edges`` (None, or a boolean buffer shaped ``(out, n_in, *kernel)``, set by
    :meth:`restrict_to`) is a given architecture: every mask and weight the layer uses is
    zero outside it, in training and prediction alike.
    Subclasses set the geometry and implement :meth:`_apply_weight`.
    """

    def __init__(self, n_out, n_in, kernel_size=(), *, rule=None, signs="none",
                 generator=None):
        super().__init__()
        if signs not in SIGN_MODES:
            raise ValueError(f"signs must be one of {SIGN_MODES}; got {signs!r}")
        self.rule = ThresholdRule() if rule is None else rule
        if self.rule.scores_per_edge == 1 and signs != "paired":
            raise ValueError(f"The {self.rule.name!r} rule learns each edge's sign from one "
                             f"score: it needs paired lines (unit_signs='paired'), got "
                             f"{signs!r}.")
        self.signs = signs
        self.paired = signs != "none"
        self._n_in = n_in
        two_scores = signs == "paired" and self.rule.scores_per_edge == 2
        self.scores = nn.Parameter(torch.empty(n_out, 2 * n_in if two_scores else n_in,
                                               *kernel_size),
                                   requires_grad=self.rule.trains_scores)
        self.rule.init_scores(self.scores.data, generator)
        self.register_buffer("edges", None)
        if signs == "fixed":
            self.register_buffer("edge_signs", torch.randint(
                0, 2, self.scores.shape, generator=generator).to(self.scores.dtype) * 2 - 1)
        self._cached_mask = None  # {"mask"/"weight": (key, tensor)} for inference
        # Fused optimisers update in place without bumping the version counter, so the
        # cache is also dropped whenever the mode changes or a state dict is loaded.
        self._register_load_state_dict_pre_hook(_drop_cached_mask, with_module=True)

    @property
    def n_in(self):
        """Inputs (features or channels) before pairing."""
        return self._n_in

    @property
    def edge_shape(self):
        """``(out, n_in, *kernel)``: one entry per possible edge, before pairing."""
        return (self.scores.shape[0], self.n_in, *self.scores.shape[2:])

    def restrict_to(self, edges, rule=None, *, generator=None):
        """Keep the layer on the given edges; with ``rule``, that rule and fresh scores.

        Parameters
        ----------
        edges : bool tensor of shape :attr:`edge_shape`
            The architecture of the layer: every mask and weight is zero elsewhere.
        rule : MaskRule, optional
            A rule to replace the layer's (:class:`SignRule` learns each edge's sign on
            paired lines; ``FrozenRule(density=1.0)`` keeps every edge on); its scores
            are drawn anew from ``generator``.
        generator : torch.Generator, optional
        """
        shape = self.edge_shape
        if tuple(edges.shape) != shape:
            raise ValueError(f"edges of shape {tuple(edges.shape)} for a layer of {shape}.")
        if rule is not None:
            if rule.scores_per_edge == 1 and self.signs != "paired":
                raise ValueError(f"The {rule.name!r} rule needs paired lines; got "
                                 f"{self.signs!r}.")
            two = self.signs == "paired" and rule.scores_per_edge == 2
            self.rule = rule
            self.scores = nn.Parameter(
                self.scores.data.new_empty((shape[0], 2 * shape[1] if two else shape[1],
                                            *shape[2:])),
                requires_grad=rule.trains_scores)
            rule.init_scores(self.scores.data, generator)
        self.edges = edges.to(device=self.scores.device, dtype=torch.bool)
        self._cached_mask = None
        return self

    def _on_edges(self, mask):
        """``mask`` (a rule's, on edges or on both twin lines) zero outside ``edges``."""
        edges = getattr(self, "edges", None)  # None, or missing in models pickled before
        if edges is None:
            return mask
        if mask.shape[1] != edges.shape[1]:
            edges = torch.cat([edges, edges], dim=1)
        return mask & edges if mask.dtype == torch.bool else mask * edges.to(mask.dtype)

    def _signed_rule(self):
        """Whether one score drives both twin lines (the rule's mask is ``M₊ - M₋``)."""
        return self.signs == "paired" and self.rule.scores_per_edge == 1

    def hard_mask(self):
        """Boolean mask used for prediction, shaped ``(out, lines, *kernel)``: the input axis
        doubled to both twin lines when paired, whatever the rule's score layout."""
        mask = self._on_edges(self.rule.hard_mask(self.scores))
        return self._fixed_sign_lines(mask) if self.signs == "fixed" else mask

    def _fixed_sign_lines(self, mask):
        """An edge mask as the two twin lines, each edge on the line of its fixed sign."""
        return torch.cat([mask * (self.edge_signs > 0), mask * (self.edge_signs < 0)], dim=1)

    def _training_mask(self):
        return self.training and self.scores.requires_grad and torch.is_grad_enabled()

    def _cached(self, name, compute):
        """``compute()`` cached until the scores change (inference only)."""
        key = (name, self.scores._version, self.scores.device, self.scores.dtype,
               self.scores.data_ptr())
        cache = self._cached_mask or {}
        if cache.get(name, (None,))[0] != key:
            with torch.inference_mode(False):  # a normal tensor, usable outside inference
                cache[name] = (key, compute())
            self._cached_mask = cache
        return cache[name][1]

    def mask(self):
        """{0,1} float mask over the lines (shaped as :meth:`hard_mask`):
        differentiable when training with gradients on, the hard mask otherwise (eval
        mode, ``torch.no_grad()``, frozen scores)."""
        if not self._training_mask():
            return self._cached("mask", lambda: self.hard_mask().to(self.scores.dtype))
        mask = self._on_edges(self.rule.train_mask(self.scores))
        if self.signs == "fixed":
            return self._fixed_sign_lines(mask)
        if self._signed_rule():
            return torch.cat([mask.clamp(min=0), (-mask).clamp(min=0)], dim=1)
        return mask

    def train(self, mode=True):
        self._cached_mask = None
        return super().train(mode)

    def signed_weight(self, mask):
        """The weight a line mask amounts to: the mask, or ``M₊ - M₋`` when paired."""
        if not self.paired:
            return mask
        return fold_paired(mask)

    def _training_weight(self):
        if self.signs == "paired":  # M₊ - M₋ is zero outside edges when both lines are
            return self._on_edges(self.rule.paired_weight(self.scores))
        mask = self._on_edges(self.rule.train_mask(self.scores))
        return mask * self.edge_signs if self.signs == "fixed" else mask

    def effective_weight(self):
        """The weight the layer applies (surrogate-differentiable while training)."""
        if self._training_mask():
            return self._training_weight()
        return self._cached("weight", lambda: self.signed_weight(self.mask()))

    def forward(self, x):
        return self._apply_weight(x, self.effective_weight())

    def to_plain(self):
        """A plain torch layer without bias whose weight is the hard {0,1} mask (its
        input doubled to ``[x, -x]`` when paired, which :class:`PairedInput` provides)."""
        mask = self.hard_mask()
        plain = self._plain_layer(mask.shape[1], mask.shape[0], mask.device).to(
            self.scores.dtype)
        with torch.no_grad():
            plain.weight.copy_(mask.to(plain.weight.dtype))
        return plain

    def _repr_options(self):
        return f"signs={self.signs!r}, rule={self.rule!r}"

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_cached_mask"] = None
        return state

    def __setstate__(self, state):
        if "rule" not in state:  # pickled before mask rules: the threshold/Bernoulli rule
            temperature = state["_buffers"].pop("temperature", torch.tensor(1.0))
            rule_class = SAMPLING_RULES[state.pop("sampling", "threshold")]
            state["rule"] = rule = rule_class(density=state.pop("density", None))
            rule.temperature_ = temperature.detach().cpu().float()
            rule.reseed(state.pop("sample_seed", None))
            state.pop("_sample_generator", None)
            state["signs"] = "paired" if state["paired"] else "none"
            n_lines = state["_parameters"]["scores"].shape[1]
            state["_n_in"] = n_lines // 2 if state["paired"] else n_lines
        super().__setstate__(state)


class ScoredMaskLinear(ScoredMask):
    """Linear map ``x @ M.T`` whose weight matrix is a {0,1} mask chosen by edge scores.

    See :class:`ScoredMask` for the mask, its cache and the paired lines; the mask has
    shape (out_features, in_features), or (out_features, 2 * in_features) when paired.

    Parameters
    ----------
    in_features, out_features : int
        Layer sizes.
    rule : MaskRule, optional
        How scores become the mask (default: a fresh :class:`ThresholdRule`).
    signs : {"paired", "fixed", "none"}, default="none"
        Where an edge's sign comes from (see :class:`ScoredMask`).
    generator : torch.Generator, optional
        Random source of the initial scores (and of the fixed edge signs).
    """

    def __init__(self, in_features, out_features, *, rule=None, signs="none",
                 generator=None):
        super().__init__(out_features, in_features, rule=rule, signs=signs,
                         generator=generator)
        self.in_features = in_features
        self.out_features = out_features

    def _apply_weight(self, x, weight):
        return F.linear(x, weight)

    def _plain_layer(self, n_in, n_out, device):
        return nn.Linear(n_in, n_out, bias=False, device=device)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"{self._repr_options()}")


class ScoredMaskConv2d(ScoredMask):
    """2-D convolution whose every kernel tap is 0 or 1, chosen by edge scores.

    See :class:`ScoredMask`; the mask has the torch layout (out_channels, in_channels,
    kh, kw), or (out_channels, 2 * in_channels, kh, kw) when paired (the input seen as
    ``[x, -x]`` along the channel axis).

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts.
    kernel_size, stride, padding, dilation : int or tuple
        As in ``torch.nn.Conv2d`` (``padding`` may also be "same" or "valid").
    rule, signs, generator
        As in :class:`ScoredMaskLinear`.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, *, rule=None, signs="none", generator=None):
        kernel_size = nn.modules.utils._pair(kernel_size)
        super().__init__(out_channels, in_channels, kernel_size, rule=rule, signs=signs,
                         generator=generator)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation

    def _apply_weight(self, x, weight):
        return F.conv2d(x, weight, None, self.stride, self.padding, self.dilation)

    def _plain_layer(self, n_in, n_out, device):
        return nn.Conv2d(n_in, n_out, self.kernel_size, self.stride, self.padding,
                         self.dilation, bias=False, device=device)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"{self._repr_options()}")


def _drop_cached_mask(module, *args, **kwargs):
    module._cached_mask = None


def mask_rules(module):
    """The distinct :class:`~sk_weightfree.nn.MaskRule` objects of the scored layers
    inside ``module``, input to output."""
    rules = {}
    for layer in module.modules():
        if isinstance(layer, ScoredMask):
            rules.setdefault(id(layer.rule), layer.rule)
    return list(rules.values())


class PairedInput(nn.Module):
    """``x -> [x, -x]`` along axis ``dim`` (the last by default; 1, the channels, before a
    convolution): each line and its inhibitory twin."""

    dim = -1  # models pickled before ``dim`` existed

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return torch.cat([x, -x], dim=self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class UnitSigns(nn.Module):
    """Multiply each unit by a fixed sign (+1 excitatory, -1 inhibitory); not trained."""

    def __init__(self, signs):
        super().__init__()
        self.register_buffer("signs", torch.as_tensor(signs, dtype=torch.float32))

    def forward(self, x):
        return x * self.signs


class OutputAffine(nn.Module):
    """``x * scale + offset`` per output (the last axis): a standardisation and learned
    scale folded into one map."""

    def __init__(self, scale, offset):
        super().__init__()
        self.register_buffer("scale", scale)
        self.register_buffer("offset", offset)

    def forward(self, x):
        return x * self.scale + self.offset


def random_signs(n, generator):
    """``n`` random ±1 values drawn from ``generator``."""
    return torch.randint(0, 2, (n,), generator=generator).float() * 2.0 - 1.0


def batch_norm_affine(norm):
    """An eval-mode batch norm as ``z * scale + offset``, in float64."""
    weight = torch.ones_like(norm.running_var) if norm.weight is None else norm.weight
    bias = torch.zeros_like(norm.running_var) if norm.bias is None else norm.bias
    scale = weight.detach().double() / torch.sqrt(norm.running_var.double() + norm.eps)
    return scale, bias.detach().double() - norm.running_mean.double() * scale


class Moments(NamedTuple):
    """One batch's weighted statistics per channel (:func:`weighted_moments`)."""

    mean: torch.Tensor
    var: torch.Tensor  # biased: the weighted mean of the squared deviations
    weight: torch.Tensor  # the batch's weight times the positions per sample
    size: torch.Tensor  # the sample size it stands for (see weighted_moments)
    centered: torch.Tensor  # x - mean


def weighted_moments(x, sample_weight):
    """Per-channel mean and (biased) variance of ``x`` with one weight per sample.

    ``x`` is shaped (batch, channels, *spatial): each channel's statistics run over the
    batch and the spatial positions, as a batch norm's. ``size``, what the unbiased
    variance's ``n - 1`` counts, is the weights' sum — an integer weight ``k`` is ``k``
    copies — but never less than the number of samples of non-zero weight, so that small
    fractional weights (summing to 1, say) count as the samples they are; both are times
    the positions per sample. A batch whose weights are all zero has weight and size 0
    (and mean and variance 0): nothing is accumulated from it. In float32 for
    half-precision ``x``, as torch's batch norm.
    """
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    w = sample_weight.to(device=x.device, dtype=x.dtype)
    total = w.sum()
    share = w / total.clamp(min=torch.finfo(x.dtype).tiny)
    per_sample = math.prod(x.shape[2:])
    # the weighted sums as matrix-vector products over the batch (one pass each)
    mean = share @ (x.flatten(2).sum(-1) if x.dim() > 2 else x) / per_sample
    centered = x - mean.view(1, -1, *([1] * (x.dim() - 2)))
    squares = centered.square()
    var = share @ (squares.flatten(2).sum(-1) if x.dim() > 2 else squares) / per_sample
    size = torch.maximum(total, (w > 0).sum().to(x.dtype))
    return Moments(mean, var, total * per_sample, size * per_sample, centered)


def _bessel(size):
    """``n / (n - 1)`` for a sample size ``n`` above 1, else 1 (a tensor)."""
    return torch.where(size > 1, size / (size - 1).clamp(min=1e-30), 1.0)


class PooledMoments:
    """Mean and variance pooled over batches of weighted moments (Chan's merge): the
    statistics of all the batches taken as one."""

    def __init__(self):
        self.weight = self.size = self.mean = self.m2 = None

    def add(self, moments):
        """Take one batch's :class:`Moments`."""
        mean, var, weight = moments.mean.detach(), moments.var.detach(), moments.weight
        if self.weight is None:
            self.weight, self.size = weight, moments.size
            self.mean, self.m2 = mean * (weight > 0), var * weight
            return
        total = self.weight + weight
        share = torch.where(total > 0, weight / total.clamp(min=1e-30), 0)
        delta = mean - self.mean
        self.mean = self.mean + delta * share
        self.m2 = self.m2 + var * weight + delta.square() * self.weight * share
        self.weight, self.size = total, self.size + moments.size

    def var(self, unbiased):
        """The pooled variance; ``unbiased``: times ``n / (n - 1)`` of the pooled size,
        as torch's running variance."""
        var = self.m2 / self.weight.clamp(min=1e-30)
        return var * _bessel(self.size) if unbiased else var


def _weighted_batch_norm(norm, x):
    """``norm``'s forward pass with batch statistics weighted by its ``_sample_weight``
    (frequency weights: a weight k counts a sample k times, 0 leaves it out; None: torch's
    own forward); the running statistics are updated as torch does, or gathered into its
    ``_pool``."""
    sample_weight = norm._sample_weight
    if sample_weight is None or (not norm.training and norm.running_mean is not None):
        return type(norm).forward(norm, x)
    moments = weighted_moments(x, sample_weight)
    if norm._pool is not None:
        norm._pool.add(moments)
    elif norm.training and norm.track_running_stats:
        with torch.no_grad():
            _update_running_statistics(norm, moments)
    scale = torch.rsqrt(moments.var + norm.eps)
    shape = (1, -1, *([1] * (x.dim() - 2)))
    if not norm.affine:
        return moments.centered * scale.view(shape)
    return torch.addcmul(norm.bias.view(shape), moments.centered,
                         (scale * norm.weight).view(shape))


def _batch_norms(module):
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


_WEIGHTING = ("forward", "_sample_weight", "_pool")


def _weighting_installed(norm):
    forward = norm.__dict__.get("forward")
    if forward is None:
        return False
    if not (isinstance(forward, functools.partial) and forward.func is _weighted_batch_norm
            and forward.args[0] is norm):
        raise ValueError(
            f"A {type(norm).__name__} with a forward method of its own (set on the instance) "
            f"cannot have its batch statistics weighted by sample_weight; remove it, or fit "
            f"without sample_weight and class_weight.")
    return True


def remove_weighting(module):
    """Strip the weighted forward passes of :func:`weightable_norms` from ``module``'s
    batch norms (a copy of a module made while they were installed); returns it."""
    for norm in _batch_norms(module):
        for name in _WEIGHTING:
            norm.__dict__.pop(name, None)
    return module


@contextlib.contextmanager
def weightable_norms(module):
    """Give every batch norm in ``module`` the weighted forward pass of
    :func:`sample_weighted` for the block, unweighted until a weight is set.

    Installed once around a whole fit, the forward passes keep one identity, so that
    ``torch.compile`` does not recompile the network for every batch's weights. Nested
    blocks leave the outer one's in place.
    """
    installed = []
    for norm in _batch_norms(module):
        if not _weighting_installed(norm):
            norm.forward = functools.partial(_weighted_batch_norm, norm)
            norm._sample_weight = norm._pool = None
            installed.append(norm)
    try:
        yield
    finally:
        for norm in installed:
            for name in _WEIGHTING:
                norm.__dict__.pop(name, None)


def _update_running_statistics(norm, moments, read_on_host=None):
    """torch's running-statistics update from weighted moments (the unbiased variance
    with :func:`_bessel` of the batch's size); a batch of weight 0 changes nothing.

    ``read_on_host`` (default: on the CPU, outside ``torch.compile``) reads the weight and
    size as Python numbers, so that a few large kernels run and no chain of tiny ones;
    otherwise the update stays on the device, without a host synchronisation.
    """
    dtype = norm.running_mean.dtype
    if read_on_host is None:
        read_on_host = moments.weight.device.type == "cpu" and not torch.compiler.is_compiling()
    if read_on_host:
        if not float(moments.weight) > 0:
            return
        norm.num_batches_tracked.add_(1)
        momentum = (1.0 / float(norm.num_batches_tracked) if norm.momentum is None
                    else norm.momentum)
        n = float(moments.size)
        factor = n / (n - 1) if n > 1 else 1.0
    else:
        counted = moments.weight > 0
        norm.num_batches_tracked.add_(counted.long())
        momentum = (1.0 / norm.num_batches_tracked.clamp(min=1).to(dtype)
                    if norm.momentum is None
                    else torch.full((), norm.momentum, dtype=dtype, device=counted.device))
        momentum = torch.where(counted, momentum, 0)
        factor = _bessel(moments.size)
    norm.running_mean.lerp_(moments.mean.to(dtype), momentum)
    norm.running_var.lerp_((moments.var * factor).to(dtype), momentum)


@contextlib.contextmanager
def sample_weighted(module, sample_weight, *, pools=None):
    """Weight the batch statistics of ``module``'s forward passes in the block by
    ``sample_weight`` (one value per sample of the batch; None: no change).

    Every batch norm in training mode (and every
    :class:`~sk_weightfree.nn.SharedValueNetwork` output standardisation) computes its
    batch mean and variance as weighted moments (:func:`weighted_moments`) and updates its
    running statistics with them, so that a sample of weight 0 changes no statistic and
    an integer weight ``k`` equals repeating the sample ``k`` times. ``pools`` (a dict,
    used by :func:`recalibrate_batch_norms`) gathers each norm's
    :class:`PooledMoments` instead of updating its running statistics.
    """
    if sample_weight is None:
        yield
        return
    norms = _batch_norms(module)
    weighted = [m for m in module.modules() if hasattr(m, "batch_sample_weight")]
    with weightable_norms(module):
        outer = [(norm._sample_weight, norm._pool) for norm in norms]  # nested blocks
        outer_weighted = [m.__dict__.get("batch_sample_weight") for m in weighted]
        for norm in norms:
            norm._sample_weight = sample_weight
            norm._pool = None if pools is None else pools.setdefault(norm, PooledMoments())
        for m in weighted:
            m.batch_sample_weight = sample_weight
        try:
            yield
        finally:
            for norm, (weight, pool) in zip(norms, outer):
                norm._sample_weight, norm._pool = weight, pool
            for m, weight in zip(weighted, outer_weighted):
                if weight is None:
                    m.__dict__.pop("batch_sample_weight", None)
                else:
                    m.batch_sample_weight = weight


def weighted_batches(batches):
    """``(input, sample_weight)`` for each item of ``batches`` (inputs, or such pairs):
    unit weights where none are given."""
    for batch in batches:
        X, sample_weight = batch if isinstance(batch, tuple) else (batch, None)
        if sample_weight is None:
            sample_weight = torch.ones(X.shape[0], dtype=X.dtype, device=X.device)
        yield X, sample_weight


@torch.no_grad()
def recalibrate_batch_norms(module, batches):
    """Re-estimate every batch norm's statistics inside ``module`` with one pass over
    ``batches`` (inputs, or ``(input, sample_weight)`` pairs): the pooled (weighted)
    moments of the whole pass, as if it were one batch (:class:`PooledMoments`)."""
    norms = _batch_norms(module)
    was_training = module.training
    module.eval()  # hard masks, no dropout: only the batch norms gather statistics
    for norm in norms:
        norm.reset_running_stats()
        norm.train()
    pools, n_batches = {}, 0
    for X, sample_weight in weighted_batches(batches):
        with sample_weighted(module, sample_weight, pools=pools):
            module(X)
        n_batches += 1
    for norm, pool in pools.items():
        if norm.running_mean is None:  # track_running_stats=False: batch statistics only
            continue
        if pool.weight is not None and pool.weight > 0:
            norm.running_mean.copy_(pool.mean)
            norm.running_var.copy_(pool.var(unbiased=True))
            norm.num_batches_tracked.fill_(n_batches)
    module.train(was_training)


class PrunedWeight(NamedTuple):
    """A real-weight layer's weight, read the same way whether or not
    ``torch.nn.utils.prune`` has reparametrised it (see :func:`pruned_weight`)."""

    trained: torch.Tensor
    """The parameter the optimiser updates: ``weight_orig`` once pruned, else ``weight``."""
    mask: torch.Tensor = None
    """prune's ``weight_mask`` (1 where a weight survives), or None when not pruned."""

    def applied(self):
        """The weight the forward pass uses: ``trained * mask`` once pruned."""
        return self.trained if self.mask is None else self.trained * self.mask

    def alive(self):
        """Boolean mask of the weights pruning has not removed (all, when not pruned)."""
        return torch.ones_like(self.trained, dtype=torch.bool) if self.mask is None \
            else self.mask.bool()


def pruned_weight(layer):
    """The :class:`PrunedWeight` of an ``nn.Linear``/``nn.Conv2d``: the one place that
    knows how ``torch.nn.utils.prune`` stores a pruned weight (``weight_orig`` and
    ``weight_mask``; ``weight`` is then recomputed at each forward pass)."""
    if hasattr(layer, "weight_mask"):
        return PrunedWeight(layer.weight_orig, layer.weight_mask)
    return PrunedWeight(layer.weight)


def dense_connection(layer):
    """``(weight, mask)`` of a real-weight layer; a layer pruned with
    ``torch.nn.utils.prune`` reports its pruning mask, otherwise the mask is ``w != 0``."""
    weight = pruned_weight(layer)
    applied = weight.applied().detach()
    return applied, (applied != 0 if weight.mask is None else weight.alive().detach())
