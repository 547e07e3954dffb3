"""The A/B test panel: move a slider to split traffic, and watch each arm's accuracy with its interval.

:class:`ABPanel` shows an :class:`~persistlib.serving.ABRouter`'s split as a
slider and each arm's accuracy with its 95 % confidence interval, as a table,
a verdict and a chart. All numbers come from the router; the panel only
displays them.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as W

from .._display import SERIES, mark
from ..errors import ArgumentTypeError, InvalidArgumentError
from ..serving import ABRouter
from ._common import figure_png

__all__ = ["ABPanel"]


class ABPanel(W.VBox):
    """A split slider and per-arm metrics (with 95 % Wilson intervals) for a two-arm :class:`ABRouter`.

    Attributes
    ----------
    split : IntSlider
        Percent of traffic for the second arm; moving it calls ``router.set_weights``.
    table : HTML
        One row per arm: weight, requests, outcomes, accuracy and its interval.
    decision : Label
        ``router.decide()``: a winner only when the intervals do not overlap.
    chart : Image
        Each arm's accuracy with its interval as an error bar.
    """

    def __init__(self, router: ABRouter):
        if not isinstance(router, ABRouter):
            raise ArgumentTypeError(f"ABPanel needs an ABRouter, got {type(router).__name__}.")
        if len(router.arms) != 2:
            raise InvalidArgumentError(f"ABPanel's slider splits two arms; this router has {len(router.arms)}.")
        self.router = router
        self.arm_a, self.arm_b = router.arms
        self.split = W.IntSlider(
            value=round(router.weights[self.arm_b] * 100),
            min=0,
            max=100,
            step=5,
            description=f"% to {self.arm_b}",
            style={"description_width": "initial"},
        ).add_class("persistlib-ab-split")
        self.table = W.HTML().add_class("persistlib-ab-table")
        self.decision = W.Label().add_class("persistlib-ab-decision")
        self.refresh_button = W.Button(
            description="Refresh metrics", icon="refresh", tooltip="Recompute each arm's accuracy and interval"
        ).add_class("persistlib-ab-refresh")
        self.chart = W.Image(format="png").add_class("persistlib-ab-chart")
        self.split.observe(self._on_split, names="value")
        self.refresh_button.on_click(lambda _: self.refresh())
        super().__init__(
            [
                W.HTML(f"<b>A/B test</b>: {html.escape(self.arm_a)} vs {html.escape(self.arm_b)}"),
                self.split,
                self.refresh_button,
                self.table,
                self.decision,
                self.chart,
            ]
        )
        self.add_class("persistlib-ab")
        self.refresh()

    def __repr__(self) -> str:
        w = self.router.weights
        return f"<ABPanel: {self.arm_a} {w[self.arm_a]:.0%} / {self.arm_b} {w[self.arm_b]:.0%}>"

    def _on_split(self, change: dict[str, Any]) -> None:
        b = change["new"] / 100
        self.router.set_weights({self.arm_a: 1 - b, self.arm_b: b})
        self.refresh()

    def refresh(self) -> None:
        """Re-read the router's metrics into the table, decision and chart."""
        m = self.router.metrics()
        rows = []
        for arm, r in m.items():
            acc = "—" if r["accuracy"] is None else f"{r['accuracy']:.3f}"
            ci = "—" if not r["outcomes"] else f"[{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]"
            rows.append(
                f"<tr><td>{html.escape(arm)}</td><td>{r['weight']:.0%}</td><td>{r['requests']}</td>"
                f"<td>{r['outcomes']}</td><td>{acc}</td><td>{ci}</td></tr>"
            )
        self.table.value = (
            "<table><tr><th>arm</th><th>traffic</th><th>requests</th><th>outcomes</th>"
            f"<th>accuracy</th><th>95% interval</th></tr>{''.join(rows)}</table>"
        )
        verdict = self.router.decide()
        self.decision.value = (f"{mark(True)} " if verdict.winner is not None else "… ") + verdict.text
        self._draw(m)

    def _draw(self, m: dict[str, dict[str, Any]]) -> None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(4.8, 2.2))
        ax = fig.add_subplot()
        for i, r in enumerate(m.values()):
            if r["accuracy"] is not None:
                lo, hi = r["ci"]
                err = [[r["accuracy"] - lo], [hi - r["accuracy"]]]
                ax.errorbar([r["accuracy"]], [i], xerr=err, fmt="o", capsize=6, color=SERIES[i % len(SERIES)])
        ax.set_yticks(range(len(m)), [f"v{a}" for a in m])
        ax.set_ylim(-0.6, len(m) - 0.4)
        ax.set_xlabel("accuracy (95% interval)")
        self.chart.value = figure_png(fig)
