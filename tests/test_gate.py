import math
from html.parser import HTMLParser

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
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
    assert not gate.check({"accuracy": 0.875}).passed


@pytest.mark.parametrize("value", [0.88, 0.7, 0.0, 1.0])
def test_a_value_exactly_on_the_threshold_passes(value):
    report = pl.Gate({"accuracy": value}).check({"accuracy": value})
    assert report["accuracy"].meets_threshold and report.passed
    below = pl.Gate({"accuracy": value}).check({"accuracy": value - 1e-9})
    assert not below["accuracy"].meets_threshold and not below.passed


def test_tolerance_lowers_the_baseline_never_the_threshold():
    """Within the tolerance of the baseline but below the threshold: the threshold still fails."""
    gate = pl.Gate({"accuracy": 0.90}, baseline={"accuracy": 0.90}, tolerance=0.05)
    row = gate.check({"accuracy": 0.87})["accuracy"]
    assert row.matches_baseline is True  # 0.87 >= 0.90 - 0.05: the tolerance absorbs it ...
    assert row.meets_threshold is False  # ... but 0.87 < 0.90 (not 0.90 - 0.05) is below the threshold
    assert not gate.check({"accuracy": 0.87}).passed
    assert gate.check({"accuracy": 0.90}).passed


def test_the_baseline_edge_passes_exactly_at_baseline_minus_tolerance():
    edge = pl.Gate({"accuracy": 0.5}, baseline={"accuracy": 0.91}, tolerance=0.02)
    assert edge.check({"accuracy": 0.89})["accuracy"].matches_baseline is True
    assert edge.check({"accuracy": 0.89}).passed
    assert edge.check({"accuracy": 0.889999})["accuracy"].matches_baseline is False
    # 0.52 - 0.05 is 0.47000000000000003 in floating point: 0.47 is still exactly on the edge.
    recall = pl.Gate({"recall": 0.3}, baseline={"recall": 0.52}, tolerance=0.05)
    assert 0.52 - 0.05 > 0.47 and recall.check({"recall": 0.47}).passed
    assert not recall.check({"recall": 0.469999}).passed
    same = pl.Gate({"accuracy": 0.5}, baseline={"accuracy": 0.91})
    assert same.check({"accuracy": 0.91}).passed  # equal to production is not a regression
    assert not same.check({"accuracy": 0.909999}).passed


_GRID = 20  # scores are k / 20: ties between a value, a threshold and a baseline are frequent
_NAMES = ("accuracy", "precision", "recall")


# 4/20 - 1/20 is 0.15000000000000002 in floating point: 3/20 sits exactly on the baseline edge.
@example(thresholds={"accuracy": 0}, baseline={"accuracy": 4}, tolerance=1, values=dict.fromkeys(_NAMES, 3))
@given(
    thresholds=st.dictionaries(st.sampled_from(_NAMES), st.integers(0, _GRID), min_size=1),
    baseline=st.none() | st.dictionaries(st.sampled_from(_NAMES), st.integers(0, _GRID)),
    tolerance=st.integers(0, 4),
    values=st.fixed_dictionaries({m: st.integers(0, _GRID) for m in _NAMES}),
)
def test_passed_iff_every_metric_reaches_its_threshold_and_the_baseline_minus_tolerance(
    thresholds, baseline, tolerance, values
):
    """The oracle works in whole twentieths, so it has no floating-point edge of its own."""
    gate = pl.Gate(
        {m: t / _GRID for m, t in thresholds.items()},
        baseline=None if baseline is None else {m: b / _GRID for m, b in baseline.items()},
        tolerance=tolerance / _GRID,
    )
    report = gate.check({m: v / _GRID for m, v in values.items()})
    base = baseline or {}
    meets = {m: values[m] >= t for m, t in thresholds.items()}
    matches = {m: values[m] >= b - tolerance for m, b in base.items()}
    assert report.passed is (all(meets.values()) and all(matches.values()))
    assert sorted(r.metric for r in report.rows) == sorted(set(thresholds) | set(base))
    for row in report.rows:
        assert row.meets_threshold is meets.get(row.metric, True)
        assert row.matches_baseline is matches.get(row.metric)
    assert (report.failures() == []) is report.passed
    assert report.verdict == ("PASS" if report.passed else "FAIL")


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


def test_baseline_from_needs_both_aliases_and_card():
    from persistlib.gate import baseline_from

    class OnlyAliases:
        def aliases(self):
            return {"production": "1.0.0"}

    class OnlyCard:
        card = staticmethod(lambda ref: None)

    for half in (OnlyAliases(), OnlyCard()):
        with pytest.raises(errors.ArgumentTypeError, match=f"needs a Registry .* got {type(half).__name__}"):
            baseline_from(half)
    with pytest.raises(errors.ArgumentTypeError, match="got str"):
        baseline_from("workspace/registry")


# --------------------------------------------------------------------------- the report


def test_a_missing_row_names_the_metric_and_the_rows_there_are():
    report = pl.Gate({"accuracy": 0.8, "recall": 0.5}).check({"accuracy": 0.9, "recall": 0.6})
    with pytest.raises(errors.MissingMetricError, match=r"'f1'.*\['accuracy', 'recall'\]"):
        report["f1"]


def test_from_dict_keeps_the_tolerance_and_defaults_it_to_zero():
    report = pl.Gate({"accuracy": 0.8}, baseline={"accuracy": 0.9}, tolerance=0.02).check({"accuracy": 0.885})
    again = GateReport.from_dict(report.to_dict())
    assert again.tolerance == 0.02 and again == report
    assert again.failures() == report.failures()
    older = {"rows": report.to_dict()["rows"]}  # a report dict without a "tolerance" entry
    assert GateReport.from_dict(older).tolerance == 0.0


def _report_with_every_kind_of_row(tolerance=0.02):
    """accuracy: threshold and baseline, both met; precision: below its threshold, no baseline;
    f1: baseline only (no threshold), below it even with the tolerance."""
    gate = pl.Gate({"accuracy": 0.8, "precision": 0.7}, baseline={"accuracy": 0.85, "f1": 0.75}, tolerance=tolerance)
    return gate.check({"accuracy": 0.9, "precision": 0.65, "f1": 0.7})


def test_report_str_lines_follow_the_documented_format():
    report = _report_with_every_kind_of_row()
    assert str(report).splitlines() == [
        "Gate: FAIL",
        "✓ accuracy: 0.900 (threshold 0.800 ✓, baseline 0.850 ✓)",
        "✗ precision: 0.650 (threshold 0.700 ✗)",
        "✗ f1: 0.700 (baseline 0.750 ✗)",
    ]


class _Cells(HTMLParser):
    """Table rows as lists of cell texts, plus every piece of text outside the cells, and the script tags."""

    def __init__(self):
        super().__init__()
        self.rows, self.outside, self.cell, self.scripts = [], [], None, 0

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.rows[-1].append("")
            self.cell = self.rows[-1]
        elif tag == "script":
            self.scripts += 1

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell[-1] += data
        else:
            self.outside.append(data)


def parse_report_html(report):
    parser = _Cells()
    parser.feed(report._repr_html_())
    parser.close()
    return parser


def expected_html_rows(report):
    """The table the spec describes, built from the report's fields: 3-decimal numbers, a dash for a check
    that does not apply, ✓/✗ for each check made, and the row's verdict."""

    def num(v):
        return "—" if v is None else f"{v:.3f}"

    def tick(ok):
        return "✓" if ok else "✗"

    rows = [["metric", "value", "threshold", "≥ threshold?", "baseline", "≥ baseline?", "verdict"]]
    for r in report.rows:
        rows.append(
            [
                r.metric,
                f"{r.value:.3f}",
                num(r.threshold),
                "" if r.threshold is None else tick(r.meets_threshold),
                num(r.baseline),
                "" if r.matches_baseline is None else tick(r.matches_baseline),
                f"{tick(r.passed)} {'PASS' if r.passed else 'FAIL'}",
            ]
        )
    return rows


def test_report_html_table_holds_every_check_and_nothing_else():
    report = _report_with_every_kind_of_row(tolerance=0.02)
    page = parse_report_html(report)
    assert page.rows == expected_html_rows(report)
    assert page.rows[1][-1] == "✓ PASS" and page.rows[2][2:4] == ["0.700", "✗"] and page.rows[3][2:4] == ["—", ""]
    assert "".join(page.outside) == "Gate: FAIL (tolerance 0.02)"
    passing = pl.Gate({"accuracy": 0.8}).check({"accuracy": 0.9})
    page = parse_report_html(passing)
    assert page.rows == expected_html_rows(passing) and page.rows[1][4:6] == ["—", ""]
    assert "".join(page.outside) == "Gate: PASS"  # no tolerance, no mention of one


def test_report_html_escapes_a_hostile_metric_name():
    evil = "<script>alert(1)</script>"
    report = pl.Gate({evil: 0.5}).check({evil: 0.6})
    page = parse_report_html(report)
    assert page.scripts == 0 and page.rows[1][0] == evil


# --------------------------------------------------------------------------- messages name the argument


@pytest.mark.parametrize(
    "build, exc, start",
    [
        (lambda: pl.Gate([0.9]), errors.ArgumentTypeError, "thresholds must be a dict of metric name to number"),
        (lambda: pl.Gate({"accuracy": math.inf}), errors.InvalidArgumentError, "thresholds['accuracy'] must be finite"),
        (
            lambda: pl.Gate({"a": 0.5}, baseline={"f1": "x"}),
            errors.ArgumentTypeError,
            "baseline['f1'] must be a number",
        ),
        (lambda: pl.Gate({"a": 0.5}, tolerance=-0.1), errors.InvalidArgumentError, "tolerance must be"),
        (
            lambda: pl.Gate({"a": 0.5}).check({"a": math.nan}),
            errors.InvalidArgumentError,
            "metrics['a'] must be finite",
        ),
        (lambda: pl.Gate({"a": 0.5}).check([("a", 0.6)]), errors.ArgumentTypeError, "metrics must be a dict"),
    ],
)
def test_a_bad_score_error_starts_with_the_argument_it_is_about(build, exc, start):
    with pytest.raises(exc) as info:
        build()
    assert str(info.value).startswith(start)


def test_scores_may_be_numpy_numbers_but_not_booleans():
    gate = pl.Gate({"accuracy": np.float32(0.5), "recall": np.int64(0)})
    assert gate.thresholds == {"accuracy": 0.5, "recall": 0.0}
    assert all(type(v) is float for v in gate.thresholds.values())
    with pytest.raises(errors.ArgumentTypeError, match=r"thresholds\['accuracy'\] must be a number, got True"):
        pl.Gate({"accuracy": True})
    with pytest.raises(errors.ArgumentTypeError, match="got list"):
        pl.Gate([0.9])


def test_a_report_keeps_the_gates_tolerance():
    gate = pl.Gate({"accuracy": 0.5}, baseline={"accuracy": 0.9}, tolerance=0.05)
    report = gate.check({"accuracy": 0.8})
    assert report.tolerance == 0.05 and report.to_dict()["tolerance"] == 0.05
    assert report.failures() == ["accuracy 0.800 is below the baseline 0.900 minus tolerance 0.05"]
    # without a tolerance, the reason does not mention one
    assert pl.Gate({"accuracy": 0.5}, baseline={"accuracy": 0.9}).check({"accuracy": 0.8}).failures() == [
        "accuracy 0.800 is below the baseline 0.900"
    ]


def test_the_baseline_edge_forgives_rounding_noise_of_1e_12_inclusive():
    """The comparison is ``value >= baseline - tolerance - 1e-12``: a float computed 1e-12 under the edge
    (rounding noise) passes, anything clearly under it (1e-9) does not."""
    gate = pl.Gate({"accuracy": 0.5}, baseline={"accuracy": 0.91})
    assert gate.check({"accuracy": 0.91 - 1e-12})["accuracy"].matches_baseline is True
    assert gate.check({"accuracy": 0.91 - 1e-9})["accuracy"].matches_baseline is False


# --------------------------------------------------------------------------- evaluate edge cases


def test_evaluate_refuses_an_empty_test_set_and_scores_a_single_row():
    X = np.arange(8, dtype=float).reshape(-1, 1)
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    model = DummyClassifier(strategy="constant", constant=1).fit(X, y)
    with pytest.raises(errors.InvalidArgumentError, match="no rows"):
        pl.evaluate(model, X[:0], y[:0])
    one = pl.evaluate(model, X[-1:], y[-1:])  # one row, predicted right
    assert one["accuracy"] == 1.0 and one["recall"] == 1.0 and "roc_auc" not in one


def test_evaluate_never_predicting_the_positive_class_has_precision_zero():
    X = np.arange(8, dtype=float).reshape(-1, 1)
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    never = DummyClassifier(strategy="constant", constant=0).fit(X, y)
    m = pl.evaluate(never, X, y)
    assert m["precision"] == 0.0 and m["recall"] == 0.0 and m["f1"] == 0.0 and m["accuracy"] == 0.5


def test_evaluate_binary_positive_class_is_the_larger_label():
    """Labels "no"/"yes": the positive class is "yes" (the larger one), not a 1 that does not exist."""
    X = np.arange(10, dtype=float).reshape(-1, 1)
    y = np.array(["no"] * 6 + ["yes"] * 4)
    model = DummyClassifier(strategy="constant", constant="yes").fit(X, y)
    m = pl.evaluate(model, X, y)
    assert m["recall"] == 1.0 and math.isclose(m["precision"], 4 / 10) and math.isclose(m["accuracy"], 4 / 10)


def test_evaluate_multiclass_reports_a_one_vs_rest_roc_auc():
    from sklearn.tree import DecisionTreeClassifier

    X = np.arange(60, dtype=float).reshape(-1, 1)
    y = np.repeat([0, 1, 2], 20)
    perfect = DecisionTreeClassifier(random_state=0).fit(X, y)  # separable: each class is one interval
    m = pl.evaluate(perfect, X, y)
    assert m["roc_auc"] == 1.0 and m["accuracy"] == 1.0
    constant = DummyClassifier(strategy="prior").fit(X, y)  # the same probabilities for every row
    assert pl.evaluate(constant, X, y)["roc_auc"] == 0.5


def test_require_pass_takes_a_report_saved_as_a_dict():
    from persistlib.gate import require_pass

    gate = pl.Gate({"accuracy": 0.8})
    ok = gate.check({"accuracy": 0.9})
    assert require_pass(ok.to_dict()) == ok
    bad = gate.check({"accuracy": 0.7})
    with pytest.raises(errors.GateRejected, match=r"accuracy 0\.700 is below the threshold 0\.800") as info:
        require_pass(bad.to_dict())
    assert info.value.report == bad
