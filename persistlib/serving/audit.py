"""An audit trail: which model made every prediction, and how long it took.

:class:`AuditLog` keeps one row per prediction in a SQLite file: when, which
request, which user, which A/B arm, which version, the sha256 of the exact
artefact that answered, the latency and the answer itself. With it you can
answer, months later, *"which model told this customer that?"*.

Recording costs a serving thread one queue put; a background thread writes the
rows (see :mod:`persistlib.serving._audit_db`), so call :meth:`AuditLog.flush`
before you query. :meth:`AuditLog.compare` turns the log into a rollback alarm.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .._checks import check_number
from .._display import mark
from ..errors import AuditError, InvalidArgumentError
from ._audit_db import STOPPED, Writer, as_dict, connect, create, now, safe_text, summarise, where_clause
from .rows import as_labels

if TYPE_CHECKING:  # pragma: no cover
    from .state import Prediction

__all__ = ["AuditLog", "Comparison", "compare_summaries"]

_MAX_SHOWN = 5  # problems named in one flush() message


class AuditLog:
    """A SQLite audit trail with one row per prediction.

    Parameters
    ----------
    path : str or os.PathLike
        The database file; created (with its folder) if missing. Several
        ``AuditLog`` objects, even in several processes, may share one file.

    Raises
    ------
    AuditError
        If ``path`` cannot hold a log (an ``AuditPathError`` for a folder, a NUL
        character or a folder that cannot be created; an ``AuditError`` for a
        file that is not a SQLite audit log).

    Examples
    --------
    >>> audit = AuditLog("workspace/audit.sqlite")          # doctest: +SKIP
    >>> server = ModelServer(registry, audit=audit)         # doctest: +SKIP
    >>> p = server.predict(rows); audit.flush()             # doctest: +SKIP
    >>> audit.which_version(p.request_id)                   # doctest: +SKIP
    '1.2.0'
    """

    def __init__(self, path: str | os.PathLike):
        self.path = create(path)
        self._writer = Writer(self.path)
        # An AuditLog nobody references any more (a re-run notebook cell) stops its writer thread.
        self._finalizer = weakref.finalize(self, self._writer.stop)

    def __repr__(self) -> str:
        return f"AuditLog({self.path.name!r})"

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ writing

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (the log then refuses new rows)."""
        return not self._finalizer.alive

    @property
    def problem(self) -> str | None:
        """Why rows cannot be written right now, in words; ``None`` while writes succeed.

        Set when a write fails for a reason that is no row's own fault (a
        read-only or full disk, a disk I/O error, a lock held past the busy
        timeout), or when the writer thread has stopped; cleared by the next
        successful write. A bad row (a duplicate request_id) does not set it.
        """
        writer = self._writer
        if not self.closed and (writer.stopped or not writer.thread.is_alive()):
            return writer.crash or STOPPED
        return writer.problem

    @property
    def lost(self) -> int:
        """Predictions and outcomes that could not be written since this log opened (failed batches included)."""
        return self._writer.lost

    @property
    def healthy(self) -> bool:
        """Whether the log is open and its last write succeeded (``problem is None and not closed``)."""
        return self.problem is None and not self.closed

    @property
    def unmatched_outcomes(self) -> int:
        """Outcomes recorded for a request_id that this log has no prediction for (since it opened)."""
        return self._writer.unmatched_total

    def _check_open(self, action: str) -> None:
        if self.closed:
            raise AuditError(
                f"this AuditLog is closed, so it cannot {action}; open a new AuditLog(path) "
                "to keep recording (rows already written stay in the file)."
            )

    def record(self, prediction: Prediction, *, user_id: Any = None, artifact_sha256: str) -> None:
        """Queue one row for ``prediction``. Returns at once; the writer thread stores it.

        Text is stored as given, except lone surrogates (``"\\udfff"``, valid in JSON),
        which SQLite cannot hold: they are stored as backslash escapes.
        """
        self._check_open("record predictions")
        arm = prediction.arm
        row = (
            now(),
            safe_text(prediction.request_id),
            None if user_id is None else safe_text(user_id),
            None if arm is None else safe_text(arm),
            safe_text(prediction.version),
            safe_text(artifact_sha256),
            round(float(prediction.latency_ms), 4),
            json.dumps(prediction.labels),
        )
        self._writer.put("insert", row)

    def record_outcome(self, request_id: str, y_true: Any) -> None:
        """Attach the true label(s) to a request, once known (for per-version accuracy).

        Parameters
        ----------
        request_id : str
            ``Prediction.request_id`` of a recorded prediction.
        y_true : label or list/tuple/ndarray/Series of labels
            One true label per predicted row (see :func:`persistlib.serving.as_labels`).

        Raises
        ------
        AuditError
            If the log is closed. An unknown ``request_id`` is reported by the
            next :meth:`flush` (and counted in :attr:`unmatched_outcomes`).
        """
        self._check_open("record outcomes")
        truth = as_labels(y_true)
        self._writer.put("outcome", (json.dumps(truth), safe_text(request_id)))

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every queued row is on disk; report what could not be written since the last flush.

        Raises
        ------
        AuditError
            If the log is closed, its writer thread has stopped, the writer did
            not catch up within ``timeout`` seconds, or rows or outcomes could
            not be written (e.g. a duplicate request_id, an outcome for a
            request this log never recorded, or a read-only or full disk: see
            :attr:`problem`). Each problem is reported once; the next flush
            starts clean. Valid rows of the same batch are written regardless.
        """
        self._check_open("flush")
        done = threading.Event()
        if not self._writer.put("flush", done) or (done.wait(timeout) and self._writer.stopped):
            raise AuditError(self._writer.crash or STOPPED)
        if not done.is_set():
            raise AuditError(
                f"the audit writer did not catch up within {timeout:g}s; the disk may be slow "
                "or another process holds the database; call flush() again, with a larger timeout."
            )
        n_problems, problems, n_unmatched, unmatched = self._writer.take_problems()
        parts = []
        if n_problems:
            shown = "; ".join(problems[:_MAX_SHOWN]) + (" ..." if len(problems) > _MAX_SHOWN else "")
            parts.append(f"{n_problems} row(s) could not be written ({shown})")
        if n_unmatched:
            shown = ", ".join(map(repr, unmatched[:_MAX_SHOWN])) + (" ..." if n_unmatched > _MAX_SHOWN else "")
            parts.append(
                f"{n_unmatched} outcome(s) name a request_id with no recorded prediction "
                f"({shown}); pass the request_id of a Prediction made with this log"
            )
        if parts and (problem := self._writer.problem):
            parts.append(problem)
        if parts:
            raise AuditError("the audit writer reports: " + "; and ".join(parts) + ". Every other row was written.")

    def close(self) -> None:
        """Write what is queued, then stop the writer thread. Safe to call twice."""
        self._finalizer()

    # ------------------------------------------------------------------ reading

    def _query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        con = connect(self.path)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def get(self, request_id: str) -> dict[str, Any]:
        """The full row for one request.

        Raises
        ------
        AuditError
            If no prediction with that id was recorded (did you call :meth:`flush`?).
        """
        rows = self._query("SELECT * FROM predictions WHERE request_id = ?", (safe_text(request_id),))
        if not rows:
            raise AuditError(
                f"no prediction with request_id {request_id!r} in {self.path.name}; "
                "check the id, or call flush() first if it was just made."
            )
        return as_dict(rows[0])

    def which_version(self, request_id: str) -> str:
        """Which model version answered ``request_id``."""
        return self.get(request_id)["version"]

    def count(self, *, version: str | None = None) -> int:
        """How many predictions were recorded (for one version, if given)."""
        where, params = where_clause(version=version)
        return int(self._query(f"SELECT COUNT(*) FROM predictions{where}", params)[0][0])

    def rows(
        self,
        *,
        version: str | None = None,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Recorded rows, oldest first, filtered by version and time."""
        where, params = where_clause(version=version, since=since, until=until)
        lim = f" LIMIT {int(limit)}" if limit is not None else ""
        return [as_dict(r) for r in self._query(f"SELECT * FROM predictions{where} ORDER BY id{lim}", params)]

    def summary(
        self, *, version: str | None = None, since: str | datetime | None = None, until: str | datetime | None = None
    ) -> dict[str, dict[str, Any]]:
        """Per version: ``requests``, ``first``/``last`` timestamps, latency ``p50_ms``/``p99_ms``,
        ``positive_rate`` (share of predicted labels equal to 1), and ``accuracy`` over the rows
        whose outcome is known (``None`` if none is).

        Answers questions like *"how did version 2.0.0 do today?"*:
        ``audit.summary(version="2.0.0", since="2026-11-26")``.
        """
        return summarise(self.rows(version=version, since=since, until=until))

    def to_frame(self, **filters: Any):
        """The rows as a pandas DataFrame (same filters as :meth:`rows`)."""
        import pandas as pd

        return pd.DataFrame(self.rows(**filters))

    def compare(
        self,
        version: str,
        baseline_version: str,
        *,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
        max_rate_shift: float = 0.15,
        max_accuracy_drop: float = 0.05,
    ) -> Comparison:
        """Should ``version`` be rolled back? Compare its live behaviour with ``baseline_version``'s.

        Uses :meth:`summary` over the same time window for both and applies
        :func:`compare_summaries`: it fires when the share of predicted
        positives moves by more than ``max_rate_shift`` (either way), or
        accuracy (over known outcomes) drops by more than ``max_accuracy_drop``.
        Call :meth:`flush` first so the latest rows count.

        Returns
        -------
        Comparison
            ``.fired`` and human-readable ``.reasons``; checks that had no data
            (e.g. no outcomes yet) are listed in ``.skipped``.

        Raises
        ------
        AuditError
            If either version has no recorded prediction in the window.
        """
        summary = self.summary(since=since, until=until)
        for v in (version, baseline_version):
            if v not in summary:
                raise AuditError(
                    f"no prediction by v{v} in {self.path.name} in that time window (versions "
                    f"recorded there: {list(summary) or 'none'}); check the version and since/until, "
                    "and call flush() first."
                )
        return compare_summaries(
            summary[version],
            summary[baseline_version],
            version=version,
            baseline_version=baseline_version,
            max_rate_shift=max_rate_shift,
            max_accuracy_drop=max_accuracy_drop,
        )


@dataclass(frozen=True)
class Comparison:
    """The verdict of :meth:`AuditLog.compare`: ``fired`` when there is a reason to roll back.

    ``reasons`` says, in words, which rule fired and with which numbers;
    ``skipped`` names the checks that had no data (a metric that is ``None``).
    """

    version: str
    baseline_version: str
    reasons: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()

    @property
    def fired(self) -> bool:
        """Whether any rule fired."""
        return bool(self.reasons)

    def __str__(self) -> str:
        head = (
            f"{mark(False)} ALARM v{self.version} vs v{self.baseline_version}: " + "; ".join(self.reasons)
            if self.fired
            else f"{mark(True)} all clear: v{self.version} vs v{self.baseline_version}"
        )
        return head + (f" (not checked: {'; '.join(self.skipped)})" if self.skipped else "")


def compare_summaries(
    live: Mapping[str, Any],
    baseline: Mapping[str, Any],
    *,
    version: str = "live",
    baseline_version: str = "baseline",
    max_rate_shift: float = 0.15,
    max_accuracy_drop: float = 0.05,
) -> Comparison:
    """Apply the rollback alarm to two per-version summaries (as :meth:`AuditLog.summary` gives).

    Parameters
    ----------
    live, baseline : mapping
        Each with ``positive_rate`` and ``accuracy`` (either may be ``None``: no
        predictions, or no outcomes yet; that check is then skipped, not fired).
    version, baseline_version : str
        Names used in the reasons.
    max_rate_shift : float, default=0.15
        Fire when the share of predicted positives differs by more than this (either way).
    max_accuracy_drop : float, default=0.05
        Fire when live accuracy is lower than the baseline's by more than this.

    Returns
    -------
    Comparison
    """
    check_number(max_rate_shift, "max_rate_shift", low=0, high=1, what="a number between 0 and 1")
    check_number(max_accuracy_drop, "max_accuracy_drop", low=0, high=1, what="a number between 0 and 1")
    for name, s in (("live", live), ("baseline", baseline)):
        if not isinstance(s, Mapping):
            raise InvalidArgumentError(
                f"{name} must be one version's summary (a dict with 'positive_rate' and "
                f"'accuracy'), got {type(s).__name__}."
            )
    reasons, skipped = [], []
    new, old = live.get("positive_rate"), baseline.get("positive_rate")
    if new is None or old is None:
        skipped.append(f"predicted positive rate (no predictions from v{version if new is None else baseline_version})")
    elif abs(new - old) > max_rate_shift:
        reasons.append(
            f"predicted positive rate {new:.2f} vs {old:.2f} (moved {abs(new - old):.2f}, more than {max_rate_shift:g})"
        )
    new, old = live.get("accuracy"), baseline.get("accuracy")
    if new is None or old is None:
        skipped.append(f"accuracy (no outcomes yet for v{version if new is None else baseline_version})")
    elif new < old - max_accuracy_drop:
        reasons.append(f"accuracy {new:.3f} vs {old:.3f} (dropped {old - new:.3f}, more than {max_accuracy_drop:g})")
    return Comparison(version, baseline_version, tuple(reasons), tuple(skipped))
