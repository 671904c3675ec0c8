"""How many torch intra-op threads a fit uses, set for the fit and restored after."""

import contextlib
import math

#: Multiply-accumulates per training step below which a fit runs on one thread. On 2
#: quiet x86-64 cores (``benchmarks/threads.py``, ``benchmarks/speed.py``) a second
#: thread never paid below it in whole fits on 1,797 rows (up to 1.36x slower; 4-13 %
#: faster per epoch on the default digits fit in other runs), while beside one busy
#: process it made the default digits fit 2-2.5x slower. Above it runs disagreed (on
#: 1,797 rows two threads were 1.07-1.27x slower at 9-14 M and level at 34 M; epochs on
#: 4,000 to 20,000 rows were 0.65-0.78x at 10-30 M): torch's setting is kept there.
SMALL_STEP_WORK = 8_000_000


def step_work(module, batch_size):
    """Multiply-accumulates of one forward pass over a batch, counted on the weights.

    Each weight of a linear layer is used once per sample; a convolution's weight is used
    at every output position, which is not known before a forward pass, so it counts once
    too (a lower bound: convolutional networks are counted as smaller than they are).
    Paired layers count their folded weight, the one the product uses.
    """
    from .nn import ScoredMask
    from .nn._templates import WEIGHT_LAYERS

    total = 0
    for layer in module.modules():
        if isinstance(layer, ScoredMask):
            total += math.prod(layer.edge_shape)
        elif isinstance(layer, WEIGHT_LAYERS):
            total += layer.weight.numel()
    return batch_size * total


def fit_threads(n_threads, work):
    """The intra-op threads of a fit.

    Parameters
    ----------
    n_threads : int or None
        The estimator's ``n_threads``: an int is used as it is; None chooses from the
        work: one thread for a step under :data:`SMALL_STEP_WORK`, otherwise torch's
        current setting (which ``torch.set_num_threads``, ``OMP_NUM_THREADS``,
        ``threadpoolctl`` and joblib's workers lower).
    work : int
        Multiply-accumulates per training step (:func:`step_work`).
    """
    import torch

    if n_threads is not None:
        return int(n_threads)
    return 1 if work < SMALL_STEP_WORK else torch.get_num_threads()


@contextlib.contextmanager
def torch_threads(n):
    """Run the block with ``n`` torch intra-op threads (None: as they are), then restore
    the previous setting, as ``threadpoolctl`` limits a BLAS."""
    if n is None:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    if n != previous:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)
