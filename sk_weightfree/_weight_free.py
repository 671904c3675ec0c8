"""{0,1} weights, the architecture found by surrogate gradients: WeightFreeClassifier and
WeightFreeRegressor."""

from numbers import Real

from sklearn.utils._param_validation import Interval, StrOptions

from ._base import BaseNetwork, ClassifierHeadMixin, RegressorHeadMixin, store_params
from ._dense import shared_attributes
from ._search import DEPRECATED, MaskRuleMixin
from .nn import (UNIT_SIGN_MODES, TemplateNetwork, WeightFreeMLP, layer_signs,
                 make_rule, unit_sign_mode, weight_free_from_template)
from .nn._rules import edge_rule

_WEIGHT_FREE_DESCRIPTION = """What is learned is the architecture: which edges exist. Each possible edge has a real
    score; a *mask rule* (``mask_rule``) turns the scores into the {0,1} weights and gives
    them a gradient. The default, ``"threshold"``, uses ``1[θ > 0]`` forward and the
    derivative of ``sigmoid(θ / T)`` backward (a straight-through surrogate gradient);
    ``"supermask"`` samples ``Bernoulli(sigmoid(θ / T))`` (Zhou et al. 2019),
    ``"edge-popup"`` keeps each layer's top ``density`` fraction (Ramanujan et al. 2020),
    ``"signed-supermask"`` learns each edge's sign from one score (Koster et al. 2022).
    Prediction always uses the rule's hard mask. Real values belong only to units: every
    layer has a batch normalisation with a per-unit scale and shift (``unit_scales_``,
    ``intercepts_``).

    By default (``unit_signs="paired"``) every layer sees its input twice, as ``[h, -h]``:
    each line has an inhibitory twin, so the {0,1} mask connects each pair of units with
    +1, -1 or 0 — a sign per edge with no real-valued link."""

_WEIGHT_FREE_PARAMETERS = """hidden_layer_sizes, activation, max_epochs, batch_size, shuffle, optimizer, \
momentum, nesterovs_momentum, beta_1, beta_2, device, random_state, verbose, warm_start, \
early_stopping, validation_fraction, n_iter_no_change, tol, precision, torch_compile, n_threads, module, \
input_shape, callbacks
        As in :class:`DenseClassifier` (``batch_size`` must be at least 2 for the batch
        normalisation).
    lr : float, default=0.05
        Learning rate of the edge scores (and the per-unit normalisation parameters).
    alpha : float >= 0, default=0.0
        L2 penalty as in :class:`DenseClassifier`, on the edge scores: ``||W||²`` is the
        sum of the squares of every score the masks are chosen from (in the mask rule's
        layout), which pulls them towards 0. The batch normalisations' scales and shifts
        are not penalised.
    lr_schedule : {"constant", "cosine"}, default="constant"
    mask_rule : str or MaskRule, default="threshold"
        How edge scores become the {0,1} mask and get their gradient: a name of
        :data:`sk_weightfree.nn.MASK_RULES` (``"threshold"``, ``"supermask"``,
        ``"edge-popup"``, ``"signed-supermask"``), each standing for its class with its
        defaults, or a :class:`~sk_weightfree.nn.MaskRule` instance (its parameters are
        searchable as ``mask_rule__<name>``; the instance itself is never modified).
        The default is ``ThresholdRule(temperature=1.0, final_temperature=None,
        init_density=0.25)``.
    density : float in (0, 1] or None, default=None
        If set, the rule's target fraction of each layer's edges to keep (the top-scoring
        ones): a shorthand for the rule's own ``density`` (``"edge-popup"``: its ``k``).
        None keeps the rule's setting (the threshold rule learns the density freely).
    sampling, temperature, final_temperature, init_density : deprecated
        Earlier spellings of the mask rule's parameters; setting one warns and sets the
        rule's parameter of the same name (``sampling="bernoulli"`` selects
        ``"supermask"``). Removed in 0.5.
    unit_signs : {"paired", "fixed", "random", "none"}, default="paired"
        How edges get signs. "paired": each layer sees ``[h, -h]`` (``coefs_[i]`` has
        ``2 * n_in`` rows: rows ``[:n_in]`` are the excitatory lines, rows ``[n_in:]`` their
        inhibitory twins), so each edge's sign is learned. "fixed": the same layout, but
        each edge's sign is drawn at random once and only the twin line of that sign can
        be on (the signed-constant baseline of Zhou et al. and Ramanujan et al.).
        "random": one fixed random ±1 per hidden unit (``unit_signs_``).
        "none": only the batch-norm scales, whose signs are learned. ``True``/``False`` are
        accepted for "random"/"none". With a ``module`` template, every ``nn.Linear`` and
        ``nn.Conv2d`` becomes a {0,1}-masked layer followed by a batch norm, its input
        paired (channels, for a convolution) unless "none"; "random" is for the
        multilayer network only. The ``"signed-supermask"`` rule needs "paired".
    architecture : list of ndarray of bool, default=None
        The edges to train on, as in :class:`DenseClassifier`; None searches them. Given,
        the network keeps exactly these edges: with ``unit_signs="paired"`` each edge's
        sign is learned (one score per edge, :class:`~sk_weightfree.nn.SignRule`, so that
        exactly one of its two twin lines is on); with "fixed", "random" or "none"
        nothing in the mask is learned (only the per-unit parameters train).
        ``mask_rule`` and ``density`` are then not used (``mask_rule_`` is the rule
        used)."""

_ZERO_ONE_COEFS = """coefs_ : list of ndarray of shape (n_in, n_out), or (2 * n_in, n_out) when paired
        Exactly 0.0 or 1.0.
    paired_inputs_ : bool
        Whether each layer saw ``[h, -h]`` (``unit_signs`` "paired" or "fixed")."""
_UNIT_ARRAYS = """unit_scales_ : list of ndarray of shape (n_out,)
        Per layer, the fitted batch norm's scale: layer ``i`` computes
        ``(a @ coefs_[i]) * unit_scales_[i] + intercepts_[i]`` (``a`` doubled to ``[a, -a]``
        when paired); hidden layers then apply the activation (and ``unit_signs_``).
    unit_signs_ : list of ndarray of shape (n_units,)
        Only with ``unit_signs="random"``: the fixed ±1 of each hidden unit."""
_WEIGHT_FREE_ATTRIBUTES = shared_attributes(f"""{_ZERO_ONE_COEFS}
    mask_rule_ : MaskRule
        The rule the network was fitted with (``mask_rule`` with ``density`` applied).
    {_UNIT_ARRAYS}""")
#: A {0,1} network without a mask search (RandomNetwork*): no ``mask_rule_``.
_ZERO_ONE_ATTRIBUTES = shared_attributes(f"""{_ZERO_ONE_COEFS}
    {_UNIT_ARRAYS}""")


def _check_template_signs(estimator):
    if estimator.module is not None and unit_sign_mode(estimator.unit_signs) == "random":
        raise ValueError(
            f"unit_signs={estimator.unit_signs!r} (a random sign after each hidden "
            f"activation) is for the multilayer network; with a module template use "
            f"'paired' (the default) or 'none'."
        )


class _WeightFreeBase(MaskRuleMixin, BaseNetwork):
    _parameter_constraints = {
        **BaseNetwork._parameter_constraints,
        **MaskRuleMixin._surrogate_constraints,
        "density": [Interval(Real, 0, 1, closed="right"), None],
        "unit_signs": [StrOptions(set(UNIT_SIGN_MODES)), "boolean"],
    }
    # the deprecated spellings of the rule's temperatures may change in a warm start, as
    # the rule's own (density, the rule's target, takes a fresh fit)
    _CONTINUABLE_PARAMS = BaseNetwork._CONTINUABLE_PARAMS | {
        "temperature", "final_temperature"}

    def _check_params(self):
        _check_template_signs(self)
        rule = self._make_mask_rule()
        if self.architecture is not None:  # the edges are given: only their signs learn
            rule = edge_rule(layer_signs(unit_sign_mode(self.unit_signs)))
        return {**super()._check_params(), "mask_rule_": rule}

    def _build_module(self, n_features, n_outputs, generator):
        rule = make_rule(self.mask_rule_)  # the network's own copy, with run-time state
        rule.reseed(self._sample_seed)
        if self.module is not None:
            module = TemplateNetwork(weight_free_from_template(
                self._template(n_features, n_outputs, generator),
                signs=layer_signs(unit_sign_mode(self.unit_signs)), rule=rule,
                generator=generator), self._input_shape)
        else:
            module = WeightFreeMLP(n_features, self._hidden_sizes, n_outputs,
                                   activation=self.activation, rule=rule,
                                   unit_signs=self.unit_signs, generator=generator)
        if self.architecture is not None:
            restrict_to_architecture(self, module.scored_layers())
        return module


def restrict_to_architecture(estimator, layers):
    """Keep each scored layer on its edges of ``estimator.architecture`` (checked
    against the layers' shapes: a ``ValueError`` naming the layer)."""
    edges = estimator._architecture_edges([layer.edge_shape for layer in layers])
    for layer, layer_edges in zip(layers, edges):
        layer.restrict_to(layer_edges)


class WeightFreeClassifier(ClassifierHeadMixin, _WeightFreeBase):
    __doc__ = f"""Multilayer network whose every connection weight is exactly 0 or 1.

    {_WEIGHT_FREE_DESCRIPTION}

    Parameters
    ----------
    {_WEIGHT_FREE_PARAMETERS}
    class_weight : dict, "balanced" or None, default=None
        As in :class:`DenseClassifier`.

    Attributes
    ----------
    {_WEIGHT_FREE_ATTRIBUTES}

    See Also
    --------
    WeightFreeRegressor : the same search for regression.
    RandomNetworkClassifier : {{0,1}} weights with a random, unsearched structure.
    WeightAgnosticClassifier : one shared weight value on every kept edge.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_weightfree import WeightFreeClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = WeightFreeClassifier(max_epochs=5, random_state=0).fit(X, y)
    >>> sorted({{float(v) for c in clf.coefs_ for v in c.ravel()}})
    [0.0, 1.0]
    """

    _parameter_constraints = {**_WeightFreeBase._parameter_constraints,
                              **ClassifierHeadMixin._head_constraints}

    def __init__(self, hidden_layer_sizes=(300, 100), activation="relu", *, max_epochs=30,
                 batch_size=128, shuffle=True, lr=0.05, alpha=0.0, optimizer="adam",
                 lr_schedule="constant", momentum=0.9, nesterovs_momentum=True, beta_1=0.9,
                 beta_2=0.999, device="auto", random_state=None, verbose=0, warm_start=False,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=10,
                 tol=1e-4, precision="float32", torch_compile=False, n_threads=None,
                 module=None,
                 input_shape=None, callbacks=None, architecture=None,
                 mask_rule="threshold", density=None,
                 unit_signs="paired", sampling=DEPRECATED, temperature=DEPRECATED,
                 final_temperature=DEPRECATED, init_density=DEPRECATED, class_weight=None):
        store_params(self, locals())


class WeightFreeRegressor(RegressorHeadMixin, _WeightFreeBase):
    __doc__ = f"""Multilayer network with every connection weight 0 or 1, for regression.

    {_WEIGHT_FREE_DESCRIPTION}

    Targets are standardised inside ``fit`` and predictions mapped back (folded into the
    last layer's ``unit_scales_``/``intercepts_``); ``score`` is R².

    Parameters
    ----------
    {_WEIGHT_FREE_PARAMETERS}
    loss : {{"squared_error", "absolute_error", "huber"}}, default="squared_error"
        As in :class:`DenseRegressor`.

    Attributes
    ----------
    {_WEIGHT_FREE_ATTRIBUTES}

    See Also
    --------
    WeightFreeClassifier : the same search for classification.
    """

    _parameter_constraints = {**_WeightFreeBase._parameter_constraints,
                              **RegressorHeadMixin._head_constraints}

    def __init__(self, hidden_layer_sizes=(300, 100), activation="relu", *, max_epochs=30,
                 batch_size=128, shuffle=True, lr=0.05, alpha=0.0, optimizer="adam",
                 lr_schedule="constant", momentum=0.9, nesterovs_momentum=True, beta_1=0.9,
                 beta_2=0.999, device="auto", random_state=None, verbose=0, warm_start=False,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=10,
                 tol=1e-4, precision="float32", torch_compile=False, n_threads=None,
                 module=None,
                 input_shape=None, callbacks=None, architecture=None,
                 mask_rule="threshold", density=None,
                 unit_signs="paired", sampling=DEPRECATED, temperature=DEPRECATED,
                 final_temperature=DEPRECATED, init_density=DEPRECATED, loss="squared_error"):
        store_params(self, locals())
