"""DriftDashboard: Run cycle steps a real RetrainLoop month by month; everything shown is readable from Python."""

from __future__ import annotations

import ipywidgets  # noqa: F401 -- a course requirement: missing is a failure, not a skip
import matplotlib  # noqa: F401 -- a course requirement: missing is a failure, not a skip
import pytest
from sklearn.tree import DecisionTreeClassifier

import persistlib as pl
from persistlib.errors import ArgumentTypeError, InvalidArgumentError, PersistError, RetrainError, StorageError
from persistlib.monitoring import DriftMonitor, RetrainLoop
from persistlib.widgets import DriftDashboard
from persistlib.widgets.drift_dashboard import STEPS

PNG = b"\x89PNG"


def train(X, y):
    return DecisionTreeClassifier(max_depth=4, random_state=0).fit(X, y)


def month(label, drift, seed, rows=400, holdout=300):
    X, y = pl.make_churn(rows, drift=drift, random_state=seed)
    X_holdout, y_holdout = pl.make_churn(holdout, drift=drift, random_state=seed + 1000)
    return (label, X, y, X_holdout, y_holdout)


# drift 0, then a big shift, then the same world again (the new normal after the retrain)
MONTHS = [month("2024-01", 0.0, 1), month("2024-02", 1.5, 2), month("2024-03", 1.5, 3)]


@pytest.fixture()
def world(tmp_path):
    """(registry, server, first model): v1.0.0 trained at drift 0, promoted and served."""
    X, y = pl.make_churn(600, random_state=0)
    model = train(X, y)
    registry = pl.Registry(tmp_path / "registry")
    registry.promote(registry.save(model, metrics=pl.evaluate(model, X, y), dataset=X).version)
    return registry, pl.ModelServer(registry), model, X


def make_loop(world, **options):
    registry, server, _, X = world
    options = {"thresholds": {"accuracy": 0.5}, "tolerance": 0.02, "cooldown": 0, **options}
    return RetrainLoop(registry, server, train, monitor=DriftMonitor(X), **options)


def test_run_cycle_steps_the_loop_and_shows_it(world):
    registry, server, model, _ = world
    dash = DriftDashboard(make_loop(world), MONTHS)
    assert dash.results == [] and dash.accuracy == [] and dash.current_step is None
    assert dash.status.value == "no cycle run yet: press Run cycle"
    assert dash.month_slider.value == 1 and dash.month == "2024-01"
    assert dash.month_label.value == "next to run: month 1 of 3 (2024-01)"
    assert dash.psi_label.value.startswith("preview of month 2024-01: ✓ no drift")  # what the cycle will see
    assert set(dash.psi) == set(MONTHS[0][1].columns) and dash.report.status == "no drift"
    assert [state for _, state, _ in dash.steps] == ["waiting"] * 6
    assert dash.serving.value == "serving: v1.0.0 (production)"

    dash.run_button.click()  # month 1: the world has not moved
    (first,) = dash.results
    assert first.decision == "no drift" and first.window == "2024-01"
    assert dash.status.value == str(first) and "✓" in dash.status.value
    assert dash.current_step == "Monitor" and dash.steps[0][1] == "done"
    assert [state for _, state, _ in dash.steps[1:]] == ["skipped"] * 5
    label, _, _, X_holdout, y_holdout = MONTHS[0]
    assert dash.accuracy == [(label, pytest.approx(pl.evaluate(model, X_holdout, y_holdout)["accuracy"]))]
    assert dash.month_slider.value == 2 and dash.progress.value == 1
    assert "▶ Monitor (now)" in dash.cycle.value

    dash.run_button.click()  # month 2: drift, retrain, gate passes, hot-swap
    second = dash.results[-1]
    assert second.decision == "promoted" and second.candidate_version == "1.1.0"
    assert server.version == "1.1.0" == registry.aliases()["production"]
    assert dash.current_step == "Hot-swap" and [s for _, s, _ in dash.steps] == ["done"] * 6
    assert "▶ Hot-swap (now)" in dash.cycle.value and "persistlib-drift-step-current" in dash.cycle.value
    assert dash.status.value == str(second) and dash.serving.value == "serving: v1.1.0 (production)"
    # the accuracy shown is the old production model's on this month's holdout: the champion's score in the gate
    assert dash.accuracy[1] == ("2024-02", pytest.approx(second.production_metrics["accuracy"]))
    assert second.candidate_metrics["accuracy"] > dash.accuracy[1][1]
    # the PSI chart shows this cycle's check (not a preview of the next month)
    assert dash.report is second.drift and dash.report.drifted
    assert dash.psi == {f.feature: f.psi for f in second.drift.features}
    assert max(dash.psi.values()) >= 0.2 and dash.psi_label.value.startswith("month 2024-02, cycle 2: ✗ drift")
    assert dash.month_slider.value == 3 and dash.progress.value == 2
    assert dash.cycle_log.value.count("<li>") == 2

    dash.run_button.click()  # month 3: the same world as month 2, which is now the reference
    assert dash.results[-1].decision == "no drift" and server.version == "1.1.0"
    assert dash.finished and dash.run_button.disabled
    assert "all months run" in dash.month_label.value
    assert [m for m, _ in dash.accuracy] == ["2024-01", "2024-02", "2024-03"]
    assert dash.accuracy[2][1] > dash.accuracy[1][1]  # the retrained model serves month 3
    assert "2024-03" in dash.accuracy_chart_text and bytes(dash.accuracy_chart.value).startswith(PNG)
    with pytest.raises(InvalidArgumentError, match="all 3 months have run"):
        dash.run_cycle()
    assert registry.versions() == ["1.0.0", "1.1.0"]  # the older edition stays on the shelf
    assert "months run" in repr(dash) and "v1.1.0" in repr(dash)


def test_a_failed_gate_stops_at_evaluate_and_keeps_production(world):
    registry, server, _, _ = world
    dash = DriftDashboard(make_loop(world, thresholds={"accuracy": 0.99}), MONTHS[1:2])
    dash.run_button.click()
    (result,) = dash.results
    assert result.decision == "gate failed" and result.candidate_version is None
    assert dash.current_step == "Evaluate"
    assert [s for _, s, _ in dash.steps] == ["done", "done", "failed", "skipped", "skipped", "skipped"]
    assert "▶ Evaluate (now)" in dash.cycle.value and "failed" in dash.cycle.value
    assert "✗" in dash.status.value and dash.status.value == str(result)
    assert server.version == "1.0.0" and registry.versions() == ["1.0.0"]
    assert bytes(dash.accuracy_chart.value).startswith(PNG)


def test_the_slider_chooses_and_previews_the_month(world):
    dash = DriftDashboard(make_loop(world), MONTHS)
    dash.month_slider.value = 3
    assert dash.month == "2024-03" and dash.results == []  # moving the slider runs nothing
    assert dash.month_label.value == "next to run: month 3 of 3 (2024-03)"
    assert dash.psi_label.value.startswith("preview of month 2024-03: ✗ drift")
    assert dash.report.drifted and max(dash.psi.values()) >= 0.2
    assert bytes(dash.psi_chart.value).startswith(PNG)
    dash.run_button.click()
    assert dash.results[-1].window == "2024-03" and dash.finished and dash.run_button.disabled
    dash.month_slider.value = 1  # moving the slider again re-enables Run cycle
    assert not dash.finished and not dash.run_button.disabled
    assert dash.run_all() == dash.results[1:]
    assert [r.window for r in dash.results] == ["2024-03", "2024-01", "2024-02", "2024-03"]


def test_a_small_month_is_insufficient_data(world):
    dash = DriftDashboard(make_loop(world), [month("tiny", 1.5, 7, rows=50)])
    assert "insufficient data" in dash.psi_label.value and dash.psi == {}
    assert bytes(dash.psi_chart.value).startswith(PNG)
    dash.run_button.click()
    assert dash.results[-1].decision == "insufficient data"
    assert dash.current_step == "Monitor" and dash.steps[0][1] == "failed"


def test_a_crashed_cycle_is_shown_and_production_is_untouched(world, monkeypatch):
    registry, server, _, _ = world
    dash = DriftDashboard(make_loop(world), MONTHS[1:])

    def broken_promote(*args, **kwargs):
        raise StorageError("disk full while promoting")

    monkeypatch.setattr(registry, "promote", broken_promote)
    dash.run_button.click()  # a button cannot raise to the student: the status says what happened
    assert dash.status.value.startswith("✗ month 2024-02: the cycle stopped with an error")
    assert "disk full" in dash.status.value and isinstance(dash.last_error, RetrainError)
    assert dash.results == [] and dash.accuracy == [] and dash.month_slider.value == 1
    assert server.version == "1.0.0" and registry.aliases()["production"] == "1.0.0"
    with pytest.raises(RetrainError, match="disk full"):
        dash.run_cycle()  # from Python, the error is raised


def test_css_classes_and_charts(world):
    dash = DriftDashboard(make_loop(world), MONTHS)
    assert "persistlib-drift" in dash._dom_classes
    for widget, css in [
        (dash.month_slider, "persistlib-drift-month"),
        (dash.run_button, "persistlib-drift-run"),
        (dash.psi_chart, "persistlib-drift-psi"),
        (dash.accuracy_chart, "persistlib-drift-accuracy"),
        (dash.cycle, "persistlib-drift-cycle"),
        (dash.status, "persistlib-drift-status"),
        (dash.month_label, "persistlib-drift-month-label"),
        (dash.psi_label, "persistlib-drift-psi-label"),
        (dash.serving, "persistlib-drift-serving"),
        (dash.progress, "persistlib-drift-progress"),
        (dash.cycle_log, "persistlib-drift-cycle-log"),
    ]:
        assert css in widget._dom_classes
    assert dash.month_slider.description == "month" and dash.run_button.description == "Run cycle"
    assert dash.progress.description == "months run"
    assert bytes(dash.psi_chart.value).startswith(PNG) and bytes(dash.accuracy_chart.value).startswith(PNG)
    assert dash.psi_chart_text == dash.psi_label.value  # the chart in words
    assert all(f">{step}<" in dash.cycle.value for step in STEPS)
    assert "persistlib-drift-step-current" not in dash.cycle.value  # nothing has run yet


@pytest.mark.parametrize(
    "months, error, match",
    [
        ([], InvalidArgumentError, "months is empty"),
        ("2024-01", ArgumentTypeError, "months must be a list"),
        (None, ArgumentTypeError, "months must be a list"),
        ([("2024-01", None)], InvalidArgumentError, r"months\[0\] must be a \(label, X, y"),
        (["2024-01"], InvalidArgumentError, r"months\[0\] must be"),
        ([(1, *MONTHS[0][1:])], ArgumentTypeError, "label must be a str"),
        ([("", *MONTHS[0][1:])], InvalidArgumentError, "non-empty string used once"),
        ([MONTHS[0], MONTHS[0]], InvalidArgumentError, r"months\[1\]'s label .* used once"),
        ([("m", MONTHS[0][1].to_numpy(), *MONTHS[0][2:])], ArgumentTypeError, "X must be a DataFrame"),
        ([("m", MONTHS[0][1], MONTHS[0][2][:10], *MONTHS[0][3:])], InvalidArgumentError, "400 rows but 10 labels"),
        ([("m", *MONTHS[0][1:4], None)], InvalidArgumentError, "X_holdout has 300 rows but NoneType labels"),
        ([("m", MONTHS[0][1].iloc[:0], MONTHS[0][2][:0], *MONTHS[0][3:])], InvalidArgumentError, "X has no rows"),
    ],
)
def test_bad_months_get_clear_errors(world, months, error, match):
    with pytest.raises(error, match=match) as caught:
        DriftDashboard(make_loop(world), months)
    assert isinstance(caught.value, PersistError)


def test_needs_a_loop():
    with pytest.raises(ArgumentTypeError, match="needs a RetrainLoop"):
        DriftDashboard(object(), MONTHS)
