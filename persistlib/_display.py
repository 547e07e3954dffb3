"""How persistlib shows things to people: one home for marks, short values, sizes and times.

Status is always a symbol and a word (``✓ PASS``), never colour alone, so it
reads the same in a terminal, a screen reader and a black-and-white handout.
"""

from __future__ import annotations

from typing import Any

__all__ = ["mark", "clip", "short", "count", "human_bytes", "human_seconds", "PALETTE", "SERIES", "GREY"]

#: Okabe & Ito's palette ("Color Universal Design", 2008): eight colours that stay apart for readers
#: with any common colour-vision deficiency. Every chart persistlib draws takes its colours from here
#: (plus black, white and greys), and still gives each colour a marker, a hatch or a label too.
PALETTE: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
}
#: The order for a chart's series (yellow last: it is pale on white).
SERIES: tuple[str, ...] = tuple(
    PALETTE[c] for c in ("blue", "orange", "green", "vermillion", "purple", "sky_blue", "yellow")
)
#: A neutral grey for reference lines (no hue, so it is not part of the palette).
GREY = "#555555"


def mark(ok: bool) -> str:
    """``✓`` or ``✗``."""
    return "✓" if ok else "✗"


def clip(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` characters, ending in ``…`` when cut."""
    return text if len(text) <= width else text[: width - 1] + "…"


def short(value: Any, width: int = 40) -> str:
    """``repr(value)``, clipped: safe to put a user's value in an error message (even a 5,000-digit integer)."""
    if isinstance(value, int) and value.bit_length() > 256:
        return f"an integer of about {int(value.bit_length() * 0.30103)} digits"
    return clip(repr(value), width)


def count(n: int, noun: str) -> str:
    """``count(1, "swap")`` -> ``"1 swap"``; ``count(2, "swap")`` -> ``"2 swaps"``."""
    return f"{n} {noun}{'s' * (n != 1)}"


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
    """``0.0123`` -> ``"12.3 ms"`` (the units nbval's sanitize file recognises)."""
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"
