"""GatePanel: sliders drive persistlib.Gate; Serialise only on PASS."""

from __future__ import annotations

import ipywidgets  # noqa: F401 -- a course requirement: missing is a failure, not a skip
import pytest

import persistlib as pl
from persistlib import errors

GOOD = {"accuracy": 0.91, "precision": 0.80, "recall": 0.70}


def test_defaults_are_the_lessons_gate():
    panel = pl.GatePanel(metrics=GOOD)
    assert {k: s.value for k, s in panel.sliders.items()} == pl.DEFAULT_THRESHOLDS
    assert panel.baseline == pl.DEFAULT_BASELINE
    assert "default" in panel.baseline_source
    assert panel.report.passed and panel.verdict.value.startswith("✓ PASS")
    assert repr(panel) == "<GatePanel: PASS>"


def test_moving_a_slider_flips_the_verdict_and_rows():
    panel = pl.GatePanel(metrics=GOOD)
    panel.sliders["accuracy"].value = 0.95
    assert panel.verdict.value == "✗ FAIL: 1 check failed"
    assert repr(panel) == "<GatePanel: FAIL>"
    assert "accuracy 0.910 is below the threshold 0.950" in panel.rows.value
    assert panel.report == pl.Gate(
        {"accuracy": 0.95, "precision": 0.70, "recall": 0.65}, baseline=pl.DEFAULT_BASELINE
    ).check(GOOD)
    panel.sliders["accuracy"].value = 0.90
    assert panel.report.passed


def test_baseline_and_tolerance():
    panel = pl.GatePanel(metrics={"accuracy": 0.89, "precision": 0.8, "recall": 0.7}, baseline={"accuracy": 0.91})
    assert not panel.report.passed and "below the baseline 0.910" in panel.rows.value
    panel.tolerance.value = 0.02
    assert panel.report.passed and panel.report.tolerance == pytest.approx(0.02)


def test_serialise_saves_only_on_pass(registry, small_model, churn_split):
    X_train, X_test, y_train, y_test = churn_split
    metrics = pl.evaluate(small_model, X_test, y_test)
    panel = pl.GatePanel(
        small_model,
        X_test,
        y_test,
        registry=registry,
        dataset=X_train,
        thresholds={"accuracy": metrics["accuracy"] + 0.01},
        baseline={},
    )
    assert not panel.report.passed and panel.serialise_button.disabled
    assert panel.serialise() is None and registry.versions() == []
    panel.sliders["accuracy"].value = 0.5
    assert not panel.serialise_button.disabled
    panel.serialise_button.click()
    assert registry.versions() == ["1.0.0"]
    card = registry.card("1.0.0")
    assert card.gate["passed"] and card.metrics == pytest.approx(metrics)
    assert card.dataset_rows == len(X_train)
    assert "v1.0.0" in panel.result.value and panel.saved_card.version == "1.0.0"
    assert panel.serialise_button.disabled  # one click, one version


def test_baseline_comes_from_the_production_card(registry, small_model, churn_split):
    _, X_test, _, y_test = churn_split
    metrics = pl.evaluate(small_model, X_test, y_test)
    registry.promote(registry.save(small_model, metrics=metrics).version)
    panel = pl.GatePanel(small_model, X_test, y_test, registry=registry)
    assert panel.baseline == {k: pytest.approx(metrics[k]) for k in pl.DEFAULT_THRESHOLDS}
    assert panel.baseline_source == "production card v1.0.0"


def test_without_model_or_registry_serialise_stays_disabled():
    panel = pl.GatePanel(metrics=GOOD)
    assert panel.report.passed and panel.serialise_button.disabled
    assert "pass model=" in panel.result.value


def test_bad_input_is_explained():
    with pytest.raises(TypeError, match="pass model, X_test and y_test"):
        pl.GatePanel()
    with pytest.raises(errors.MissingMetricError, match="recall"):
        pl.GatePanel(metrics={"accuracy": 0.9, "precision": 0.8})


def test_css_classes():
    panel = pl.GatePanel(metrics=GOOD)
    assert "persistlib-gate-panel" in panel._dom_classes
    assert "persistlib-gate-verdict" in panel.verdict._dom_classes
    assert "persistlib-gate-slider-accuracy" in panel.sliders["accuracy"]._dom_classes


def test_serialise_shows_the_registrys_refusal(registry, small_model, churn_split):
    """The panel does not decide: Registry.save(gate_report=...) refuses, and the panel shows why."""
    _, X_test, _, y_test = churn_split
    panel = pl.GatePanel(small_model, X_test, y_test, registry=registry, thresholds={"accuracy": 0.99}, baseline={})
    assert not panel.report.passed
    assert panel.serialise() is None and registry.versions() == []
    assert panel.result.value.startswith("✗ The registry refused")
    assert "failed its gate, so it was not saved" in panel.result.value
    assert "accuracy" in panel.result.value and "below the threshold 0.990" in panel.result.value


def test_serialise_saves_once(registry, small_model, churn_split):
    _, X_test, _, y_test = churn_split
    panel = pl.GatePanel(small_model, X_test, y_test, registry=registry, thresholds={"accuracy": 0.5}, baseline={})
    assert panel.serialise().version == "1.0.0"
    assert panel.serialise() is None and registry.versions() == ["1.0.0"]
    assert "already saved v1.0.0" in panel.result.value


def test_failed_checks_are_counted_by_the_report():
    panel = pl.GatePanel(metrics={"accuracy": 0.85, "precision": 0.8, "recall": 0.7})  # below threshold and baseline
    assert len(panel.report.failures()) == 2
    assert panel.verdict.value == "✗ FAIL: 2 checks failed"


def test_baseline_is_only_what_the_production_card_records(registry, small_model, churn_split):
    """A production card without metrics gives no baseline, not the lesson's invented one."""
    _, X_test, _, y_test = churn_split
    registry.promote(registry.save(small_model).version)  # saved without metrics
    panel = pl.GatePanel(small_model, X_test, y_test, registry=registry)
    assert panel.baseline == {} and panel.baseline_source == "production card v1.0.0"
    assert "none recorded" in panel.children[0].value
    registry.promote(registry.save(small_model, metrics={"accuracy": 0.5}).version)
    assert pl.GatePanel(small_model, X_test, y_test, registry=registry).baseline == {"accuracy": 0.5}
