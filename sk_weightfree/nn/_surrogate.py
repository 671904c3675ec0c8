"""Straight-through {0,1} mask with a sigmoid surrogate gradient."""

import torch

SAMPLING_MODES = ("threshold", "bernoulli")


class _StraightThroughMask(torch.autograd.Function):
    """Forward: a hard {0,1} mask. Backward: the derivative of ``sigmoid(z / T)``."""

    @staticmethod
    def forward(ctx, logits, temperature, sampling, generator):
        # temperature is a tensor: reading it as a Python float would break torch.compile
        ctx.save_for_backward(logits, temperature)
        if sampling == "threshold":
            return (logits > 0).to(logits.dtype)
        probabilities = torch.sigmoid(logits / temperature)
        return torch.bernoulli(probabilities, generator=generator)

    @staticmethod
    def backward(ctx, grad_output):
        logits, t = ctx.saved_tensors
        # d/dz sigmoid(z / t) = s (1 - s) / t; aten's sigmoid_backward computes g s (1 - s)
        # in one fused pass instead of three elementwise passes.
        p = torch.sigmoid(logits / t)
        return torch.ops.aten.sigmoid_backward(grad_output / t, p), None, None, None


def straight_through_mask(logits, temperature=1.0, *, sampling="threshold", generator=None):
    """Hard {0,1} mask from real scores with a straight-through surrogate gradient.

    The forward value is ``1[logits > 0]`` (``sampling="threshold"``) or a sample of
    ``Bernoulli(sigmoid(logits / temperature))`` (``sampling="bernoulli"``). The step has
    zero derivative almost everywhere, so the backward pass returns the derivative of
    ``sigmoid(logits / temperature)`` in its place.

    Parameters
    ----------
    logits : torch.Tensor
        Real-valued edge scores (already shifted by any density threshold).
    temperature : float or 0-d torch.Tensor, default=1.0
        Width of the sigmoid surrogate (> 0); smaller is closer to the step.
    sampling : {"threshold", "bernoulli"}, default="threshold"
        How the forward mask is drawn.
    generator : torch.Generator, optional
        Random source for ``sampling="bernoulli"`` (same device as ``logits``).

    Returns
    -------
    torch.Tensor
        Mask of the same shape and dtype as ``logits``, entries exactly 0.0 or 1.0.
    """
    if sampling not in SAMPLING_MODES:
        raise ValueError(f"sampling must be one of {SAMPLING_MODES}, got {sampling!r}")
    if not isinstance(temperature, torch.Tensor):
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        temperature = torch.tensor(float(temperature))
    temperature = temperature.to(device=logits.device, dtype=logits.dtype)
    return _StraightThroughMask.apply(logits, temperature, sampling, generator)
