"""Batch statistics weighted by sample_weight: weight 0 = sample absent, weight k = k copies."""

import numpy as np
import sklearn.base
import pytest
import torch
from torch import nn

import sk_weightfree
from sk_weightfree.nn import SharedWeightMLP, WeightFreeMLP
from sk_weightfree.nn import sample_weighted
from sk_weightfree.nn._layers import recalibrate_batch_norms

WEIGHTS = torch.tensor([0, 1, 3, 2, 0, 1, 4, 2], dtype=torch.float64)


def _repeated(x, weights=WEIGHTS):
    return x.repeat_interleave(weights.long(), dim=0)


@pytest.mark.parametrize("shape", [(8, 5), (8, 3, 4, 4)], ids=["1d", "2d"])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_weighted_batch_norm_equals_repetition(shape, momentum):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    norm_class = nn.BatchNorm1d if len(shape) == 2 else nn.BatchNorm2d
    weighted = norm_class(shape[1], momentum=momentum).double()
    with torch.no_grad():
        weighted.weight.uniform_(0.5, 2.0)
        weighted.bias.uniform_(-1, 1)
    repeated = norm_class(shape[1], momentum=momentum).double()
    repeated.load_state_dict(weighted.state_dict())
    for _ in range(2):  # a running update from a non-reset state too
        with sample_weighted(weighted, WEIGHTS):
            out_weighted = weighted(x)
        out_repeated = repeated(_repeated(x))
    np.testing.assert_allclose(_repeated(out_weighted.detach()), out_repeated.detach(),
                               rtol=1e-12, atol=1e-12)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        np.testing.assert_allclose(getattr(weighted, name), getattr(repeated, name),
                                   rtol=1e-12, err_msg=name)
    assert "forward" not in weighted.__dict__  # the override ends with the block


def test_weighted_batch_norm_gradient_equals_repetition():
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    xw, xr = x.clone().requires_grad_(), _repeated(x).requires_grad_()
    norm = nn.BatchNorm1d(4).double()
    with sample_weighted(norm, WEIGHTS):
        (norm(xw).sin() * WEIGHTS[:, None]).sum().backward()
    norm(xr).sin().sum().backward()
    summed = torch.zeros_like(x).index_add_(
        0, torch.arange(8).repeat_interleave(WEIGHTS.long()), xr.grad)
    np.testing.assert_allclose(xw.grad, summed, rtol=1e-10, atol=1e-12)


def test_zero_weight_batch_changes_no_running_statistic():
    norm = nn.BatchNorm1d(3)
    before = {k: v.clone() for k, v in norm.state_dict().items()}
    with sample_weighted(norm, torch.zeros(6)):
        norm(torch.randn(6, 3))
    for name, value in norm.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_eval_mode_and_no_weights_are_torch_itself():
    norm = nn.BatchNorm1d(3)
    norm.running_mean.fill_(0.5)
    x = torch.randn(6, 3)
    expected = nn.BatchNorm1d(3)
    expected.load_state_dict(norm.state_dict())
    with sample_weighted(norm, None):
        assert torch.equal(norm(x), expected(x))
    norm.eval(), expected.eval()
    with sample_weighted(norm, torch.arange(6.0)):
        assert torch.equal(norm(x), expected(x))


@pytest.mark.parametrize("split", [8, 3], ids=["one-batch", "two-batches"])
def test_weighted_recalibration_pools_the_pass(split):
    """Weighted batches recalibrate to the statistics of the repeated data in one batch
    (split in two: the first norm, whose input does not depend on the batching)."""
    gen = torch.Generator().manual_seed(0)
    net = WeightFreeMLP(5, (6,), 3, generator=gen).double()
    x = torch.randn(8, 5, generator=gen, dtype=torch.float64)
    copy = WeightFreeMLP(5, (6,), 3, generator=gen).double()
    copy.load_state_dict(net.state_dict())
    batches = [(x[:split], WEIGHTS[:split]), (x[split:], WEIGHTS[split:])]
    recalibrate_batch_norms(net, batches[:1] if split == 8 else batches)
    recalibrate_batch_norms(copy, [_repeated(x)])
    names = [n for n in net.state_dict() if "running" in n and (split == 8 or "0." in n)]
    assert names
    for name in names:
        np.testing.assert_allclose(net.state_dict()[name], copy.state_dict()[name],
                                   rtol=1e-12, atol=1e-14, err_msg=name)


def test_weighted_output_standardisation_equals_repetition():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 4, generator=gen, dtype=torch.float64)
    nets = [SharedWeightMLP(4, (5,), 2, weight_values=(0.5, 1.0), normalize_output=True,
                            generator=torch.Generator().manual_seed(0)).double()
            for _ in range(2)]
    with sample_weighted(nets[0], WEIGHTS):
        nets[0].train()(x)
    nets[1].train()(_repeated(x))
    for name in ("output_mean", "output_var"):
        np.testing.assert_allclose(getattr(nets[0], name), getattr(nets[1], name),
                                   rtol=1e-12, err_msg=name)
    nets[0].recalibrate_norms([(x[:3], WEIGHTS[:3]), (x[3:], WEIGHTS[3:])])
    nets[1].recalibrate_norms([_repeated(x)])
    for name in ("output_mean", "output_var"):
        np.testing.assert_allclose(getattr(nets[0], name), getattr(nets[1], name),
                                   rtol=1e-12, err_msg=name)
    assert nets[0].batch_sample_weight is None


@pytest.mark.parametrize("cls", [sk_weightfree.WeightFreeClassifier,
                                 sk_weightfree.RandomNetworkRegressor])
def test_zero_weight_outlier_does_not_move_the_fitted_statistics(cls):
    """A far outlier of weight 0 leaves the model as without it (float64, one batch)."""
    rng = np.random.RandomState(0)
    X = rng.randn(40, 4)
    y = (X[:, 0] > 0).astype(int) if sklearn.base.is_classifier(cls()) else X[:, 0]
    X_out = np.vstack([X, np.full((1, 4), 50.0)])
    y_out = np.append(y, y[:1])
    weights = np.append(np.ones(40), 0.0)
    params = dict(hidden_layer_sizes=(8,), max_epochs=3, batch_size=1000,
                  precision="float64", random_state=0)
    with_outlier = cls(**params).fit(X_out, y_out, sample_weight=weights)
    without = cls(**params).fit(X, y, sample_weight=np.ones(40))
    np.testing.assert_allclose(with_outlier.unit_scales_[0], without.unit_scales_[0],
                               rtol=1e-9)
    np.testing.assert_allclose(with_outlier.intercepts_[0], without.intercepts_[0],
                               rtol=1e-9, atol=1e-12)


class _NormedTemplate(nn.Module):
    """A template with its own batch norm (kept as it is by the dense family)."""

    def __init__(self, n_outputs):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(30, 8), nn.BatchNorm1d(8), nn.ReLU(),
                                  nn.Linear(8, n_outputs))

    def forward(self, x):
        return self.body(x)


@pytest.mark.parametrize("cls", [sk_weightfree.DenseClassifier,
                                 sk_weightfree.WeightFreeClassifier])
def test_template_batch_norms_are_weighted(cls):
    from sklearn.utils.estimator_checks import check_sample_weight_equivalence_on_dense_data

    estimator = cls(module=_NormedTemplate, precision="float64", batch_size=10**6,
                    random_state=0)
    check_sample_weight_equivalence_on_dense_data(cls.__name__, estimator)


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("weight", [0.0, 0.5, 3.0], ids=["zero", "below-one", "three"])
def test_running_update_without_host_reads_is_the_same(momentum, weight):
    """The update accelerators run (no host read of the weight) equals the CPU one."""
    from sk_weightfree.nn._layers import Moments, _update_running_statistics

    gen = torch.Generator().manual_seed(0)
    mean, var = torch.randn(4, generator=gen), torch.rand(4, generator=gen)
    moments = Moments(mean, var, torch.tensor(weight), torch.tensor(max(weight, 2.0) * (
        weight > 0)), None)
    norms = [nn.BatchNorm1d(4, momentum=momentum) for _ in range(2)]
    for norm, read_on_host in zip(norms, (True, False)):
        norm.num_batches_tracked.fill_(2)
        for _ in range(2):
            _update_running_statistics(norm, moments, read_on_host=read_on_host)
    for a, b in zip(norms[0].state_dict().values(), norms[1].state_dict().values()):
        torch.testing.assert_close(a, b)
    assert int(norms[0].num_batches_tracked) == (2 if weight == 0.0 else 4)


def test_float64_epoch_losses_are_not_rounded_to_float32(small_data):
    X, y = small_data
    est = sk_weightfree.DenseClassifier(hidden_layer_sizes=(8,), max_epochs=2,
                                        precision="float64", random_state=0).fit(X, y)
    losses = np.array(est.loss_curve_)
    assert (losses.astype(np.float32).astype(np.float64) != losses).any()


@pytest.mark.parametrize("total", [1.01, 1.2, 2.0, 0.5], ids=str)
def test_small_fractional_weights_count_as_the_samples_they_are(total):
    """Weights summing to about 1 do not blow up the running variance: the n - 1 counts
    at least the weighted samples (an integer weight k still counts as k)."""
    x = torch.randn(32, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    weights = torch.rand(32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    weighted, unweighted = nn.BatchNorm1d(3, momentum=1.0).double(), nn.BatchNorm1d(
        3, momentum=1.0).double()
    with sample_weighted(weighted, weights * total / weights.sum()):
        weighted(x)
    with sample_weighted(unweighted, torch.ones(32, dtype=torch.float64)):
        unweighted(x)
    np.testing.assert_allclose(weighted.running_var, unweighted.running_var, rtol=0.3)
    recalibrate_batch_norms(weighted, [(x, weights * total / weights.sum())])
    np.testing.assert_allclose(weighted.running_var, unweighted.running_var, rtol=0.3)


@pytest.mark.parametrize("options", [dict(shuffle=False), dict(early_stopping=True)],
                         ids=["in-order", "early-stopping"])
@pytest.mark.parametrize("cls", [sk_weightfree.WeightFreeClassifier,
                                 sk_weightfree.WeightAgnosticRegressor,
                                 sk_weightfree.DenseClassifier])
def test_zero_weight_rows_are_absent_even_in_mini_batches(cls, options, small_data):
    """Weight 0 is the sample removed: the same fit, mini-batches, float32 and the
    early-stopping split included."""
    X, y = small_data
    y = y if sklearn.base.is_classifier(cls()) else X[:, 0]
    weights = np.ones(len(y))
    weights[:32] = 0.0  # a whole first batch of weight 0 with shuffle=False
    params = dict(hidden_layer_sizes=(8, 8, 8, 8, 8, 8, 8, 8), max_epochs=2, batch_size=32,
                  random_state=0, **options)
    weighted = cls(**params).fit(X, y, sample_weight=weights)
    removed = cls(**params).fit(X[32:], y[32:])
    assert np.isfinite(weighted.loss_curve_).all()
    for a, b in zip(weighted.coefs_ + weighted.intercepts_, removed.coefs_ + removed.intercepts_):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(weighted.predict(X), removed.predict(X))


def test_nearly_equal_weights_give_nearly_the_unweighted_model(small_data):
    """Equal weights take the unweighted path; weights a hair apart end close to it (the
    recalibration pools the pass either way)."""
    X, y = small_data
    weights = np.ones(len(y))
    weights[0] = 1 + 1e-9
    params = dict(hidden_layer_sizes=(16,), max_epochs=2, batch_size=50,
                  precision="float64", random_state=0)
    a = sk_weightfree.WeightFreeClassifier(**params).fit(X, y)
    b = sk_weightfree.WeightFreeClassifier(**params).fit(X, y, sample_weight=weights)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-6)


def test_one_weighted_sample_is_a_clear_error(small_data):
    X, y = small_data
    weights = np.zeros(len(y))
    weights[3] = 2.0
    with pytest.raises(ValueError, match="1 sample.* non-zero weight.* at least 2"):
        sk_weightfree.WeightFreeClassifier(max_epochs=1).fit(X, y, sample_weight=weights)
    with pytest.raises(ValueError, match="1 sample.* non-zero weight.* at least 2"):
        sk_weightfree.WeightFreeClassifier().partial_fit(X, y, classes=np.unique(y),
                                                         sample_weight=weights)
    weights[4] = 1.0  # two weighted samples: too few to hold one out for early stopping
    with pytest.raises(ValueError, match="training part of the early-stopping split has 1"), \
            pytest.warns(UserWarning, match="not stratified"):
        sk_weightfree.DenseClassifier(early_stopping=True, validation_fraction=0.5).fit(
            X, y, sample_weight=weights)


def test_nested_blocks_keep_the_outer_weights():
    norm, net = nn.BatchNorm1d(3), SharedWeightMLP(3, (4,), 2, weight_values=(1.0,),
                                                   normalize_output=True)
    outer, inner = torch.ones(6), torch.arange(6.0)
    for module in (norm, net):
        with sample_weighted(module, outer):
            with sample_weighted(module, inner):
                pass
            seen = module._sample_weight if module is norm else module.batch_sample_weight
            assert seen is outer
        assert "forward" not in norm.__dict__ and net.batch_sample_weight is None


def test_a_norm_with_its_own_forward_is_refused():
    norm = nn.BatchNorm1d(3)
    norm.forward = lambda x: x
    with pytest.raises(ValueError, match="forward method of its own"):
        with sample_weighted(norm, torch.ones(4)):
            pass


class _UntrackedTemplate(nn.Module):
    def __init__(self, n_outputs):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8, track_running_stats=False),
                                  nn.ReLU(), nn.Linear(8, n_outputs))

    def forward(self, x):
        return self.body(x)


@pytest.mark.parametrize("weighted", [False, True])
def test_a_template_norm_without_running_statistics_fits(weighted, small_data):
    X, y = small_data
    est = sk_weightfree.WeightFreeClassifier(module=_UntrackedTemplate, max_epochs=2,
                                             random_state=0)
    est.fit(X, y, sample_weight=np.arange(len(y)) % 3 + 1.0 if weighted else None)
    assert est.score(X, y) > 0.4  # three classes: chance is 1/3


def test_to_module_during_a_weighted_fit_is_plain(small_data):
    X, y = small_data
    copies = []

    class Grab(sk_weightfree.WeightFreeClassifier):
        def _finish_training(self, train_data, valid_data):
            super()._finish_training(train_data, valid_data)
            copies.append(self.to_module())

    Grab(hidden_layer_sizes=(8,), max_epochs=1).fit(X, y, sample_weight=np.arange(len(y)) + 1.0)
    assert copies and not any(name in norm.__dict__ for norm in copies[0].modules()
                              for name in ("forward", "_sample_weight", "_pool"))


def _recalibration_chunks(monkeypatch, estimator, X, y):
    """The row counts of the chunks the estimator's recalibration pass is given."""
    from sk_weightfree._base import BaseNetwork

    seen = []
    original = BaseNetwork._recalibration_batches

    def spy(self, train_data):
        batches = list(original(self, train_data))
        seen.extend(len(X) for X, _ in batches)
        return iter(batches)

    monkeypatch.setattr(BaseNetwork, "_recalibration_batches", spy)
    estimator.fit(X, y)
    return seen


def test_recalibration_takes_a_bounded_subsample_in_chunks(monkeypatch):
    """At most RECALIBRATION_ROWS rows, in chunks of RECALIBRATION_CHUNK rows for an MLP,
    fewer rows a chunk for wide inputs (prediction's bound on values per batch)."""
    import sk_weightfree._base as base
    from sk_weightfree import WeightFreeClassifier

    monkeypatch.setattr(base, "RECALIBRATION_ROWS", 100)
    monkeypatch.setattr(base, "RECALIBRATION_CHUNK", 40)
    rng = np.random.RandomState(0)
    X, y = rng.randn(300, 6).astype(np.float32), np.arange(300) % 3
    options = dict(hidden_layer_sizes=(5,), max_epochs=1, batch_size=16, random_state=0)
    assert _recalibration_chunks(monkeypatch, WeightFreeClassifier(**options), X, y) == [40, 40]
    monkeypatch.setattr(base, "MAX_BATCH_VALUES", 6 * 25)  # 25 rows of 6 values a chunk
    assert _recalibration_chunks(monkeypatch, WeightFreeClassifier(**options), X, y) == [25] * 4
    big_batch = WeightFreeClassifier(**{**options, "batch_size": 150})
    assert _recalibration_chunks(monkeypatch, big_batch, X, y) == [150]  # one batch


def test_a_template_recalibrates_in_batches_of_its_batch_size(monkeypatch):
    import sk_weightfree._base as base
    from sk_weightfree import WeightFreeClassifier

    monkeypatch.setattr(base, "RECALIBRATION_ROWS", 100)
    template = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.BatchNorm1d(5),
                                   torch.nn.ReLU(), torch.nn.Linear(5, 3))
    rng = np.random.RandomState(0)
    X, y = rng.randn(300, 6).astype(np.float32), np.arange(300) % 3
    estimator = WeightFreeClassifier(module=template, max_epochs=1, batch_size=16,
                                     random_state=0)
    assert _recalibration_chunks(monkeypatch, estimator, X, y) == [16] * 6
