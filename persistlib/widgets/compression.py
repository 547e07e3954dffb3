"""CompressionExplorer: what does each joblib compression setting cost and buy?

For each method (``joblib-0`` … ``joblib-9``, plus ``joblib-lz4-3`` and
``joblib-lzma-3``) the model is dumped and loaded for real with
:func:`persistlib.format_benchmark.measure`: file size, dump time, load time. Results
are cached (and so is each chart drawn), so changing which methods are shown
never measures again, and going back to an earlier selection is instant.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ipywidgets as W

from .._display import PALETTE, human_bytes, human_seconds
from ..errors import ArgumentTypeError, InvalidArgumentError
from ..format_benchmark import Measurement, available_methods, get_method, measure
from ._common import figure_png

__all__ = ["CompressionExplorer", "default_methods"]


def default_methods() -> list[str]:
    """joblib's zlib levels 0-9, then lz4 (if installed) and lzma at level 3."""
    return [m for m in available_methods() if m.startswith("joblib-")]


class CompressionExplorer(W.VBox):
    """Measure joblib compression settings on a model and chart size, dump and load time.

    Parameters
    ----------
    model : fitted estimator
    folder : str or os.PathLike
        Where the test files are written (one per method, overwritten).
    methods : list of str, optional
        Default: :func:`default_methods`.
    repeat : int, default=1
        Keep the best of this many timings per method.
    measure_now : bool, default=True
        Measure every method at once, so the chart is ready when shown.

    Attributes
    ----------
    measurements : dict of str to Measurement
        The cache: method -> size, dump and load time.
    show : SelectMultiple
        Which methods the chart and table show. Changing it re-plots from the cache
        (measuring only methods never measured before).
    chart : Image
        PNG of three bar charts: size, dump time, load time.
    table : HTML
        The same numbers, with each size relative to ``joblib-0`` (no compression).
    measure_button : Button
        Forget the cache and measure the shown methods again.
    status : Label
    """

    def __init__(
        self,
        model: Any,
        folder: str | Path,
        *,
        methods: Sequence[str] | None = None,
        repeat: int = 1,
        measure_now: bool = True,
    ) -> None:
        if model is None:
            raise ArgumentTypeError("CompressionExplorer needs a fitted model to save, got None.")
        self.model, self.folder, self.repeat = model, Path(folder), int(repeat)
        self.methods = list(default_methods() if methods is None else methods)
        if not self.methods:
            raise InvalidArgumentError(f"methods is empty; choose some of {available_methods()}.")
        for m in self.methods:
            get_method(m)  # raises a ValueError listing the valid names
        self.measurements: dict[str, Measurement] = {}
        self.plots = 0  # how many times plot() ran
        self._charts: dict[tuple[str, ...], bytes] = {}  # rendered PNG per selection
        self._warm = False

        self.show = W.SelectMultiple(
            options=self.methods,
            value=tuple(self.methods),
            rows=min(len(self.methods), 12),
            description="show",
            layout=W.Layout(width="220px"),
        )
        self.show.add_class("persistlib-compression-show")
        self.show.observe(lambda _c: self.plot(), names="value")
        self.measure_button = W.Button(
            description="Measure again",
            icon="refresh",
            tooltip="Forget the cached numbers and measure the shown methods again",
        )
        self.measure_button.add_class("persistlib-compression-measure")
        self.measure_button.on_click(lambda _b: self.remeasure())
        self.status = W.Label("Nothing measured yet: press 'Measure again'.")
        self.status.add_class("persistlib-compression-status")
        self.chart = W.Image(format="png", layout=W.Layout(max_width="760px"))
        self.chart.add_class("persistlib-compression-chart")
        self.table = W.HTML()
        self.table.add_class("persistlib-compression-table")
        super().__init__([W.HBox([W.VBox([self.show, self.measure_button]), self.chart]), self.status, self.table])
        self.add_class("persistlib-compression")
        if measure_now:
            self.plot()

    # ------------------------------------------------------------------ public

    def measure(self, methods: Sequence[str] | None = None) -> list[str]:
        """Measure the given methods (default: those shown) that are not cached yet.

        Returns the names that were measured now.
        """
        todo = [m for m in (self.show.value if methods is None else methods) if m not in self.measurements]
        if todo and not self._warm:
            # The first dump/load in a process pays one-off costs (imports, caches); keep them
            # out of whichever method happens to be measured first.
            measure(self.model, todo[0], self.folder / "warm-up")
            self._warm = True
        for m in todo:
            self.measurements[m] = measure(self.model, m, self.folder, repeat=self.repeat)
        return todo

    def remeasure(self) -> None:
        """Forget the cache, then measure and plot the shown methods again."""
        self.measurements.clear()
        self._charts.clear()
        self.plot()

    def plot(self) -> bytes:
        """Draw the chart and table for the shown methods (measuring only what is missing)."""
        new = self.measure()
        shown = [m for m in self.methods if m in self.show.value]
        rows = [self.measurements[m] for m in shown]
        key = tuple(shown)
        if key not in self._charts:
            self._charts[key] = _chart(rows) if rows else b""
        self.chart.value = self._charts[key]
        self.table.value = self._table(rows)
        self.plots += 1
        self.status.value = (
            f"{len(rows)} methods shown; measured now: {len(new)}, from the cache: {len(rows) - len(new)}."
        )
        return self.chart.value

    def __repr__(self) -> str:
        return f"<CompressionExplorer: {len(self.show.value)} of {len(self.methods)} methods shown>"

    # ------------------------------------------------------------------ internals

    def _table(self, rows: list[Measurement]) -> str:
        if not rows:
            return "<i>Select at least one method.</i>"
        raw = self.measurements.get("joblib-0")
        body = "".join(
            f"<tr><td><code>{html.escape(r.method)}</code></td><td>{human_bytes(r.bytes)}</td>"
            f"<td>{f'{raw.bytes / r.bytes:.1f}×' if raw else '—'}</td>"
            f"<td>{human_seconds(r.dump_s)}</td><td>{human_seconds(r.load_s)}</td></tr>"
            for r in rows
        )
        return (
            '<table style="border-spacing:14px 2px"><tr><th>method</th><th>size</th><th>smaller than joblib-0</th>'
            f"<th>dump</th><th>load</th></tr>{body}</table>"
        )


def _chart(rows: list[Measurement]) -> bytes:
    from matplotlib.figure import Figure

    names = [r.method for r in rows]
    fig = Figure(figsize=(9, 0.32 * len(rows) + 1.3))
    axes = fig.subplots(1, 3, sharey=True)
    series = [
        ([r.bytes / 1024 for r in rows], "file size (KiB)"),
        ([r.dump_s * 1e3 for r in rows], "dump time (ms)"),
        ([r.load_s * 1e3 for r in rows], "load time (ms)"),
    ]
    for ax, (values, label) in zip(axes, series, strict=True):
        ax.barh(names, values, color=PALETTE["blue"])
        ax.set_xlabel(label)
        ax.grid(axis="x", alpha=0.3)
    axes[0].invert_yaxis()  # first method on top (the y axis is shared)
    fig.suptitle("joblib compression: size vs. time (shorter bars are better)")
    fig.tight_layout()
    return figure_png(fig)
