"""Mask rules: how real edge scores become a {0,1} mask, and what gradient they get.

One small class per rule of the mask-learning literature, behind one seam, in the way
``torch.nn.utils.prune`` has one ``compute_mask`` per pruning method. A rule is a
scikit-learn-style object (``get_params``/``set_params``), so ``GridSearchCV`` can search
``mask_rule__temperature`` on an estimator. The layers (:class:`ScoredMask`) own the scores
and the sign geometry; a rule only maps a score tensor to a mask:

- :meth:`MaskRule.init_scores` fills the scores of one layer;
- :meth:`MaskRule.train_mask` is the mask used while training, with its gradient;
- :meth:`MaskRule.hard_mask` is the boolean mask used for prediction and export;
- :meth:`MaskRule.schedule` is called at the start of every epoch (temperature annealing).

A rule with ``scores_per_edge = 1`` on a paired layer (the signed rule) has one score for an
edge's two twin lines and returns the signed weight ``M₊ - M₋`` from :meth:`train_mask`;
its :meth:`hard_mask` still gives both lines, so ``coefs_`` is {0,1} for every rule.
"""

import math
from abc import ABCMeta, abstractmethod
from numbers import Real

import torch
from sklearn.base import BaseEstimator, clone
from sklearn.utils._param_validation import Interval, StrOptions

from .._inference import fold_paired
from ._surrogate import paired_straight_through, straight_through_mask


def _top_k_shift(scores, density):
    """``scores`` shifted so that exactly ``round(density * n)`` (at least one) are > 0."""
    n = scores.numel()
    k = min(n, max(1, round(density * n)))
    if k == n:
        return scores - (scores.detach().min() - 1.0)
    return scores - torch.kthvalue(scores.detach().flatten(), n - k).values


_POSITIVE = Interval(Real, 0, math.inf, closed="neither")  # finite and > 0
_OPEN_FRACTION = Interval(Real, 0, 1, closed="neither")
_FRACTION = Interval(Real, 0, 1, closed="right")


class MaskRule(BaseEstimator, metaclass=ABCMeta):
    """Base class of the mask rules.

    A subclass stores its hyper-parameters in ``__init__`` (scikit-learn style) and
    declares their ``_parameter_constraints`` (checked by :meth:`validate`) and implements
    :meth:`init_scores`, :meth:`train_mask` and :meth:`hard_mask`; it may
    implement :meth:`schedule` and list in ``continuable_params`` the parameters a warm
    start may change. A network holds one fitted copy of its rule (see :func:`make_rule`);
    run-time state of that copy (the current temperature, the sampling generator) has a
    trailing underscore.

    Attributes
    ----------
    name : str
        The string that selects the rule (``mask_rule="..."``).
    scores_per_edge : {1, 2}
        Scores per (input, output) pair on a paired layer: 2 (one per line, each twin
        learned apart) or 1 (one score gives both twins).
    trains_scores : bool
        False for rules whose scores never move.
    continuable_params : tuple of str
        Parameters that ``warm_start``/``partial_fit`` may change.
    """

    name = None
    scores_per_edge = 2
    trains_scores = True
    continuable_params = ()

    _parameter_constraints = {}

    def validate(self):
        """Raise ``ValueError`` for an invalid parameter (called once, at fit)."""
        self._validate_params()

    @abstractmethod
    def init_scores(self, scores, generator=None):
        """Fill ``scores`` (a layer's score tensor, shape ``(out, lines, *kernel)``) in place."""

    @abstractmethod
    def train_mask(self, scores):
        """The training-time {0,1} float mask of ``scores``, differentiable in ``scores``."""

    @abstractmethod
    def hard_mask(self, scores):
        """The boolean mask used for prediction (no gradient), shaped as ``scores``."""

    def paired_weight(self, scores):
        """The training-time signed weight ``M₊ - M₋`` of a paired layer's ``scores``,
        shaped ``(out, in, *kernel)``, differentiable in ``scores``.

        By default the fold of :meth:`train_mask` (whose mask is already the signed
        weight for a rule with one score per edge); a rule may compute it with fewer
        operations, to the same values and gradients.
        """
        mask = self.train_mask(scores)
        return mask if self.scores_per_edge == 1 else fold_paired(mask)

    def schedule(self, fraction):
        """Per-epoch update: ``fraction`` is the position of the epoch in the fit (0 at
        the first, 1 at the last), or None where nothing is scheduled (``partial_fit``)."""

    def reseed(self, seed):
        """Seed the rule's random draws (sampling rules); a no-op for the others."""

    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: the live rule keeps its generator
        state.pop("_temperature_copies", None)  # device copies, made again on demand
        generator = state.pop("generator_", None)
        if generator is not None:  # the sampling stream resumes where it was
            state["generator_state_"] = (str(generator.device), generator.get_state())
        return state

    def __setstate__(self, state):
        saved = state.pop("generator_state_", None)
        super().__setstate__(state)
        if saved is not None:
            device, generator_state = saved
            self.generator_ = torch.Generator(device=device)
            self.generator_.set_state(generator_state)


def _normal_init(scores, init_density, score_std, generator):
    # Mean chosen so that P(score > 0) == init_density for N(mean, score_std).
    mean = score_std * torch.special.ndtri(torch.tensor(float(init_density))).item()
    torch.nn.init.normal_(scores, mean=mean, std=score_std, generator=generator)


class _SurrogateRule(MaskRule):
    """What the threshold and Bernoulli rules share: normal initial scores, an optional
    top-k target density, a sigmoid surrogate with an annealed temperature."""

    continuable_params = ("temperature", "final_temperature")

    def __init__(self, *, temperature=1.0, final_temperature=None, init_density=0.25,
                 density=None, score_std=1.0):
        self.temperature = temperature
        self.final_temperature = final_temperature
        self.init_density = init_density
        self.density = density
        self.score_std = score_std

    _parameter_constraints = {
        "temperature": [_POSITIVE], "final_temperature": [_POSITIVE, None],
        "init_density": [_OPEN_FRACTION], "density": [_FRACTION, None],
        "score_std": [_POSITIVE],
    }

    def init_scores(self, scores, generator=None):
        _normal_init(scores, self.init_density, self.score_std, generator)

    def current_temperature(self):
        """The temperature of the current epoch, a 0-d tensor (read inside ``forward``
        as a tensor, so that annealing does not make ``torch.compile`` recompile)."""
        if not hasattr(self, "temperature_"):
            self.temperature_ = torch.tensor(float(self.temperature))
        return self.temperature_

    def temperature_like(self, scores):
        """:meth:`current_temperature` on ``scores``' device and in its dtype.

        The copy is made once and refreshed by :meth:`schedule`, not at every step: a
        copy from the host to a GPU at every forward pass would make each training step
        wait for the device. Under ``torch.compile`` the copy is the graph's.
        """
        temperature = self.current_temperature()
        if torch.compiler.is_compiling() or (temperature.device == scores.device
                                             and temperature.dtype == scores.dtype):
            return temperature
        key = (scores.device, scores.dtype)
        copies = self.__dict__.setdefault("_temperature_copies", {})
        if key not in copies:
            copies[key] = temperature.to(device=scores.device, dtype=scores.dtype)
        return copies[key]

    def schedule(self, fraction):
        end = self.temperature if self.final_temperature is None else self.final_temperature
        value = self.temperature
        if fraction is not None:
            value = self.temperature * (end / self.temperature) ** min(1.0, fraction)
        self.current_temperature().fill_(value)
        self.__dict__.pop("_temperature_copies", None)

    def logits(self, scores):
        """Scores shifted so that the kept edges are exactly those with a positive value."""
        return scores if self.density is None else _top_k_shift(scores, self.density)

    def hard_mask(self, scores):
        with torch.no_grad():
            return self.logits(scores) > 0


class ThresholdRule(_SurrogateRule):
    """``M = 1[s > 0]`` with a sigmoid surrogate gradient (the package's default rule).

    Forward, the hard threshold of the scores; backward, the derivative of
    ``sigmoid(s / T)`` in place of the step's (a straight-through estimator; Bengio et
    al. 2013). With ``density`` set, exactly the top ``density`` fraction of a layer's
    scores is kept (the threshold is their order statistic).

    Parameters
    ----------
    temperature : float, default=1.0
        Surrogate temperature ``T`` at the first epoch.
    final_temperature : float or None, default=None
        Temperature at the last epoch, reached by geometric annealing; None keeps it.
    init_density : float in (0, 1), default=0.25
        Expected fraction of edges (lines, when paired) kept at initialisation.
    density : float in (0, 1] or None, default=None
        Target fraction kept per layer; None learns the density freely.
    score_std : float, default=1.0
        Standard deviation of the initial scores.
    """

    name = "threshold"

    def train_mask(self, scores):
        return straight_through_mask(self.logits(scores), self.temperature_like(scores))

    def paired_weight(self, scores):
        # Under torch.compile the plain fold, which inductor fuses into fewer loops than
        # it makes of the custom function (compiled epochs 0.42 s against 1.1 s on 20,000
        # Fashion-MNIST rows, benchmarks/README.md "Speed"); and a subclass's own mask.
        if (torch.compiler.is_compiling()
                or type(self).train_mask is not ThresholdRule.train_mask):
            return super().paired_weight(scores)
        # the temperature as a number (on the host): no copy to the device, no arithmetic
        # at 1.0
        return paired_straight_through(self.logits(scores), self.current_temperature().item())


class SupermaskRule(_SurrogateRule):
    """Bernoulli supermask (Zhou et al., "Deconstructing Lottery Tickets", NeurIPS 2019).

    While training, each edge is a sample ``M ~ Bernoulli(sigmoid(s / T))`` and the
    gradient is the straight-through ``g * sigmoid'(s / T) / T``. The paper samples at test
    time too; a fitted model here needs one fixed network (its ``coefs_``), so prediction
    uses either the mask of the most likely edges, ``1[sigmoid(s / T) > 1/2]``
    (``predict_mask="expected"``, default), or one sample drawn once from ``random_state``
    (``predict_mask="sample"``), the network the paper's test-time sampling scores on
    average.

    Parameters
    ----------
    temperature, init_density, density, score_std
        As in :class:`ThresholdRule` (``density`` shifts the scores so that the top
        fraction has ``s > 0``, i.e. probability above one half).
    final_temperature : float or None, default=0.1
        Temperature at the last epoch (geometric annealing): the samples sharpen towards
        the mask prediction uses. Chosen on a validation split of the digits training
        part (30 epochs, seeds 0-2): 0.9775 ± 0.0019 against 0.9458 ± 0.0019 with a
        constant temperature; 0.03 gave 0.9749.
    predict_mask : {"expected", "sample"}, default="expected"
        The mask prediction uses (see above).
    """

    name = "supermask"

    def __init__(self, *, temperature=1.0, final_temperature=0.1, init_density=0.25,
                 density=None, score_std=1.0, predict_mask="expected"):
        super().__init__(temperature=temperature, final_temperature=final_temperature,
                         init_density=init_density, density=density, score_std=score_std)
        self.predict_mask = predict_mask

    _parameter_constraints = {**_SurrogateRule._parameter_constraints,
                              "predict_mask": [StrOptions({"expected", "sample"})]}

    def reseed(self, seed):
        self.seed_ = None if seed is None else int(seed)
        self.generator_ = None

    def _generator(self, device):
        seed = getattr(self, "seed_", None)
        if seed is None:
            return None
        generator = getattr(self, "generator_", None)
        if generator is None or generator.device != device:
            generator = self.generator_ = torch.Generator(device=device).manual_seed(seed)
        return generator

    def train_mask(self, scores):
        return straight_through_mask(self.logits(scores), self.temperature_like(scores),
                                     sampling="bernoulli",
                                     generator=self._generator(scores.device))

    def hard_mask(self, scores):
        if self.predict_mask == "expected":
            return super().hard_mask(scores)
        with torch.no_grad():
            seed = getattr(self, "seed_", None)
            # The same sample on every call, in every dtype and on every device: drawn in
            # float32 on the CPU from the seed and the layer's shape (layers of one shape
            # share their uniform draws; their masks differ through their scores).
            generator = torch.Generator().manual_seed(
                (0 if seed is None else seed) + scores.numel())
            p = torch.sigmoid(self.logits(scores) / self.current_temperature())
            uniform = torch.rand(scores.shape, generator=generator)
            return (uniform < p.float().cpu()).to(scores.device)


class _IdentityGradientTopK(torch.autograd.Function):
    """Forward: the {0,1} mask of the ``k`` largest values. Backward: the gradient as is."""

    @staticmethod
    def forward(ctx, values, k):
        n = values.numel()
        mask = torch.zeros_like(values)
        if k >= n:
            return mask.fill_(1.0)
        top = torch.topk(values.flatten(), k, sorted=False).indices
        return mask.view(-1).index_fill_(0, top, 1.0).view_as(values)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, None


class EdgePopupRule(MaskRule):
    """Per-layer top-k with the identity gradient (Ramanujan et al., "What's Hidden in a
    Randomly Weighted Neural Network?", CVPR 2020; allenai/hidden-networks).

    Each layer keeps the ``density`` fraction of its edges (lines, when paired) with the
    largest ``|s|``; the backward pass hands the mask's gradient to ``|s|`` unchanged
    (straight-through). Scores start as in the paper, Kaiming-uniform. Under the mask the
    paper has a fixed signed Kaiming constant per edge: that is ``unit_signs="fixed"``
    here (the per-layer constant is absorbed by the per-unit batch norm); with the default
    ``unit_signs="paired"`` each twin line is ranked on its own, so the sign is learned.

    Parameters
    ----------
    density : float in (0, 1], default=0.5
        The fraction ``k`` of each layer's edges kept.
    """

    name = "edge-popup"

    def __init__(self, *, density=0.5):
        self.density = density

    _parameter_constraints = {"density": [_FRACTION]}

    def init_scores(self, scores, generator=None):
        torch.nn.init.kaiming_uniform_(scores, a=math.sqrt(5), generator=generator)

    def _k(self, scores):
        return min(scores.numel(), max(1, round(self.density * scores.numel())))

    def train_mask(self, scores):
        return _IdentityGradientTopK.apply(scores.abs(), self._k(scores))

    def hard_mask(self, scores):
        with torch.no_grad():
            return _IdentityGradientTopK.apply(scores.abs(), self._k(scores)) > 0


class _SignedIdentity(torch.autograd.Function):
    """Forward: ``1[m > tau] - 1[m < -tau]``. Backward: the gradient as is."""

    @staticmethod
    def forward(ctx, scores, tau):
        # hardshrink keeps m where |m| > tau and gives 0 elsewhere: two passes, not five
        return torch.sign(torch.nn.functional.hardshrink(scores, tau))

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, None


class _SignIdentity(torch.autograd.Function):
    """Forward: ``1[m >= 0] - 1[m < 0]`` (±1, never 0). Backward: the gradient as is."""

    @staticmethod
    def forward(ctx, scores):
        return torch.where(scores >= 0, 1.0, -1.0).to(scores.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output


class SignedSupermaskRule(MaskRule):
    """One score per edge with a learned sign (Koster et al., "Signing the Supermask",
    ICLR 2022; kosnil/signed_supermasks).

    On paired lines ``[h, -h]`` a score ``m`` drives both twins:
    ``M₊ = 1[m > tau]``, ``M₋ = 1[m < -tau]``, so the edge is +1, -1 or absent — half the
    scores, half the optimiser state and half the elementwise work of the two-score
    threshold rule. The gradient is the identity (straight-through), as in the paper.
    Scores start as ``N(0, sigma)`` with ``sigma`` chosen so that a fraction
    ``init_density`` of the edges exceeds ``tau`` in absolute value. Needs
    ``unit_signs="paired"``.

    Parameters
    ----------
    tau : float, default=0.5
        The fixed threshold on ``|m|``.
    init_density : float in (0, 1), default=0.5
        Expected fraction of edges (not lines) present at initialisation.
    """

    name = "signed-supermask"
    scores_per_edge = 1

    def __init__(self, *, tau=0.5, init_density=0.5):
        self.tau = tau
        self.init_density = init_density

    _parameter_constraints = {"tau": [_POSITIVE], "init_density": [_OPEN_FRACTION]}

    def init_scores(self, scores, generator=None):
        # P(|m| > tau) = init_density  <=>  tau / sigma = ndtri(1 - init_density / 2)
        z = torch.special.ndtri(torch.tensor(1.0 - self.init_density / 2.0)).item()
        torch.nn.init.normal_(scores, mean=0.0, std=self.tau / z, generator=generator)

    def train_mask(self, scores):
        """The signed weight ``M₊ - M₋`` (one score per edge), identity gradient."""
        return _SignedIdentity.apply(scores, self.tau)

    def hard_mask(self, scores):
        """Both twin lines: ``[1[m > tau], 1[m < -tau]]`` along the input axis."""
        with torch.no_grad():
            return torch.cat([scores > self.tau, scores < -self.tau], dim=1)


class FrozenRule(MaskRule):
    """A random mask that never moves: ``1[s > 0]`` for scores drawn once so that each
    edge (line, when paired) is present with probability ``density``; the scores get no
    gradient. The rule of :class:`~sk_weightfree.RandomNetworkClassifier`'s hidden layers.

    Parameters
    ----------
    density : float in (0, 1], default=0.5
        Probability that each edge exists.
    """

    name = "frozen"
    trains_scores = False

    def __init__(self, *, density=0.5):
        self.density = density

    _parameter_constraints = {"density": [_FRACTION]}

    def init_scores(self, scores, generator=None):
        if self.density >= 1:  # every edge (ndtri(1) is infinite)
            scores.fill_(1.0)
            return
        _normal_init(scores, self.density, 1.0, generator)

    def hard_mask(self, scores):
        with torch.no_grad():
            return scores > 0

    def train_mask(self, scores):
        return self.hard_mask(scores).to(scores.dtype)


class SignRule(MaskRule):
    """Every edge on, its sign learned from one score: ``M₊ = 1[m >= 0]``,
    ``M₋ = 1[m < 0]`` on paired lines, so exactly one of the two twin lines of each edge
    is on. The gradient is the identity (straight-through, as
    :class:`SignedSupermaskRule`'s with ``tau = 0``). With a layer's ``edges`` (a given
    architecture, see :meth:`ScoredMask.restrict_to`) it learns the sign of each edge of
    the architecture and never adds or drops one. Needs ``unit_signs="paired"``.

    Parameters
    ----------
    score_std : float > 0, default=0.1
        Standard deviation of the initial scores ``N(0, score_std)``: each edge starts
        with a random sign.
    """

    name = "sign"
    scores_per_edge = 1

    def __init__(self, *, score_std=0.1):
        self.score_std = score_std

    _parameter_constraints = {"score_std": [_POSITIVE]}

    def init_scores(self, scores, generator=None):
        torch.nn.init.normal_(scores, mean=0.0, std=self.score_std, generator=generator)

    def train_mask(self, scores):
        """The signed weight ``M₊ - M₋`` (±1 on every edge), identity gradient."""
        return _SignIdentity.apply(scores)

    def hard_mask(self, scores):
        """Both twin lines: ``[1[m >= 0], 1[m < 0]]`` along the input axis."""
        with torch.no_grad():
            return torch.cat([scores >= 0, scores < 0], dim=1)


#: Every named rule: ``mask_rule="<name>"`` selects the class with its defaults.
MASK_RULES = {rule.name: rule for rule in (
    ThresholdRule, SupermaskRule, EdgePopupRule, SignedSupermaskRule, FrozenRule)}


#: The rule class each value of the earlier ``sampling`` option stands for.
SAMPLING_RULES = {"threshold": ThresholdRule, "bernoulli": SupermaskRule}


def default_rule():
    """The rule of a network given none (templates, shared-weight networks, a random
    network's trained readout): :class:`ThresholdRule` with ``init_density=0.5``, each
    edge's score starting as likely on as off."""
    return ThresholdRule(init_density=0.5)


def edge_rule(signs):
    """The rule of a layer on a given architecture (``ScoredMask.restrict_to``), by its
    ``signs``: on paired lines each edge's sign is learned (:class:`SignRule`); otherwise
    every edge of the architecture is on and nothing in the mask is learned
    (``FrozenRule(density=1.0)``)."""
    return SignRule() if signs == "paired" else FrozenRule(density=1.0)


def make_rule(rule):
    """A fresh, validated copy of ``rule``: a :class:`MaskRule` instance (cloned, so the
    caller's object is never changed), the name of one in :data:`MASK_RULES`, or None
    for :func:`default_rule`."""
    if rule is None:
        rule = default_rule()
    elif isinstance(rule, str):
        if rule not in MASK_RULES:
            raise ValueError(f"mask_rule must be a MaskRule instance or one of "
                             f"{sorted(MASK_RULES)}; got {rule!r}.")
        rule = MASK_RULES[rule]()
    elif isinstance(rule, MaskRule):
        rule = clone(rule)
    else:
        raise TypeError(f"mask_rule must be a MaskRule instance or one of "
                        f"{sorted(MASK_RULES)}; got {type(rule).__name__}.")
    rule.validate()
    return rule
