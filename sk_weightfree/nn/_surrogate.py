"""Straight-through {0,1} masks with a sigmoid surrogate gradient."""

import math

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


class _PairedStraightThrough(torch.autograd.Function):
    """Forward: the signed weight ``1[z₊ > 0] - 1[z₋ > 0]`` of a paired layer's two
    halves of logits. Backward: each half gets the derivative of ``sigmoid(z / T)``
    times the weight's gradient, with the sign of its line.

    The same values and gradients as :class:`_StraightThroughMask` followed by the fold
    ``M₊ - M₋``, in fewer and lighter operations. The twin lines are compared into floats
    and subtracted (on the CPU 64 µs against 271 µs for comparing into booleans,
    subtracting bytes and converting, on 470,400 scores); the fold's backward (two slice
    gradients filled into zeros and added) becomes one write of both halves into one
    output, the weight's gradient broadcast over the twin axis. ``temperature`` is a
    Python number: 1.0 costs no arithmetic, and no tensor is copied to the device.
    """

    @staticmethod
    def forward(ctx, logits, temperature):
        ctx.save_for_backward(logits)
        ctx.temperature = temperature
        on = torch.gt(logits, 0, out=torch.empty(logits.shape, dtype=logits.dtype,
                                                  device=logits.device))
        twins = _twin_view(on)
        return torch.sub(twins[:, 0], twins[:, 1]).view(_weight_shape(logits))

    @staticmethod
    def backward(ctx, grad_weight):
        (logits,) = ctx.saved_tensors
        t = ctx.temperature
        if t != 1.0:  # divided, as _StraightThroughMask does: the same bits
            out = torch.sigmoid(logits / t)
            grad = grad_weight / t
        else:
            out = torch.sigmoid(logits)
            grad = grad_weight
        # s (1 - s) g written over s: no temporary the size of the scores
        out = out.contiguous()  # a copy only for other layouts (channels_last)
        twins = _twin_view(out)
        torch.ops.aten.sigmoid_backward.grad_input(
            grad.reshape(twins.shape[0], 1, twins.shape[2]), twins, grad_input=twins)
        twins[:, 1].neg_()  # the inhibitory twin's line enters the weight with a minus
        return out, None


def _twin_view(tensor):
    """``tensor`` (contiguous) of shape (out, 2 * in, *kernel) seen as
    (out, 2, in * prod(kernel)): the excitatory lines at [:, 0], their twins at [:, 1]."""
    return tensor.view(tensor.shape[0], 2, math.prod(tensor.shape[1:]) // 2)


def _weight_shape(logits):
    return (logits.shape[0], logits.shape[1] // 2, *logits.shape[2:])


def _positive(temperature):
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    return temperature


def _temperature_tensor(temperature, like):
    if not isinstance(temperature, torch.Tensor):
        temperature = torch.tensor(float(_positive(temperature)))
    return temperature.to(device=like.device, dtype=like.dtype)


def paired_straight_through(logits, temperature=1.0):
    """The signed weight of a paired layer from its two halves of logits, with the
    straight-through sigmoid surrogate gradient of :func:`straight_through_mask`.

    Equal, in value and gradient, to ``fold_paired(straight_through_mask(logits, T))``
    (``sampling="threshold"``): ``W = 1[z₊ > 0] - 1[z₋ > 0]``, where ``z₊`` is the first
    half of ``logits`` along axis 1 (the excitatory lines) and ``z₋`` the second (their
    inhibitory twins), computed with fewer operations.

    Parameters
    ----------
    logits : torch.Tensor of shape (out, 2 * in, *kernel)
        The paired layer's shifted scores.
    temperature : float or 0-d torch.Tensor, default=1.0
        Width of the sigmoid surrogate (> 0); a tensor is read as a number (on a GPU,
        that waits for the device: the estimators pass a number).

    Returns
    -------
    torch.Tensor of shape (out, in, *kernel)
        Entries exactly -1.0, 0.0 or 1.0.
    """
    if logits.shape[1] % 2:
        raise ValueError(f"paired logits need an even axis 1; got shape {tuple(logits.shape)}")
    return _PairedStraightThrough.apply(logits, _positive(float(temperature)))


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
    return _StraightThroughMask.apply(logits, _temperature_tensor(temperature, logits),
                                      sampling, generator)
