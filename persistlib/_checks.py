"""Argument checks: the one place that says "this must be a number between 0 and 1".

Every public function checks its arguments before doing any work, and a bad
value gets an :class:`~persistlib.errors.InvalidArgumentError` that names the
argument, says what it must be and shows what it got. Writing that check once
keeps the wording and the edge cases (``True`` is not a number, ``nan`` is not
finite) the same everywhere.
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Any

from .errors import InvalidArgumentError

__all__ = ["check_number", "check_choice", "is_plain_name"]

_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_number(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
    what: str | None = None,
    hint: str = "",
) -> Any:
    """Return ``value`` if it is a finite real number in range, else raise naming ``name``.

    Parameters
    ----------
    value : object
        What the caller passed. ``bool`` is refused (``True`` is not a count).
    name : str
        The argument's name, as the caller wrote it.
    low, high : float, optional
        Bounds, inclusive unless ``low_open`` / ``high_open``.
    integer : bool, default=False
        Require an integer (``int`` or a numpy integer); returns an ``int``.
    what : str, optional
        How to describe a valid value ("a positive integer"); built from the
        bounds when omitted.
    hint : str, optional
        Appended to the message, e.g. ``"; try make_churn(5000)"``.

    Returns
    -------
    int or float
        ``int(value)`` with ``integer=True``, else ``float(value)``.

    Raises
    ------
    InvalidArgumentError
        If ``value`` is not a number, not finite, not an integer when one is
        needed, or out of range.
    """
    kinds = numbers.Integral if integer else numbers.Real
    ok = isinstance(value, kinds) and not isinstance(value, bool)
    if ok:
        number = int(value) if integer else float(value)
        ok = math.isfinite(number)
        if ok and low is not None:
            ok = number > low if low_open else number >= low
        if ok and high is not None:
            ok = number < high if high_open else number <= high
    if not ok:
        raise InvalidArgumentError(
            f"{name} must be {what or _describe(low, high, low_open, high_open, integer)}, got {value!r}{hint}."
        )
    return number


def _describe(low: float | None, high: float | None, low_open: bool, high_open: bool, integer: bool) -> str:
    noun = "an integer" if integer else "a finite number"
    lo = None if low is None else f"{'>' if low_open else '>='} {low:g}"
    hi = None if high is None else f"{'<' if high_open else '<='} {high:g}"
    if lo and hi:
        if not low_open and not high_open:
            return f"{noun} between {low:g} and {high:g}"
        return f"{noun} {lo} and {hi}"
    return f"{noun} {lo or hi}" if (lo or hi) else noun


def check_choice(value: Any, name: str, choices: Any) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise an error listing them."""
    if not isinstance(value, str | int) or isinstance(value, bool) or value not in choices:
        shown = ", ".join(repr(c) for c in choices)
        raise InvalidArgumentError(f"{name} must be one of {shown}; got {value!r}.")
    return value


def is_plain_name(text: Any) -> bool:
    """Whether ``text`` is a plain file or folder name: letters, digits, ``_.-``, no path, not ``..``."""
    return isinstance(text, str) and _PLAIN_NAME.fullmatch(text) is not None and text not in (".", "..")
