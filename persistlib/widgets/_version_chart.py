"""The hot-swap console's chart: which version answered each request, over time, with the swaps marked.

A pure drawing function on a matplotlib Axes, so :mod:`persistlib.widgets.serving` keeps the console's
logic (the load thread, the counters, waiting) and this module only draws what it recorded.
"""

from __future__ import annotations

from .._display import GREY, PALETTE, count
from ..versions import version_sort_key
from ._common import figure_png


def version_chart_png(timeline: list[tuple[float, str | None]], swaps: list[tuple[float, str]]) -> bytes:
    """The chart as PNG bytes; before any request, it says how to fill it rather than showing empty axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 2.6))
    ax = fig.add_subplot()
    if not timeline:
        ax.set_axis_off()
        done = f"{count(len(swaps), 'swap')} so far, no requests yet." if swaps else "No requests yet."
        how = "Start load, then Swap or Rollback:\nStop load draws which version answered each request."
        ax.text(0.5, 0.5, f"{done}\n{how}", ha="center", va="center", transform=ax.transAxes)
    else:
        draw_versions(ax, timeline, swaps)
    return figure_png(fig)


def draw_versions(ax, timeline: list[tuple[float, str | None]], swaps: list[tuple[float, str]]) -> None:
    """Draw ``timeline`` (seconds, version or ``None`` for an error) as a step per version; ``swaps`` dashed."""
    versions = sorted({v for _, v in timeline if v is not None} | {v for _, v in swaps}, key=version_sort_key)
    level = {v: i for i, v in enumerate(versions)}
    ok = [(t, level[v]) for t, v in timeline if v is not None]
    bad = [t for t, v in timeline if v is None]
    if ok:
        xs, ys = zip(*ok, strict=True)
        ax.step(xs, ys, where="post", lw=2, color=PALETTE["blue"], label="version that answered")
    if bad:
        ax.plot(bad, [-1] * len(bad), "x", color=PALETTE["vermillion"], label=f"errors ({len(bad)})")
    for t, _ in swaps:
        ax.axvline(t, ls="--", color=GREY, lw=1)
    times = [t for t, _ in timeline] + [t for t, _ in swaps]
    pad = max(0.05 * (max(times) - min(times)), 0.1)
    ax.set_xlim(min(times) - pad, max(times) + pad)  # every request and every swap in view
    ax.set_ylim(-1.5, len(versions) - 0.5)  # every version's row, and the error row, in view
    ax.set_yticks(range(-1, len(versions)), ["error"] + [f"v{v}" for v in versions])
    ax.set_xlabel("seconds since the console was created")
    ax.set_title(f"{len(timeline)} requests · {count(len(bad), 'error')} · dashed line = swap")
    ax.legend(loc="upper left", fontsize=8)
