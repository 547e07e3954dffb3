"""How persistlib shows things to people: one home for marks, short values, sizes and times.

Status is always a symbol and a word (``✓ PASS``), never colour alone, so it
reads the same in a terminal, a screen reader and a black-and-white handout.
"""

from __future__ import annotations

from typing import Any

__all__ = ["mark", "clip", "short", "human_bytes", "human_seconds"]


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
