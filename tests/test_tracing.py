"""The torch side of the fitted form (sk_weightfree._tracing): the torch head follows the
numpy head rules of sk_weightfree._inference exactly, and the chain module computes the
chain."""

import numpy as np
import pytest
import torch

from sk_weightfree import _inference
from sk_weightfree._tracing import Head, chain_module


@pytest.mark.parametrize("out_activation", ["softmax", "logistic", "identity"])
@pytest.mark.parametrize("n_members", [1, 3])
def test_the_torch_head_is_the_numpy_head(out_activation, n_members):
    rng = np.random.default_rng(0)
    stacked = rng.normal(scale=3.0, size=(n_members, 50, 4))
    z = stacked[0] if n_members == 1 else _inference.combine_members(stacked, out_activation)
    torch_in = torch.as_tensor(stacked[0] if n_members == 1 else stacked)
    with torch.no_grad():
        np.testing.assert_allclose(Head(out_activation)(torch_in).numpy(), z, rtol=1e-12,
                                   atol=1e-12)
        if out_activation == "identity":
            return
        decision, proba = Head(out_activation, labels=True)(torch_in)
    np.testing.assert_allclose(proba.numpy(), _inference.probabilities(z, out_activation),
                               rtol=1e-12, atol=1e-15)
    labels = _inference.labels(z, out_activation, np.arange(4))
    np.testing.assert_array_equal(decision.numpy(), labels)


def test_the_head_maps_a_regressors_outputs_to_y_units():
    target = _inference.Affine(np.array([2.0, 10.0]), np.array([1.0, -5.0]))
    z = torch.tensor([[0.5, 1.0]], dtype=torch.float64)
    with torch.no_grad():
        np.testing.assert_allclose(Head("identity", target)(z).numpy(), [[2.0, 5.0]])


def test_the_chain_module_computes_the_chain():
    rng = np.random.default_rng(1)
    layers = [{"weights": rng.normal(size=(12, 5)), "intercepts": rng.normal(size=5)},
              {"weights": (rng.random((10, 3)) < 0.4).astype(float),
               "unit_scales": rng.random(3) + 0.5}]  # paired: (2 * n_in, n_out)
    members = [_inference.perceptron_ops([layers[0], dict(layers[1], value=v)], "tanh",
                                         paired=True) for v in (0.5, 2.0)]
    chain = _inference.Chain(members, 6, "softmax", classes=np.arange(3))
    X = rng.normal(size=(20, 6))
    with torch.no_grad():
        got = chain_module(chain)(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(got, _inference.forward(chain, X), rtol=1e-12, atol=1e-12)


def test_torch_and_numpy_activations_cover_the_same_names_and_agree():
    from sk_weightfree._inference import ACTIVATIONS as NAMES, NUMPY_ACTIVATIONS
    from sk_weightfree.nn import ACTIVATIONS
    from sk_weightfree.nn._networks import TORCH_ACTIVATIONS

    assert tuple(TORCH_ACTIVATIONS) == tuple(ACTIVATIONS) == tuple(NUMPY_ACTIVATIONS) == NAMES
    z = np.linspace(-3, 3, 13)
    for name, act in TORCH_ACTIVATIONS.items():
        want = NUMPY_ACTIVATIONS[name](z.copy())
        computed = [act.module()(torch.from_numpy(z))]
        computed += [function(torch.from_numpy(z)) for function in act.functions]
        if act.method:
            computed.append(getattr(torch.from_numpy(z), act.method)())
        for got in computed:
            np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, err_msg=name)


@pytest.mark.parametrize("name", ["relu", "tanh", "logistic"])
def test_traced_activations_read_the_torch_table(name):
    from sk_weightfree._tracing import (_FUNCTION_ACTIVATIONS, _METHOD_ACTIVATIONS,
                                        _MODULE_ACTIVATIONS)
    from sk_weightfree.nn._networks import TORCH_ACTIVATIONS

    act = TORCH_ACTIVATIONS[name]
    assert _MODULE_ACTIVATIONS[act.module] == name
    assert {_FUNCTION_ACTIVATIONS[f] for f in act.functions} == {name}
    assert _METHOD_ACTIVATIONS[act.method] == name
