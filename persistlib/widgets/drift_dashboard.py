"""The drift dashboard: step a retrain loop month by month and watch drift, accuracy and the six-step cycle.

Each **Run cycle** press (or ``dashboard.run_button.click()``) calls ``loop.run_cycle`` on the slider's month and
moves the slider on. The decisions come from :class:`~persistlib.monitoring.RetrainLoop` and the drift numbers
from its monitor; the dashboard only displays them, and everything it shows is also an attribute.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import ipywidgets as W
import pandas as pd

from .._display import GREY, PALETTE, clip, mark, short
from ..errors import ArgumentTypeError, InvalidArgumentError, PersistError
from ._common import figure_png

if TYPE_CHECKING:
    from ..monitoring import CycleResult, DriftReport, RetrainLoop

__all__ = ["DriftDashboard", "STEPS"]

#: The lesson's cycle, in order.
STEPS = ("Monitor", "Retrain", "Evaluate", "Serialise", "Version", "Hot-swap")

# decision -> (index of the step the cycle stopped at, whether that step went well, what happened there)
_STOP = {
    "no drift": (0, True, "no drift: nothing to do"),
    "insufficient data": (0, False, "insufficient data: not judged"),
    "cooldown": (0, True, "drift, but cooling down: no retrain"),
    "gate failed": (2, False, "gate failed: production kept"),
    "promoted": (5, True, "new version serving"),
    "rolled back": (5, False, "alarm: rolled back"),
}

# Okabe-Ito colours (persistlib._display.PALETTE); every colour also comes with a marker, hatch or label.
BLUE, GREEN, VERMILLION = PALETTE["blue"], PALETTE["green"], PALETTE["vermillion"]
_NOW = "border:3px solid #000;font-weight:bold;background:#fff3cd;color:#000"  # the current step (also ▶, "now")

_MONTH = "a (label, X, y, X_holdout, y_holdout) tuple"


class DriftDashboard(W.VBox):
    """A month slider, a Run cycle button, PSI and accuracy charts and the six-step cycle for a RetrainLoop.

    Parameters
    ----------
    loop : RetrainLoop
        The loop to drive (anything with ``.run_cycle``, ``.server`` and ``.monitor``).
    months : sequence of (label, X, y, X_holdout, y_holdout)
        One batch per month (e.g. from ``make_churn(400, drift=t)``): the recent data the loop checks and retrains
        on, and the labelled holdout champion and challenger are both scored on. Labels are distinct strings.

    Attributes
    ----------
    month_slider : IntSlider
        The month (1 = first) **Run cycle** runs next; moving it by hand previews its drift (what the cycle will see).
    run_button : Button
        Runs one cycle on the slider's month, then moves the slider on.
    results : list of CycleResult
        One per cycle this dashboard ran, in order.
    accuracy : list of (month label, float)
        Accuracy on the month's holdout of the model in production when the month arrived (before its cycle).
    psi : dict of str to float
        Feature -> PSI of the check in the PSI chart (:attr:`report`: the last cycle's, or a preview).
    current_step : str or None
        The step of :data:`STEPS` the last cycle stopped at (None before the first).
    steps : list of (step, state, note)
        Each step after the last cycle: "done", "failed", "skipped" or "waiting".
    status, month_label, psi_label, serving : Label
        The last cycle's one-liner; the month to run next; what the PSI chart shows; the version serving.
    cycle, cycle_log : HTML
        The six steps as boxes (the current one marked ▶ and "(now)"); one line per cycle.
    psi_chart, accuracy_chart : Image
        PNG charts. What they show, in words: ``psi_chart_text`` (also on screen as
        ``psi_label``) and ``accuracy_chart_text``. (An ``Image`` with a tooltip fails
        to render in ipywidgets 8.1, so the words live beside it.)
    progress : IntProgress
        Months run so far.
    last_error : Exception or None
        What stopped the last cycle, if anything did (keeping production safe is the loop's job).
    """

    def __init__(self, loop: RetrainLoop, months: Iterable[tuple[str, Any, Any, Any, Any]]):
        if not (callable(getattr(loop, "run_cycle", None)) and hasattr(loop, "server") and hasattr(loop, "monitor")):
            raise ArgumentTypeError(f"DriftDashboard needs a RetrainLoop; got {type(loop).__name__}.")
        self.loop = loop
        self.months = _check_months(months)
        n = len(self.months)
        self.results: list[CycleResult] = []
        self.accuracy: list[tuple[str, float]] = []
        self.psi: dict[str, float] = {}
        self.report: DriftReport | None = None
        self.current_step: str | None = None
        self.steps: list[tuple[str, str, str]] = [(s, "waiting", "") for s in STEPS]
        self.last_error: Exception | None = None
        self._run: set[int] = set()  # indexes of the months run at least once
        self.finished = False  # the slider's month is the last one and it has just run
        self._hold = False  # run_all draws the charts once, at the end

        self.month_slider = W.IntSlider(
            value=1, min=1, max=n, step=1, description="month", continuous_update=False
        ).add_class("persistlib-drift-month")
        self.month_label = W.Label().add_class("persistlib-drift-month-label")
        self.run_button = W.Button(
            description="Run cycle", icon="play", button_style="primary", tooltip="Run one cycle on this month"
        ).add_class("persistlib-drift-run")
        self.progress = W.IntProgress(value=0, min=0, max=n, description="months run").add_class(
            "persistlib-drift-progress"
        )
        self.status = W.Label("no cycle run yet: press Run cycle").add_class("persistlib-drift-status")
        self.serving = W.Label().add_class("persistlib-drift-serving")
        self.cycle = W.HTML().add_class("persistlib-drift-cycle")
        self.psi_label = W.Label().add_class("persistlib-drift-psi-label")
        self.psi_chart = W.Image(format="png").add_class("persistlib-drift-psi")
        self.accuracy_chart = W.Image(format="png").add_class("persistlib-drift-accuracy")
        self.cycle_log = W.HTML().add_class("persistlib-drift-cycle-log")
        self.month_slider.observe(self._on_slider, names="value")
        self.run_button.on_click(self._on_run)
        super().__init__(
            [
                W.HTML("<b>Drift dashboard</b>: one press runs the retrain loop on one month."),
                W.HBox([self.month_slider, self.run_button, self.progress]),
                self.month_label,
                self.status,
                self.serving,
                self.cycle,
                self.psi_label,
                W.HBox([self.psi_chart, self.accuracy_chart]),
                self.cycle_log,
            ]
        )
        self.add_class("persistlib-drift")
        self._preview()
        self._refresh()
        self._draw_accuracy()

    def __repr__(self) -> str:
        return f"<DriftDashboard: {len(self._run)} of {len(self.months)} months run, serving v{self._version()}>"

    @property
    def month(self) -> str:
        """The label of the month the slider shows (the one Run cycle runs next)."""
        return self.months[self.month_slider.value - 1][0]

    def run_cycle(self) -> CycleResult:
        """Run ``loop.run_cycle`` on the slider's month, show the result and move the slider to the next month.

        Re-raises what the cycle raised (shown in :attr:`status` first); InvalidArgumentError once all months ran.
        """
        if self.finished:
            raise InvalidArgumentError(f"all {len(self.months)} months have run; set month_slider.value to rerun one.")
        i = self.month_slider.value - 1
        label, X, y, X_holdout, y_holdout = self.months[i]
        try:
            result = self.loop.run_cycle(X, y, X_holdout, y_holdout, label=label)
        except Exception as e:
            self.last_error = e
            self.status.value = f"{mark(False)} month {label}: the cycle stopped with an error: {clip(str(e), 300)}"
            self._refresh()
            raise
        self.last_error = None
        self.results.append(result)
        scored = result.production_metrics or {}  # the loop scores production on the holdout in every cycle
        self.accuracy.append((label, float(scored.get("accuracy", float("nan")))))
        self._run.add(i)
        self._show_report(result.drift, f"month {label}, cycle {result.cycle}")
        self._set_steps(result)
        self.status.value = str(result)
        self.finished = i + 1 == len(self.months)
        if not self.finished:  # move on without previewing: the charts keep this cycle's check
            self.month_slider.unobserve(self._on_slider, names="value")
            self.month_slider.value = i + 2
            self.month_slider.observe(self._on_slider, names="value")
        self._refresh()
        self._draw_accuracy()
        return result

    def run_all(self) -> list[CycleResult]:
        """Run a cycle on every month from the slider's to the last; return their results (charts drawn once)."""
        done, self._hold = [], True
        try:
            while not self.finished:
                done.append(self.run_cycle())
        finally:
            self._hold = False
            self._draw_psi()
            self._draw_accuracy()
        return done

    # ------------------------------------------------------------------ internals

    def _on_run(self, _button: Any) -> None:
        try:
            self.run_cycle()
        except Exception as e:  # shown in the status (a button cannot raise to the student)
            if self.last_error is not e:
                self.status.value = f"{mark(False)} {clip(str(e), 300)}"

    def _on_slider(self, _change: Any) -> None:
        self.finished = False
        self._preview()
        self._refresh()

    def _preview(self) -> None:
        """Check the slider's month against the monitor's current reference: what Run cycle would see."""
        label, X = self.months[self.month_slider.value - 1][:2]
        try:
            self._show_report(self.loop.monitor.check(X), f"preview of month {label}")
        except PersistError as e:
            self._show_report(None, f"month {label}", f"{mark(False)} cannot check it: {clip(str(e), 300)}")

    def _show_report(self, report: DriftReport | None, what: str, note: str = "no drift check in this cycle") -> None:
        self.report = report
        self.psi = {f.feature: f.psi for f in report.features} if report is not None else {}
        if report is None:
            self.psi_label.value = f"{what}: {note}"
        else:
            verdict = {"no drift": f"{mark(True)} no drift", "drift": f"{mark(False)} drift"}.get(
                report.status, f"… {report.status}"
            )
            top = f", max PSI {report.max_psi:.2f} (threshold {report.psi_threshold:g})" if report.features else ""
            drifted = [f.feature for f in report.features if f.drifted]  # why: report.reasons
            detail = ", ".join(drifted[:4]) + (f" and {len(drifted) - 4} more" if len(drifted) > 4 else "")
            detail = detail or (report.reasons[0] if report.reasons else "")
            self.psi_label.value = f"{what}: {verdict}{top}" + (f": {detail}" if detail else "")
        self._draw_psi()

    def _set_steps(self, result: CycleResult) -> None:
        stop = _STOP.get(result.decision)
        if stop is None:  # a decision this dashboard does not know: show it, highlight nothing
            self.current_step, self.steps = None, [(s, "waiting", "") for s in STEPS]
            return
        at, ok, note = stop
        new = f"v{result.candidate_version}" if result.candidate_version else "the candidate"
        done_notes = ("drift found", f"trained on month {result.window}", "gate passed on the same holdout")
        done_notes += (f"saved {new}", f"card written, {new} promoted")
        self.current_step = STEPS[at]
        self.steps = [
            (step, "done", done_notes[k]) if k < at else (step, "skipped", "") for k, step in enumerate(STEPS)
        ]
        self.steps[at] = (STEPS[at], "done" if ok else "failed", note)

    def _version(self) -> str:
        return str(self.loop.server.version)

    def _refresh(self) -> None:
        n, k = len(self.months), self.month_slider.value
        label = self.months[k - 1][0]
        self.progress.value = len(self._run)
        if self.finished:
            self.month_label.value = f"month {k} of {n} ({label}) has run: all months run; move the slider to rerun"
        else:
            again = "; run already, it will run again" if k - 1 in self._run else ""
            self.month_label.value = f"next to run: month {k} of {n} ({label}){again}"
        self.run_button.disabled = self.finished
        self.serving.value = f"serving: v{self._version()} ({getattr(self.loop.server, 'alias', 'production')})"
        self.cycle.value = self._cycle_html()
        self.cycle_log.value = self._log_html()

    def _cycle_html(self) -> str:
        words = {"done": mark(True) + " done", "failed": mark(False) + " failed", "skipped": "— skipped"}
        boxes = []
        for step, state, note in self.steps:
            now = step == self.current_step
            css = "persistlib-drift-step" + (" persistlib-drift-step-current" if now else "")
            style = _NOW if now else "border:1px solid"
            head = ("▶ " if now else "") + html.escape(step) + (" (now)" if now else "")
            detail = words.get(state, "· waiting") + (f": {html.escape(note)}" if note else "")
            boxes.append(
                f'<div class="{css}" data-state="{state}" style="{style};padding:4px 8px;border-radius:6px;'
                f'min-width:7em"><div>{head}</div><div style="font-size:85%">{detail}</div></div>'
            )
        arrows = "<span aria-hidden='true' style='align-self:center'>→</span>".join(boxes)
        tail = "<span style='align-self:center'>↺ back to Monitor</span>"
        return f"<div style='display:flex;flex-wrap:wrap;gap:4px'>{arrows}{tail}</div>"

    def _log_html(self) -> str:
        lines = "".join(f"<li>{html.escape(str(r))}</li>" for r in self.results)
        return f"<ol>{lines}</ol>" if lines else "<i>No cycles yet.</i>"

    def _draw_psi(self) -> None:
        if self._hold:
            return
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        report = self.report
        features = report.features if report is not None else ()
        fig = Figure(figsize=(5.2, 1.4 + 0.28 * max(len(features), 4)))
        ax = fig.add_subplot()
        if not features:
            ax.text(0.5, 0.5, clip(self.psi_label.value, 90), ha="center", va="center", wrap=True)
            ax.set_axis_off()
        else:
            values = [f.psi for f in features]
            bars = ax.barh(range(len(features)), values, color=[VERMILLION if f.drifted else BLUE for f in features])
            for bar, f in zip(bars, features, strict=True):
                bar.set_edgecolor("black")
                bar.set_hatch("//" if f.drifted else "")
                why = " (KS)" if f.psi < report.psi_threshold else ""  # drifted by KS + effect size, not PSI
                tag = f" {f.psi:.3f}" + (f" drift{why}" if f.drifted else "")
                ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, tag, va="center", fontsize=7)
            ax.axvline(report.psi_threshold, ls="--", color="black", lw=1.2)
            ax.set_yticks(range(len(features)), [f.feature for f in features], fontsize=7)
            ax.invert_yaxis()
            ax.set_xlim(0, max(max(values), report.psi_threshold) * 1.45)
            ax.set_xlabel("PSI against the reference")
            ax.legend(
                handles=[
                    Patch(facecolor=BLUE, edgecolor="black", label="no drift"),
                    Patch(facecolor=VERMILLION, edgecolor="black", hatch="//", label="drift"),
                    Line2D([], [], ls="--", color="black", label=f"threshold {report.psi_threshold:g}"),
                ],
                loc="lower right",
                fontsize=7,
            )
        ax.set_title(clip(self.psi_label.value.split(":")[0], 60), fontsize=9)
        self.psi_chart_text = self.psi_label.value  # the chart in words
        self.psi_chart.value = figure_png(fig)

    def _draw_accuracy(self) -> None:
        if self._hold:
            return
        from matplotlib.figure import Figure

        fig = Figure(figsize=(5.2, 3.0))
        ax = fig.add_subplot()
        self.accuracy_chart_text = "accuracy: " + (", ".join(f"{m} {a:.3f}" for m, a in self.accuracy) or "none yet")
        if not self.accuracy:
            ax.text(0.5, 0.5, "no cycles yet: accuracy appears here month by month", ha="center", va="center")
            ax.set_axis_off()
            self.accuracy_chart.value = figure_png(fig)
            return
        xs = list(range(1, len(self.accuracy) + 1))
        accs = [a for _, a in self.accuracy]
        ax.plot(xs, accs, marker="o", color=BLUE, label="production model, this month's holdout")
        lows = list(accs)
        labelled: set[str] = set()
        for x, r in zip(xs, self.results, strict=True):
            if r.decision not in ("promoted", "gate failed") or not r.candidate_metrics:
                continue
            cand = r.candidate_metrics.get("accuracy")
            promoted = r.decision == "promoted"
            kind = "retrained: promoted" if promoted else "retrained: gate failed"
            ax.axvline(x, ls=":" if promoted else "-.", color=GREEN if promoted else VERMILLION, lw=1)
            if cand is not None:
                lows.append(cand)
                look = {"marker": "*", "ms": 13, "color": GREEN} if promoted else {"marker": "X", "color": VERMILLION}
                ax.plot([x], [cand], ls="none", label=None if kind in labelled else kind, **look)
                tag = f"v{r.candidate_version}" if promoted else "kept"
                ax.annotate(tag, (x, cand), textcoords="offset points", xytext=(4, 6), fontsize=7)
            labelled.add(kind)
        thresholds = getattr(self.loop, "thresholds", None)
        threshold = thresholds.get("accuracy") if isinstance(thresholds, Mapping) else None
        if isinstance(threshold, int | float):
            ax.axhline(threshold, ls="--", color=GREY, lw=1, label=f"gate threshold {threshold:.2f}")
            lows.append(threshold)
        ax.set_ylim(max(0.0, min((v for v in lows if v == v), default=0.5) - 0.05), 1.0)  # v == v: not NaN
        ax.set_xticks(xs, [m for m, _ in self.accuracy], rotation=45, ha="right", fontsize=7)
        ax.set_ylabel("accuracy")
        ax.set_title("accuracy month by month (before each cycle)", fontsize=9)
        ax.legend(loc="lower left", fontsize=7)
        self.accuracy_chart.value = figure_png(fig)


def _check_months(months: Any) -> tuple[tuple[str, Any, Any, Any, Any], ...]:
    """``months`` as a tuple of checked (label, X, y, X_holdout, y_holdout) tuples."""
    if isinstance(months, (str, bytes, Mapping)) or not isinstance(months, Iterable):
        raise ArgumentTypeError(f"months must be a list of {_MONTH}s, one per month; got {type(months).__name__}.")
    months = tuple(months)
    if not months:
        raise InvalidArgumentError(
            f"months is empty; pass at least one {_MONTH}, e.g. built from make_churn(400, drift=t)."
        )
    seen: set[str] = set()
    for i, month in enumerate(months):
        if not isinstance(month, (tuple, list)) or len(month) != 5:
            raise InvalidArgumentError(f"months[{i}] must be {_MONTH}; got {short(month)}.")
        label, X, y, X_holdout, y_holdout = month
        if not isinstance(label, str):
            raise ArgumentTypeError(f"months[{i}]'s label must be a str like '2024-03'; got {short(label)}.")
        if not label.strip() or label in seen:
            raise InvalidArgumentError(f"months[{i}]'s label must be a non-empty string used once; got {label!r}.")
        seen.add(label)
        for name, frame, target in (("X", X, y), ("X_holdout", X_holdout, y_holdout)):
            if not isinstance(frame, pd.DataFrame):
                raise ArgumentTypeError(
                    f"months[{i}] ({label}): {name} must be a DataFrame; got {type(frame).__name__}."
                )
            if len(frame) == 0:
                raise InvalidArgumentError(f"months[{i}] ({label}): {name} has no rows.")
            got = len(target) if hasattr(target, "__len__") else type(target).__name__
            if got != len(frame):
                raise InvalidArgumentError(f"months[{i}] ({label}): {name} has {len(frame)} rows but {got} labels.")
    return tuple(tuple(m) for m in months)  # type: ignore[misc]
