"""A helper the widgets share: charts as PNG bytes. (Marks, sizes and times live in ``persistlib._display``.)"""

from __future__ import annotations

import io
from typing import Any

__all__ = ["figure_png"]


def figure_png(fig: Any, *, dpi: int = 100) -> bytes:
    """Render a matplotlib figure to PNG bytes (for an ``ipywidgets.Image``) and close it.

    Works without a display: the figure should come from ``matplotlib.figure.Figure``
    (no pyplot state), so nothing is drawn twice in the notebook.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()
