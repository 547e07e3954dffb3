"""Serving: answer prediction requests from a registry's model, swap it live, A/B test it, audit it.

This subpackage is layer 2 of persistlib. It sits above the core (data, gate,
card, registry), which it uses to load and verify models, and below
monitoring and the widgets, which use it. Nothing in the core imports
it. Its modules import each other in one direction only:

* :mod:`~persistlib.serving.rows`: input validation (request rows, true labels).
* :mod:`~persistlib.serving.ab`: :class:`ABRouter`, sticky weighted traffic
  splits with per-arm accuracy intervals.
* :mod:`~persistlib.serving.server`: :class:`ModelServer`, load once, predict,
  hot-swap and roll back.
* :mod:`~persistlib.serving.audit`: :class:`AuditLog`, one SQLite row per
  prediction.
* :mod:`~persistlib.serving.state`: the immutable bundle a request uses, and
  what the server answers (:class:`Prediction`, :class:`ServerSnapshot`).
* :mod:`~persistlib.serving.http` and :mod:`~persistlib.serving.background`:
  the same server over HTTP, behind its guards, run in a background thread.
  They need fastapi and uvicorn (optional), so they are not imported here:
  use ``persistlib.start_http``.
"""

from __future__ import annotations

from .ab import ABRouter, Decision, wilson_interval
from .audit import AuditLog, Comparison, compare_summaries
from .rows import as_labels, validate_rows
from .server import ModelServer
from .state import Prediction, ServerSnapshot

__all__ = [
    "ModelServer",
    "Prediction",
    "ServerSnapshot",
    "ABRouter",
    "Decision",
    "wilson_interval",
    "validate_rows",
    "as_labels",
    "AuditLog",
    "Comparison",
    "compare_summaries",
]
