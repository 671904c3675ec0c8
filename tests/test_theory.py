"""Numerical check of the bias bound derived in ``docs/theory.md``.

A network small enough to enumerate every {0,1} mask (2 inputs -> 3 tanh units -> 2
outputs, 12 edges, 4096 masks) is used to compute, without Monte-Carlo noise:

* the exact gradient of the relaxation ``J(theta) = E_{W ~ Bernoulli(p)}[L(W)]``, both by
  autograd through the mask probabilities and by the finite-difference formula;
* the exact expectation of the straight-through estimator of
  :func:`sk_weightfree.nn.straight_through_mask` with Bernoulli sampling;
* the curvature constants ``beta_i = sup |d^2 L / dW_i^2|`` along the edges of the unit cube
  (measured on a grid, see the docs).

The bias must lie inside ``p'_i beta_i / 2``; a Monte-Carlo average of the real estimator
must agree with its exact expectation; and an estimator missing the ``p'`` factor must
break the bound (the check can fail).

Scope: this tiny Bernoulli/threshold network only -- fixed biases and unit signs, no batch
normalisation, no optimiser. The configuration the estimators train with by default
(threshold sampling with batch normalisation, ReLU, paired inputs, Adam) is not checked
here; ``docs/theory.md`` (sections 5 and 6) says so and why.
"""

import math

import pytest
import torch

from sk_weightfree.nn import straight_through_mask

DTYPE = torch.float64
N_IN, N_HID, N_OUT = 2, 3, 2
N_W1 = N_HID * N_IN
N_EDGES = N_W1 + N_OUT * N_HID  # 12 edges -> 4096 masks

# Fixed data and fixed unit-level quantities (biases, signs): only the edges are {0,1}.
X = torch.tensor([[1.0, 0.5], [-0.7, 1.2], [0.3, -1.0],
                  [-1.1, -0.4], [0.8, 0.9], [-0.2, 0.6]], dtype=DTYPE)
Y = torch.tensor([0, 1, 0, 1, 1, 0])
B1 = torch.tensor([0.1, -0.2, 0.05], dtype=DTYPE)
SIGNS = torch.tensor([1.0, -1.0, 1.0], dtype=DTYPE)
B2 = torch.tensor([0.2, -0.1], dtype=DTYPE)

GRID = 17        # points per cube edge for the curvature constants
N_MC = 40_000    # Monte-Carlo samples of the surrogate estimator
TOL = 1e-12


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def loss(w):
    """Mean cross-entropy of the tiny network for real-valued edge weights ``w`` (..., 12)."""
    lead = w.shape[:-1]
    w1 = w[..., :N_W1].reshape(*lead, N_HID, N_IN)
    w2 = w[..., N_W1:].reshape(*lead, N_OUT, N_HID)
    h = torch.tanh(torch.einsum("...hi,ni->...nh", w1, X) + B1) * SIGNS
    z = torch.einsum("...oh,...nh->...no", w2, h) + B2
    logp = z.log_softmax(-1)
    return -logp[..., torch.arange(len(Y)), Y].mean(-1)


def all_masks():
    codes = torch.arange(2 ** N_EDGES)[:, None]
    return ((codes >> torch.arange(N_EDGES)) & 1).to(DTYPE)


def mask_probabilities(theta, temperature, masks):
    p = torch.sigmoid(theta / temperature)
    return torch.exp(masks @ torch.log(p) + (1 - masks) @ torch.log1p(-p))


def gradient_at(w):
    """Per-row gradient of ``loss`` at the rows of ``w``."""
    w = w.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(loss(w).sum(), w)
    return g


def curvature_constants(grid=GRID, directions=range(N_EDGES)):
    """``M[i, j] = max |d^2 L / dW_i dW_j|`` over the edges of [0,1]^n along coordinate j.

    For every j, the other coordinates run over all vertices and W_j over ``grid`` points of
    [0, 1]. ``beta_i = M[i, i]``. Columns not in ``directions`` are left at zero.
    """
    others = all_masks()[: 2 ** (N_EDGES - 1), : N_EDGES - 1]  # vertices of the (n-1)-cube
    t = torch.linspace(0.0, 1.0, grid, dtype=DTYPE)
    m = torch.zeros(N_EDGES, N_EDGES, dtype=DTYPE)
    for j in directions:
        rest = others.repeat_interleave(grid, 0)
        col = t.repeat(len(others))[:, None]
        w = torch.cat([rest[:, :j], col, rest[:, j:]], dim=1).requires_grad_(True)
        (g,) = torch.autograd.grad(loss(w).sum(), w, create_graph=True)
        (h,) = torch.autograd.grad(g[:, j].sum(), w)  # row r: d/dW_j grad L(w_r)
        m[:, j] = h.abs().amax(0)
    return m


@pytest.fixture(scope="module")
def curvature():
    return curvature_constants()


def test_curvature_grid_is_fine_enough(curvature):
    """A 4x finer grid moves the measured constants by well under 1 % (two directions)."""
    directions = (1, 5)  # the largest beta_i
    fine = curvature_constants(grid=4 * (GRID - 1) + 1, directions=directions)
    for j in directions:
        assert torch.all(fine[:, j] >= curvature[:, j] - TOL)  # finer grid contains coarse
        torch.testing.assert_close(curvature[:, j], fine[:, j], rtol=1e-2, atol=1e-6)


@pytest.fixture(scope="module")
def theta():
    gen = torch.Generator().manual_seed(0)
    return 1.5 * torch.randn(N_EDGES, generator=gen, dtype=DTYPE)


def exact_quantities(theta, temperature):
    masks = all_masks()
    th = theta.clone().requires_grad_(True)
    prob = mask_probabilities(th, temperature, masks)
    values = loss(masks)
    (grad_autograd,) = torch.autograd.grad((prob * values).sum(), th)
    prob = prob.detach()
    p = torch.sigmoid(theta / temperature)
    dp = p * (1 - p) / temperature
    weighted = (prob * values)[:, None]
    diff = (masks * weighted).sum(0) / p - ((1 - masks) * weighted).sum(0) / (1 - p)
    mean_dl = (prob[:, None] * gradient_at(masks)).sum(0)  # E[dL/dW (W)]
    return {
        "p": p, "dp": dp, "grad_autograd": grad_autograd, "grad_formula": dp * diff,
        "surrogate_mean": dp * mean_dl, "no_dp_mean": mean_dl,
    }


# --------------------------------------------------------------------------------------
# hand-computed backward of the surrogate


def test_surrogate_backward_by_hand():
    temperature, upstream = 0.5, 2.0
    s = 1.0 / (1.0 + math.exp(-0.6))
    expected = upstream * s * (1 - s) / temperature
    for value, forward in [(0.3, 1.0), (-0.3, 0.0), (0.0, 0.0)]:
        th = torch.tensor(value, dtype=DTYPE, requires_grad=True)
        out = straight_through_mask(th, temperature, sampling="threshold")
        assert out.item() == forward
        (upstream * out).backward()
        if value != 0.0:
            assert th.grad.item() == pytest.approx(expected, rel=1e-12)
    # Bernoulli sampling: same backward whatever the sample.
    gen = torch.Generator().manual_seed(1)
    th = torch.full((1000,), 0.3, dtype=DTYPE, requires_grad=True)
    out = straight_through_mask(th, temperature, sampling="bernoulli", generator=gen)
    assert set(out.unique().tolist()) == {0.0, 1.0}
    (upstream * out).sum().backward()
    torch.testing.assert_close(th.grad, torch.full_like(th, expected), rtol=1e-12, atol=0)


# --------------------------------------------------------------------------------------
# the bound of docs/theory.md


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_exact_gradient_two_ways(theta, temperature):
    q = exact_quantities(theta, temperature)
    torch.testing.assert_close(q["grad_autograd"], q["grad_formula"], rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_surrogate_bias_within_bound(theta, curvature, temperature):
    q = exact_quantities(theta, temperature)
    beta = torch.diagonal(curvature)
    bias = q["surrogate_mean"] - q["grad_formula"]
    bound = q["dp"] * beta / 2
    assert torch.all(bias.abs() <= bound + TOL), (bias, bound)
    # norm form, and the temperature-only form ||beta|| / (8 T)
    assert bias.norm() <= bound.norm() + TOL
    assert bound.norm() <= q["dp"].max() * beta.norm() / 2 + TOL
    assert q["dp"].max() * beta.norm() / 2 <= beta.norm() / (8 * temperature) + TOL
    # the bias is not trivially zero: the check has something to measure
    assert bias.abs().max() > 1e-4


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_threshold_variant_within_bound(theta, curvature, temperature):
    q = exact_quantities(theta, temperature)
    p, dp = q["p"], q["dp"]
    th = theta.clone().requires_grad_(True)
    w = straight_through_mask(th, temperature, sampling="threshold")
    loss(w).backward()
    g_thr = th.grad
    torch.testing.assert_close(g_thr, dp * gradient_at((theta > 0).to(DTYPE)))
    flip = torch.minimum(p, 1 - p)  # P(W_j differs from the mode)
    bound = dp * (torch.diagonal(curvature) / 2 + curvature @ flip)
    assert torch.all((g_thr - q["grad_formula"]).abs() <= bound + TOL)


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_monte_carlo_matches_exact_expectation(theta, temperature):
    gen = torch.Generator().manual_seed(1234)
    logits = theta.expand(N_MC, N_EDGES).clone().requires_grad_(True)
    w = straight_through_mask(logits, temperature, sampling="bernoulli", generator=gen)
    loss(w).sum().backward()
    g = logits.grad
    mean, se = g.mean(0), g.std(0) / math.sqrt(N_MC)
    exact = exact_quantities(theta, temperature)["surrogate_mean"]
    z = (mean - exact) / se
    assert torch.all(z.abs() < 4.0), z
    # ... while the bias towards the exact gradient of J is far above the noise level
    grad_j = exact_quantities(theta, temperature)["grad_formula"]
    assert ((mean - grad_j) / se).abs().max() > 10.0


def test_estimator_without_dp_breaks_bound(theta, curvature):
    """Negative control: dropping the p' factor gives a bias the bound does not allow."""
    for temperature in (1.0, 0.5):
        q = exact_quantities(theta, temperature)
        bound = q["dp"] * torch.diagonal(curvature) / 2
        wrong_bias = q["no_dp_mean"] - q["grad_formula"]
        # by a factor 2, far beyond any grid error in beta
        assert torch.any(wrong_bias.abs() > 2 * bound)
