"""The fully connected, real-weight reference: DenseClassifier and DenseRegressor."""

from string import Template

import torch
from torch.nn.utils import prune

from ._base import BaseNetwork, ClassifierHeadMixin, RegressorHeadMixin, store_params
from .nn import DenseMLP, TemplateNetwork
from .nn._layers import pruned_weight

_SHARED_PARAMETERS = """hidden_layer_sizes : tuple of int, default=(300, 100)
        Width of each hidden layer.
    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
        Hidden-unit activation.
    max_epochs : int, default=30
        Number of passes over the training data (per call to ``fit``).
    batch_size : int, default=128
        Mini-batch size (capped at the number of samples).
    shuffle : bool, default=True
        Whether to shuffle the training samples before each epoch, as ``MLPClassifier``'s
        ``shuffle``. False takes the batches in the order of the training data (with
        ``early_stopping=True`` and no ``X_val``, the order of the part left after the
        validation split, which draws its samples at random, as ``MLPClassifier``'s does).
    lr : float, default=1e-3
        Learning rate.
    alpha : float >= 0, default=0.0
        Strength of the L2 penalty, as ``MLPClassifier``'s ``alpha`` (whose default is
        1e-4; 0 here, so that a default fit is unchanged). Each training batch's loss
        gets ``0.5 * alpha * ||W||² / n_batch``, ``||W||²`` the sum of squares of the
        trained per-edge values (here the weights, a template's ``nn.Linear`` and
        ``nn.Conv2d`` weights included; see each family) and ``n_batch`` the
        samples in the batch, so their gradient gains ``alpha * W / n_batch``: a coupled
        L2 term added to the loss, not the optimiser's ``weight_decay`` (AdamW's decays
        decoupled, and an optimiser's decay would be missing from the loss). As in
        ``MLPClassifier``, biases are not penalised and the penalty is part of the
        training loss (``loss_``, ``loss_curve_``, the stopping rule on it). With
        ``sample_weight``, ``MLPClassifier`` divides by the batch's sum of weights,
        so there the penalty depends on the weights' scale; here by the batch's size
        (the weights are scaled to mean 1, see ``fit``). The regressors' loss is the
        mean squared error of the standardised targets, without ``MLPRegressor``'s
        factor ½ and in other units, so an ``alpha`` does not weigh the same there.
    optimizer : {"adam", "adamw", "sgd"}, default="adam"
        Torch optimiser. ``"adamw"`` is ``torch.optim.AdamW`` with torch's default
        decoupled ``weight_decay=0.01`` on every trained tensor (biases, batch norms and
        scores included), in addition to ``alpha``.
    lr_schedule : {"constant", "cosine"}, default="constant"
        Learning-rate schedule over the epochs of each ``fit``.
    momentum : float in [0, 1], default=0.9
        Momentum of ``optimizer="sgd"`` (as ``MLPClassifier``'s).
    nesterovs_momentum : bool, default=True
        Nesterov momentum for ``optimizer="sgd"``.
    beta_1, beta_2 : float in [0, 1), default=0.9, 0.999
        Adam's (and AdamW's) moment decay rates.
    device : str, default="auto"
        "auto" (cuda when available, else cpu), "cpu", "cuda", "cuda:N" or "mps".
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation and shuffling; the same value gives the same model on the CPU.
    verbose : int, default=0
        1 shows a progress bar over epochs; ``>= 2`` prints a line per epoch to stdout
        instead, as ``MLPClassifier(verbose=True)`` does (skorch's ``PrintLog`` table:
        epoch, training loss, validation loss and score with early stopping, seconds),
        and the stopping rule's messages.
    warm_start : bool, default=False
        A ``fit`` on a fitted model continues from its network and optimiser state.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data and stop when the validation score
        (accuracy, or R² for regressors — as ``MLPClassifier``/``MLPRegressor``) has not
        improved by ``tol`` for ``n_iter_no_change`` epochs, restoring the best epoch.
        ``fit(X, y, X_val=..., y_val=...)`` stops on a validation set of one's own
        instead.
    validation_fraction : float, default=0.1
        Share of the training data held out when ``early_stopping=True`` (unused with
        ``X_val``).
    n_iter_no_change : int, default=10
        Patience, in epochs, of the stopping rule (on the training loss when
        ``early_stopping=False``).
    tol : float, default=1e-4
        Smallest improvement that counts.
    precision : {"float32", "bfloat16", "float64"}, default="float32"
        "bfloat16" runs the training forward passes under ``torch.autocast``; "float64"
        trains the network, data, targets and weights in float64 (slower; with a batch
        as large as the data, weighting a sample by k and repeating it k times then give
        the same fit up to float64 rounding, see ``tests/test_common.py``).
    torch_compile : bool, default=False
        Compile the module's forward pass with ``torch.compile`` for training.
    n_threads : int, default=None
        torch intra-op threads while fitting; torch's global setting is restored after.
        None chooses from the work per training step (batch size times the network's
        weights): one thread for a small network, where a second thread costs more than
        it saves, otherwise torch's current setting (``torch.set_num_threads``,
        ``OMP_NUM_THREADS`` and joblib's workers lower it). The number used is
        ``n_threads_``. A fit is reproducible bit for bit at the same number of threads;
        on a machine busy with other work, ``n_threads=1`` is often much faster (see the
        user guide, "Performance").
    module : torch.nn.Module class or instance, default=None
        A network to use instead of the multilayer perceptron, as a *template* (for
        instance :class:`sk_weightfree.nn.SmallCNN`). A class is instantiated as
        ``module(n_outputs=...)``, with ``input_shape=...`` too when it takes that argument;
        an instance is copied. Its parameters are re-initialised at every fit (seeded by
        ``random_state``) and its output must have shape (batch, ``n_outputs_``). Each
        family turns the template's ``nn.Linear``/``nn.Conv2d`` layers into its own kind
        (see the user guide) and keeps every other layer. ``hidden_layer_sizes`` and
        ``activation`` are then unused.
    input_shape : tuple of int, default=None
        Shape of one sample for ``module`` (e.g. ``(1, 28, 28)``): each row of ``X`` is
        reshaped to it. None passes the rows as they are.
    callbacks : list of skorch callbacks, default=None
        skorch callbacks (``skorch.callbacks.Callback`` instances, or ``(name, callback)``
        pairs as ``skorch.NeuralNet`` takes them) run beside the package's own: their
        batch, epoch, gradient and training hooks fire with skorch's arguments
        (``TensorBoard``, ``Checkpoint``, ``MlflowLogger``, ``LRScheduler``,
        ``GradientNormClipping``...; see the user guide's "skorch callbacks"). Each fit
        or ``partial_fit`` call runs a copy of each, initialised by skorch, so this
        parameter is never changed (the copies are in ``net_.callbacks_``). A name taken
        by the package's own callbacks or given twice, or an ``LRScheduler`` with
        ``lr_schedule="cosine"``, is a ``ValueError`` at fit.
    architecture : list of ndarray of bool, default=None
        The edges to train on (see the user guide, "Training on a given architecture"):
        one boolean array per weight layer in ``coefs_`` order, shaped like ``coefs_``
        without the ``[h, -h]`` pairing — ``(n_in, n_out)`` for a linear layer,
        ``(out_channels, in_channels, kh, kw)`` kernel taps for a convolution — as
        :func:`sk_weightfree.architecture_of` returns them. No edge outside it is ever
        non-zero, in training or in ``coefs_``/``masks_``. None: the family's own
        structure (dense: every edge). Changing it takes a fresh fit."""

_COEFS = """coefs_ : list of ndarray of shape (n_in, n_out)
        Per layer, the weights the network predicts with (see the user guide's formula)."""

# ${coefs}: a family's coefs_ entry and the attributes of its own that follow it
_SHARED_ATTRIBUTES = Template("""classes_ : ndarray of shape (n_classes,)
        Class labels (classifiers; ``arange(n_labels)`` for multilabel ``y``).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Only when ``X`` has string feature names.
    ${coefs}
    intercepts_ : list of ndarray of shape (n_out,)
    masks_ : list of ndarray of bool, same shapes as ``coefs_``
        With a ``module`` template, ``coefs_`` and ``masks_`` list its weight layers in
        registration order, convolutions in torch's layout (out_channels, in_channels,
        kh, kw).
    density_ : float
        Fraction of possible edges present.
    n_connections_ : int
    n_layers_, n_outputs_ : int
    out_activation_ : {"softmax", "logistic", "identity"}
    history_ : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``seconds`` (and ``valid_loss``,
        ``valid_score`` with early stopping).
    loss_ : float or None
        The training loss of the last epoch run, ``alpha``'s penalty included
        (``loss_curve_[-1]``; None when no epoch ran). When early stopping restores the
        best epoch, ``loss_`` stays the last epoch's, as ``MLPClassifier``'s does.
    loss_curve_ : list of float
    best_loss_ : float or None
    validation_scores_ : list of float or None
    best_validation_score_ : float or None
    n_iter_ : int
        Epochs run (over all calls).
    t_ : int
        Training samples seen (over all calls).
    n_threads_ : int
        torch intra-op threads of the last ``fit`` or ``partial_fit`` call (see
        ``n_threads``).
    net_ : skorch.NeuralNet
        The underlying skorch net.""")


def shared_attributes(coefs=_COEFS):
    """The Attributes section every estimator shares, with the family's ``coefs``
    entry (and the attributes of its own that follow it) in its place."""
    return _SHARED_ATTRIBUTES.substitute(coefs=coefs)


class _DenseBase(BaseNetwork):
    @property
    def _min_batch_samples(self):
        return 1 if self.module is None else 2  # a template may hold batch norms

    def _build_module(self, n_features, n_outputs, generator):
        if self.module is not None:
            module = TemplateNetwork(self._template(n_features, n_outputs, generator),
                                     self._input_shape)
        else:
            module = DenseMLP(n_features, self._hidden_sizes, n_outputs,
                              activation=self.activation, generator=generator)
        if self.architecture is not None:
            # a fixed pruning mask: the weights train on the given edges, the rest are 0
            layers = module.weight_layers()
            edges = self._architecture_edges([layer.weight.shape for layer in layers])
            for layer, layer_edges in zip(layers, edges):
                prune.custom_from_mask(layer, "weight", layer_edges.to(layer.weight.device))
        return module

    def _finish_training(self, train_data, valid_data):
        # prune's forward hook leaves ``weight`` as a non-leaf tensor of the last training
        # step, which can be neither deep-copied nor pickled: recompute it without a graph.
        with torch.no_grad():
            for layer in self.net_.module_.weight_layers():
                if prune.is_pruned(layer):
                    layer.weight = pruned_weight(layer).applied()


class DenseClassifier(ClassifierHeadMixin, _DenseBase):
    __doc__ = f"""Standard fully connected MLP with real weights, trained with skorch on torch.

    The reference the sparse and weight-free estimators are compared with.

    Parameters
    ----------
    {_SHARED_PARAMETERS}
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, multiplied into ``sample_weight`` (as in scikit-learn's
        linear models).

    Attributes
    ----------
    {shared_attributes()}

    See Also
    --------
    DenseRegressor : the same network for regression.
    WeightFreeClassifier : {{0,1}} weights, learned structure.
    PrunedClassifier : dense network pruned to a target density.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_weightfree import DenseClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = DenseClassifier(max_epochs=5, random_state=0).fit(X / 16, y)
    >>> clf.score(X / 16, y) > 0.9
    True
    """

    _parameter_constraints = {**BaseNetwork._parameter_constraints,
                              **ClassifierHeadMixin._head_constraints}

    def __init__(self, hidden_layer_sizes=(300, 100), activation="relu", *, max_epochs=30,
                 batch_size=128, shuffle=True, lr=1e-3, alpha=0.0, optimizer="adam",
                 lr_schedule="constant", momentum=0.9, nesterovs_momentum=True, beta_1=0.9,
                 beta_2=0.999, device="auto", random_state=None, verbose=0, warm_start=False,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=10,
                 tol=1e-4, precision="float32", torch_compile=False, n_threads=None,
                 module=None,
                 input_shape=None, callbacks=None, architecture=None,
                 class_weight=None):
        store_params(self, locals())


class DenseRegressor(RegressorHeadMixin, _DenseBase):
    __doc__ = f"""Standard fully connected MLP with real weights, for regression.

    Targets are standardised inside ``fit`` and predictions mapped back, so unscaled
    targets work out of the box (``MLPRegressor`` leaves that to the user); the map is
    folded into the last layer's ``coefs_``/``intercepts_``. ``score`` is R².

    Parameters
    ----------
    {_SHARED_PARAMETERS}
    loss : {{"squared_error", "absolute_error", "huber"}}, default="squared_error"
        Training loss, on the standardised targets (Huber's threshold is 1 standard
        deviation of ``y``).

    Attributes
    ----------
    {shared_attributes()}

    See Also
    --------
    DenseClassifier : the same network for classification.

    Examples
    --------
    >>> from sklearn.datasets import make_friedman1
    >>> from sk_weightfree import DenseRegressor
    >>> X, y = make_friedman1(n_samples=500, random_state=0)
    >>> reg = DenseRegressor(max_epochs=20, random_state=0).fit(X, y)
    >>> reg.score(X, y) > 0.8
    True
    """

    _parameter_constraints = {**BaseNetwork._parameter_constraints,
                              **RegressorHeadMixin._head_constraints}

    def __init__(self, hidden_layer_sizes=(300, 100), activation="relu", *, max_epochs=30,
                 batch_size=128, shuffle=True, lr=1e-3, alpha=0.0, optimizer="adam",
                 lr_schedule="constant", momentum=0.9, nesterovs_momentum=True, beta_1=0.9,
                 beta_2=0.999, device="auto", random_state=None, verbose=0, warm_start=False,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=10,
                 tol=1e-4, precision="float32", torch_compile=False, n_threads=None,
                 module=None,
                 input_shape=None, callbacks=None, architecture=None,
                 loss="squared_error"):
        store_params(self, locals())
