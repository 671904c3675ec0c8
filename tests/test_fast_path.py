"""The device-resident, lean-epoch path gives what a plain torch loop gives."""

import numpy as np
import torch
from skorch import NeuralNetClassifier

from sk_weightfree import DenseClassifier, WeightFreeClassifier
from sk_weightfree.nn import DenseMLP, ThresholdRule, WeightFreeMLP


def _seeds(random_state):
    return np.random.RandomState(random_state).randint(0, 2**31 - 1, size=4)


def _plain_loop(module, X, y, epochs, batch_size, lr, shuffle_seed):
    """The textbook loop: same module, same shuffling, Adam, cross-entropy."""
    Xt, yt = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y)
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    g = torch.Generator().manual_seed(int(shuffle_seed))
    losses = []
    module.train()
    for _ in range(epochs):
        order = torch.randperm(len(Xt), generator=g)
        total = 0.0
        for start in range(0, len(Xt), batch_size):
            idx = order[start:start + batch_size]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(module(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        losses.append(total / len(Xt))
    return losses


def test_dense_matches_a_plain_torch_loop(small_data):
    X, y = small_data
    clf = DenseClassifier(hidden_layer_sizes=(10,), max_epochs=4, batch_size=25,
                          random_state=7, device="cpu").fit(X, y)
    init_seed, shuffle_seed, _, _ = _seeds(7)
    module = DenseMLP(8, (10,), 3, generator=torch.Generator().manual_seed(int(init_seed)))
    losses = _plain_loop(module, X, y, 4, 25, 1e-3, shuffle_seed)
    np.testing.assert_allclose([r["train_loss"] for r in clf.history_], losses, rtol=1e-5)
    for layer, coef in zip(module.linears, clf.coefs_):
        np.testing.assert_allclose(layer.weight.detach().numpy().T, coef, rtol=1e-5, atol=1e-6)


def test_weight_free_matches_a_plain_torch_loop(small_data):
    X, y = small_data
    clf = WeightFreeClassifier(hidden_layer_sizes=(10,), max_epochs=3, batch_size=25,
                               lr_schedule="constant", random_state=3, device="cpu").fit(X, y)
    init_seed, shuffle_seed, _, _ = _seeds(3)
    module = WeightFreeMLP(8, (10,), 3, rule=clf.mask_rule_,
                           generator=torch.Generator().manual_seed(int(init_seed)))
    losses = _plain_loop(module, X, y, 3, 25, 0.05, shuffle_seed)
    np.testing.assert_allclose([r["train_loss"] for r in clf.history_], losses, rtol=1e-5)
    for linear, mask in zip(module.linears, clf.masks_):
        np.testing.assert_array_equal(linear.hard_mask().numpy().T, mask)


def test_same_as_skorch_default_loop_on_unshuffled_data(small_data):
    """Our lean epoch against skorch's own run_single_epoch and DataLoader."""
    X, y = small_data
    X = X.astype(np.float32)
    init_seed = int(_seeds(1)[0])
    reference = NeuralNetClassifier(
        DenseMLP(8, (10,), 3, generator=torch.Generator().manual_seed(init_seed)),
        criterion=torch.nn.CrossEntropyLoss, optimizer=torch.optim.Adam, lr=1e-3,
        max_epochs=3, batch_size=30, train_split=None, verbose=0,
        iterator_train__shuffle=False,
    ).fit(X, y)
    ours = DenseClassifier(hidden_layer_sizes=(10,), max_epochs=3, batch_size=30,
                           random_state=1, device="cpu")
    ours.fit(X, y)  # our fit shuffles; rerun the net unshuffled for a like-for-like check
    ours.net_.shuffle_generator = None
    from sk_weightfree._training import DeviceBatchIterator, ResidentData

    data = ResidentData(X, y, "cpu")
    ours.net_.get_iterator = lambda ds, training=False: DeviceBatchIterator(data, 30)
    ours.net_.initialize()
    ours.net_.module_.load_state_dict(
        DenseMLP(8, (10,), 3, generator=torch.Generator().manual_seed(init_seed)).state_dict())
    ours.net_.initialize_optimizer()
    ours.net_.partial_fit(data)
    np.testing.assert_allclose(ours.net_.history[:, "train_loss"][-3:],
                               reference.history[:, "train_loss"], rtol=1e-5)


def test_bfloat16_autocast_trains_to_a_similar_loss(small_data):
    X, y = small_data
    params = dict(hidden_layer_sizes=(10,), max_epochs=3, batch_size=25, random_state=0,
                  device="cpu")
    full = WeightFreeClassifier(**params).fit(X, y)
    half = WeightFreeClassifier(precision="bfloat16", **params).fit(X, y)
    np.testing.assert_allclose([r["train_loss"] for r in half.history_],
                               [r["train_loss"] for r in full.history_], rtol=0.05)
    assert half.net_.module_.linears[0].scores.dtype == torch.float32


def test_a_compiled_weight_free_fit_trains_as_the_eager_one(small_data):
    """Under torch.compile the paired layers take the plain fold of the surrogate mask
    (inductor fuses it); the losses are the eager ones, annealed temperature included."""
    X, y = small_data
    params = dict(hidden_layer_sizes=(6,), max_epochs=2, batch_size=40, random_state=0,
                  device="cpu", mask_rule=ThresholdRule(temperature=2.0, final_temperature=0.5))
    eager = WeightFreeClassifier(**params).fit(X, y)
    compiled = WeightFreeClassifier(torch_compile=True, **params).fit(X, y)
    np.testing.assert_allclose([r["train_loss"] for r in compiled.history_],
                               [r["train_loss"] for r in eager.history_], rtol=1e-4)


def test_compiled_training_step_gives_the_same_loss(small_data):
    X, y = small_data
    params = dict(hidden_layer_sizes=(6,), max_epochs=2, batch_size=40, random_state=0,
                  device="cpu")
    eager = DenseClassifier(**params).fit(X, y)
    compiled = DenseClassifier(torch_compile=True, **params).fit(X, y)
    np.testing.assert_allclose([r["train_loss"] for r in compiled.history_],
                               [r["train_loss"] for r in eager.history_], rtol=1e-4)
    np.testing.assert_allclose(compiled.predict_proba(X), eager.predict_proba(X), atol=1e-4)
    # a second fit of the same shapes (a search's refits) reuses the compiled graphs
    from torch._dynamo.utils import counters

    graphs = counters["stats"]["unique_graphs"]
    DenseClassifier(torch_compile=True, **{**params, "random_state": 1}).fit(X, y)
    assert counters["stats"]["unique_graphs"] == graphs
    import pickle

    restored = pickle.loads(pickle.dumps(compiled))  # the compiled forward is not pickled
    np.testing.assert_array_equal(restored.predict(X), compiled.predict(X))
