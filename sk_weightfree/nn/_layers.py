"""Layers whose connections are {0,1} masks chosen by real-valued edge scores."""

import torch
from torch import nn
from torch.nn import functional as F

from ._surrogate import straight_through_mask


class ScoredMask(nn.Module):
    """Base of the layers whose weight is a {0,1} mask chosen by real edge scores.

    Every possible edge has a real score; the layer's weight is ``M = 1[score > threshold]``.
    In training mode the mask carries the straight-through surrogate gradient of
    :func:`straight_through_mask`; in eval mode it is the hard mask, computed once and
    cached until the scores change (as ``torch.nn.utils.prune`` keeps a mask buffer). The
    cache is dropped on ``train()``/``eval()`` and ``load_state_dict`` and follows the
    scores' version counter; fused optimisers update in place without bumping it, so after
    stepping one while the layer is in eval mode, call ``eval()`` again.

    With ``paired=True`` the layer sees its input twice, as ``[x, -x]`` (features, or
    channels for a convolution): the mask's second axis doubles, ``[:n_in]`` are the
    excitatory lines and ``[n_in:]`` their inhibitory twins. Every weight is still 0 or 1,
    yet each (input, output) pair is connected with +1, -1 or 0. The product uses the
    signed weight ``M₊ - M₋``, one operation of the original size.

    Subclasses set the geometry and implement :meth:`_apply` (the linear map of a weight).
    """

    def __init__(self, n_out, n_in, kernel_size=(), *, paired=False, sampling="threshold",
                 density=None, init_density=0.5, score_std=1.0, generator=None):
        super().__init__()
        self.paired = paired
        self.sampling = sampling
        self.density = density
        # Mean chosen so that P(score > 0) == init_density for N(mean, score_std).
        mean = score_std * torch.special.ndtri(torch.tensor(float(init_density))).item()
        n_lines = 2 * n_in if paired else n_in
        self.scores = nn.Parameter(torch.empty(n_out, n_lines, *kernel_size))
        nn.init.normal_(self.scores, mean=mean, std=score_std, generator=generator)
        self.register_buffer("temperature", torch.tensor(1.0))
        self.sample_seed = None  # set to an int to make bernoulli sampling reproducible
        self._sample_generator = None
        self._cached_mask = None  # {"mask"/"weight": (key, tensor)} for inference
        # Fused optimisers update in place without bumping the version counter, so the
        # cache is also dropped whenever the mode changes or a state dict is loaded.
        self._register_load_state_dict_pre_hook(_drop_cached_mask, with_module=True)

    @property
    def n_in(self):
        """Inputs (features or channels) before pairing."""
        return self.scores.shape[1] // 2 if self.paired else self.scores.shape[1]

    def logits(self):
        """Scores shifted so that the kept edges are exactly those with a positive value."""
        if self.density is None:
            return self.scores
        n = self.scores.numel()
        k = min(n, max(1, round(self.density * n)))
        if k == n:
            return self.scores - (self.scores.detach().min() - 1.0)
        threshold = torch.kthvalue(self.scores.detach().flatten(), n - k).values
        return self.scores - threshold

    def hard_mask(self):
        """Boolean mask used for prediction, shaped as ``scores``."""
        with torch.no_grad():
            return self.logits() > 0

    def _generator(self):
        device = self.scores.device
        if self.sample_seed is None:
            return None
        if self._sample_generator is None or self._sample_generator.device != device:
            self._sample_generator = torch.Generator(device=device).manual_seed(self.sample_seed)
        return self._sample_generator

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
        """{0,1} float mask: surrogate-differentiable when training with gradients on,
        the hard mask otherwise (eval mode, ``torch.no_grad()``, frozen scores)."""
        if self._training_mask():
            return straight_through_mask(self.logits(), self.temperature,
                                         sampling=self.sampling, generator=self._generator())
        return self._cached("mask", lambda: self.hard_mask().to(self.scores.dtype))

    def train(self, mode=True):
        self._cached_mask = None
        return super().train(mode)

    def signed_weight(self, mask):
        """The weight a mask amounts to: the mask, or ``M₊ - M₋`` when paired."""
        if not self.paired:
            return mask
        return mask[:, :self.n_in] - mask[:, self.n_in:]

    def effective_weight(self):
        """The weight the layer applies (surrogate-differentiable while training)."""
        if self._training_mask():
            return self.signed_weight(self.mask())
        return self._cached("weight", lambda: self.signed_weight(self.mask()))

    def forward(self, x):
        return self._apply_weight(x, self.effective_weight())

    def to_plain(self):
        """A plain torch layer without bias whose weight is the hard {0,1} mask (its
        input doubled to ``[x, -x]`` when paired, which :class:`PairedInput` provides)."""
        mask = self.hard_mask()
        plain = self._plain_layer(mask.shape[1], mask.shape[0], mask.device)
        with torch.no_grad():
            plain.weight.copy_(mask.to(plain.weight.dtype))
        return plain

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_sample_generator"] = None  # re-created from sample_seed on demand
        state["_cached_mask"] = None
        return state


class ScoredMaskLinear(ScoredMask):
    """Linear map ``x @ M.T`` whose weight matrix is a {0,1} mask chosen by edge scores.

    See :class:`ScoredMask` for the mask, its cache and the paired lines; the mask has
    shape (out_features, in_features), or (out_features, 2 * in_features) when paired.

    Parameters
    ----------
    in_features, out_features : int
        Layer sizes.
    paired : bool, default=False
        Give every input an inhibitory twin line.
    sampling : {"threshold", "bernoulli"}, default="threshold"
        How the training-time mask is drawn from the scores.
    density : float or None, default=None
        If set, exactly ``round(density * n_edges)`` edges (at least one) are kept: the
        threshold is the matching order statistic of the scores. If None, the threshold is
        0 and the density is learned freely.
    init_density : float, default=0.5
        Expected fraction of edges present at initialisation (``density=None`` only).
    score_std : float, default=1.0
        Standard deviation of the initial scores.
    generator : torch.Generator, optional
        Random source of the initial scores.
    """

    def __init__(self, in_features, out_features, *, paired=False, sampling="threshold",
                 density=None, init_density=0.5, score_std=1.0, generator=None):
        super().__init__(out_features, in_features, paired=paired, sampling=sampling,
                         density=density, init_density=init_density, score_std=score_std,
                         generator=generator)
        self.in_features = in_features
        self.out_features = out_features

    def _apply_weight(self, x, weight):
        return F.linear(x, weight)

    def _plain_layer(self, n_in, n_out, device):
        return nn.Linear(n_in, n_out, bias=False, device=device)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"paired={self.paired}, sampling={self.sampling!r}, density={self.density}")


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
    paired, sampling, density, init_density, score_std, generator
        As in :class:`ScoredMaskLinear`.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, *, paired=False, sampling="threshold", density=None,
                 init_density=0.5, score_std=1.0, generator=None):
        kernel_size = nn.modules.utils._pair(kernel_size)
        super().__init__(out_channels, in_channels, kernel_size, paired=paired,
                         sampling=sampling, density=density, init_density=init_density,
                         score_std=score_std, generator=generator)
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
                f"paired={self.paired}, sampling={self.sampling!r}, density={self.density}")


def _drop_cached_mask(module, *args, **kwargs):
    module._cached_mask = None


def set_temperature(module, value):
    """Set the surrogate temperature of every :class:`ScoredMask` layer inside ``module``."""
    for layer in module.modules():
        if isinstance(layer, ScoredMask):
            layer.temperature.fill_(value)


def set_sample_seed(module, seed):
    """Make Bernoulli sampling reproducible: the ``i``-th scored layer uses ``seed + i``."""
    layers = [m for m in module.modules() if isinstance(m, ScoredMask)]
    for i, layer in enumerate(layers):
        layer.sample_seed = None if seed is None else int(seed) + i
        layer._sample_generator = None


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


def random_signs(n, generator):
    """``n`` random ±1 values drawn from ``generator``."""
    return torch.randint(0, 2, (n,), generator=generator).float() * 2.0 - 1.0


def batch_norm_affine(norm):
    """An eval-mode batch norm as ``z * scale + offset``, in float64."""
    weight = torch.ones_like(norm.running_var) if norm.weight is None else norm.weight
    bias = torch.zeros_like(norm.running_var) if norm.bias is None else norm.bias
    scale = weight.detach().double() / torch.sqrt(norm.running_var.double() + norm.eps)
    return scale, bias.detach().double() - norm.running_mean.double() * scale


@torch.no_grad()
def recalibrate_batch_norms(module, batches):
    """Re-estimate every batch norm's statistics inside ``module`` with one pass over
    ``batches`` (an iterable of inputs), as a cumulative average."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    was_training = module.training
    momenta = [norm.momentum for norm in norms]
    module.eval()  # hard masks, no dropout: only the batch norms gather statistics
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the pass
        norm.train()
    for X in batches:
        module(X)
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
