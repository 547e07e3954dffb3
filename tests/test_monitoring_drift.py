"""Drift: PSI against textbook values, false alarms, detection, small windows, the effect-size guard, bad input."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.tree import DecisionTreeClassifier

import persistlib as pl
from persistlib.errors import ArgumentTypeError, InvalidArgumentError, PersistError
from persistlib.monitoring import DriftMonitor, DriftReport, psi, window_metrics

# PSI of a normal feature whose mean moves by this many standard deviations (decile bins): the
# values quoted in credit-risk textbooks, where 0.1 means "watch" and 0.2 "act".
TEXTBOOK_PSI = [(0.0, 0.0), (0.3, 0.09), (0.4, 0.16), (0.5, 0.24), (0.6, 0.34)]


@pytest.fixture(scope="module")
def monitor():
    """The churn data of "today" as the reference; windows from other seeds are compared with it."""
    reference, _ = pl.make_churn(5000, random_state=0)
    return DriftMonitor(reference)


# --------------------------------------------------------------------------- PSI


@pytest.mark.parametrize("shift, expected", TEXTBOOK_PSI)
def test_psi_matches_the_textbook_values(shift, expected):
    rng = np.random.default_rng(42)
    reference, current = rng.normal(size=20_000), rng.normal(shift, 1.0, size=20_000)
    assert psi(reference, current) == pytest.approx(expected, abs=0.03)


@pytest.mark.parametrize("shift", [0.2, 0.6, 1.0])
def test_psi_agrees_with_the_exact_decile_computation(shift):
    """An independent oracle: the decile shares of a shifted normal, from its CDF, put into the PSI formula."""
    edges = stats.norm.ppf(np.linspace(0, 1, 11))
    current = np.diff(stats.norm.cdf(edges - shift))
    exact = float(np.sum((current - 0.1) * np.log(current / 0.1)))
    rng = np.random.default_rng(7)
    assert psi(rng.normal(size=20_000), rng.normal(shift, 1.0, size=20_000)) == pytest.approx(exact, abs=0.03)


def test_psi_of_identical_data_is_zero_and_grows_with_the_shift():
    x = np.random.default_rng(0).normal(size=5000)
    assert psi(x, x) == 0.0
    values = [psi(x, x + s) for s in (0.1, 0.3, 0.6, 1.0)]
    assert values == sorted(values) and values[0] > 0


def test_psi_on_a_yes_no_feature_is_the_formula_on_its_two_shares():
    reference = np.array([1] * 500 + [0] * 500)
    current = np.array([1] * 700 + [0] * 300)
    expected = (0.7 - 0.5) * math.log(0.7 / 0.5) + (0.3 - 0.5) * math.log(0.3 / 0.5)
    assert psi(reference, current) == pytest.approx(expected, rel=1e-9)
    assert psi(pd.Series(reference), pd.Series(reference)) == 0.0


def test_a_value_the_reference_never_had_counts_as_drift():
    """A constant in the reference (every customer on plan 0) that suddenly takes another value."""
    reference = np.zeros(1000)
    current = np.array([0.0] * 900 + [1.0] * 100)
    assert psi(reference, current) > 0.2
    assert psi(reference, np.array([0.0] * 900 + [-1.0] * 100)) > 0.2  # either side


def test_psi_works_on_a_feature_with_many_ties():
    tenure, _ = pl.make_churn(3000, random_state=0)
    later, _ = pl.make_churn(3000, drift=2.0, random_state=1)
    assert psi(tenure["tenure_months"], tenure["tenure_months"]) == 0.0
    assert psi(tenure["tenure_months"], later["tenure_months"]) > 0.2


@pytest.mark.parametrize(
    "reference, current, error, match",
    [
        ([], [1.0], InvalidArgumentError, "empty"),
        ([1.0, 2.0], [], InvalidArgumentError, "empty"),
        ([1.0, float("nan")], [1.0], InvalidArgumentError, "NaN"),
        ([1.0, 2.0], [float("inf")], InvalidArgumentError, "NaN or infinite"),
        ([[1.0, 2.0], [3.0, 4.0]], [1.0], InvalidArgumentError, "1-D"),
        (["a", "b"], [1.0], ArgumentTypeError, "numbers"),
    ],
)
def test_psi_refuses_bad_input(reference, current, error, match):
    with pytest.raises(error, match=match):
        psi(reference, current)


@pytest.mark.parametrize("bins", [1, 0, 2.5, True, "10"])
def test_psi_refuses_a_bad_bin_count(bins):
    with pytest.raises(InvalidArgumentError, match="bins"):
        psi([1.0, 2.0], [1.0, 2.0], bins=bins)


# --------------------------------------------------------------------------- the monitor


def test_at_most_one_false_alarm_in_ten_undrifted_windows(monitor):
    reports = [monitor.check(pl.make_churn(1000, random_state=seed)[0]) for seed in range(1, 11)]
    alarms = [r.reasons for r in reports if r.drifted]
    assert len(alarms) <= 1, alarms
    assert all(r.status == "no drift" for r in reports if not r.drifted)


def test_drift_of_one_is_detected_every_time(monitor):
    for seed in range(1, 11):
        report = monitor.check(pl.make_churn(1000, drift=1.0, random_state=seed)[0])
        assert report.drifted, f"seed {seed}: {report}"
        # make_churn's drift raises prices and support calls: those features must be among the reasons
        drifted = {f.feature for f in report.features if f.drifted}
        assert {"monthly_charges", "support_calls"} <= drifted
        assert report.max_psi >= report.psi_threshold


@pytest.mark.parametrize("rows", [1, 50, 199])
def test_a_window_smaller_than_min_samples_is_never_judged_drifted(monitor, rows):
    X, _ = pl.make_churn(rows, drift=3.0, random_state=5)  # far more drift than drift=1.0
    report = monitor.check(X)
    assert report.status == "insufficient data" and not report.drifted
    assert report.features == () and report.n_samples == rows
    assert len(report.reasons) == 1 and f"{rows:,} rows" in report.reasons[0] and "200" in report.reasons[0]
    assert report.to_frame().empty and "not judged" in str(report)


def test_a_check_prints_no_warnings():
    """A warning would land in every notebook cell that checks a month (scipy warns when its exact KS fails)."""
    monitor = DriftMonitor(pl.make_churn(1000, drift=1.0, random_state=1)[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for drift in (1.0, 1.5):
            monitor.check(pl.make_churn(1000, drift=drift, random_state=3)[0])


def test_a_window_of_exactly_min_samples_is_judged(monitor):
    report = monitor.check(pl.make_churn(200, drift=3.0, random_state=5)[0])
    assert report.drifted


def test_a_trivial_shift_in_a_huge_window_is_not_drift_although_ks_is_significant():
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"x": rng.normal(size=100_000)})
    window = pd.DataFrame({"x": rng.normal(0.02, 1.0, size=100_000)})  # 0.02 SD: nothing a model would notice
    row = DriftMonitor(reference).check(window).features[0]
    assert row.ks_pvalue < 0.01  # "significant": the test sees a difference
    assert row.effect_size < 0.1 and row.psi < 0.2
    assert not row.drifted and row.reason == ""
    # the guard is what keeps it quiet: without a minimum effect, KS alone would call it drift
    assert DriftMonitor(reference, min_effect=0).check(window).drifted


def test_a_real_shift_is_caught_by_ks_with_its_effect_even_below_the_psi_threshold():
    rng = np.random.default_rng(1)
    reference = pd.DataFrame({"x": rng.normal(size=5000)})
    window = pd.DataFrame({"x": rng.normal(0.3, 1.0, size=2000)})  # PSI about 0.1: below 0.2
    row = DriftMonitor(reference).check(window).features[0]
    assert row.psi < 0.2 and row.drifted and row.reason.startswith("KS")


def test_the_report_reads_the_same_in_every_form(monitor):
    report = monitor.check(pl.make_churn(1000, drift=1.0, random_state=3)[0])
    frame = report.to_frame()
    assert list(frame.columns) == [
        "feature",
        "psi",
        "ks_statistic",
        "ks_pvalue",
        "effect_size",
        "drifted",
        "reason",
    ]
    assert list(frame["feature"]) == list(monitor.features) == list(pl.make_churn(1, random_state=0)[0].columns)
    assert report.max_psi == frame["psi"].max()
    assert report.reasons == tuple(f"{f}: {r}" for f, r in zip(frame["feature"], frame["reason"], strict=True) if r)
    assert str(report).startswith("✗ drift in 1,000 rows")
    assert "persistlib-drift-report" in report._repr_html_()
    quiet = monitor.check(pl.make_churn(1000, random_state=1)[0])
    assert str(quiet).startswith("✓ no drift in 1,000 rows (highest PSI")


def test_feature_names_are_escaped_in_html():
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"<b>x</b>": rng.normal(size=300)})
    html = DriftMonitor(reference).check(reference)._repr_html_()
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_set_reference_makes_the_new_data_normal(monitor):
    drifted, _ = pl.make_churn(3000, drift=1.0, random_state=11)
    fresh = DriftMonitor(monitor.reference)
    window, _ = pl.make_churn(1000, drift=1.0, random_state=12)
    assert fresh.check(window).drifted
    fresh.set_reference(drifted)
    assert not fresh.check(window).drifted
    assert fresh.reference.equals(drifted) and monitor.check(window).drifted  # the original is not affected


def test_the_reference_is_a_copy():
    reference, _ = pl.make_churn(500, random_state=0)
    monitor = DriftMonitor(reference)
    reference["tenure_months"] = 0
    handed_out = monitor.reference
    handed_out["monthly_charges"] = 0
    assert monitor.check(pl.make_churn(500, random_state=0)[0]).max_psi == 0.0


def test_extra_columns_in_a_window_are_ignored(monitor):
    X, _ = pl.make_churn(500, random_state=2)
    report = monitor.check(X.assign(customer_note="hello"))
    assert [f.feature for f in report.features] == list(monitor.features)


def test_check_names_the_missing_columns(monitor):
    X, _ = pl.make_churn(500, random_state=2)
    with pytest.raises(InvalidArgumentError, match="satisfaction"):
        monitor.check(X.drop(columns=["satisfaction"]))


@pytest.mark.parametrize(
    "window, error, match",
    [
        (np.zeros((300, 12)), ArgumentTypeError, "DataFrame"),
        ("rows", ArgumentTypeError, "DataFrame"),
    ],
)
def test_check_refuses_what_is_not_a_frame(monitor, window, error, match):
    with pytest.raises(error, match=match):
        monitor.check(window)


def test_check_refuses_nan_and_text(monitor):
    X, _ = pl.make_churn(300, random_state=2)
    with pytest.raises(InvalidArgumentError, match="tenure_months.*NaN"):
        monitor.check(X.assign(tenure_months=np.nan))
    with pytest.raises(InvalidArgumentError, match="region.*not numeric"):
        monitor.check(X.assign(region="north"))


def _frame(n=300):
    return pd.DataFrame({"x": np.random.default_rng(0).normal(size=n)})


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"psi_threshold": 0}, "psi_threshold"),
        ({"psi_threshold": float("nan")}, "psi_threshold"),
        ({"min_samples": 0}, "min_samples"),
        ({"min_samples": 2.5}, "min_samples"),
        ({"ks_alpha": 0}, "ks_alpha"),
        ({"ks_alpha": 1}, "ks_alpha"),
        ({"min_effect": -0.1}, "min_effect"),
        ({"bins": 1}, "bins"),
    ],
)
def test_monitor_refuses_bad_options(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        DriftMonitor(_frame(), **kwargs)


def test_monitor_refuses_a_bad_reference():
    with pytest.raises(ArgumentTypeError, match="DataFrame"):
        DriftMonitor(np.zeros((300, 2)))
    with pytest.raises(ArgumentTypeError, match="at least one column"):
        DriftMonitor(pd.DataFrame(index=range(300)))
    with pytest.raises(InvalidArgumentError, match="fewer than min_samples=200"):
        DriftMonitor(_frame(199))
    with pytest.raises(InvalidArgumentError, match="not numeric"):
        DriftMonitor(_frame().assign(city="Leeds"))
    with pytest.raises(InvalidArgumentError, match="NaN"):
        DriftMonitor(_frame().assign(y=np.nan))
    with pytest.raises(TypeError, match="positional argument"):
        DriftMonitor(_frame(), 0.3)  # options are keyword-only


def test_every_error_is_a_persist_error(monitor):
    for call in (lambda: psi([], []), lambda: monitor.check(None), lambda: DriftMonitor(_frame(), bins=0)):
        with pytest.raises(PersistError):
            call()


def test_the_ks_level_is_shared_among_the_features(monitor):
    assert monitor.feature_alpha == pytest.approx(monitor.ks_alpha / len(monitor.features))


# --------------------------------------------------------------------------- performance on labelled windows


def test_window_metrics_scores_each_window_like_evaluate():
    X, y = pl.make_churn(1500, random_state=0)
    model = DecisionTreeClassifier(max_depth=5, random_state=0).fit(X, y)
    months = [(f"month {d}", *pl.make_churn(400, drift=d, random_state=10 + i)) for i, d in enumerate((0.0, 1.0, 2.0))]
    table = window_metrics(model, months)
    assert list(table["label"]) == ["month 0.0", "month 1.0", "month 2.0"] and list(table["rows"]) == [400] * 3
    for (_, Xw, yw), (_, row) in zip(months, table.iterrows(), strict=True):
        assert row[["accuracy", "precision", "recall", "f1", "roc_auc"]].to_dict() == pl.evaluate(model, Xw, yw)
    assert table["accuracy"].iloc[0] > table["accuracy"].iloc[2]  # a model of today does worse as the world moves


def test_window_metrics_refuses_malformed_windows():
    X, y = pl.make_churn(100, random_state=0)
    model = DecisionTreeClassifier(max_depth=2).fit(X, y)
    with pytest.raises(ArgumentTypeError, match=r"windows\[0\]"):
        window_metrics(model, [(X, y)])
    with pytest.raises(ArgumentTypeError, match="sequence"):
        window_metrics(model, "months")
    with pytest.raises(InvalidArgumentError, match="rows"):
        window_metrics(model, [("m", X, y.iloc[:10])])
    assert window_metrics(model, []).empty


def test_reports_are_frozen(monitor):
    report = monitor.check(pl.make_churn(300, random_state=1)[0])
    assert isinstance(report, DriftReport)
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.status = "drift"
