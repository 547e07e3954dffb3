import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

import persistlib as pl
from persistlib.data import CHURN_FEATURES


def test_make_churn_shape_columns_and_numeric():
    X, y = pl.make_churn(800, random_state=1)
    assert X.shape == (800, len(CHURN_FEATURES))
    assert list(X.columns) == list(CHURN_FEATURES)
    assert all(pd.api.types.is_numeric_dtype(t) for t in X.dtypes)
    assert y.name == "churn" and set(y.unique()) <= {0, 1}
    assert not X.isna().any().any()


def test_make_churn_is_deterministic_for_a_seed():
    X1, y1 = pl.make_churn(500, random_state=7)
    X2, y2 = pl.make_churn(500, random_state=7)
    X3, _ = pl.make_churn(500, random_state=8)
    pd.testing.assert_frame_equal(X1, X2)
    pd.testing.assert_series_equal(y1, y2)
    assert not X1.equals(X3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_churn_rate_is_between_20_and_30_percent(seed):
    _, y = pl.make_churn(5000, random_state=seed)
    assert 0.20 <= y.mean() <= 0.30


@pytest.fixture(scope="module")
def forest_and_test():
    X, y = pl.make_churn(5000, random_state=42)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=42, stratify=y)
    model = RandomForestClassifier(200, random_state=42, n_jobs=2).fit(Xtr, ytr)
    return model, Xte, yte


def test_random_forest_reaches_about_0_9_and_passes_the_lesson_gate(forest_and_test):
    model, Xte, yte = forest_and_test
    metrics = pl.evaluate(model, Xte, yte)
    assert 0.87 <= metrics["accuracy"] <= 0.95
    assert pl.Gate(pl.DEFAULT_THRESHOLDS).check(metrics).passed


def test_drift_costs_a_model_trained_without_it_at_least_5_points(forest_and_test):
    model, Xte, yte = forest_and_test
    base = pl.evaluate(model, Xte, yte)["accuracy"]
    Xd, yd = pl.make_churn(5000, drift=1.0, random_state=3)
    drifted = pl.evaluate(model, Xd, yd)["accuracy"]
    assert base - drifted >= 0.05


def test_drift_shifts_feature_distributions():
    X0, _ = pl.make_churn(4000, random_state=0)
    X1, _ = pl.make_churn(4000, drift=1.0, random_state=0)
    assert X1["monthly_charges"].mean() > X0["monthly_charges"].mean() + 5
    assert X1["support_calls"].mean() > X0["support_calls"].mean()


@pytest.mark.parametrize("bad", [0, -5, 2.5, "100", None, True])
def test_make_churn_rejects_bad_n_samples(bad):
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        pl.make_churn(bad)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "high"])
def test_make_churn_rejects_bad_drift(bad):
    with pytest.raises(ValueError, match="drift must be"):
        pl.make_churn(100, drift=bad)


def test_fingerprint_frame_is_content_based():
    X, _ = pl.make_churn(300, random_state=0)
    fp = pl.fingerprint(X)
    assert fp["rows"] == 300 and len(fp["sha256"]) == 64 and fp["kind"] == "dataframe"
    assert pl.fingerprint(X.copy()) == fp
    changed = X.copy()
    changed.iloc[5, 2] += 1
    assert pl.fingerprint(changed)["sha256"] != fp["sha256"]
    assert pl.fingerprint(changed)["schema_sha256"] == fp["schema_sha256"]
    renamed = X.rename(columns={"region": "area"})
    assert pl.fingerprint(renamed)["schema_sha256"] != fp["schema_sha256"]


def test_fingerprint_array_and_series():
    a = np.arange(12, dtype=float).reshape(4, 3)
    fa = pl.fingerprint(a)
    assert fa["rows"] == 4 and fa["kind"] == "ndarray"
    assert pl.fingerprint(a.reshape(3, 4))["sha256"] != fa["sha256"]
    assert pl.fingerprint(a.astype(np.float32))["sha256"] != fa["sha256"]
    s = pd.Series([1, 2, 3], name="x")
    assert pl.fingerprint(s)["rows"] == 3


def test_fingerprint_files(tmp_path):
    X, _ = pl.make_churn(50, random_state=0)
    csv = tmp_path / "churn.csv"
    X.to_csv(csv, index=False)
    fp = pl.fingerprint(csv)
    assert fp["kind"] == "file" and fp["rows"] == 50 and fp["schema_sha256"]
    assert pl.fingerprint(str(csv)) == fp
    npy = tmp_path / "a.npy"
    np.save(npy, np.zeros((7, 2)))
    assert pl.fingerprint(npy)["rows"] == 7
    csv.write_text(csv.read_text() + "1,2,3,4,5,6,7,8,9,10,11,12\n")
    assert pl.fingerprint(csv)["sha256"] != fp["sha256"]


def test_fingerprint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        pl.fingerprint(tmp_path / "missing.csv")
    with pytest.raises(TypeError, match="DataFrame, Series, ndarray or file path"):
        pl.fingerprint([1, 2, 3])
    with pytest.raises(TypeError, match="object-dtype"):
        pl.fingerprint(np.array([{"a": 1}], dtype=object))
