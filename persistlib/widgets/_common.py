"""Small helpers shared by the widgets: charts as PNG bytes, readable sizes and times."""

from __future__ import annotations

import io
from typing import Any

from ..gate import mark  # the one ✓/✗ helper lives in the core; re-exported for the widgets

__all__ = ["figure_png", "human_bytes", "human_seconds", "mark"]


def figure_png(fig: Any, *, dpi: int = 100) -> bytes:
    """Render a matplotlib figure to PNG bytes (for an ``ipywidgets.Image``) and close it.

    Works without a display: the figure should come from ``matplotlib.figure.Figure``
    (no pyplot state), so nothing is drawn twice in the notebook.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def human_bytes(n: int | None) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    if n is None:
        return "—"
    size = float(n)
    if size < 1024:
        return f"{int(size)} bytes"
    if size < 1024**2:
        return f"{size / 1024:.1f} KiB"
    return f"{size / 1024**2:.1f} MiB"


def human_seconds(s: float) -> str:
    """``0.0123`` -> ``"12.3 ms"`` (the unit nbval's sanitize file recognises)."""
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"
