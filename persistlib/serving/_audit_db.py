"""The audit log's SQLite plumbing: the table, connections, the writer thread and query filters.

:class:`~persistlib.serving.AuditLog` is what callers use; this module holds
what it is built from. Two design choices keep the log safe and fast:

* **WAL mode.** SQLite's write-ahead log lets readers query while a writer
  appends, and survives a crash without a corrupt file.
* **One writer thread.** Serving threads only put a row on a queue (a few
  microseconds); :class:`Writer`, a background thread, writes rows in batches,
  one transaction per batch.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import InvalidArgumentError

__all__ = ["SCHEMA", "Writer", "as_dict", "connect", "now", "where_clause"]

SCHEMA = """
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
_INSERT = f"INSERT INTO predictions ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
_UPDATE = "UPDATE predictions SET outcome = ? WHERE request_id = ?"
_STOP = object()


def now() -> str:
    """The current UTC time as an ISO string, to the millisecond (sorts as text)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def connect(path: Path) -> sqlite3.Connection:
    """A connection that waits for a busy database instead of failing, and returns rows by column name."""
    con = sqlite3.connect(path, timeout=30, check_same_thread=False)
    con.execute("PRAGMA busy_timeout=30000")
    con.execute("PRAGMA synchronous=NORMAL")
    con.row_factory = sqlite3.Row
    return con


def _explain(error: sqlite3.Error, request_id: str) -> str:
    if isinstance(error, sqlite3.IntegrityError) and "UNIQUE" in str(error):
        return f"duplicate request_id {request_id!r} (already recorded)"
    return f"request_id {request_id!r}: {error}"


class Writer:
    """The background thread that writes queued rows in batches.

    It holds no reference to its :class:`AuditLog`, so an AuditLog that nobody
    references any more can be collected, and its finalizer stops this thread.
    """

    _KEEP = 100  # examples of problems kept between two flush() calls (counts are exact)

    def __init__(self, path: Path):
        self.path = path
        self.queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._problems: list[str] = []
        self._problem_count = 0
        self._unmatched: list[str] = []
        self._unmatched_count = 0
        self.unmatched_total = 0
        self.thread = threading.Thread(target=self._run, name="persistlib-audit-writer", daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued, then end the thread."""
        self.queue.put((_STOP, None))
        self.thread.join(timeout)

    def take_problems(self) -> tuple[int, list[str], int, list[str]]:
        """(problem count, examples, unmatched-outcome count, example ids) since the last call; then reset."""
        with self._lock:
            out = (self._problem_count, self._problems, self._unmatched_count, self._unmatched)
            self._problems, self._problem_count, self._unmatched, self._unmatched_count = [], 0, [], 0
        return out

    def _run(self) -> None:
        con = connect(self.path)
        try:
            while True:
                batch = [self.queue.get()]
                while len(batch) < 500:  # take whatever else is waiting: one transaction per batch
                    try:
                        batch.append(self.queue.get_nowait())
                    except queue.Empty:
                        break
                inserts = [row for kind, row in batch if kind == "insert"]
                outcomes = [row for kind, row in batch if kind == "outcome"]
                if inserts or outcomes:
                    self._write(con, inserts, outcomes)
                for kind, arg in batch:
                    if kind == "flush":
                        arg.set()
                if any(kind is _STOP for kind, _ in batch):
                    return
        finally:
            con.close()

    def _write(self, con: sqlite3.Connection, inserts: list[tuple], outcomes: list[tuple]) -> None:
        problems: list[str] = []
        unmatched: list[str] = []
        try:  # the fast path: the whole batch in one transaction
            with con:
                if inserts:
                    con.executemany(_INSERT, inserts)
                for outcome in outcomes:
                    if con.execute(_UPDATE, outcome).rowcount == 0:
                        unmatched.append(outcome[1])
        except sqlite3.Error:  # one bad row must not cost the others: retry one row at a time
            unmatched = []
            for row in inserts:
                try:
                    with con:
                        con.execute(_INSERT, row)
                except sqlite3.Error as e:
                    problems.append(_explain(e, row[1]))
            for outcome in outcomes:
                try:
                    with con:
                        if con.execute(_UPDATE, outcome).rowcount == 0:
                            unmatched.append(outcome[1])
                except sqlite3.Error as e:
                    problems.append(f"outcome for {outcome[1]!r}: {e}")
        if problems or unmatched:
            with self._lock:
                self._problem_count += len(problems)
                self._problems.extend(problems[: self._KEEP - len(self._problems)])
                self._unmatched_count += len(unmatched)
                self.unmatched_total += len(unmatched)
                self._unmatched.extend(unmatched[: self._KEEP - len(self._unmatched)])


def where_clause(*, version: str | None = None, since: Any = None, until: Any = None) -> tuple[str, tuple]:
    """``(" WHERE ...", params)`` selecting rows of one version and/or a time window ``[since, until)``."""
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
            raise InvalidArgumentError(
                f"{name}= must be timezone-aware (audit times are UTC), e.g. datetime.now(timezone.utc)."
            )
        return value.astimezone(UTC).isoformat(timespec="milliseconds")
    if isinstance(value, str) and value[:4].isdigit():
        return value
    raise InvalidArgumentError(
        f"{name}= must be an ISO time string like '2026-11-26T00:00' or an aware datetime, got {value!r}."
    )


def as_dict(row: sqlite3.Row) -> dict[str, Any]:
    """A stored row as a dict, with ``prediction`` and ``outcome`` decoded from JSON."""
    d = dict(row)
    d["prediction"] = json.loads(d["prediction"])
    d["outcome"] = json.loads(d["outcome"]) if d["outcome"] is not None else None
    return d
