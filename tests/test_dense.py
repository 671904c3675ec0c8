"""The dense family (sk_weightfree._dense): real-weight networks, as scikit-learn's MLPs, on
the package's training loop; with a template; multi-output regression; exported as plain
torch layers."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.estimator_checks import check_classifiers_train
from torch import nn

import sk_weightfree
from sk_weightfree import DenseClassifier, DenseRegressor
from conftest import small


def _formula(est, X):
    """The user guide's formula for a dense MLP: ``relu(a @ W + b)`` per hidden layer."""
    a = X
    for i, (coef, intercept) in enumerate(zip(est.coefs_, est.intercepts_)):
        a = a @ coef + intercept
        if i < len(est.coefs_) - 1:
            a = np.maximum(a, 0)
    return a


def test_sgd_has_momentum_like_mlp_and_passes_classifiers_train():
    clf = DenseClassifier(optimizer="sgd", activation="logistic", random_state=0)
    check_classifiers_train("DenseClassifier", clf)
    fitted = small(DenseClassifier, optimizer="sgd").fit(*make_classification(random_state=0))
    group = fitted.net_.optimizer_.param_groups[0]
    assert group["momentum"] == 0.9 and group["nesterov"] is True


def test_dense_weights_are_real_and_every_edge_is_kept(small_data):
    clf = small(DenseClassifier, hidden_layer_sizes=(12, 6)).fit(*small_data)
    assert [c.shape for c in clf.coefs_] == [(8, 12), (12, 6), (6, 3)]
    assert [b.shape for b in clf.intercepts_] == [(12,), (6,), (3,)]
    assert not hasattr(clf, "unit_scales_")  # real weights: no per-unit scale
    for coef, mask in zip(clf.coefs_, clf.masks_):
        np.testing.assert_array_equal(mask, coef != 0)
    assert clf.density_ == 1.0 and clf.n_layers_ == 4
    assert len(np.unique(np.concatenate([c.ravel() for c in clf.coefs_]))) > 100
    z = _formula(clf, small_data[0])
    np.testing.assert_allclose(clf.predict_proba(small_data[0]),
                               torch.softmax(torch.as_tensor(z), 1).numpy(), atol=1e-12)


def test_dense_regressor_multi_output(tmp_path):
    X, Y = make_regression(n_samples=150, n_features=6, n_targets=3, noise=1.0,
                           random_state=0)
    Y = Y * np.array([1.0, 10.0, 100.0]) + np.array([5.0, -50.0, 500.0])  # own units each
    reg = small(DenseRegressor, max_epochs=20, lr=1e-2).fit(X, Y)
    assert reg.n_outputs_ == 3 and reg.coefs_[-1].shape == (16, 3)
    pred = reg.predict(X)
    assert pred.shape == (150, 3)
    # the exported arrays give the predictions in y's units (the target map folded in)
    np.testing.assert_allclose(_formula(reg, X), pred, rtol=1e-10, atol=1e-9)
    # each output learned its own target: correlation, scale and offset per column
    for j in range(3):
        assert np.corrcoef(pred[:, j], Y[:, j])[0, 1] > 0.9
    np.testing.assert_allclose(pred.mean(axis=0), Y.mean(axis=0), rtol=0.1, atol=1.0)
    assert reg.score(X, Y) > 0.8
    sk_weightfree.io.dump(reg, tmp_path / "m.npz")
    np.testing.assert_allclose(sk_weightfree.io.load(tmp_path / "m.npz").predict(X), pred,
                               rtol=1e-12, atol=1e-12)
    one = small(DenseRegressor).fit(X, Y[:, 0])
    assert one.predict(X).shape == (150,) and one.coefs_[-1].shape == (16, 1)
    with pytest.warns(DataConversionWarning):  # a column vector is one output, as in sklearn
        column = small(DenseRegressor).fit(X, Y[:, :1])
    np.testing.assert_array_equal(column.predict(X), one.predict(X))


class _Conv(nn.Module):
    def __init__(self, n_outputs):
        super().__init__()
        self.body = nn.Sequential(nn.Unflatten(1, (1, 4, 4)), nn.Conv2d(1, 3, 3), nn.ReLU(),
                                  nn.Flatten(), nn.Linear(12, n_outputs))

    def forward(self, x):
        return self.body(x)


def test_dense_with_a_template_trains_the_template_and_exports_its_layers():
    X, y = make_classification(n_samples=120, n_features=16, n_informative=6, n_classes=3,
                               random_state=0)
    clf = small(DenseClassifier, module=_Conv, max_epochs=5, lr=1e-2).fit(X, y)
    assert [c.shape for c in clf.coefs_] == [(3, 1, 3, 3), (12, 3)]  # torch's kernel layout
    assert [b.shape for b in clf.intercepts_] == [(3,), (3,)]
    assert all(m.all() for m in clf.masks_) and clf.density_ == 1.0
    trained = clf.net_.module_
    conv = next(m for m in trained.modules() if isinstance(m, nn.Conv2d))
    np.testing.assert_array_equal(clf.coefs_[0], conv.weight.detach().double().numpy())
    # predictions are the template's own forward pass, softmaxed
    plain = _Conv(3).double()
    with torch.no_grad():
        plain.body[1].weight.copy_(torch.as_tensor(clf.coefs_[0]))
        plain.body[1].bias.copy_(torch.as_tensor(clf.intercepts_[0]))
        plain.body[4].weight.copy_(torch.as_tensor(clf.coefs_[1].T))
        plain.body[4].bias.copy_(torch.as_tensor(clf.intercepts_[1]))
        z = plain(torch.as_tensor(X))
    np.testing.assert_allclose(clf.predict_proba(X), torch.softmax(z, 1).numpy(), atol=1e-10)
    assert clf.score(X, y) > 0.5  # chance is 1/3


@pytest.mark.parametrize("cls", [DenseClassifier, DenseRegressor])
def test_dense_to_module_is_the_fitted_network(cls, small_data):
    X, y = small_data
    y = y if cls is DenseClassifier else X[:, 0] * 3.0 + 10.0
    est = small(cls, hidden_layer_sizes=(12, 6)).fit(X, y)
    module = est.to_module().double()
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 3
    # the regressor's target map is a separate affine after the last layer: the weights
    # equal coefs_ up to it (exactly for the hidden layers)
    for layer, coef in zip(linears[:-1], est.coefs_[:-1]):
        np.testing.assert_array_equal(layer.weight.detach().numpy(), coef.T)
    with torch.no_grad():
        z = module(torch.as_tensor(X)).numpy()
    if cls is DenseClassifier:
        np.testing.assert_array_equal(linears[-1].weight.detach().numpy(), est.coefs_[-1].T)
        np.testing.assert_allclose(torch.softmax(torch.as_tensor(z), 1).numpy(),
                                   est.predict_proba(X), rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(est.classes_[z.argmax(1)], est.predict(X))
    else:  # the module is in the training dtype (float32): the target map is rounded to it
        np.testing.assert_allclose(z.ravel(), est.predict(X), rtol=1e-6)
