"""Files written by sk_weightfree 0.2.0 (tests/data, made by make_v0_2_0_files.py) still load
and predict what they predicted then."""

from pathlib import Path

import numpy as np
import pytest

from sk_weightfree import io as skio

DATA = Path(__file__).parent / "data"
NETWORKS = ["weight_free_mlp", "weight_agnostic_ensemble", "dense_regressor",
            "weight_free_cnn"]


@pytest.mark.parametrize("name", NETWORKS)
def test_version_0_2_0_files_predict_as_before(name):
    expected = np.load(DATA / "v0_2_0_expected.npz")
    predictor = skio.load(DATA / f"v0_2_0_{name}.npz")
    assert predictor.metadata_["package_version"] == "0.2.0"
    rows = expected["X"]
    got = (predictor.predict_proba(rows) if predictor.classes_ is not None
           else predictor.predict(rows))
    np.testing.assert_allclose(got, expected[name], rtol=1e-10, atol=1e-12)
