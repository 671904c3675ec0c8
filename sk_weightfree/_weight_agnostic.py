"""One shared weight value on every kept edge: WeightAgnosticClassifier and
WeightAgnosticRegressor."""

import warnings

import numpy as np
import torch
from sklearn.base import is_regressor

from ._base import (NON_FINITE_TRAINING, BaseNetwork, ClassifierHeadMixin,
                    RegressorHeadMixin, store_params)
from ._dense import shared_attributes
from ._params import WeightValues
from ._search import DEPRECATED, MaskRuleMixin
from ._training import DeviceBatchIterator
from .nn import SharedWeightMLP, SharedWeightTemplate, make_rule, shared_weight_from_template
from .nn._rules import FrozenRule, SignRule

_AGNOSTIC_DESCRIPTION = """In the spirit of Gaier & Ha's weight-agnostic networks, the edge mask is searched with
    the surrogate-gradient method of :class:`WeightFreeClassifier` to minimise the loss
    averaged over every value in ``weight_values``, so the architecture works whatever
    ``w`` is. Each layer's pre-activation is ``w * ((x @ M.T) / sqrt(fan_in) + b)``, where
    ``b`` is the {0,1} mask of a bias node (a constant input whose kept edges carry ``w``
    too); hidden units carry fixed random signs (``unit_signs_``). No real value is
    trained, except in the regressor: there each value's outputs are standardised and then
    mapped by a learned per-output scale and offset, so that the predictions can spread
    less than ``y`` (shrink towards its mean). After the search, ``shared_weight_`` is the value that scores best on the
    validation data when ``early_stopping=True`` (``X_val``, or the split held out),
    else on the training data. With a ``module`` template, every ``nn.Linear``/``nn.Conv2d`` computes
    ``w * (layer(x, M₊ - M₋) / sqrt(fan_in) + b)`` on paired inputs ``[h, -h]`` (the
    edge's sign comes from the line it uses, its size is ``w``) and no unit signs are
    drawn."""

_AGNOSTIC_PARAMETERS = """hidden_layer_sizes, activation, max_epochs, batch_size, shuffle, lr, alpha, optimizer, \
lr_schedule, momentum, nesterovs_momentum, beta_1, beta_2, device, random_state, verbose, \
warm_start, early_stopping, validation_fraction, n_iter_no_change, tol, precision, torch_compile, n_threads, \
module, input_shape, callbacks
        As in :class:`WeightFreeClassifier`; ``alpha`` penalises every edge score, the
        bias node's edges included (the bias node is a node of the searched graph); the
        regressor's output scale and offset are not penalised.
    weight_values : array-like of float, default=(0.5, 1, 2)
        The shared values the architecture is trained to work with (0 is refused: it
        makes every edge zero). Negative values are allowed, but with ReLU, ``w < 0`` makes every unit fire on the other side of its
        hyperplane: one mask must then serve two unrelated functions, which costs
        accuracy.
    ensemble : bool, default=False
        Predict with every value of ``weight_values`` and average (probabilities for
        classifiers, outputs for regressors); otherwise with ``shared_weight_``. Fixed at
        ``fit``: changing it afterwards takes a refit.
    mask_rule : str or MaskRule, default=None
        How edge scores become the mask, as in :class:`WeightFreeClassifier`; None is
        ``ThresholdRule(init_density=0.5)``.
    sampling, temperature, final_temperature
        Deprecated, as in :class:`WeightFreeClassifier`: pass a mask rule.
    architecture : list of ndarray of bool, default=None
        The edges, as in :class:`DenseClassifier`, instead of searched ones: they are
        fixed, every bias-node edge is fixed on (each unit gets ``w`` as its bias), and
        only the shared value is chosen, as without it (``weight_scores_``,
        ``shared_weight_``). A template's edges (paired lines) get frozen random signs,
        as the multilayer network's hidden units have fixed random signs. Nothing is
        trained in the classifier (no epoch runs); the regressor trains its output scale
        and offset. ``mask_rule`` is then not used."""

_AGNOSTIC_ATTRIBUTES = shared_attributes(
    """coefs_ : list of ndarray of shape (n_in, n_out)
        ``shared_weight_`` where ``masks_`` is True, else 0.
    shared_weight_ : float
        The value of ``weight_values`` that scored best (see above).
    weight_scores_ : ndarray of shape (n_values,)
        The score (accuracy or R²) of each value of ``weight_values``.
    mask_rule_ : MaskRule
        The rule the network was fitted with.
    weight_values_ : ndarray of shape (n_values,)
        ``weight_values`` as validated.
    unit_scales_ : list of ndarray of shape (n_out,)
        The fixed per-layer factor ``1 / sqrt(fan_in)`` for every unit: layer ``i``
        computes ``(a @ coefs_[i]) * unit_scales_[i] + intercepts_[i]``. In the
        regressor the last layer's also folds the output standardisation, the learned
        output scale and the target's scale.
    intercepts_ : list of ndarray of shape (n_out,)
        ``shared_weight_`` where the unit keeps its bias-node edge, else 0 (the
        regressor's last layer folds the output map too, as ``unit_scales_``).
    unit_signs_ : list of ndarray of shape (n_units,)
        The fixed ±1 of each hidden unit.""")


class _WeightAgnosticBase(MaskRuleMixin, BaseNetwork):
    _parameter_constraints = {
        **BaseNetwork._parameter_constraints,
        "weight_values": [WeightValues()],
        "ensemble": ["boolean"],
        **MaskRuleMixin._surrogate_constraints,
        "mask_rule": [*MaskRuleMixin._surrogate_constraints["mask_rule"], None],
    }
    _CONTINUABLE_PARAMS = BaseNetwork._CONTINUABLE_PARAMS | {"temperature",
                                                             "final_temperature"}
    _OLD_INIT_DENSITY = 0.5

    def _check_params(self):
        rule = self._make_mask_rule()
        if self.architecture is not None:  # every edge fixed: only the value is chosen
            rule = FrozenRule(density=1.0)
        return {**super()._check_params(), "mask_rule_": rule,
                "_weight_values": np.asarray(self.weight_values, dtype=float).ravel()}

    def _warn_about_features(self, X):
        # Hidden units add their kept inputs times one positive value: on inputs that are
        # never negative the first layer cannot tell inputs apart by sign (measured in
        # the user guide: digits in [0, 1] collapse at the default width).
        if self.module is None and X.shape[0] and X.min() >= 0:
            warnings.warn(
                f"{type(self).__name__}: every feature of X is non-negative. With one "
                "shared weight and no negative edge, the first layer's units can only add "
                "inputs, and the fit suffers (digits scaled to [0, 1]: 3-fold accuracy "
                "0.35-0.44 at the default width and 15 epochs, 0.89-0.93 standardised). Standardise the "
                "features first, e.g. make_pipeline(StandardScaler(), ...).",
                UserWarning, stacklevel=6)  # the caller of fit or partial_fit

    def _build_module(self, n_features, n_outputs, generator):
        rule = make_rule(self.mask_rule_)  # the network's own copy, with run-time state
        rule.reseed(self._sample_seed)
        if self.module is not None:
            module = SharedWeightTemplate(
                shared_weight_from_template(self._template(n_features, n_outputs, generator),
                                            rule=rule, generator=generator),
                self._input_shape, n_outputs, weight_values=self._weight_values,
                normalize_output=is_regressor(self))
        else:
            module = SharedWeightMLP(
                n_features, self._hidden_sizes, n_outputs, weight_values=self._weight_values,
                activation=self.activation, rule=rule, normalize_output=is_regressor(self),
                generator=generator,
            )
        if self.architecture is not None:
            self._restrict(module, generator)
        return module

    def _restrict(self, module, generator):
        """Fix the edges to ``architecture`` and every bias-node edge on (the rule
        ``FrozenRule(density=1.0)``); a template's paired edges get frozen random signs."""
        if isinstance(module, SharedWeightTemplate):
            layers = [unit.masked for unit in module._units()]
            edges = self._architecture_edges([layer.edge_shape for layer in layers])
            sign_rule = SignRule()
            for layer, layer_edges in zip(layers, edges):
                layer.restrict_to(layer_edges, sign_rule, generator=generator)
                layer.scores.requires_grad_(False)
            return
        layers = list(module.linears)
        edges = self._architecture_edges([(layer.out_features, layer.in_features - 1)
                                          for layer in layers])
        for layer, layer_edges in zip(layers, edges):  # the bias node: the last column
            layer.restrict_to(torch.cat([layer_edges, layer_edges.new_ones(
                layer_edges.shape[0], 1)], dim=1))

    def _train(self, train_data, epochs, incremental):
        # a continuing fit searches again: training and validation see every value
        self.net_.module_.searching = True
        # with a given architecture the classifier has nothing to train
        if any(p.requires_grad for p in self.net_.module_.parameters()):
            super()._train(train_data, epochs, incremental)

    def _finish_training(self, train_data, valid_data):
        super()._finish_training(train_data, valid_data)  # output statistics, if any
        module = self.net_.module_
        module.eval()
        module.searching = True
        data = train_data if valid_data is None else valid_data
        outputs, targets, weights = [], [], []
        with torch.inference_mode():
            rows = max(1, self._prediction_rows(self.n_features_in_) // len(self._weight_values))
            for X, (y, w) in DeviceBatchIterator(data, rows):
                outputs.append(module(X))
                targets.append(y)
                weights.append(w)
        outputs, targets = torch.cat(outputs, dim=1), torch.cat(targets)
        if not outputs.isfinite().all():  # scored below, before the export would check
            raise ValueError(NON_FINITE_TRAINING)
        weights = None if weights[0] is None else torch.cat(weights)
        self.weight_scores_ = np.array([self._valid_score(o, targets, weights)
                                        for o in outputs])
        self.weight_values_ = self._weight_values.copy()
        module.shared_index = int(np.argmax(self.weight_scores_))
        self.shared_weight_ = float(self._weight_values[module.shared_index])
        module.shared_weight.fill_(self.shared_weight_)
        module.searching = False
        module.ensemble = self.ensemble

    def _network_members(self):
        module = self.net_.module_
        if not module.ensemble:
            return super()._network_members()
        members = []
        for index, value in enumerate(self.weight_values_):
            arrays = {k: [t.cpu().numpy() for t in v]
                      for k, v in module.member_arrays(index).items()}
            members.append(([m * value for m in self.masks_], arrays["intercepts"],
                             arrays["unit_scales"]))
        return members


class WeightAgnosticClassifier(ClassifierHeadMixin, _WeightAgnosticBase):
    __doc__ = f"""Network in which every kept edge carries the same weight value ``w``.

    {_AGNOSTIC_DESCRIPTION}

    Parameters
    ----------
    {_AGNOSTIC_PARAMETERS}
    class_weight : dict, "balanced" or None, default=None
        As in :class:`DenseClassifier`.

    Attributes
    ----------
    {_AGNOSTIC_ATTRIBUTES}

    See Also
    --------
    WeightAgnosticRegressor : the same for regression.
    WeightFreeClassifier : {{0,1}} weights (the special case w = 1, with trained unit scales).
    """

    _parameter_constraints = {**_WeightAgnosticBase._parameter_constraints,
                              **ClassifierHeadMixin._head_constraints}

    def __init__(self, hidden_layer_sizes=(300, 100), activation="relu", *, max_epochs=30,
                 batch_size=128, shuffle=True, lr=0.05, alpha=0.0, optimizer="adam",
                 lr_schedule="constant", momentum=0.9, nesterovs_momentum=True, beta_1=0.9,
                 beta_2=0.999, device="auto", random_state=None, verbose=0, warm_start=False,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=10,
                 tol=1e-4, precision="float32", torch_compile=False, n_threads=None,
                 module=None,
                 input_shape=None, callbacks=None, architecture=None,
                 weight_values=(0.5, 1.0, 2.0), ensemble=False,
                 mask_rule=None, sampling=DEPRECATED, temperature=DEPRECATED,
                 final_temperature=DEPRECATED,
                 class_weight=None):
        store_params(self, locals())


class WeightAgnosticRegressor(RegressorHeadMixin, _WeightAgnosticBase):
    __doc__ = f"""Network in which every kept edge carries the same weight value, for regression.

    {_AGNOSTIC_DESCRIPTION}

    Parameters
    ----------
    {_AGNOSTIC_PARAMETERS}
    loss : {{"squared_error", "absolute_error", "huber"}}, default="squared_error"
        As in :class:`DenseRegressor`.

    Attributes
    ----------
    {_AGNOSTIC_ATTRIBUTES}

    See Also
    --------
    WeightAgnosticClassifier : the same for classification.
    """

    _parameter_constraints = {**_WeightAgnosticBase._parameter_constraints,
                              **RegressorHeadMixin._head_constraints}

    def __init__(self, hidden_layer_sizes=(300, 100), activation="relu", *, max_epochs=30,
                 batch_size=128, shuffle=True, lr=0.05, alpha=0.0, optimizer="adam",
                 lr_schedule="constant", momentum=0.9, nesterovs_momentum=True, beta_1=0.9,
                 beta_2=0.999, device="auto", random_state=None, verbose=0, warm_start=False,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=10,
                 tol=1e-4, precision="float32", torch_compile=False, n_threads=None,
                 module=None,
                 input_shape=None, callbacks=None, architecture=None,
                 weight_values=(0.5, 1.0, 2.0), ensemble=False,
                 mask_rule=None, sampling=DEPRECATED, temperature=DEPRECATED,
                 final_temperature=DEPRECATED,
                 loss="squared_error"):
        store_params(self, locals())
