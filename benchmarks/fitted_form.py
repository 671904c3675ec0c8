"""How far the forms of a fitted network are from its estimator (issue 29).

For the ten estimators (and the weight-agnostic ensembles), fitted for 3 epochs with
``random_state=0`` on the CPU (digits, 400 standardised rows; Friedman #1, 200 rows),
float64 input: the largest absolute difference between the estimator's ``predict_proba``
(classifiers) or ``predict`` (regressors) and

- the predictor of its :func:`sk_weightfree.io.dump` file (``precision="float32"``);
- its ``to_module()`` used as it comes: softmax of the output for classifiers, the output
  itself for regressors (``nan`` where the output is not of that shape: stacked members).

Run it on another checkout to compare (e.g. ``git archive <rev> sk_weightfree | tar -x -C
/tmp/rev`` and ``PYTHONPATH=/tmp/rev``)::

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD python benchmarks/fitted_form.py
"""

import io

import numpy as np
import torch
from sklearn.datasets import load_digits, make_friedman1
from sklearn.preprocessing import StandardScaler

import sk_weightfree
from sk_weightfree import io as skio

NAMES = ["DenseClassifier", "WeightFreeClassifier", "PrunedClassifier",
         "WeightAgnosticClassifier", "RandomNetworkClassifier", "DenseRegressor",
         "WeightFreeRegressor", "PrunedRegressor", "WeightAgnosticRegressor",
         "RandomNetworkRegressor"]


def main():
    torch.set_num_threads(1)
    X, y = load_digits(return_X_y=True)
    X, y = StandardScaler().fit_transform(X)[:400], y[:400]
    X_r, y_r = make_friedman1(n_samples=200, random_state=0)
    for name in NAMES:
        for ensemble in ([False, True] if "Agnostic" in name else [False]):
            params = dict(max_epochs=3, random_state=0, device="cpu")
            if ensemble:
                params["ensemble"] = True
            classifier = name.endswith("Classifier")
            A, b = (X, y) if classifier else (X_r, y_r)
            est = getattr(sk_weightfree, name)(**params).fit(A, b)
            expected = est.predict_proba(A) if classifier else est.predict(A)
            buffer = io.BytesIO()
            skio.dump(est, buffer)
            buffer.seek(0)
            loaded = skio.load(buffer)
            from_file = loaded.predict_proba(A) if classifier else loaded.predict(A)
            with torch.no_grad():
                z = est.to_module().double()(torch.as_tensor(A)).numpy()
            module = np.nan
            if z.ndim == 2:
                got = torch.softmax(torch.as_tensor(z), -1).numpy() if classifier else z.ravel()
                module = np.abs(got - expected).max()
            print(f"{name + (' ensemble' if ensemble else ''):34s} "
                  f"file {np.abs(from_file - expected).max():.1e}  "
                  f"module as it comes {module:.1e}  module output shape {z.shape}")


if __name__ == "__main__":
    main()
