"""Layers whose connections are {0,1} masks chosen by real-valued edge scores."""

import contextlib
import functools
import math

import torch
from torch import nn
from torch.nn import functional as F

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

    def _signed_rule(self):
        """Whether one score drives both twin lines (the rule's mask is ``M₊ - M₋``)."""
        return self.signs == "paired" and self.rule.scores_per_edge == 1

    def hard_mask(self):
        """Boolean mask used for prediction, shaped ``(out, lines, *kernel)``: the input axis
        doubled to both twin lines when paired, whatever the rule's score layout."""
        mask = self.rule.hard_mask(self.scores)
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
        mask = self.rule.train_mask(self.scores)
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
        return mask[:, :self.n_in] - mask[:, self.n_in:]

    def _training_weight(self):
        mask = self.rule.train_mask(self.scores)
        if self.signs == "fixed":
            return mask * self.edge_signs
        if self._signed_rule():
            return mask  # the rule's signed weight
        return self.signed_weight(mask)

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


def weighted_moments(x, sample_weight):
    """Per-channel mean and (biased) variance of ``x`` with one weight per sample.

    ``x`` is shaped (batch, channels, *spatial): each channel's statistics run over the
    batch and the spatial positions, as a batch norm's. Returns ``(mean, var, count,
    centered)``: ``mean`` and ``var`` of shape (channels,), ``count`` the weight of the
    batch times the positions per sample (the sample size the weights stand for), and
    ``centered = x - mean``. A batch whose weights are all zero has no weighted
    statistics: its unweighted ones are returned with ``count`` 0, so that nothing is
    accumulated from it. In float32 for half-precision ``x``, as torch's batch norm.
    """
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    w = sample_weight.to(x.dtype)
    total = w.sum()
    share = w / total.clamp(min=torch.finfo(x.dtype).tiny)  # all zero: mean 0, variance 0
    per_sample = math.prod(x.shape[2:])
    # the weighted sums as matrix-vector products over the batch (one pass each)
    mean = share @ (x.flatten(2).sum(-1) if x.dim() > 2 else x) / per_sample
    centered = x - mean.view(1, -1, *([1] * (x.dim() - 2)))
    squares = centered.square()
    var = share @ (squares.flatten(2).sum(-1) if x.dim() > 2 else squares) / per_sample
    return mean, var, total * per_sample, centered


class PooledMoments:
    """Mean and variance pooled over batches of weighted moments (Chan's merge).

    ``add(mean, var, count)`` takes one batch's weighted mean, biased variance and count
    (:func:`weighted_moments`); ``mean``, ``var(unbiased)`` give the statistics of all
    batches at once, as if they were one batch.
    """

    def __init__(self):
        self.count = self.mean = self.m2 = None

    def add(self, mean, var, count):
        if self.count is None:
            self.count, self.mean, self.m2 = count, mean * (count > 0), var * count
            return
        total = self.count + count
        share = torch.where(total > 0, count / torch.where(total > 0, total, 1), 0)
        delta = mean - self.mean
        self.mean = self.mean + delta * share
        self.m2 = self.m2 + var * count + delta.square() * self.count * share
        self.count = total

    def var(self, unbiased):
        n = self.count
        if unbiased:  # as torch's running_var; a total weight of 1 or less: the biased one
            n = torch.where(n > 1, n - 1, n)
        return self.m2 / torch.where(n > 0, n, 1)


def _weighted_batch_norm(norm, sample_weight, pool, x):
    """``norm``'s forward pass with batch statistics weighted by ``sample_weight``
    (frequency weights: a weight k counts a sample k times, 0 leaves it out); the
    running statistics are updated as torch does, or gathered into ``pool``."""
    if not norm.training and norm.running_mean is not None:
        return type(norm).forward(norm, x)
    mean, var, count, centered = weighted_moments(x, sample_weight)
    if pool is not None:
        pool.add(mean.detach(), var.detach(), count)
    elif norm.training and norm.track_running_stats:
        with torch.no_grad():
            _update_running_statistics(norm, mean, var, count)
    scale = torch.rsqrt(var + norm.eps)
    shape = (1, -1, *([1] * (x.dim() - 2)))
    if not norm.affine:
        return centered * scale.view(shape)
    return torch.addcmul(norm.bias.view(shape), centered, (scale * norm.weight).view(shape))


def _update_running_statistics(norm, mean, var, count, read_count=None):
    """torch's running-statistics update from weighted moments: the unbiased variance
    counts ``count`` samples (``n / (n - 1)``; no correction for a count of 1 or less),
    and a batch of count 0 changes nothing. ``read_count`` (default: on the CPU) reads the
    count on the host, so that a few large kernels run and no chain of tiny ones."""
    dtype = norm.running_mean.dtype
    if count.device.type == "cpu" if read_count is None else read_count:
        n = float(count)
        if n <= 0:
            return
        norm.num_batches_tracked.add_(1)
        momentum = (1.0 / float(norm.num_batches_tracked) if norm.momentum is None
                    else norm.momentum)
        factor = n / (n - 1) if n > 1 else 1.0
    else:  # no host synchronisation on accelerators
        counted = count > 0
        norm.num_batches_tracked.add_(counted.long())
        momentum = (1.0 / norm.num_batches_tracked.clamp(min=1).to(dtype)
                    if norm.momentum is None else torch.full((), norm.momentum, dtype=dtype,
                                                             device=count.device))
        momentum = torch.where(counted, momentum, 0)
        factor = torch.where(count > 1, count / (count - 1).clamp(min=1e-30), 1.0)
    norm.running_mean.lerp_(mean.to(dtype), momentum)
    norm.running_var.lerp_((var * factor).to(dtype), momentum)


@contextlib.contextmanager
def sample_weighted(module, sample_weight, *, pools=None):
    """Weight the batch statistics of ``module``'s forward passes in the block by
    ``sample_weight`` (one value per sample of the batch; None: no change).

    Every batch norm in training mode (and every
    :class:`~sk_weightfree.nn.SharedValueNetwork` output standardisation) computes its
    batch mean and variance as weighted moments and updates its running statistics with
    them, so that a sample of weight 0 changes nothing and an integer weight ``k`` equals
    repeating the sample ``k`` times (the unbiased running variance counts the weights).
    ``pools`` (a dict, used by :func:`recalibrate_batch_norms`) gathers each norm's pooled
    moments instead of updating its running statistics.
    """
    if sample_weight is None:
        yield
        return
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    weighted = [m for m in module.modules() if hasattr(m, "batch_sample_weight")]
    for norm in norms:
        pool = None if pools is None else pools.setdefault(norm, PooledMoments())
        norm.forward = functools.partial(_weighted_batch_norm, norm, sample_weight, pool)
    for m in weighted:
        m.batch_sample_weight = sample_weight
    try:
        yield
    finally:
        for norm in norms:
            del norm.forward
        for m in weighted:
            del m.batch_sample_weight


@torch.no_grad()
def recalibrate_batch_norms(module, batches):
    """Re-estimate every batch norm's statistics inside ``module`` with one pass over
    ``batches``.

    ``batches`` holds inputs, or ``(input, sample_weight)`` pairs. Unweighted, each
    statistic is the average of the batches' statistics (torch's cumulative average);
    weighted, the pooled weighted moments of the whole pass (:func:`sample_weighted`).
    """
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    was_training = module.training
    momenta = [norm.momentum for norm in norms]
    module.eval()  # hard masks, no dropout: only the batch norms gather statistics
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the pass
        norm.train()
    pools = {}
    for batch in batches:
        X, sample_weight = batch if isinstance(batch, tuple) else (batch, None)
        with sample_weighted(module, sample_weight, pools=pools):
            module(X)
    for norm, pool in pools.items():
        if pool.count is not None and pool.count > 0:
            norm.running_mean.copy_(pool.mean)
            norm.running_var.copy_(pool.var(unbiased=True))
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    module.train(was_training)


def dense_connection(layer):
    """``(weight, mask)`` of a real-weight layer; a layer pruned with
    ``torch.nn.utils.prune`` reports its pruning mask, otherwise the mask is ``w != 0``."""
    if hasattr(layer, "weight_mask"):
        mask = layer.weight_mask.detach().bool()
        return (layer.weight_orig * layer.weight_mask).detach(), mask
    return layer.weight.detach(), layer.weight.detach() != 0
