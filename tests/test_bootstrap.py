"""bootstrap_metric: how noisy a test-set score is."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

import persistlib as pl
from persistlib.bootstrap import BootstrapInterval, _score_rows, bootstrap_metric


@pytest.mark.parametrize("metric", ["accuracy", "precision", "recall", "f1"])
def test_estimate_matches_evaluate_and_lies_inside_interval(small_model, churn_split, metric):
    _, X_test, _, y_test = churn_split
    iv = bootstrap_metric(small_model, X_test, y_test, metric, n_boot=300, random_state=0)
    assert isinstance(iv, BootstrapInterval)
    assert iv.estimate == pytest.approx(pl.evaluate(small_model, X_test, y_test)[metric])
    assert iv.low < iv.estimate < iv.high
    assert (iv.n_boot, iv.n_rows, iv.confidence) == (300, len(y_test), 0.95)
    assert f"{iv.low:.3f}" in str(iv)


@pytest.mark.parametrize(
    "metric, fn",
    [
        ("precision", skm.precision_score),
        ("recall", skm.recall_score),
        ("f1", skm.f1_score),
        ("accuracy", skm.accuracy_score),
    ],
)
def test_vectorised_scores_agree_with_scikit_learn(metric, fn):
    rng = np.random.default_rng(1)
    t, p = rng.integers(0, 2, size=(20, 50)), rng.integers(0, 2, size=(20, 50))
    p[0] = 0  # a row with no predicted positives: precision defined as 0, like zero_division=0
    ours = _score_rows(t, p, metric, 1)
    kw = {} if metric == "accuracy" else {"zero_division": 0}
    theirs = [fn(t[i], p[i], **kw) for i in range(len(t))]
    np.testing.assert_allclose(ours, theirs)


def test_same_seed_same_interval_and_more_rows_narrower(small_model):
    X, y = pl.make_churn(4000, random_state=7)
    a = bootstrap_metric(small_model, X[:400], y[:400], n_boot=400, random_state=3)
    b = bootstrap_metric(small_model, X[:400], y[:400], n_boot=400, random_state=3)
    big = bootstrap_metric(small_model, X, y, n_boot=400, random_state=3)
    assert a == b
    assert big.width < a.width  # ten times the rows: a clearly narrower interval


def test_higher_confidence_is_wider(small_model, churn_split):
    _, X_test, _, y_test = churn_split
    narrow = bootstrap_metric(small_model, X_test, y_test, n_boot=500, confidence=0.5, random_state=0)
    wide = bootstrap_metric(small_model, X_test, y_test, n_boot=500, confidence=0.99, random_state=0)
    assert wide.low < narrow.low and wide.high > narrow.high


@pytest.mark.parametrize(
    "kwargs, msg",
    [
        ({"metric": "roc_auc"}, "metric must be"),
        ({"n_boot": 5}, "n_boot must be"),
        ({"confidence": 95}, "confidence must be"),
        ({"confidence": 1.0}, "confidence must be"),
    ],
)
def test_bad_arguments_are_explained(small_model, churn_split, kwargs, msg):
    _, X_test, _, y_test = churn_split
    with pytest.raises(ValueError, match=msg):
        bootstrap_metric(small_model, X_test, y_test, **kwargs)


def test_mismatched_rows(small_model, churn_split):
    _, X_test, _, y_test = churn_split
    with pytest.raises(ValueError, match="matching features and labels"):
        bootstrap_metric(small_model, X_test, y_test[:-1])
    with pytest.raises(TypeError, match="fitted model"):
        bootstrap_metric(object(), X_test, y_test)
