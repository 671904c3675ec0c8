"""The surrogate-gradient mask search: its parameters and its temperature schedule."""

from numbers import Real

from sklearn.utils._param_validation import Interval, StrOptions

from ._training import ScheduledCallback
from .nn import set_temperature
from .nn._surrogate import SAMPLING_MODES


class TemperatureSchedule(ScheduledCallback):
    """Anneal the surrogate temperature geometrically from ``start`` to ``end``.

    Sets every :class:`~sk_weightfree.nn.ScoredMaskLinear` at the start of each epoch; the
    position is the epoch within the current ``fit`` call (``partial_fit`` uses ``start``).
    """

    def __init__(self, start, end):
        self.start = start
        self.end = end

    def temperature_at(self, epoch, n_epochs):
        """Temperature of 0-based ``epoch`` out of ``n_epochs``."""
        fraction = min(1.0, epoch / max(1, n_epochs - 1))
        return self.start * (self.end / self.start) ** fraction

    def on_epoch_begin(self, net, **kwargs):
        value = self.start
        if self.active(net):
            value = self.temperature_at(self.epoch_in_call(net), net.epochs_planned_)
        set_temperature(net.module_, value)


class SurrogateSearchMixin:
    """The search's own parameters: sampling and temperature.

    Mixed in by the estimators that search masks with
    :func:`~sk_weightfree.nn.straight_through_mask`.
    """

    _surrogate_constraints = {
        "sampling": [StrOptions(set(SAMPLING_MODES))],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "final_temperature": [Interval(Real, 0, None, closed="neither"), None],
    }

    def _extra_callbacks(self):
        end = self.temperature if self.final_temperature is None else self.final_temperature
        return [("temperature", TemperatureSchedule(self.temperature, end))]
