"""AuditLog under attack and under failure: no row kills the writer, and no failure is silent.

A security review found three holes: a ``user_id`` with a lone surrogate (valid
JSON, so it arrives over HTTP) killed the writer thread while /predict kept
answering; a read-only or full disk lost rows with nothing to show for it; and
bad paths raised raw exceptions. These tests pin the fixes.

To make rows reach the writer in ONE batch without sleeping, a test parks the
writer on a :class:`Gate`: a queued ``("flush", gate)`` item whose ``set()``
blocks until the test releases it, while the rows queue up behind it.
"""

from __future__ import annotations

import sqlite3
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import persistlib as pl
from persistlib.errors import ArgumentTypeError, AuditError, InvalidArgumentError
from persistlib.serving import Prediction

SHA = "0" * 64


def _pred(request_id, arm=None, labels=(1,)):
    return Prediction(labels=list(labels), probabilities=None, version="1.0.0", request_id=request_id, arm=arm)


class Gate:
    """Parks the writer thread (it calls ``set()`` on queued flush items) until :meth:`release`."""

    def __init__(self, log):
        self.entered, self._go = threading.Event(), threading.Event()
        log._writer.queue.put(("flush", self))
        assert self.entered.wait(10), "the writer thread never reached the gate"

    def set(self):  # called by the writer thread
        self.entered.set()
        self._go.wait(10)

    def release(self):
        self._go.set()


@pytest.fixture()
def log(tmp_path):
    audit = pl.AuditLog(tmp_path / "audit.sqlite")
    yield audit
    audit.close()


# --------------------------------------------------------------------------- no row kills the writer


def test_a_lone_surrogate_user_id_is_stored_and_the_writer_lives_on(log):
    log.record(_pred("req-1"), user_id="\udfff", artifact_sha256=SHA)
    log.record(_pred("req-2"), user_id="ok", artifact_sha256=SHA)
    log.flush()
    assert log._writer.thread.is_alive()
    assert log.get("req-1")["user_key"] == "\\udfff"  # stored as a visible escape
    assert log.count() == 2 and log.lost == 0 and log.healthy


def test_record_makes_every_text_field_storable_and_get_finds_it_again(log):
    rid = "req-\ud800-x"
    log.record(_pred(rid, arm="arm-\udc00"), user_id="caf\u00e9 \udfff", artifact_sha256=SHA)
    log.record_outcome(rid, 1)
    log.flush()
    row = log.get(rid)
    assert row["request_id"] == "req-\\ud800-x" and row["arm"] == "arm-\\udc00"
    assert row["user_key"] == "caf\u00e9 \\udfff"  # valid text is kept as it is
    assert row["outcome"] == [1]


def test_an_unwritable_row_costs_only_itself_and_is_reported_once(log):
    """A row that slipped past record()'s escaping still cannot stop the writer, nor cost its batch."""
    gate = Gate(log)
    log.record(_pred("req-a"), artifact_sha256=SHA)
    bad = ("2026-01-01T00:00:00.000+00:00", "req-bad", "\udfff", None, "1.0.0", SHA, 1.0, "[1]")
    log._writer.queue.put(("insert", bad))  # raw, as record() would never queue it
    log.record(_pred("req-b"), artifact_sha256=SHA)
    log.record(_pred("req-a"), artifact_sha256=SHA)  # and a duplicate in the same batch
    gate.release()
    with pytest.raises(AuditError, match=r"2 row\(s\) could not be written.*'req-bad'.*duplicate request_id 'req-a'"):
        log.flush()
    assert log._writer.thread.is_alive()
    assert sorted(r["request_id"] for r in log.rows()) == ["req-a", "req-b"]
    assert log.lost == 2
    assert log.problem is None and log.healthy  # bad rows are the rows' fault, not the log's
    log.flush()  # reported once
    log.record(_pred("req-c"), artifact_sha256=SHA)
    log.flush()
    assert log.count() == 3


# --------------------------------------------------------------------------- no silent failure


def _readonly(con):
    con.execute("PRAGMA query_only=ON")  # SQLite then refuses writes, even for root
    return lambda: con.execute("PRAGMA query_only=OFF")


def _full(con):
    pages = con.execute("PRAGMA page_count").fetchone()[0]
    con.execute(f"PRAGMA max_page_count={pages}")  # the database may not grow: "disk is full"
    return lambda: con.execute("PRAGMA max_page_count=1073741823")


def _locked(con):
    con.execute("PRAGMA busy_timeout=20")  # do not wait 30 s for the lock below
    holder = sqlite3.connect(con.execute("PRAGMA database_list").fetchone()[2], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another connection holds the write lock

    def undo():
        holder.execute("ROLLBACK")
        holder.close()

    return undo


@pytest.mark.parametrize(
    ("break_it", "reason", "fix"),
    [
        (_readonly, "readonly database", "writable"),
        (_full, "database or disk is full", "free disk space"),
        (_locked, "database is locked", "another connection holds"),
    ],
    ids=["read-only", "disk-full", "locked"],
)
def test_a_database_that_refuses_writes_sets_problem_until_a_write_succeeds(log, break_it, reason, fix):
    log.record(_pred("req-before"), artifact_sha256=SHA)
    log.flush()  # the writer has opened its connection, and waits for rows
    undo = break_it(log._writer.con)  # the writer is idle, so the test may use its connection
    for i in range(3):
        log.record(_pred(f"req-{i}", labels=[1] * 2000), artifact_sha256=SHA)
    with pytest.raises(AuditError, match=r"3 row\(s\) could not be written"):
        log.flush()
    assert log.problem is not None and reason in log.problem and fix in log.problem
    assert str(log.path) in log.problem
    assert log.lost == 3 and not log.healthy
    assert log._writer.thread.is_alive()
    undo()
    log.record(_pred("req-after"), artifact_sha256=SHA)
    log.flush()
    assert log.problem is None and log.healthy and log.lost == 3
    assert [r["request_id"] for r in log.rows()] == ["req-before", "req-after"]


def test_a_database_file_replaced_by_a_folder_sets_problem(tmp_path):
    path = tmp_path / "audit.sqlite"
    log = pl.AuditLog(path)
    try:
        for p in tmp_path.iterdir():  # before the writer's first write, the file goes away ...
            p.unlink()
        path.mkdir()  # ... and a folder takes its place
        log.record(_pred("req-1"), artifact_sha256=SHA)
        with pytest.raises(AuditError, match=r"1 row\(s\) could not be written"):
            log.flush()
        assert "refuses writes" in log.problem and log.lost == 1 and not log.healthy
        assert log._writer.thread.is_alive()
    finally:
        log.close()


def test_a_writer_thread_that_stops_is_a_problem_and_nothing_after_it_is_silent(log):
    gate = Gate(log)
    log._writer.queue.put("not a (kind, arg) pair")  # stands in for a bug in the writer
    waiter = threading.Event()
    log._writer.queue.put(("flush", waiter))
    log.record(_pred("req-1"), artifact_sha256=SHA)
    gate.release()
    log._writer.thread.join(10)
    assert not log._writer.thread.is_alive()
    assert waiter.is_set()  # a flush waiting when the thread stopped is released, not left hanging
    assert "stopped unexpectedly" in log.problem and not log.healthy
    assert log.lost == 1  # the row queued with it
    log.record(_pred("req-2"), artifact_sha256=SHA)  # serving goes on; the row is counted, not dropped
    log.record_outcome("req-2", 1)
    assert log.lost == 3
    with pytest.raises(AuditError, match="stopped unexpectedly.*open a new AuditLog"):
        log.flush()


def test_a_closed_log_is_not_healthy_but_has_no_problem(tmp_path):
    log = pl.AuditLog(tmp_path / "a.sqlite")
    assert log.healthy and log.problem is None and log.lost == 0
    log.close()
    assert not log.healthy and log.problem is None


# --------------------------------------------------------------------------- bad paths


def _blocked_mkdir(self, *args, **kwargs):
    raise PermissionError(13, "Permission denied", str(self))


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda tmp: tmp, "is a folder"),
        (lambda tmp: tmp / "a\x00b.sqlite", "NUL character"),
        (lambda tmp: tmp / "notes.txt" / "audit.sqlite", "notes.txt' is a file, not a folder"),
        (lambda tmp: tmp / "notes.txt" / "deeper" / "audit.sqlite", "notes.txt' is a file, not a folder"),
        (lambda tmp: tmp / "\udfff" / "audit.sqlite", "cannot create the folder"),
        (lambda tmp: tmp / "audit-\udfff.sqlite", "cannot name a file"),
        (lambda tmp: tmp / "locked-away" / "audit.sqlite", "Permission denied"),
    ],
    ids=[
        "folder",
        "nul",
        "parent-is-a-file",
        "ancestor-is-a-file",
        "unencodable-folder",
        "unencodable-file",
        "cannot-create",
    ],
)
def test_a_bad_path_is_an_audit_error_naming_the_path_and_the_fix(tmp_path, monkeypatch, make, words):
    (tmp_path / "notes.txt").write_text("not a folder")
    path = make(tmp_path)
    if "locked-away" in str(path):
        monkeypatch.setattr(Path, "mkdir", _blocked_mkdir)  # root ignores chmod; a refusing mkdir does not
    with pytest.raises(AuditError) as info:
        pl.AuditLog(path)
    message = str(info.value)
    assert isinstance(info.value, InvalidArgumentError)  # a bad argument, too (and so a ValueError)
    assert repr(str(path)) in message and words in message
    assert "pass a file path such as 'workspace/audit.sqlite'" in message


def test_a_path_that_is_not_a_path_is_a_type_error():
    with pytest.raises(ArgumentTypeError, match="must be a str or a pathlib.Path, got int"):
        pl.AuditLog(42)


# --------------------------------------------------------------------------- any text at all

_ANY_CHAR = st.one_of(st.characters(), st.integers(0xD800, 0xDFFF).map(chr))
_ANY_TEXT = st.text(alphabet=_ANY_CHAR, max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(_ANY_TEXT, st.one_of(st.none(), _ANY_TEXT)), min_size=1, max_size=25))
def test_any_user_id_and_arm_is_written_and_the_writer_survives(rows):
    with tempfile.TemporaryDirectory() as folder, pl.AuditLog(Path(folder) / "a.sqlite") as log:
        gate = Gate(log)  # half the rows reach the writer in one batch, the rest one by one
        for i, (user_id, arm) in enumerate(rows):
            if i == len(rows) // 2:
                gate.release()
            log.record(_pred(f"req-{i}", arm=arm), user_id=user_id, artifact_sha256=SHA)
        gate.release()
        log.flush()  # raises nothing: every row is storable
        assert log._writer.thread.is_alive() and log.healthy and log.lost == 0
        stored = log.rows()
        assert len(stored) == len(rows) == log.count()
        for (user_id, arm), row in zip(rows, stored, strict=True):
            if not any(0xD800 <= ord(c) <= 0xDFFF for c in user_id):
                assert row["user_key"] == user_id  # valid text round-trips exactly
            assert (row["arm"] is None) == (arm is None)
