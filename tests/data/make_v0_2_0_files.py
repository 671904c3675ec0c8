"""Writes tests/data/v0_2_0_*.npz with io.dump of sk_weightfree 0.2.0 (run once, at 0.2.0)."""
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler
import sk_weightfree as skw
from sk_weightfree import io as skio
from sk_weightfree.nn import SmallCNN
import functools

torch.set_num_threads(1)
X, y = load_digits(return_X_y=True)
X = StandardScaler().fit_transform(X)[:300]
y = y[:300]
small = dict(hidden_layer_sizes=(12,), max_epochs=2, batch_size=64, device="cpu", random_state=0)
cases = {
    "weight_free_mlp": skw.WeightFreeClassifier(**small),
    "weight_agnostic_ensemble": skw.WeightAgnosticClassifier(ensemble=True, **small),
    "dense_regressor": skw.DenseRegressor(**small),
    "weight_free_cnn": skw.WeightFreeClassifier(
        module=functools.partial(SmallCNN, channels=(2, 3), hidden=8), input_shape=(1, 8, 8),
        max_epochs=1, batch_size=64, device="cpu", random_state=0),
}
rows = X[:10]
expected = {"X": rows}
for name, est in cases.items():
    target = y.astype(float) * 3 + 1 if "regressor" in name else y
    est.fit(X, target)
    skio.dump(est, f"tests/data/v0_2_0_{name}.npz")
    predictor = skio.load(f"tests/data/v0_2_0_{name}.npz")
    expected[name] = predictor.predict_proba(rows) if hasattr(predictor, "predict_proba") \
        else predictor.predict(rows)
np.savez("tests/data/v0_2_0_expected.npz", **expected)
