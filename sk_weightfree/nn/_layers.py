"""Layers whose connections are {0,1} masks chosen by real-valued edge scores."""

import torch
from torch import nn
from torch.nn import functional as F

from ._surrogate import straight_through_mask


class ScoredMaskLinear(nn.Module):
    """Linear map whose weight matrix is a {0,1} mask chosen by edge scores.

    Every possible edge ``(j, i)`` has a real score; the layer computes ``x @ M.T`` with
    ``M = 1[score > threshold]``. In training mode the mask carries the straight-through
    surrogate gradient of :func:`straight_through_mask`; in eval mode it is the hard mask,
    computed once and cached until the scores change (as ``torch.nn.utils.prune`` keeps a
    mask buffer). The cache is dropped on ``train()``/``eval()`` and ``load_state_dict``
    and follows the scores' version counter; fused optimisers update in place without
    bumping it, so after stepping one while the layer is in eval mode, call ``eval()``
    again.

    With ``paired=True`` the layer sees its input twice, as ``[x, -x]``: the mask has shape
    (out_features, 2 * in_features), columns ``[:in_features]`` are the excitatory lines and
    ``[in_features:]`` their inhibitory twins. Every weight is still 0 or 1, yet each
    (input, output) pair is connected with +1, -1 or 0. The product is computed as
    ``x @ (M₊ - M₋).T``, one matmul of the original size.

    Parameters
    ----------
    in_features, out_features : int
        Layer sizes.
    paired : bool, default=False
        Give every input an inhibitory twin line (see above).
    sampling : {"threshold", "bernoulli"}, default="threshold"
        How the training-time mask is drawn from the scores.
    density : float or None, default=None
        If set, exactly ``round(density * in_features * out_features)`` edges (at least one)
        are kept: the threshold is the matching order statistic of the scores. If None, the
        threshold is 0 and the density is learned freely.
    init_density : float, default=0.5
        Expected fraction of edges present at initialisation (``density=None`` only).
    score_std : float, default=1.0
        Standard deviation of the initial scores.
    generator : torch.Generator, optional
        Random source of the initial scores.
    """

    def __init__(self, in_features, out_features, *, paired=False, sampling="threshold",
                 density=None, init_density=0.5, score_std=1.0, generator=None):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.paired = paired
        self.sampling = sampling
        self.density = density
        # Mean chosen so that P(score > 0) == init_density for N(mean, score_std).
        mean = score_std * torch.special.ndtri(torch.tensor(float(init_density))).item()
        n_lines = 2 * in_features if paired else in_features
        self.scores = nn.Parameter(torch.empty(out_features, n_lines))
        nn.init.normal_(self.scores, mean=mean, std=score_std, generator=generator)
        self.register_buffer("temperature", torch.tensor(1.0))
        self.sample_seed = None  # set to an int to make bernoulli sampling reproducible
        self._sample_generator = None
        self._cached_mask = None  # {"mask"/"weight": (key, tensor)} for inference
        # Fused optimisers update in place without bumping the version counter, so the
        # cache is also dropped whenever the mode changes or a state dict is loaded.
        self._register_load_state_dict_pre_hook(_drop_cached_mask, with_module=True)

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
        """Boolean mask used for prediction, shape (out_features, in_features), or
        (out_features, 2 * in_features) when paired."""
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
        """The (out, in) weight a mask amounts to: the mask, or ``M₊ - M₋`` when paired."""
        if not self.paired:
            return mask
        return mask[:, :self.in_features] - mask[:, self.in_features:]

    def forward(self, x):
        if self._training_mask():
            return F.linear(x, self.signed_weight(self.mask()))
        return F.linear(x, self._cached("weight", lambda: self.signed_weight(self.mask())))

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_sample_generator"] = None  # re-created from sample_seed on demand
        state["_cached_mask"] = None
        return state

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"paired={self.paired}, sampling={self.sampling!r}, density={self.density}")


def _drop_cached_mask(module, *args, **kwargs):
    module._cached_mask = None


def set_temperature(module, value):
    """Set the surrogate temperature of every :class:`ScoredMaskLinear` inside ``module``."""
    for layer in module.modules():
        if isinstance(layer, ScoredMaskLinear):
            layer.temperature.fill_(value)


def set_sample_seed(module, seed):
    """Make Bernoulli sampling reproducible: the ``i``-th scored layer uses ``seed + i``."""
    layers = [m for m in module.modules() if isinstance(m, ScoredMaskLinear)]
    for i, layer in enumerate(layers):
        layer.sample_seed = None if seed is None else int(seed) + i
        layer._sample_generator = None


class PairedInput(nn.Module):
    """``x -> [x, -x]`` along the last axis: each line and its inhibitory twin."""

    def forward(self, x):
        return torch.cat([x, -x], dim=-1)


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
