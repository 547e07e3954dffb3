"""The record of a retrain cycle: what it decided and why, as an object and as one line of a log.

A loop that changes production on its own must be able to answer, afterwards,
"why did you do that?". Every cycle of :class:`~persistlib.monitoring.retrain.RetrainLoop`
produces a :class:`CycleResult` and appends it, as one JSON line flushed to disk,
to a decision log (``retrain_log.jsonl`` in the registry folder by default).
:func:`read_log` reads the log back for a post-mortem, even from another process
or after a restart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .._display import clip, mark
from .._files import json_lines, read_regular
from ..errors import ArgumentTypeError, DecisionLogError, MissingFileError
from .drift_report import DriftReport

__all__ = ["CycleResult", "read_log", "DECISIONS", "LOG_FILE"]

#: What a cycle can decide.
DECISIONS = ("no drift", "insufficient data", "cooldown", "gate failed", "promoted", "rolled back")
#: The decision log's file name in the registry folder (unless ``log_path`` says otherwise).
LOG_FILE = "retrain_log.jsonl"

_MAX_LOG_BYTES = 64 << 20


@dataclass(frozen=True)
class CycleResult:
    """What one cycle of :class:`~persistlib.monitoring.retrain.RetrainLoop` decided, and why.

    Attributes
    ----------
    cycle : int
        1 for the loop's first cycle; a rollback carries the number of the cycle that promoted.
    at : str
        When the decision was made (UTC, ISO 8601).
    window : str
        The label passed to :meth:`RetrainLoop.run_cycle`, e.g. ``"2026-03"``.
    decision : {"no drift", "insufficient data", "cooldown", "gate failed", "promoted", "rolled back"}
    reasons : tuple of str
        Why, in words: the drifted features, the gate's failures, the alarm's rules.
    drift : DriftReport or None
        The monitor's report on the recent window (``None`` for a rollback).
    production_version : str
        The version serving *after* the cycle.
    candidate_version : str or None
        The version saved and promoted by this cycle (only when promoted).
    production_metrics : dict or None
        The metrics, on this cycle's holdout, of the model serving when the cycle began.
    candidate_metrics : dict or None
        The retrained candidate's metrics on the same holdout (when one was trained).
    gate : dict or None
        The gate's report (``GateReport.to_dict()``), when a candidate was judged.
    """

    cycle: int
    at: str
    window: str
    decision: str
    reasons: tuple[str, ...]
    drift: DriftReport | None
    production_version: str
    candidate_version: str | None = None
    production_metrics: dict[str, float] | None = None
    candidate_metrics: dict[str, float] | None = None
    gate: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the drift report summarised as status, max_psi and reasons): one log line."""
        drift = self.drift
        return {
            "cycle": self.cycle,
            "at": self.at,
            "window": self.window,
            "decision": self.decision,
            "reasons": list(self.reasons),
            "drift": None
            if drift is None
            else {"status": drift.status, "max_psi": drift.max_psi, "reasons": list(drift.reasons)},
            "production_version": self.production_version,
            "candidate_version": self.candidate_version,
            "production_metrics": self.production_metrics,
            "candidate_metrics": self.candidate_metrics,
            "gate": self.gate,
        }

    def __str__(self) -> str:
        ok = self.decision not in ("gate failed", "rolled back")
        window = f" ({self.window})" if self.window else ""
        new = f" v{self.candidate_version}" if self.candidate_version else ""
        why = f": {clip(self.reasons[0], 100)}" if self.reasons else ""
        return f"{mark(ok)} cycle {self.cycle}{window}: {self.decision}{new}, serving v{self.production_version}{why}"


def read_log(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a decision log back, oldest cycle first: one dict per line (as :meth:`CycleResult.to_dict`).

    Raises
    ------
    MissingFileError
        If there is no log at ``path`` (no cycle has run yet).
    DecisionLogError
        Naming the first line that is not a JSON object (e.g. torn by a crash).
    """
    if not isinstance(path, str | os.PathLike):
        raise ArgumentTypeError(f"path must be the log's file path, got {type(path).__name__}.")
    try:
        raw = read_regular(path, max_bytes=_MAX_LOG_BYTES, what=f"decision log {path}")
    except FileNotFoundError:
        raise MissingFileError(f"no decision log at {str(path)!r}; it is written by the first run_cycle().") from None
    if len(raw) > _MAX_LOG_BYTES:
        raise DecisionLogError(
            f"decision log {path} is larger than {_MAX_LOG_BYTES:,} bytes; archive it and pass the archive's path."
        )
    entries, bad = json_lines(raw)
    if bad is not None:
        raise DecisionLogError(
            f"decision log {path}: line {bad[0]} is not a JSON object (torn by a crash mid-write?). "
            "Delete that line; the other lines are intact."
        )
    return entries
