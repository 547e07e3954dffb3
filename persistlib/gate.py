"""Evaluate a model, then gate it: only good-enough models get saved.

A gate makes two checks per metric:

* **threshold** -- is the model good enough in absolute terms?
* **baseline** -- is it at least as good as what is in production now
  (minus an optional ``tolerance`` for test-set noise)?

A model can clear every threshold and still be worse than production; that is
why both checks exist.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ._checks import check_number
from ._display import mark
from ._model_lock import one_model_call
from .errors import ArgumentTypeError, GateRejected, InvalidArgumentError, MissingMetricError

__all__ = [
    "evaluate",
    "Gate",
    "GateReport",
    "MetricCheck",
    "baseline_from",
    "DEFAULT_THRESHOLDS",
    "DEFAULT_BASELINE",
]

#: The lesson's gate: minimum scores a candidate must reach.
DEFAULT_THRESHOLDS: dict[str, float] = {"accuracy": 0.88, "precision": 0.70, "recall": 0.65}
#: The lesson's production baseline, used when there is no production card yet.
DEFAULT_BASELINE: dict[str, float] = {"accuracy": 0.90, "precision": 0.72, "recall": 0.68}


def evaluate(model: Any, X: Any, y: Any) -> dict[str, float]:
    """Score a fitted classifier on held-out data.

    Returns
    -------
    dict
        ``accuracy``, ``precision``, ``recall``, ``f1`` (binary, or macro
        averaged for more than two classes) and ``roc_auc`` when the model has
        ``predict_proba``. Values are plain floats.
    """
    if not hasattr(model, "predict"):
        raise ArgumentTypeError(f"evaluate() needs a fitted model with .predict(), got {type(model).__name__}.")
    if len(X) != len(y):
        raise InvalidArgumentError(f"X has {len(X)} rows but y has {len(y)}; pass matching features and labels.")
    if len(y) == 0:
        raise InvalidArgumentError("evaluate() got no rows; pass a non-empty test set.")
    with one_model_call():  # one scikit-learn call at a time in the process (persistlib._model_lock says why)
        return _scores(model, X, y)


def _scores(model: Any, X: Any, y: Any) -> dict[str, float]:
    from sklearn import metrics as skm  # imported on use: keeps `import persistlib` fast

    y_pred = model.predict(X)
    classes = sorted(set(list(y)) | set(list(y_pred)))
    average = "binary" if len(classes) <= 2 else "macro"
    kw = {"average": average, "zero_division": 0}
    if average == "binary":
        kw["pos_label"] = max(classes)
    out = {
        "accuracy": float(skm.accuracy_score(y, y_pred)),
        "precision": float(skm.precision_score(y, y_pred, **kw)),
        "recall": float(skm.recall_score(y, y_pred, **kw)),
        "f1": float(skm.f1_score(y, y_pred, **kw)),
    }
    if hasattr(model, "predict_proba") and len(set(list(y))) >= 2:
        proba = model.predict_proba(X)
        if proba.shape[1] == 2:
            out["roc_auc"] = float(skm.roc_auc_score(y, proba[:, 1]))
        else:
            out["roc_auc"] = float(skm.roc_auc_score(y, proba, multi_class="ovr"))
    return out


@dataclass(frozen=True)
class MetricCheck:
    """One row of a :class:`GateReport`."""

    metric: str
    value: float
    threshold: float | None
    baseline: float | None
    meets_threshold: bool
    matches_baseline: bool | None  # None: no baseline for this metric

    @property
    def passed(self) -> bool:
        return self.meets_threshold and self.matches_baseline is not False


@dataclass(frozen=True)
class GateReport:
    """The verdict of :meth:`Gate.check`: one :class:`MetricCheck` per metric."""

    rows: tuple[MetricCheck, ...]
    tolerance: float = 0.0

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows)

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"

    def __getitem__(self, metric: str) -> MetricCheck:
        for r in self.rows:
            if r.metric == metric:
                return r
        raise MissingMetricError(f"no gate row for {metric!r}; rows: {[r.metric for r in self.rows]}")

    def failures(self) -> list[str]:
        """Human-readable reasons the gate failed (empty when it passed)."""
        out = []
        for r in self.rows:
            if not r.meets_threshold:
                out.append(f"{r.metric} {r.value:.3f} is below the threshold {r.threshold:.3f}")
            if r.matches_baseline is False:
                out.append(
                    f"{r.metric} {r.value:.3f} is below the baseline {r.baseline:.3f}"
                    + (f" minus tolerance {self.tolerance:g}" if self.tolerance else "")
                )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "tolerance": self.tolerance, "rows": [asdict(r) for r in self.rows]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GateReport:
        try:
            rows = tuple(MetricCheck(**r) for r in d["rows"])
            return cls(rows=rows, tolerance=float(d.get("tolerance", 0.0)))
        except (KeyError, TypeError) as e:
            raise InvalidArgumentError(f"not a gate report dict ({e}); build one with Gate(...).check(metrics).") from e

    def __str__(self) -> str:
        lines = [f"Gate: {self.verdict}"]
        for r in self.rows:
            parts = []
            if r.threshold is not None:
                parts.append(f"threshold {r.threshold:.3f} {mark(r.meets_threshold)}")
            if r.baseline is not None:
                parts.append(f"baseline {r.baseline:.3f} {mark(bool(r.matches_baseline))}")
            lines.append(f"{mark(r.passed)} {r.metric}: {r.value:.3f} ({', '.join(parts)})")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<GateReport {self.verdict}: {len(self.rows)} metrics>"

    def _repr_html_(self) -> str:
        head = (
            "<tr><th>metric</th><th>value</th><th>threshold</th><th>≥ threshold?</th>"
            "<th>baseline</th><th>≥ baseline?</th><th>verdict</th></tr>"
        )
        body = []
        for r in self.rows:
            body.append(
                "<tr>"
                f"<td>{html.escape(r.metric)}</td><td>{r.value:.3f}</td>"
                f"<td>{_fmt(r.threshold)}</td><td>{mark(r.meets_threshold) if r.threshold is not None else ''}</td>"
                f"<td>{_fmt(r.baseline)}</td><td>{'' if r.matches_baseline is None else mark(r.matches_baseline)}</td>"
                f"<td><b>{mark(r.passed)} {'PASS' if r.passed else 'FAIL'}</b></td>"
                "</tr>"
            )
        tol = f" (tolerance {self.tolerance:g})" if self.tolerance else ""
        return (
            f'<div class="persistlib-gate-report"><b>Gate: {self.verdict}</b>{tol}'
            f"<table>{head}{''.join(body)}</table></div>"
        )


class Gate:
    """An evaluation gate: thresholds, and optionally a baseline to match.

    Parameters
    ----------
    thresholds : mapping of str to float
        Minimum value for each metric (higher is better), e.g.
        ``{"accuracy": 0.88}``.
    baseline : mapping of str to float, optional
        Production's metrics. The candidate must reach each of them, minus
        ``tolerance``.
    tolerance : float, default=0.0
        How far below the baseline a candidate may fall and still pass.
        Use it to absorb test-set noise (see a bootstrap interval).

    Examples
    --------
    >>> gate = Gate({"accuracy": 0.88}, baseline={"accuracy": 0.91})
    >>> gate.check({"accuracy": 0.89}).passed
    False
    """

    def __init__(
        self, thresholds: Mapping[str, float], baseline: Mapping[str, float] | None = None, *, tolerance: float = 0.0
    ):
        self.thresholds = validate_scores(thresholds, "thresholds")
        if not self.thresholds:
            raise InvalidArgumentError("Gate needs at least one threshold, e.g. Gate({'accuracy': 0.88}).")
        self.baseline = validate_scores(baseline, "baseline") if baseline is not None else None
        self.tolerance = check_number(tolerance, "tolerance", low=0)

    def __repr__(self) -> str:
        return f"Gate(thresholds={self.thresholds}, baseline={self.baseline}, tolerance={self.tolerance:g})"

    def check(self, metrics: Mapping[str, float]) -> GateReport:
        """Check a candidate's metrics; return a :class:`GateReport`.

        Raises
        ------
        MissingMetricError
            If a metric the gate needs is not in ``metrics``.
        """
        metrics = validate_scores(metrics, "metrics")
        names = list(self.thresholds) + [m for m in (self.baseline or {}) if m not in self.thresholds]
        missing = [m for m in names if m not in metrics]
        if missing:
            raise MissingMetricError(
                f"the gate needs {missing} but the metrics have only {sorted(metrics)}; "
                "compute them (persistlib.evaluate returns accuracy, precision, recall, f1, roc_auc) "
                "or remove them from the gate."
            )
        rows = []
        for m in names:
            value, thr = metrics[m], self.thresholds.get(m)
            base = self.baseline.get(m) if self.baseline else None
            rows.append(
                MetricCheck(
                    metric=m,
                    value=value,
                    threshold=thr,
                    baseline=base,
                    meets_threshold=thr is None or value >= thr,
                    matches_baseline=None if base is None else value >= base - self.tolerance - 1e-12,
                )
            )
        return GateReport(rows=tuple(rows), tolerance=self.tolerance)


def baseline_from(
    registry: Any,
    alias: str = "production",
    metrics: tuple[str, ...] = ("accuracy", "precision", "recall"),
    default: Mapping[str, float] = DEFAULT_BASELINE,
) -> dict[str, float]:
    """The baseline a candidate must match: the metrics recorded on ``alias``'s card.

    Parameters
    ----------
    registry : Registry or None
        Anything with ``.aliases()`` and ``.card(ref)``. ``None`` means "no
        registry": the default is returned.
    alias : str, default="production"
        Whose card holds the baseline.
    metrics : tuple of str, default=("accuracy", "precision", "recall")
        The metrics to take from the card.
    default : mapping of str to float, default=DEFAULT_BASELINE
        Used when ``alias`` points nowhere yet (there is no production model).

    Returns
    -------
    dict of str to float
        Each of ``metrics`` that the card records. A metric the card lacks is
        left out (it then gets no baseline check) rather than invented. With
        no ``alias``, the ``metrics`` found in ``default``.

    Raises
    ------
    ArgumentTypeError
        If ``registry`` has no ``aliases`` and ``card`` methods.
    PersistError
        Whatever ``registry.card`` raises, e.g. IntegrityError for a tampered card.

    Examples
    --------
    >>> baseline_from(None, metrics=("accuracy",))
    {'accuracy': 0.9}
    """
    if registry is None or alias not in _aliases_of(registry):
        return {m: float(default[m]) for m in metrics if m in default}
    card = registry.card(alias)
    return {m: float(card.metrics[m]) for m in metrics if m in card.metrics}


def _aliases_of(registry: Any) -> Mapping[str, str]:
    if not (callable(getattr(registry, "aliases", None)) and callable(getattr(registry, "card", None))):
        raise ArgumentTypeError(
            f"baseline_from() needs a Registry (with .aliases() and .card()) or None, got {type(registry).__name__}."
        )
    return registry.aliases()


def require_pass(report: GateReport | Mapping[str, Any] | None) -> GateReport | None:
    """``report`` as a :class:`GateReport` (``None`` stays ``None``), if it passed.

    Raises
    ------
    GateRejected
        If the report failed: the reasons are in the message and on ``.report``.
    ArgumentTypeError
        If ``report`` is not a GateReport (or its ``to_dict()``).
    """
    if report is None:
        return None
    if isinstance(report, Mapping):
        report = GateReport.from_dict(report)
    if not isinstance(report, GateReport):
        raise ArgumentTypeError("gate_report must be a GateReport from Gate(...).check(metrics).")
    if not report.passed:
        raise GateRejected(
            "the model failed its gate, so it was not saved: "
            + "; ".join(report.failures())
            + ". Improve the model, or change the gate deliberately.",
            report,
        )
    return report


def validate_scores(scores: Any, name: str) -> dict[str, float]:
    """``scores`` as ``{metric name: finite float}``, or an error naming ``name`` and the bad entry."""
    if not isinstance(scores, Mapping):
        raise ArgumentTypeError(
            f"{name} must be a dict of metric name to number, e.g. {{'accuracy': 0.9}}, got {type(scores).__name__}."
        )
    out = {}
    for k, v in scores.items():
        if not isinstance(k, str):
            raise ArgumentTypeError(f"{name}: metric names must be strings, got {k!r}.")
        if isinstance(v, bool) or not isinstance(v, (int, float)) and not hasattr(v, "__float__"):
            raise ArgumentTypeError(f"{name}[{k!r}] must be a number, got {v!r}.")
        f = float(v)
        if not math.isfinite(f):
            raise InvalidArgumentError(f"{name}[{k!r}] must be finite, got {v!r}.")
        out[k] = f
    return out


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"
