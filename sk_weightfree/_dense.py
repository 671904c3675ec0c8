"""DenseClassifier: the fully connected, real-weight reference."""

from ._base import BaseNetworkClassifier, store_params
from .nn import DenseMLP


class DenseClassifier(BaseNetworkClassifier):
    """Standard fully connected MLP with real weights, trained with skorch on torch.

    The reference the sparse and weight-free estimators are compared with.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(300, 100)
        Width of each hidden layer.
    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
        Hidden-unit activation.
    max_epochs : int, default=30
        Number of passes over the training data.
    batch_size : int, default=128
        Mini-batch size (capped at the number of samples).
    lr : float, default=1e-3
        Learning rate.
    optimizer : {"adam", "adamw", "sgd"}, default="adam"
        Torch optimiser.
    lr_schedule : {"constant", "cosine"}, default="constant"
        Learning-rate schedule over epochs.
    device : str, default="auto"
        "auto" (cuda when available, else cpu), "cpu", "cuda" or "cuda:N".
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation and shuffling; the same value gives the same model on the CPU.
    verbose : int, default=0
        ``> 0`` shows a progress bar over epochs.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data and stop when the validation loss has
        not improved by ``tol`` for ``n_iter_no_change`` epochs (restoring the best epoch).
    validation_fraction : float, default=0.1
        Share of the training data held out when ``early_stopping=True``.
    n_iter_no_change : int, default=10
        Patience, in epochs, of the stopping rule (on the training loss when
        ``early_stopping=False``).
    tol : float, default=1e-4
        Smallest loss improvement that counts.
    precision : {"float32", "bfloat16"}, default="float32"
        "bfloat16" runs the forward passes under ``torch.autocast`` (bf16 matmuls; mostly
        worthwhile on a GPU). Parameters and the loss stay float32.
    torch_compile : bool, default=False
        Compile the module's forward pass with ``torch.compile`` for training (pays off on
        a GPU for long fits; the first epoch is slower while it compiles).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Only when ``X`` has string feature names.
    coefs_ : list of ndarray of shape (n_in, n_out)
        The weights the network predicts with.
    intercepts_ : list of ndarray of shape (n_out,)
    masks_ : list of ndarray of bool, same shapes as ``coefs_``
    density_ : float
        Fraction of possible edges present (1.0 for a dense network).
    n_connections_ : int
    history_ : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``seconds`` (and ``valid_loss``).
    n_iter_ : int
        Epochs run.
    net_ : skorch.NeuralNetClassifier
        The underlying skorch net.

    See Also
    --------
    WeightFreeClassifier : {0,1} weights, learned structure.
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

    def __init__(self, hidden_layer_sizes=(300, 100), activation="relu", *, max_epochs=30,
                 batch_size=128, lr=1e-3, optimizer="adam", lr_schedule="constant",
                 device="auto", random_state=None, verbose=0, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=10, tol=1e-4,
                 precision="float32", torch_compile=False):
        store_params(self, locals())

    def _build_module(self, n_features, n_classes, generator):
        return DenseMLP(n_features, self._hidden_sizes, n_classes,
                        activation=self.activation, generator=generator)

    def _export_fitted_attributes(self):
        super()._export_fitted_attributes()
        self.intercepts_ = [layer.bias.detach().cpu().numpy().astype(float)
                            for layer in self.net_.module_.linears]
