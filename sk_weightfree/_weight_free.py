"""WeightFreeClassifier: {0,1} weights, the architecture found by surrogate gradients."""

from numbers import Integral, Real

from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from ._base import BaseNetworkClassifier, SurrogateSearchMixin, store_params
from .nn import WeightFreeMLP, set_sample_seed


class WeightFreeClassifier(SurrogateSearchMixin, BaseNetworkClassifier):
    """Multilayer network whose every connection weight is exactly 0 or 1.

    What is learned is the architecture: which edges exist. Each possible edge has a real
    score θ; the forward pass uses the {0,1} weight ``1[θ > 0]`` (or a Bernoulli sample of
    ``sigmoid(θ / T)``) and the backward pass the derivative of ``sigmoid(θ / T)`` in place
    of the step's (a straight-through surrogate gradient). Prediction always uses the hard
    mask. Real values belong only to units: each hidden unit has a fixed random sign
    (``unit_signs_``) and every layer a batch normalisation with a per-unit scale and shift.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(300, 100)
    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
    max_epochs : int, default=30
    batch_size : int, default=128
    lr : float, default=0.05
        Learning rate of the edge scores (and the per-unit normalisation parameters).
    optimizer : {"adam", "adamw", "sgd"}, default="adam"
    lr_schedule : {"constant", "cosine"}, default="cosine"
    device : str, default="auto"
    random_state : int, RandomState instance or None, default=None
        Seeds scores, unit signs, shuffling and Bernoulli sampling.
    verbose : int, default=0
    early_stopping : bool, default=False
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
    tol : float, default=1e-4
    precision : {"float32", "bfloat16"}, default="float32"
    torch_compile : bool, default=False
        See :class:`DenseClassifier` for the shared parameters above.
    sampling : {"threshold", "bernoulli"}, default="threshold"
        Training-time mask: the hard threshold or a Bernoulli sample.
    temperature : float, default=1.0
        Surrogate temperature at the first epoch.
    final_temperature : float or None, default=None
        Temperature at the last epoch, reached by geometric annealing; None keeps it
        constant.
    density : float in (0, 1] or None, default=None
        Fraction of each layer's edges to keep (the top-scoring ones). None learns the
        density freely.
    init_density : float in (0, 1), default=0.25
        Expected initial density when ``density`` is None.
    unit_signs : bool, default=True
        Give each hidden unit a fixed random ±1 sign (without them the network is monotone
        in every input; see the user guide).

    Attributes
    ----------
    coefs_ : list of ndarray of shape (n_in, n_out)
        Exactly 0.0 or 1.0.
    masks_ : list of ndarray of bool
    unit_signs_ : list of ndarray of shape (n_units,)
        Fixed ±1 sign of each hidden unit.
    unit_scales_, unit_offsets_ : list of ndarray of shape (n_units,)
        Per layer (hidden and output), the fitted batch norm as the affine map
        ``z * unit_scales_[i] + unit_offsets_[i]`` applied to ``x @ coefs_[i]``. With the
        activation and ``unit_signs_`` they reproduce the predictions exactly.
    density_, n_connections_, classes_, n_features_in_, history_, n_iter_, net_
        As in :class:`DenseClassifier`.

    See Also
    --------
    RandomNetworkClassifier : {0,1} weights with a random, unsearched structure.
    WeightAgnosticClassifier : one shared weight value on every kept edge.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_weightfree import WeightFreeClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = WeightFreeClassifier(max_epochs=5, random_state=0).fit(X, y)
    >>> sorted({float(v) for c in clf.coefs_ for v in c.ravel()})
    [0.0, 1.0]
    """

    _parameter_constraints = {
        **BaseNetworkClassifier._parameter_constraints,
        # batch normalisation needs at least two samples per training batch
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        **SurrogateSearchMixin._surrogate_constraints,
        "density": [Interval(Real, 0, 1, closed="right"), None],
        "init_density": [Interval(Real, 0, 1, closed="neither")],
        "unit_signs": ["boolean"],
    }

    def __init__(self, hidden_layer_sizes=(300, 100), activation="relu", *, max_epochs=30,
                 batch_size=128, lr=0.05, optimizer="adam", lr_schedule="cosine",
                 device="auto", random_state=None, verbose=0, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=10, tol=1e-4,
                 precision="float32", torch_compile=False, sampling="threshold", temperature=1.0, final_temperature=None, density=None,
                 init_density=0.25, unit_signs=True):
        store_params(self, locals())

    def _build_module(self, n_features, n_classes, generator):
        module = WeightFreeMLP(
            n_features, self._hidden_sizes, n_classes, activation=self.activation,
            sampling=self.sampling, density=self.density, init_density=self.init_density,
            unit_signs=self.unit_signs, generator=generator,
        )
        set_sample_seed(module, self._sample_seed)
        return module

    def to_module(self):
        """A plain ``torch.nn.Sequential`` that predicts with the {0,1} weights alone.

        Its layers are ``nn.Linear(bias=False)`` holding the masks, the fitted batch norms
        (eval mode), the activation and the fixed unit signs; it outputs logits in
        ``classes_`` order.
        """
        check_is_fitted(self)
        return self.net_.module_.to_module()
