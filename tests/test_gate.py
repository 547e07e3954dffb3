import math

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.svm import LinearSVC

import persistlib as pl
from persistlib import errors
from persistlib.gate import GateReport


def test_evaluate_returns_the_five_metrics(small_model, churn_split):
    _, X_test, _, y_test = churn_split
    m = pl.evaluate(small_model, X_test, y_test)
    assert set(m) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    assert all(isinstance(v, float) and 0 <= v <= 1 for v in m.values())
    expected_acc = float((small_model.predict(X_test) == y_test).mean())
    assert math.isclose(m["accuracy"], expected_acc)


def test_evaluate_without_predict_proba_has_no_roc_auc(churn_split):
    X_train, X_test, y_train, y_test = churn_split
    svc = LinearSVC(max_iter=200, dual="auto").fit(X_train.to_numpy() / 100, y_train)
    m = pl.evaluate(svc, X_test.to_numpy() / 100, y_test)
    assert "roc_auc" not in m and "f1" in m


def test_evaluate_multiclass_uses_macro_average():
    X = np.arange(60, dtype=float).reshape(-1, 1)
    y = np.repeat([0, 1, 2], 20)
    model = DummyClassifier(strategy="most_frequent").fit(X, y)
    m = pl.evaluate(model, X, y)
    assert math.isclose(m["accuracy"], 1 / 3) and math.isclose(m["recall"], 1 / 3)


def test_evaluate_bad_inputs(small_model, churn_split):
    _, X_test, _, y_test = churn_split
    with pytest.raises(TypeError, match="fitted model with .predict"):
        pl.evaluate("not a model", X_test, y_test)
    with pytest.raises(ValueError, match="rows"):
        pl.evaluate(small_model, X_test, y_test[:10])


def test_gate_passes_and_fails_per_metric():
    gate = pl.Gate(pl.DEFAULT_THRESHOLDS, pl.DEFAULT_BASELINE)
    good = gate.check({"accuracy": 0.93, "precision": 0.8, "recall": 0.7})
    assert good.passed and good.verdict == "PASS"
    bad = gate.check({"accuracy": 0.93, "precision": 0.69, "recall": 0.7})
    assert not bad.passed
    assert not bad["precision"].meets_threshold and bad["accuracy"].passed


def test_threshold_met_but_below_baseline_fails():
    """The lesson's case: 0.89 clears the 0.88 threshold but regresses on 0.91 production."""
    report = pl.Gate({"accuracy": 0.88}, baseline={"accuracy": 0.91}).check({"accuracy": 0.89})
    row = report["accuracy"]
    assert row.meets_threshold and row.matches_baseline is False and not report.passed
    assert "below the baseline" in report.failures()[0]


def test_tolerance_absorbs_small_regressions():
    gate = pl.Gate({"accuracy": 0.88}, baseline={"accuracy": 0.91}, tolerance=0.03)
    assert gate.check({"accuracy": 0.885}).passed
    assert not gate.check({"accuracy": 0.875}).passed  # tolerance never lowers the threshold


def test_no_baseline_means_baseline_check_is_not_applicable():
    report = pl.Gate({"recall": 0.5}).check({"recall": 0.6, "extra": 1.0})
    assert report["recall"].matches_baseline is None and report.passed
    assert [r.metric for r in report.rows] == ["recall"]


def test_missing_metric_is_an_error_not_a_pass():
    gate = pl.Gate(pl.DEFAULT_THRESHOLDS)
    with pytest.raises(errors.MissingMetricError, match=r"\['recall'\]"):
        gate.check({"accuracy": 0.99, "precision": 0.99})
    assert issubclass(errors.MissingMetricError, pl.PersistError)


def test_baseline_only_metric_is_checked_too():
    gate = pl.Gate({"accuracy": 0.8}, baseline={"accuracy": 0.8, "f1": 0.7})
    with pytest.raises(errors.MissingMetricError, match="f1"):
        gate.check({"accuracy": 0.9})
    assert not gate.check({"accuracy": 0.9, "f1": 0.6}).passed


@pytest.mark.parametrize(
    "args, kwargs, exc, match",
    [
        (({},), {}, ValueError, "at least one threshold"),
        (([0.9],), {}, TypeError, "dict of metric name"),
        (({"accuracy": "high"},), {}, TypeError, "must be a number"),
        (({"accuracy": float("nan")},), {}, ValueError, "finite"),
        (({1: 0.5},), {}, TypeError, "strings"),
        (({"accuracy": 0.9},), {"tolerance": -0.1}, ValueError, "tolerance"),
    ],
)
def test_gate_rejects_bad_configuration(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        pl.Gate(*args, **kwargs)


def test_check_rejects_non_numeric_metrics():
    with pytest.raises(TypeError, match="must be a number"):
        pl.Gate({"accuracy": 0.9}).check({"accuracy": None})


def test_report_str_html_and_round_trip():
    report = pl.Gate(pl.DEFAULT_THRESHOLDS, pl.DEFAULT_BASELINE).check(
        {"accuracy": 0.89, "precision": 0.8, "recall": 0.7}
    )
    text = str(report)
    assert text.splitlines()[0] == "Gate: FAIL"
    assert "✗ accuracy: 0.890 (threshold 0.880 ✓, baseline 0.900 ✗)" in text
    assert "✓ recall: 0.700" in text
    html = report._repr_html_()
    assert "<table>" in html and "FAIL" in html and html.count("<tr>") == 4
    again = GateReport.from_dict(report.to_dict())
    assert again == report and again.passed is False
    with pytest.raises(ValueError, match="not a gate report"):
        GateReport.from_dict({"rows": [{"metric": "x"}]})


# --------------------------------------------------------------------------- baseline_from


def test_baseline_from_without_a_production_alias_is_the_default(registry, small_model):
    from persistlib.gate import baseline_from

    assert baseline_from(registry) == pl.DEFAULT_BASELINE
    assert baseline_from(None, metrics=("accuracy",)) == {"accuracy": pl.DEFAULT_BASELINE["accuracy"]}
    registry.promote(registry.save(small_model, metrics={"accuracy": 0.5}).version, "staging")
    assert baseline_from(registry) == pl.DEFAULT_BASELINE  # staging is not production
    assert baseline_from(registry, "staging", default={}) == {"accuracy": 0.5}


def test_baseline_from_reads_the_production_card(registry, small_model):
    from persistlib.gate import baseline_from

    scores = {"accuracy": 0.93, "precision": 0.81, "recall": 0.74, "f1": 0.77}
    registry.promote(registry.save(small_model, metrics=scores).version)
    assert baseline_from(registry) == {"accuracy": 0.93, "precision": 0.81, "recall": 0.74}
    assert baseline_from(registry, metrics=("f1",)) == {"f1": 0.77}


def test_baseline_from_leaves_out_a_metric_the_card_lacks(registry, small_model):
    from persistlib.gate import baseline_from

    registry.promote(registry.save(small_model, metrics={"accuracy": 0.93}).version)
    assert baseline_from(registry) == {"accuracy": 0.93}  # no invented precision or recall
    gate = pl.Gate(pl.DEFAULT_THRESHOLDS, baseline=baseline_from(registry))
    assert gate.check({"accuracy": 0.95, "precision": 0.75, "recall": 0.70}).passed


def test_baseline_from_rejects_a_non_registry():
    from persistlib.gate import baseline_from

    with pytest.raises(errors.ArgumentTypeError, match="needs a Registry"):
        baseline_from("workspace/registry")
