"""{0,1} weights on a random, unsearched structure: RandomNetworkClassifier and
RandomNetworkRegressor."""

from numbers import Real

from sklearn.utils._param_validation import Interval, StrOptions

from ._base import BaseNetwork, ClassifierHeadMixin, RegressorHeadMixin, store_params
from ._weight_free import _ZERO_ONE_ATTRIBUTES, _check_template_signs, restrict_to_architecture
from .nn import (UNIT_SIGN_MODES, FrozenRule, TemplateNetwork, WeightFreeMLP, layer_signs,
                 unit_sign_mode, weight_free_from_template)
from .nn._rules import default_rule, edge_rule

_RANDOM_DESCRIPTION = """The hidden structure is never searched. With ``train_readout=True`` the output layer's
    {0,1} mask is searched with the surrogate method of :class:`WeightFreeClassifier` and the
    per-unit normalisation parameters are trained as there, so the only difference from
    :class:`WeightFreeClassifier` is the hidden-structure search (``unit_signs`` has the
    same meaning and default). With ``train_readout=False`` nothing is trained (a
    chance-level reference); the normalisation statistics are still estimated from the
    data."""

_RANDOM_PARAMETERS = """hidden_layer_sizes, activation, max_epochs, batch_size, shuffle, lr, alpha, optimizer, \
lr_schedule, momentum, nesterovs_momentum, beta_1, beta_2, device, random_state, verbose, \
warm_start, early_stopping, validation_fraction, n_iter_no_change, tol, precision, torch_compile, n_threads, \
module, input_shape, callbacks, unit_signs
        As in :class:`WeightFreeClassifier`; ``alpha`` penalises the scores of the output
        layer (the only edge scores trained), and has no effect with
        ``train_readout=False``.
    density : float in (0, 1], default=0.5
        Probability that each hidden-layer edge (line, when paired) exists.
    train_readout : bool, default=True
        Search the output layer's mask (and train unit normalisation parameters). With a
        ``module`` template, the output layer is its last weight layer.
    architecture : list of ndarray of bool, default=None
        The edges, as in :class:`DenseClassifier`, instead of edges drawn with
        ``density``: "the architecture with weights that were never trained". With
        ``unit_signs="paired"`` each edge gets a frozen random sign (exactly one of its
        two twin lines on, drawn from ``random_state``), so that ``coefs_`` stays 0/1;
        the per-unit normalisation parameters and, with ``train_readout=True``, the
        output layer's edge signs are learned as in
        ``WeightFreeClassifier(architecture=...)``. With "fixed", "random" or "none" the
        edges are on and only the per-unit parameters train. ``density`` is then not
        used."""


class _RandomBase(BaseNetwork):
    _parameter_constraints = {
        **BaseNetwork._parameter_constraints,
        "density": [Interval(Real, 0, 1, closed="right")],
        "train_readout": ["boolean"],
        "unit_signs": [StrOptions(set(UNIT_SIGN_MODES)), "boolean"],
    }

    def _check_params(self):
        _check_template_signs(self)
        return super()._check_params()

    def _build_module(self, n_features, n_outputs, generator):
        signs = layer_signs(unit_sign_mode(self.unit_signs))
        hidden_rule = (FrozenRule(density=self.density) if self.architecture is None
                       else edge_rule(signs))
        if self.module is not None:
            module = TemplateNetwork(weight_free_from_template(
                self._template(n_features, n_outputs, generator),
                signs=signs, rule=hidden_rule,
                generator=generator), self._input_shape)
        else:
            module = WeightFreeMLP(n_features, self._hidden_sizes, n_outputs,
                                   activation=self.activation, rule=hidden_rule,
                                   unit_signs=self.unit_signs, generator=generator)
        if self.architecture is not None:
            # frozen random signs (the initial scores) on the edges; the readout's signs
            # train as in WeightFreeClassifier(architecture=...)
            layers = module.scored_layers()
            restrict_to_architecture(self, layers)
            for layer in layers[:-1]:
                layer.scores.requires_grad_(False)
            if not self.train_readout:
                module.requires_grad_(False)
        elif self.train_readout:  # the output layer is searched as in WeightFreeClassifier
            readout = module.scored_layers()[-1]
            readout.rule = default_rule()
            readout.rule.init_scores(readout.scores.data, generator)
            readout.scores.requires_grad_(True)
        else:
            module.requires_grad_(False)
        return module

    def _train(self, train_data, epochs, incremental):
        if self.train_readout:
            super()._train(train_data, epochs, incremental)


class RandomNetworkClassifier(ClassifierHeadMixin, _RandomBase):
    __doc__ = f"""{{0,1}}-weight network whose hidden edges are drawn at random with probability ``density``.

    {_RANDOM_DESCRIPTION}

    Parameters
    ----------
    {_RANDOM_PARAMETERS}
    class_weight : dict, "balanced" or None, default=None
        As in :class:`DenseClassifier`.

    Attributes
    ----------
    {_ZERO_ONE_ATTRIBUTES}

    See Also
    --------
    RandomNetworkRegressor : the same for regression.
    WeightFreeClassifier : the same network with its hidden structure searched.
    """

    _parameter_constraints = {**_RandomBase._parameter_constraints,
                              **ClassifierHeadMixin._head_constraints}

    def __init__(self, hidden_layer_sizes=(300, 100), activation="relu", *, max_epochs=30,
                 batch_size=128, shuffle=True, lr=0.05, alpha=0.0, optimizer="adam",
                 lr_schedule="constant", momentum=0.9, nesterovs_momentum=True, beta_1=0.9,
                 beta_2=0.999, device="auto", random_state=None, verbose=0, warm_start=False,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=10,
                 tol=1e-4, precision="float32", torch_compile=False, n_threads=None,
                 module=None,
                 input_shape=None, callbacks=None, architecture=None,
                 density=0.5,
                 train_readout=True, unit_signs="paired", class_weight=None):
        store_params(self, locals())


class RandomNetworkRegressor(RegressorHeadMixin, _RandomBase):
    __doc__ = f"""{{0,1}}-weight network with a random hidden structure, for regression.

    {_RANDOM_DESCRIPTION}

    Parameters
    ----------
    {_RANDOM_PARAMETERS}
    loss : {{"squared_error", "absolute_error", "huber"}}, default="squared_error"
        As in :class:`DenseRegressor`.

    Attributes
    ----------
    {_ZERO_ONE_ATTRIBUTES}

    See Also
    --------
    RandomNetworkClassifier : the same for classification.
    """

    _parameter_constraints = {**_RandomBase._parameter_constraints,
                              **RegressorHeadMixin._head_constraints}

    def __init__(self, hidden_layer_sizes=(300, 100), activation="relu", *, max_epochs=30,
                 batch_size=128, shuffle=True, lr=0.05, alpha=0.0, optimizer="adam",
                 lr_schedule="constant", momentum=0.9, nesterovs_momentum=True, beta_1=0.9,
                 beta_2=0.999, device="auto", random_state=None, verbose=0, warm_start=False,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=10,
                 tol=1e-4, precision="float32", torch_compile=False, n_threads=None,
                 module=None,
                 input_shape=None, callbacks=None, architecture=None,
                 density=0.5,
                 train_readout=True, unit_signs="paired", loss="squared_error"):
        store_params(self, locals())
