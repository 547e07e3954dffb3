"""The audit log's SQLite plumbing: the table, connections, the writer thread, query filters and summaries.

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
import os
import queue
import sqlite3
import threading
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import ArgumentTypeError, AuditError, AuditPathError, InvalidArgumentError

__all__ = [
    "SCHEMA",
    "STOPPED",
    "Writer",
    "as_dict",
    "connect",
    "create",
    "now",
    "safe_text",
    "summarise",
    "where_clause",
]

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
_REOPEN = "open a new AuditLog(path) to keep recording"
STOPPED = f"the audit writer thread has stopped; {_REOPEN}"


def now() -> str:
    """The current UTC time as an ISO string, to the millisecond (sorts as text)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def safe_text(value: Any) -> str:
    """``str(value)`` that SQLite can always store: lone surrogates (valid in JSON) become ``\\udfff`` escapes."""
    text = str(value)
    return text if text.isascii() else text.encode("utf-8", "backslashreplace").decode("utf-8")


def connect(path: Path) -> sqlite3.Connection:
    """A connection that waits for a busy database instead of failing, and returns rows by column name."""
    con = sqlite3.connect(path, timeout=30, check_same_thread=False)
    try:
        con.execute("PRAGMA busy_timeout=30000")
        con.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        con.close()
        raise
    con.row_factory = sqlite3.Row
    return con


def create(path: Any) -> Path:
    """Make ``path`` a ready audit database (its folder, WAL mode, the table), or raise an error naming the fix."""
    example = "pass a file path such as 'workspace/audit.sqlite'"
    if not isinstance(path, str | os.PathLike):
        raise ArgumentTypeError(
            f"the audit path must be a str or a pathlib.Path, got {type(path).__name__}; {example}."
        )
    path = Path(path)
    if "\x00" in str(path):
        raise AuditPathError(f"audit path {str(path)!r} contains a NUL character; {example}.")
    if _is(path, "dir"):
        raise AuditPathError(f"audit path {str(path)!r} is a folder; {example}.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as e:  # ValueError: a name the file system cannot encode
        blocker = next((p for p in (path.parent, *path.parent.parents) if _is(p, "file")), None)
        why = f"{str(blocker)!r} is a file, not a folder" if blocker else (getattr(e, "strerror", None) or str(e))
        raise AuditPathError(
            f"cannot create the folder of audit path {str(path)!r} ({why}); {example}, in a folder you can write to."
        ) from None
    try:
        con = connect(path)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(SCHEMA)
        finally:
            con.close()
    except ValueError as e:  # a file name SQLite cannot encode
        raise AuditPathError(f"audit path {str(path)!r} cannot name a file ({e}); {example}.") from None
    except sqlite3.DatabaseError as e:
        raise AuditError(
            f"{str(path)!r} is not a usable SQLite audit log ({e}); pass a new file path, "
            "or move the existing file away."
        ) from None
    return path


def _is(path: Path, kind: str) -> bool:
    """Whether ``path`` is a folder (``kind="dir"``) or something else that exists (``"file"``); no error if unsure."""
    try:
        return path.is_dir() if kind == "dir" else path.exists() and not path.is_dir()
    except OSError:  # e.g. no permission to look: mkdir or connect will say what is wrong
        return False


def _is_systemic(error: BaseException) -> bool:
    """Whether ``error`` stops every write (a read-only, full or failing disk, a lock held too long), not one row."""
    row_faults = (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.ProgrammingError, sqlite3.InterfaceError)
    return isinstance(error, (sqlite3.DatabaseError, OSError, MemoryError)) and not isinstance(error, row_faults)


def _describe(error: BaseException, path: Path) -> str:
    """``audit.problem`` for a write that failed for a reason that is not a row's own fault."""
    text = str(error).lower()
    fix = next((fix for key, fix in _FIXES if key in text), "check the file, its folder and the disk")
    return (
        f"the audit database {str(path)!r} refuses writes ({type(error).__name__}: {error}); {fix}. "
        "Rows are lost until a write succeeds again, which clears this problem"
    )


_FIXES = (
    ("readonly", "make the file and its folder writable (or move the log to a writable disk)"),
    ("full", "free disk space"),
    ("locked", "another connection holds the database for too long; end it"),
    ("i/o", "check the disk"),
)


def _explain(error: BaseException, kind: str, request_id: Any) -> str:
    if kind == "outcome":
        return f"outcome for {request_id!r}: {error}"
    if isinstance(error, sqlite3.IntegrityError) and "UNIQUE" in str(error):
        return f"duplicate request_id {request_id!r} (already recorded)"
    return f"request_id {request_id!r}: {type(error).__name__}: {error}"


def _kind(item: Any) -> Any:
    """The kind of a queued ``(kind, arg)`` item, or ``None`` for anything malformed."""
    return item[0] if isinstance(item, tuple) and len(item) == 2 else None


class Writer:
    """The background thread that writes queued rows in batches.

    It holds no reference to its :class:`AuditLog`, so an AuditLog that nobody
    references any more can be collected, and its finalizer stops this thread.
    No row can stop it: a batch that fails is retried one row at a time, and a
    row that cannot be written is counted in ``lost`` and reported by the next
    flush. A failure that is no row's fault (a read-only or full disk) sets
    ``problem`` until the next successful write.
    """

    _KEEP = 100  # examples of problems kept between two flush() calls (counts are exact)

    def __init__(self, path: Path):
        self.path = path
        self.queue: queue.Queue = queue.Queue()
        self.con: sqlite3.Connection | None = None  # the thread's own connection, opened at its first write
        self.stopped = False  # set (under the lock) when the thread ends; later items are refused
        self._lock = threading.Lock()
        self._problems: list[str] = []
        self._problem_count = 0
        self._unmatched: list[str] = []
        self._unmatched_count = 0
        self.unmatched_total = 0
        self.lost = 0
        self.problem: str | None = None  # why the last write failed, if no row was to blame
        self.crash: str | None = None  # why the thread stopped, if it stopped unexpectedly
        self.thread = threading.Thread(target=self._run, name="persistlib-audit-writer", daemon=True)
        self.thread.start()

    def put(self, kind: str, arg: Any) -> bool:
        """Queue one item; ``False`` (and a row counted as lost) if the thread has already ended."""
        with self._lock:
            if self.stopped:
                self.lost += int(kind in ("insert", "outcome"))
                return False
            self.queue.put((kind, arg))
            return True

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
        batch: list = []
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
                    self._write_batch(inserts, outcomes)
                for kind, arg in batch:
                    if kind == "flush":
                        arg.set()
                if any(kind is _STOP for kind, _ in batch):
                    batch = []
                    return
                batch = []
        except Exception as e:  # a bug, not a row: say so, rather than die in silence
            self.crash = f"the audit writer thread stopped unexpectedly ({type(e).__name__}: {e}); {_REOPEN}"
        finally:
            with suppress(Exception):
                if self.con is not None:
                    self.con.close()
            with self._lock:  # nothing queued from now on is silently dropped: count it, release flush waiters
                self.stopped = True
                while True:
                    try:
                        batch.append(self.queue.get_nowait())
                    except queue.Empty:
                        break
                for item in batch:
                    if _kind(item) == "flush":
                        item[1].set()
                    self.lost += int(_kind(item) in ("insert", "outcome"))

    def _write_batch(self, inserts: list[tuple], outcomes: list[tuple]) -> None:
        """Write one batch; never raises (a failure is counted and reported instead)."""
        try:
            if self.con is None:
                self.con = connect(self.path)
            self._write(self.con, inserts, outcomes)
        except Exception as e:  # could not even connect: the batch is lost, the next one tries again
            n = len(inserts) + len(outcomes)
            self._record([f"{n} row(s) of one batch: {e}"], n, [], _describe(e, self.path), False)

    def _write(self, con: sqlite3.Connection, inserts: list[tuple], outcomes: list[tuple]) -> None:
        problems: list[str] = []
        unmatched: list[str] = []
        lost, problem, wrote = 0, None, True
        try:  # the fast path: the whole batch in one transaction
            with con:
                if inserts:
                    con.executemany(_INSERT, inserts)
                for outcome in outcomes:
                    if con.execute(_UPDATE, outcome).rowcount == 0:
                        unmatched.append(outcome[1])
        except Exception as e:
            unmatched = []
            if _is_systemic(e):  # every row would fail the same way (after the same busy wait): lose the batch
                lost, problem, wrote = len(inserts) + len(outcomes), _describe(e, self.path), False
                problems.append(f"{lost} row(s) of one batch: {e}")
            else:  # one bad row must not cost the others: retry one row at a time
                lost, problem = self._write_one_by_one(con, inserts, outcomes, problems, unmatched)
                wrote = lost < len(inserts) + len(outcomes)
        self._record(problems, lost, unmatched, problem, wrote)

    def _write_one_by_one(
        self, con: sqlite3.Connection, inserts: list[tuple], outcomes: list[tuple], problems: list, unmatched: list
    ) -> tuple[int, str | None]:
        """(rows lost, problem or ``None``); stops at the first failure that is no row's own fault."""
        items = [("insert", row) for row in inserts] + [("outcome", outcome) for outcome in outcomes]
        lost = 0
        for i, (kind, arg) in enumerate(items):
            try:
                with con:
                    if kind == "insert":
                        con.execute(_INSERT, arg)
                    elif con.execute(_UPDATE, arg).rowcount == 0:
                        unmatched.append(arg[1])
            except Exception as e:
                if _is_systemic(e):
                    problems.append(f"{len(items) - i} row(s) of one batch: {e}")
                    return lost + len(items) - i, _describe(e, self.path)
                problems.append(_explain(e, kind, arg[1]))
                lost += 1
        return lost, None

    def _record(self, problems: list[str], lost: int, unmatched: list[str], problem: str | None, wrote: bool) -> None:
        """Count the rows that could not be written (``problems`` holds examples); set or clear ``problem``."""
        with self._lock:
            self._problem_count += lost
            self._problems.extend(problems[: self._KEEP - len(self._problems)])
            self._unmatched_count += len(unmatched)
            self.unmatched_total += len(unmatched)
            self._unmatched.extend(unmatched[: self._KEEP - len(self._unmatched)])
            self.lost += lost
            if problem is not None or wrote:  # the latest attempt decides; a failed row alone changes nothing
                self.problem = problem


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


def summarise(rows: Any) -> dict[str, dict[str, Any]]:
    """Per version, the figures :meth:`AuditLog.summary <persistlib.serving.AuditLog.summary>` returns."""
    import numpy as np

    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        s = out.setdefault(
            r["version"],
            {
                "requests": 0,
                "first": r["ts"],
                "_lat": [],
                "_labels": [],
                "_hits": [],
                "artifact_sha256": r["artifact_sha256"],
            },
        )
        s["requests"] += 1
        s["last"] = r["ts"]
        s["_lat"].append(r["latency_ms"])
        s["_labels"].extend(r["prediction"])
        if r["outcome"] is not None:
            s["_hits"].extend(int(p == t) for p, t in zip(r["prediction"], r["outcome"], strict=False))
    for s in out.values():
        lat, labels, hits = s.pop("_lat"), s.pop("_labels"), s.pop("_hits")
        s["p50_ms"] = float(np.percentile(lat, 50))
        s["p99_ms"] = float(np.percentile(lat, 99))
        s["positive_rate"] = sum(1 for v in labels if v == 1) / len(labels) if labels else None
        s["outcomes"] = len(hits)
        s["accuracy"] = sum(hits) / len(hits) if hits else None
    return dict(sorted(out.items()))


def as_dict(row: sqlite3.Row) -> dict[str, Any]:
    """A stored row as a dict, with ``prediction`` and ``outcome`` decoded from JSON."""
    d = dict(row)
    d["prediction"] = json.loads(d["prediction"])
    d["outcome"] = json.loads(d["outcome"]) if d["outcome"] is not None else None
    return d
