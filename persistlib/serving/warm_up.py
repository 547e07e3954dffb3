"""How a swap's new model shows it can predict before users rely on it: its first request, or a smoke prediction.

A model that cannot predict must fail the swap, not a user. A smoke prediction on one row
(:func:`smoke_prediction`) proves it, but it is one more prediction on an interpreter that runs
one model call at a time: a request that arrives meanwhile waits for it (``benchmarks/serving.py``
measured 8 % of the requests during swaps doing so, and the p99 showed them). A server with
traffic has a better test coming anyway, its next request: a :class:`_Trial` lets that request
answer with the new model and, if that works, switch to it. If the new model fails rows that the
old one answers, the old one's answer goes out and the swap is refused. Rows that say nothing
about the new model (its schema refuses them, or neither model answers them) leave the try to
the next request. ``ModelServer._prove`` picks one of the two ways.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ..errors import InvalidInputError, UnservableModelError
from .rows import validate_rows
from .state import _Bundle, _infer


def smoke_prediction(bundle: _Bundle) -> None:
    """Predict one all-zero row with ``bundle``; raise :class:`UnservableModelError` if that fails."""
    version = bundle.version
    try:
        labels, _ = _infer(bundle, validate_rows([dict.fromkeys(bundle.features, 0.0)], bundle.features))
    except InvalidInputError as e:
        raise UnservableModelError(f"v{version} failed its warm-up prediction ({e}); not swapped in.") from None
    if len(labels) != 1:
        raise UnservableModelError(
            f"v{version} failed its warm-up prediction: 1 row in, {len(labels)} labels out. Not swapped in."
        )


class _Trial:
    """A swap's new model, loaded and verified, waiting for a request to try it on.

    One request at a time gets in (:meth:`claim`); :meth:`answer` answers it and decides, or
    hands the trial on. The swap closes the trial with :meth:`close`, which waits for a request
    still trying and lets no other in; then ``answered`` or ``refusal`` says how it went.
    """

    def __init__(self, bundle: _Bundle, switch: Callable[[], None]) -> None:
        self.bundle = bundle
        self.switch = switch  # installs the new state: called once the new model has answered
        self.decided = threading.Event()
        self.answered = False
        self.refusal: str | None = None
        self._claim = threading.Lock()  # held by the one request trying the new model
        self._closed = False

    def claim(self) -> bool:
        """Let one request at a time try the new model, until it is decided or closed (never blocks)."""
        if not self._claim.acquire(blocking=False):
            return False
        if self._closed or self.decided.is_set():
            self._claim.release()
            return False
        return True

    def answer(self, old: _Bundle, rows: Any) -> tuple[_Bundle, tuple]:
        """For a request that :meth:`claim` let in: answer it. Returns the bundle that answered, and the answer."""
        try:
            try:
                X = validate_rows(rows, self.bundle.features)
            except InvalidInputError:
                return old, _infer(old, validate_rows(rows, old.features))
            try:
                answer = _infer(self.bundle, X)
            except InvalidInputError as e:
                fallback = _infer(old, validate_rows(rows, old.features))  # if this raises too, the rows are at fault
                self._decide(f"it failed a request that v{old.version} answered ({e})")
                return old, fallback
            self.switch()  # every later request meets the new model
            self._decide(None)
            return self.bundle, answer
        finally:
            if not self.decided.is_set():
                self._claim.release()  # undecided: the next request tries

    def _decide(self, refusal: str | None) -> None:
        self.answered, self.refusal = refusal is None, refusal
        self.decided.set()
        self._claim.release()

    def close(self) -> None:
        """No more tries: waits for a request still trying (one prediction), and lets no other in."""
        with self._claim:
            self._closed = True
