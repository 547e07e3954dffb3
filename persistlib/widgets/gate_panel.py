"""GatePanel: move the thresholds, watch the verdict, serialise only on PASS.

The verdict comes from :class:`persistlib.Gate`; this widget only displays it.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import ipywidgets as W

from .._display import human_bytes, mark
from ..errors import ArgumentTypeError, GateRejected, PersistError
from ..gate import DEFAULT_THRESHOLDS, Gate, GateReport, baseline_from, evaluate

__all__ = ["GatePanel"]


class GatePanel(W.VBox):
    """Sliders for the gate's thresholds, a live PASS/FAIL verdict and a Serialise button.

    Parameters
    ----------
    model : fitted classifier, optional
        The candidate. Needed to compute its metrics (with ``X_test``, ``y_test``)
        and to serialise it.
    X_test, y_test : held-out data, optional
    metrics : dict, optional
        The candidate's metrics, if already computed (otherwise :func:`evaluate`).
    registry : Registry, optional
        Where **Serialise** saves the candidate. If it has a ``production``
        alias, the baseline is that version's recorded metrics.
    thresholds : dict, default=DEFAULT_THRESHOLDS
        Starting slider values (accuracy 0.88, precision 0.70, recall 0.65).
    baseline : dict, optional
        Overrides the baseline. Default: :func:`persistlib.gate.baseline_from`,
        i.e. the metrics on the ``alias`` card, or DEFAULT_BASELINE
        (0.90 / 0.72 / 0.68) if there is no production model.
    tolerance : float, default=0.0
        How far below the baseline the candidate may fall (a slider too).
    dataset : DataFrame, optional
        Training data, fingerprinted into the card when you serialise.
    alias : str, default="production"
        The registry alias whose card gives the baseline.

    Attributes
    ----------
    sliders : dict of str to FloatSlider
        One per threshold: ``panel.sliders["accuracy"].value = 0.95``.
    tolerance : FloatSlider
    verdict : Label
        ``"✓ PASS"`` or ``"✗ FAIL: 1 check failed"``.
    rows : HTML
        The gate report: a ✓/✗ row per metric.
    serialise_button : Button
        Enabled only while the verdict is PASS (and a model and registry were given).
    result : HTML
        What the last Serialise did.
    report : GateReport
        The current verdict, recomputed on every slider move.
    saved_card : ModelCard or None
    """

    def __init__(
        self,
        model: Any = None,
        X_test: Any = None,
        y_test: Any = None,
        *,
        metrics: Mapping[str, float] | None = None,
        registry: Any = None,
        thresholds: Mapping[str, float] | None = None,
        baseline: Mapping[str, float] | None = None,
        tolerance: float = 0.0,
        dataset: Any = None,
        alias: str = "production",
    ) -> None:
        if metrics is None:
            if model is None or X_test is None or y_test is None:
                raise ArgumentTypeError(
                    "GatePanel needs the candidate's metrics: pass model, X_test and y_test, "
                    "or metrics={'accuracy': ..., 'precision': ..., 'recall': ...}."
                )
            metrics = evaluate(model, X_test, y_test)
        self.model, self.registry, self.dataset = model, registry, dataset
        self.metrics = dict(metrics)
        self.thresholds_start = dict(DEFAULT_THRESHOLDS if thresholds is None else thresholds)
        Gate(self.thresholds_start)  # validate early, with Gate's own clear errors
        if baseline is not None:
            self.baseline, self.baseline_source = dict(baseline), "your baseline"
        else:
            self.baseline = baseline_from(registry, alias, metrics=tuple(self.thresholds_start))
            where = registry.aliases().get(alias) if registry is not None else None
            self.baseline_source = (
                f"{alias} card v{where}" if where else "the lesson's default (no production model yet)"
            )
        self.saved_card = None

        self.sliders: dict[str, W.FloatSlider] = {}
        for name, value in self.thresholds_start.items():
            s = W.FloatSlider(
                value=value,
                min=0.0,
                max=1.0,
                step=0.01,
                readout_format=".2f",
                description=name,
                continuous_update=True,
                style={"description_width": "80px"},
                layout=W.Layout(width="420px"),
            )
            s.add_class("persistlib-gate-slider")
            s.add_class(f"persistlib-gate-slider-{name}")
            s.observe(self._update, names="value")
            self.sliders[name] = s
        self.tolerance = W.FloatSlider(
            value=float(tolerance),
            min=0.0,
            max=0.05,
            step=0.005,
            readout_format=".3f",
            description="tolerance",
            style={"description_width": "80px"},
            layout=W.Layout(width="420px"),
        )
        self.tolerance.add_class("persistlib-gate-tolerance")
        self.tolerance.observe(self._update, names="value")

        self.verdict = W.Label()
        self.verdict.add_class("persistlib-gate-verdict")
        self.rows = W.HTML()
        self.rows.add_class("persistlib-gate-rows")
        self.serialise_button = W.Button(
            description="Serialise", icon="save", tooltip="Save the candidate to the registry (only on PASS)"
        )
        self.serialise_button.add_class("persistlib-gate-serialise")
        self.serialise_button.on_click(lambda _b: self.serialise())
        self.result = W.HTML(self._no_save_reason())
        self.result.add_class("persistlib-gate-result")

        base = ", ".join(f"{k} {v:.2f}" for k, v in self.baseline.items()) or "none recorded"
        header = W.HTML(f"<b>Evaluation gate</b> · baseline from {html.escape(self.baseline_source)}: {base}")
        super().__init__(
            [
                header,
                W.HTML("<i>Thresholds (minimum scores):</i>"),
                *self.sliders.values(),
                self.tolerance,
                self.verdict,
                self.rows,
                W.HBox([self.serialise_button, self.result]),
            ]
        )
        self.add_class("persistlib-gate-panel")
        self._update()

    # ------------------------------------------------------------------ public

    @property
    def gate(self) -> Gate:
        """The gate the sliders describe right now."""
        return Gate(
            {k: s.value for k, s in self.sliders.items()}, baseline=self.baseline, tolerance=self.tolerance.value
        )

    def serialise(self) -> Any:
        """Save the candidate to the registry with its gate report; return the new card.

        The registry decides: ``Registry.save(gate_report=...)`` refuses a failed
        report (GateRejected), and :attr:`result` shows its reason. Returns None
        when nothing was saved, or when this panel already saved its model.
        """
        if self.model is None or self.registry is None:
            self.result.value = f"{mark(False)} Not saved {self._no_save_reason()}"
            return None
        if self.saved_card is not None:
            self.result.value = (
                f"{mark(False)} Not saved again: this panel already saved "
                f"v{html.escape(self.saved_card.version)} (one Serialise, one version)."
            )
            return None
        try:
            card = self.registry.save(
                self.model,
                metrics=self.metrics,
                gate_report=self.report,
                dataset=self.dataset,
                notes="saved from the GatePanel",
            )
        except GateRejected as e:
            self.result.value = f"{mark(False)} The registry refused: {html.escape(str(e))}"
            return None
        except PersistError as e:
            self.result.value = f"{mark(False)} Not saved: {html.escape(str(e))}"
            return None
        self.saved_card = card
        self.result.value = (
            f"{mark(True)} Saved <b>v{html.escape(card.version)}</b> as "
            f"<code>{html.escape(card.artifact)}</code> ({human_bytes(card.artifact_bytes)}) "
            "with its card."
        )
        self.serialise_button.disabled = True
        self.serialise_button.description = f"Saved v{card.version}"
        return card

    def __repr__(self) -> str:
        return f"<GatePanel: {self.report.verdict}>"

    # ------------------------------------------------------------------ internals

    def _no_save_reason(self) -> str:
        if self.model is None:
            return "<i>(no model given: pass model= to enable Serialise)</i>"
        if self.registry is None:
            return "<i>(no registry given: pass registry= to enable Serialise)</i>"
        return ""

    def _update(self, _change: Any = None) -> None:
        self.report: GateReport = self.gate.check(self.metrics)
        failures = self.report.failures()  # one reason per failed check
        self.verdict.value = (
            f"{mark(True)} PASS: ready to serialise"
            if self.report.passed
            else f"{mark(False)} FAIL: {len(failures)} check{'s' if len(failures) != 1 else ''} failed"
        )
        reasons = "".join(f"<li>{mark(False)} {html.escape(f)}</li>" for f in failures)
        self.rows.value = self.report._repr_html_() + (f"<ul>{reasons}</ul>" if reasons else "")
        if self.saved_card is None:
            self.serialise_button.disabled = not (
                self.report.passed and self.model is not None and self.registry is not None
            )
