"""AuditLog: WAL mode, exactly one row per request, helpers, concurrent writers."""
from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timedelta, timezone

import pytest

import persistlib as pl
from persistlib.audit import AuditError
from persistlib.serving import Prediction


@pytest.fixture(scope="module")
def reg(two_forests):
    return two_forests


@pytest.fixture()
def audit(tmp_path):
    log = pl.AuditLog(tmp_path / "audit.sqlite")
    yield log
    log.close()


def test_the_database_is_in_wal_mode(audit):
    con = sqlite3.connect(audit.path)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        con.close()


def test_one_row_per_prediction_with_every_field(reg, audit):
    registry, X, _ = reg
    server = pl.ModelServer(registry, audit=audit)
    p = server.predict(X.iloc[:3], user_id="alice")
    audit.flush()
    row = audit.get(p.request_id)
    assert row["version"] == "1.0.0" and row["user_key"] == "alice" and row["arm"] is None
    assert row["artifact_sha256"] == registry.card("1.0.0").artifact_sha256
    assert row["prediction"] == p.labels and row["latency_ms"] == pytest.approx(p.latency_ms, abs=1e-3)
    assert datetime.fromisoformat(row["ts"]).tzinfo is not None
    assert audit.which_version(p.request_id) == "1.0.0"
    with pytest.raises(AuditError, match="no prediction"):
        audit.which_version("req-doesnotexist")


def test_every_request_is_audited_exactly_once_under_concurrent_swaps(reg, audit):
    registry, X, _ = reg
    server = pl.ModelServer(registry, audit=audit)
    rows = X.iloc[:1]
    answers: list[Prediction] = []
    lock = threading.Lock()

    def client(n):
        for i in range(n):
            p = server.predict(rows, user_id=f"user-{i}")
            with lock:
                answers.append(p)

    threads = [threading.Thread(target=client, args=(60,)) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(10):
        server.swap("2.0.0" if i % 2 == 0 else "1.0.0")
    for t in threads:
        t.join(20)
    audit.flush()
    assert len(answers) == 240
    recorded = audit.rows()
    assert len(recorded) == 240 == audit.count()
    assert sorted(r["request_id"] for r in recorded) == sorted(p.request_id for p in answers)
    by_id = {r["request_id"]: r["version"] for r in recorded}
    assert all(by_id[p.request_id] == p.version for p in answers)
    assert audit.count(version="1.0.0") + audit.count(version="2.0.0") == 240


def test_two_logs_on_one_file_write_concurrently(reg, tmp_path):
    registry, X, _ = reg
    path = tmp_path / "shared.sqlite"
    logs = [pl.AuditLog(path), pl.AuditLog(path)]
    try:
        servers = [pl.ModelServer(registry, audit=log) for log in logs]
        threads = [threading.Thread(target=lambda s=s: [s.predict(X.iloc[:1]) for _ in range(50)])
                   for s in servers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        for log in logs:
            log.flush()
        assert logs[0].count() == 100 == logs[1].count()
    finally:
        for log in logs:
            log.close()


def test_summary_answers_how_did_a_version_do(reg, audit):
    registry, X, y = reg
    server = pl.ModelServer(registry, audit=audit)
    preds = [server.predict(X.iloc[i:i + 1]) for i in range(20)]
    server.swap("2.0.0")
    later = [server.predict(X.iloc[i:i + 1]) for i in range(5)]
    for i, p in enumerate(preds):
        audit.record_outcome(p.request_id, int(y.iloc[i]))
    audit.flush()
    s = audit.summary()
    assert set(s) == {"1.0.0", "2.0.0"}
    assert s["1.0.0"]["requests"] == 20 and s["2.0.0"]["requests"] == 5
    assert s["1.0.0"]["outcomes"] == 20 and s["2.0.0"]["accuracy"] is None
    expected = sum(p.labels[0] == int(y.iloc[i]) for i, p in enumerate(preds)) / 20
    assert s["1.0.0"]["accuracy"] == pytest.approx(expected)
    assert s["1.0.0"]["positive_rate"] == pytest.approx(sum(p.labels[0] for p in preds) / 20)
    assert s["1.0.0"]["p50_ms"] <= s["1.0.0"]["p99_ms"]
    assert list(audit.summary(version="2.0.0")) == ["2.0.0"]
    future = datetime.now(timezone.utc) + timedelta(hours=1)
    assert audit.summary(since=future) == {}
    assert len(audit.rows(since=datetime.now(timezone.utc) - timedelta(hours=1))) == 25
    assert [r["request_id"] for r in audit.rows(version="2.0.0")] == [p.request_id for p in later]
    with pytest.raises(ValueError, match="timezone-aware"):
        audit.rows(since=datetime.now())
    with pytest.raises(ValueError, match="ISO time"):
        audit.rows(since="yesterday")


def test_closed_log_refuses_new_rows_but_keeps_them(reg, tmp_path):
    registry, X, _ = reg
    log = pl.AuditLog(tmp_path / "a.sqlite")
    server = pl.ModelServer(registry, audit=log)
    server.predict(X.iloc[:1])
    log.close()
    log.close()  # twice is fine
    with pytest.raises(AuditError, match="closed"):
        server.predict(X.iloc[:1])
    assert pl.AuditLog(tmp_path / "a.sqlite").count() == 1


def test_a_folder_is_not_an_audit_file(tmp_path):
    with pytest.raises(pl.InvalidArgumentError, match="file path"):
        pl.AuditLog(tmp_path)


def test_a_file_that_is_not_sqlite_is_refused(tmp_path):
    junk = tmp_path / "notes.sqlite"
    junk.write_text("this is not a database, just some notes " * 50)
    with pytest.raises(AuditError, match="not a usable SQLite audit log"):
        pl.AuditLog(junk)
