"""An audit trail: which model made every prediction, and how long it took.

:class:`AuditLog` keeps one row per prediction in a SQLite file: when, which
request, which user, which A/B arm, which version, the sha256 of the exact
artefact that answered, the latency and the answer itself. With it you can
answer, months later, *"which model told this customer that?"*.

Two design choices keep it safe and fast:

* **WAL mode.** SQLite's write-ahead log lets readers query while a writer
  appends, and survives a crash without a corrupt file.
* **One writer thread.** Serving threads only put a row on a queue (a few
  microseconds); a background thread writes rows in batches, one transaction
  per batch. Call :meth:`AuditLog.flush` before you query, to wait for the queue.
"""
from __future__ import annotations

import json
import os
import queue
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InvalidArgumentError, PersistError

if TYPE_CHECKING:  # pragma: no cover
    from .serving import Prediction

__all__ = ["AuditLog", "AuditError"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    request_id TEXT NOT NULL UNIQUE,
    user_key TEXT,
    arm TEXT,
    version TEXT NOT NULL,
    artifact_sha256 TEXT NOT NULL,
    latency_ms REAL NOT NULL,
    prediction TEXT NOT NULL,
    outcome TEXT
);
CREATE INDEX IF NOT EXISTS predictions_version_ts ON predictions (version, ts);
"""
_COLUMNS = ("ts", "request_id", "user_key", "arm", "version", "artifact_sha256", "latency_ms", "prediction")
_STOP = object()


class AuditError(PersistError):
    """The audit log cannot answer: an unknown request, or a closed log."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class AuditLog:
    """A SQLite audit trail with one row per prediction.

    Parameters
    ----------
    path : str or os.PathLike
        The database file; created (with its folder) if missing. Several
        ``AuditLog`` objects, even in several processes, may share one file.

    Examples
    --------
    >>> audit = AuditLog("workspace/audit.sqlite")          # doctest: +SKIP
    >>> server = ModelServer(registry, audit=audit)         # doctest: +SKIP
    >>> p = server.predict(rows); audit.flush()             # doctest: +SKIP
    >>> audit.which_version(p.request_id)                   # doctest: +SKIP
    '1.2.0'
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if self.path.exists() and self.path.is_dir():
            raise InvalidArgumentError(f"audit path {str(self.path)!r} is a folder; pass a file path "
                                    "such as 'workspace/audit.sqlite'.")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = self._connect()
            try:
                con.execute("PRAGMA journal_mode=WAL")
                con.executescript(_SCHEMA)
            finally:
                con.close()
        except sqlite3.DatabaseError as e:
            raise AuditError(f"{str(self.path)!r} is not a usable SQLite audit log ({e}); pass a new "
                             "file path, or move the existing file away.") from None
        self._queue: queue.Queue = queue.Queue()
        self._closed = False
        self._error: BaseException | None = None
        self._writer = threading.Thread(target=self._write_loop, name="persistlib-audit-writer", daemon=True)
        self._writer.start()

    def __repr__(self) -> str:
        return f"AuditLog({self.path.name!r})"

    def __enter__(self) -> "AuditLog":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ writing

    def record(self, prediction: "Prediction", *, user_id: Any = None, artifact_sha256: str) -> None:
        """Queue one row for ``prediction``. Returns at once; the writer thread stores it."""
        if self._closed:
            raise AuditError("this AuditLog is closed; open a new AuditLog(path) to keep recording.")
        row = (_now(), prediction.request_id, None if user_id is None else str(user_id), prediction.arm,
               prediction.version, artifact_sha256, round(float(prediction.latency_ms), 4),
               json.dumps(prediction.labels))
        self._queue.put(("insert", row))

    def record_outcome(self, request_id: str, y_true: Any) -> None:
        """Attach the true label(s) to a request, once known (for per-version accuracy)."""
        truth = list(y_true) if isinstance(y_true, (list, tuple)) else [y_true]
        self._queue.put(("outcome", (json.dumps([_plain(t) for t in truth]), request_id)))

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every queued row is on disk."""
        done = threading.Event()
        self._queue.put(("flush", done))
        if not done.wait(timeout):
            raise AuditError(f"the audit writer did not catch up within {timeout:g}s.")
        if self._error is not None:
            raise AuditError(f"the audit writer failed: {self._error}") from self._error

    def close(self) -> None:
        """Write what is queued, then stop the writer thread. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._queue.put((_STOP, None))
        self._writer.join(timeout=10)

    def _write_loop(self) -> None:
        con = self._connect()
        try:
            while True:
                batch = [self._queue.get()]
                while len(batch) < 500:  # take whatever else is waiting: one transaction per batch
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                inserts = [row for kind, row in batch if kind == "insert"]
                outcomes = [row for kind, row in batch if kind == "outcome"]
                try:
                    with con:
                        if inserts:
                            con.executemany(f"INSERT INTO predictions ({', '.join(_COLUMNS)}) "
                                            f"VALUES ({', '.join('?' * len(_COLUMNS))})", inserts)
                        if outcomes:
                            con.executemany("UPDATE predictions SET outcome = ? WHERE request_id = ?", outcomes)
                except sqlite3.Error as e:  # keep serving; report on the next flush()
                    self._error = e
                for kind, arg in batch:
                    if kind == "flush":
                        arg.set()
                if any(kind is _STOP for kind, _ in batch):
                    return
        finally:
            con.close()

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        con.execute("PRAGMA busy_timeout=30000")
        con.execute("PRAGMA synchronous=NORMAL")
        con.row_factory = sqlite3.Row
        return con

    # ------------------------------------------------------------------ reading

    def _query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        con = self._connect()
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
        rows = self._query("SELECT * FROM predictions WHERE request_id = ?", (request_id,))
        if not rows:
            raise AuditError(f"no prediction with request_id {request_id!r} in {self.path.name}; "
                             "check the id, or call flush() first if it was just made.")
        return _as_dict(rows[0])

    def which_version(self, request_id: str) -> str:
        """Which model version answered ``request_id``."""
        return self.get(request_id)["version"]

    def count(self, *, version: str | None = None) -> int:
        """How many predictions were recorded (for one version, if given)."""
        where, params = _where(version=version)
        return int(self._query(f"SELECT COUNT(*) FROM predictions{where}", params)[0][0])

    def rows(self, *, version: str | None = None, since: str | datetime | None = None,
             until: str | datetime | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Recorded rows, oldest first, filtered by version and time."""
        where, params = _where(version=version, since=since, until=until)
        lim = f" LIMIT {int(limit)}" if limit is not None else ""
        return [_as_dict(r) for r in self._query(f"SELECT * FROM predictions{where} ORDER BY id{lim}", params)]

    def summary(self, *, version: str | None = None, since: str | datetime | None = None,
                until: str | datetime | None = None) -> dict[str, dict[str, Any]]:
        """Per version: ``requests``, ``first``/``last`` timestamps, latency ``p50_ms``/``p99_ms``,
        ``positive_rate`` (share of predicted labels equal to 1), and ``accuracy`` over the rows
        whose outcome is known (``None`` if none is).

        Answers questions like *"how did version 2.0.0 do today?"*:
        ``audit.summary(version="2.0.0", since="2026-11-26")``.
        """
        import numpy as np

        out: dict[str, dict[str, Any]] = {}
        for r in self.rows(version=version, since=since, until=until):
            s = out.setdefault(r["version"], {"requests": 0, "first": r["ts"], "_lat": [], "_labels": [],
                                              "_hits": [], "artifact_sha256": r["artifact_sha256"]})
            s["requests"] += 1
            s["last"] = r["ts"]
            s["_lat"].append(r["latency_ms"])
            s["_labels"].extend(r["prediction"])
            if r["outcome"] is not None:
                s["_hits"].extend(int(p == t) for p, t in zip(r["prediction"], r["outcome"]))
        for s in out.values():
            lat, labels, hits = s.pop("_lat"), s.pop("_labels"), s.pop("_hits")
            s["p50_ms"] = float(np.percentile(lat, 50))
            s["p99_ms"] = float(np.percentile(lat, 99))
            s["positive_rate"] = sum(1 for v in labels if v == 1) / len(labels) if labels else None
            s["outcomes"] = len(hits)
            s["accuracy"] = sum(hits) / len(hits) if hits else None
        return dict(sorted(out.items()))

    def to_frame(self, **filters: Any):
        """The rows as a pandas DataFrame (same filters as :meth:`rows`)."""
        import pandas as pd

        return pd.DataFrame(self.rows(**filters))


def _where(*, version: str | None = None, since: Any = None, until: Any = None) -> tuple[str, tuple]:
    clauses, params = [], []
    if version is not None:
        clauses.append("version = ?")
        params.append(version)
    if since is not None:
        clauses.append("ts >= ?")
        params.append(_ts(since, "since"))
    if until is not None:
        clauses.append("ts < ?")
        params.append(_ts(until, "until"))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)


def _ts(value: Any, name: str) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidArgumentError(f"{name}= must be timezone-aware (audit times are UTC), e.g. "
                             "datetime.now(timezone.utc).")
        return value.astimezone(timezone.utc).isoformat(timespec="milliseconds")
    if isinstance(value, str) and value[:4].isdigit():
        return value
    raise InvalidArgumentError(f"{name}= must be an ISO time string like '2026-11-26T00:00' or an aware datetime, "
                     f"got {value!r}.")


def _as_dict(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    d["prediction"] = json.loads(d["prediction"])
    d["outcome"] = json.loads(d["outcome"]) if d["outcome"] is not None else None
    return d


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v
