"""AuditLog: WAL mode, exactly one row per request, helpers, concurrent writers."""

from __future__ import annotations

import sqlite3
import statistics
import threading
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

import persistlib as pl
from persistlib.errors import AuditError, InvalidArgumentError
from persistlib.serving import Comparison, Prediction, compare_summaries


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
    frame = audit.to_frame(version="1.0.0")
    assert list(frame["request_id"]) == [p.request_id] and frame.loc[0, "user_key"] == "alice"


def test_every_routed_prediction_is_audited_with_its_arm_version_sha256_and_user(reg, audit):
    """An A/B row names the arm that answered, that arm's version and artefact, and the user.

    The arms are an alias (``production`` -> 1.0.0, also the server's current model) and 2.0.0,
    so an arm is not a version, and 2.0.0's rows must not carry the current model's sha256.
    """
    registry, X, _ = reg
    server = pl.ModelServer(registry, audit=audit)
    router = pl.ABRouter({"production": 1, "2.0.0": 1})
    server.route(router)
    version_of = {"production": "1.0.0", "2.0.0": "2.0.0"}
    users = [f"user-{i}" for i in range(30)] + [7, 12345]
    preds = {user: server.predict(X.iloc[[i]], user_id=user) for i, user in enumerate(users)}
    assert {p.arm for p in preds.values()} == {"production", "2.0.0"}, "both arms answered someone"
    audit.flush()
    for user, p in preds.items():
        row = audit.get(p.request_id)
        arm = router.assign(user)
        assert (row["arm"], row["version"]) == (arm, version_of[arm]) == (p.arm, p.version), user
        assert row["artifact_sha256"] == registry.card(version_of[arm]).artifact_sha256, user
        assert row["user_key"] == str(user) and row["prediction"] == p.labels


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
        threads = [threading.Thread(target=lambda s=s: [s.predict(X.iloc[:1]) for _ in range(50)]) for s in servers]
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
    preds = [server.predict(X.iloc[i : i + 1]) for i in range(20)]
    server.swap("2.0.0")
    later = [server.predict(X.iloc[i : i + 1]) for i in range(5)]
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
    assert s["1.0.0"]["p50_ms"] == pytest.approx(statistics.median(p.latency_ms for p in preds), abs=1e-3)
    assert list(audit.summary(version="2.0.0")) == ["2.0.0"]
    future = datetime.now(UTC) + timedelta(hours=1)
    assert audit.summary(since=future) == {}
    assert len(audit.rows(since=datetime.now(UTC) - timedelta(hours=1))) == 25
    assert [r["request_id"] for r in audit.rows(version="2.0.0")] == [p.request_id for p in later]
    with pytest.raises(ValueError, match="timezone-aware"):
        audit.rows(since=datetime.now())
    with pytest.raises(ValueError, match="ISO time"):
        audit.rows(since="yesterday")


def test_summary_latency_percentiles_of_known_latencies(audit):
    """Latencies 1..100 ms in a shuffled order: p50 is 50.5 ms, p99 is 99.01 ms (linear interpolation)."""
    for i, ms in enumerate([37, *range(1, 37), *range(38, 101)][::-1]):
        p = Prediction(labels=[1], probabilities=None, version="1.0.0", request_id=f"req-{i}", latency_ms=float(ms))
        audit.record(p, artifact_sha256="0" * 64)
    audit.flush()
    s = audit.summary()["1.0.0"]
    assert s["requests"] == 100
    assert s["p50_ms"] == pytest.approx(50.5) and s["p99_ms"] == pytest.approx(99.01)


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
    with pytest.raises(InvalidArgumentError, match="file path"):
        pl.AuditLog(tmp_path)


def test_a_file_that_is_not_sqlite_is_refused(tmp_path):
    junk = tmp_path / "notes.sqlite"
    junk.write_text("this is not a database, just some notes " * 50)
    with pytest.raises(AuditError, match="not a usable SQLite audit log"):
        pl.AuditLog(junk)


def _pred(request_id, labels=(1,), version="1.0.0"):
    return Prediction(labels=list(labels), probabilities=None, version=version, request_id=request_id)


class _ParkedWriter:
    """Parks a log's writer thread (it calls ``set()`` on a queued flush item) until :meth:`release`."""

    def __init__(self, log):
        self.entered, self._go = threading.Event(), threading.Event()
        log._writer.queue.put(("flush", self))
        assert self.entered.wait(10), "the writer thread never reached the parking spot"

    def set(self):  # called by the writer thread
        self.entered.set()
        assert self._go.wait(10), "the test never released the writer"

    def release(self):
        self._go.set()


def test_one_bad_row_does_not_cost_its_batch_and_is_reported_once(tmp_path):
    log = pl.AuditLog(tmp_path / "a.sqlite")
    try:
        # Park the writer thread after a first row; the next rows then queue up behind it and
        # reach the database together, in ONE batch.
        log.record(_pred("req-first"), artifact_sha256="0" * 64)
        parked = _ParkedWriter(log)
        for rid in ("req-a", "req-b", "req-a", "req-c"):  # "req-a" twice: a duplicate request_id
            log.record(_pred(rid), artifact_sha256="0" * 64)
        assert log._writer.queue.qsize() == 4  # all four wait behind the parked writer
        parked.release()
        with pytest.raises(AuditError, match=r"1 row\(s\) could not be written.*duplicate request_id 'req-a'"):
            log.flush()
        assert sorted(r["request_id"] for r in log.rows()) == ["req-a", "req-b", "req-c", "req-first"]
        log.flush()  # reported once: the next flush is clean
        log.record(_pred("req-d"), artifact_sha256="0" * 64)
        log.flush()
        assert log.count() == 5
    finally:
        log.close()


def test_an_outcome_for_an_unknown_request_is_counted_and_reported(reg, audit):
    registry, X, _ = reg
    p = pl.ModelServer(registry, audit=audit).predict(X.iloc[:1])
    audit.record_outcome(p.request_id, 1)
    audit.record_outcome("req-nosuchrequest", 1)
    with pytest.raises(AuditError, match=r"1 outcome\(s\) name a request_id.*'req-nosuchrequest'"):
        audit.flush()
    assert audit.unmatched_outcomes == 1
    assert audit.get(p.request_id)["outcome"] == [1]
    audit.flush()


def test_record_outcome_takes_a_series_or_an_array(reg, audit):
    import numpy as np

    registry, X, y = reg
    server = pl.ModelServer(registry, audit=audit)
    p, q = server.predict(X.iloc[:2]), server.predict(X.iloc[:3])
    audit.record_outcome(p.request_id, y.iloc[:2])
    audit.record_outcome(q.request_id, np.asarray(y.iloc[:3]))
    audit.flush()
    assert audit.get(p.request_id)["outcome"] == y.iloc[:2].tolist()
    assert audit.get(q.request_id)["outcome"] == y.iloc[:3].tolist()


@pytest.fixture()
def waits(monkeypatch):
    """The timeouts AuditLog's flush waits with, in order (its Events are watched)."""
    from persistlib.serving import audit as audit_module

    seen = []

    class WatchedEvent(threading.Event):
        def wait(self, timeout=None):
            seen.append(timeout)
            return super().wait(timeout)

    monkeypatch.setattr(audit_module, "threading", SimpleNamespace(Event=WatchedEvent))
    return seen


def test_a_closed_log_refuses_outcomes_and_flush_fails_without_waiting(tmp_path, waits):
    log = pl.AuditLog(tmp_path / "a.sqlite")
    log.record(_pred("req-kept"), artifact_sha256="0" * 64)
    log.flush(timeout=5)
    assert waits == [5], "an open log's flush waits for its writer"
    log.close()
    assert log.closed
    with pytest.raises(AuditError, match="closed"):
        log.record_outcome("req-0", 1)
    with pytest.raises(AuditError, match="this AuditLog is closed, so it cannot flush"):
        log.flush(timeout=30)
    assert waits == [5], "a closed log's flush failed at once, without waiting for the writer"


def test_an_unreferenced_log_stops_its_writer_thread(tmp_path):
    import gc
    import weakref

    log = pl.AuditLog(tmp_path / "a.sqlite")
    log.record(_pred("req-kept"), artifact_sha256="0" * 64)
    writer = log._writer.thread
    ref = weakref.ref(log)
    del log  # what re-running a notebook cell does to the old log
    gc.collect()
    assert ref() is None
    writer.join(5)
    assert not writer.is_alive()
    assert pl.AuditLog(tmp_path / "a.sqlite").count() == 1  # queued rows were written first


def test_compare_fires_on_a_shifted_rate_or_an_accuracy_drop(reg, audit):
    base = {"positive_rate": 0.20, "accuracy": 0.94}
    assert not compare_summaries({"positive_rate": 0.25, "accuracy": 0.93}, base).fired
    c = compare_summaries({"positive_rate": 0.72, "accuracy": 0.06}, base, version="2.0.0", baseline_version="1.9.0")
    assert c.fired and len(c.reasons) == 2
    assert str(c).startswith("✗ ALARM v2.0.0 vs v1.9.0: predicted positive rate 0.72 vs 0.20")
    assert "accuracy 0.060 vs 0.940" in str(c)
    assert compare_summaries({"positive_rate": 0.02, "accuracy": 0.94}, base).fired  # a drop counts too
    # None metrics (no outcomes yet, no predictions) skip a check instead of crashing or firing.
    c = compare_summaries({"positive_rate": 0.21, "accuracy": None}, base, version="2.0.0")
    assert not c.fired and c.skipped == ("accuracy (no outcomes yet for v2.0.0)",)
    assert str(c).startswith("✓ all clear") and "not checked: accuracy" in str(c)
    c = compare_summaries({"positive_rate": 0.9, "accuracy": 0.9}, {"positive_rate": None, "accuracy": None})
    assert not c.fired and len(c.skipped) == 2
    with pytest.raises(InvalidArgumentError, match="max_rate_shift"):
        compare_summaries(base, base, max_rate_shift=-1)
    # Through the log itself.
    registry, X, y = reg
    server = pl.ModelServer(registry, audit=audit)
    for i in range(10):
        server.record_outcome(server.predict(X.iloc[[i]]).request_id, y.iloc[i])
    server.swap("2.0.0")
    for i in range(10):
        server.predict(X.iloc[[i]])
    audit.flush()
    c = audit.compare("2.0.0", "1.0.0", max_rate_shift=1.0)
    assert not c.fired and c.skipped == ("accuracy (no outcomes yet for v2.0.0)",)
    with pytest.raises(AuditError, match="no prediction by v9.9.9"):
        audit.compare("9.9.9", "1.0.0")


# ---------------------------------------------------------------- the rollback alarm, rule by rule

_NO_DATA = {"positive_rate": None, "accuracy": None}


def test_compare_summaries_names_its_sides_live_and_baseline_by_default():
    c = compare_summaries(_NO_DATA, {"positive_rate": 0.5, "accuracy": 0.9})
    assert (c.version, c.baseline_version) == ("live", "baseline")
    assert c.skipped == ("predicted positive rate (no predictions from vlive)", "accuracy (no outcomes yet for vlive)")
    c = compare_summaries({"positive_rate": 0.5, "accuracy": 0.9}, _NO_DATA, version="2.0.0", baseline_version="1.0.0")
    assert not c.fired
    assert c.skipped == (
        "predicted positive rate (no predictions from v1.0.0)",
        "accuracy (no outcomes yet for v1.0.0)",
    )


def test_compare_summaries_fires_only_beyond_its_thresholds():
    """Values exact in binary floating point, so "exactly on the threshold" is exact: it does not fire."""
    half, quarter = {"positive_rate": 0.5, "accuracy": None}, {"positive_rate": 0.25, "accuracy": None}
    assert not compare_summaries(half, quarter, max_rate_shift=0.25).fired
    assert not compare_summaries(quarter, half, max_rate_shift=0.25).fired
    assert compare_summaries(half, quarter, max_rate_shift=0.125).fired
    good, worse = {"positive_rate": None, "accuracy": 1.0}, {"positive_rate": None, "accuracy": 0.75}
    assert not compare_summaries(worse, good, max_accuracy_drop=0.25).fired
    assert compare_summaries(worse, good, max_accuracy_drop=0.125).fired
    assert not compare_summaries(good, worse, max_accuracy_drop=0).fired  # a rise in accuracy never fires


def test_compare_summaries_reasons_carry_both_numbers_and_the_difference():
    c = compare_summaries(
        {"positive_rate": 0.25, "accuracy": 0.5},
        {"positive_rate": 0.75, "accuracy": 1.0},
        version="2.0.0",
        baseline_version="1.0.0",
        max_rate_shift=0.125,
        max_accuracy_drop=0.25,
    )
    assert c.reasons == (
        "predicted positive rate 0.25 vs 0.75 (moved 0.50, more than 0.125)",
        "accuracy 0.500 vs 1.000 (dropped 0.500, more than 0.25)",
    )
    assert c.fired and c.skipped == ()


@pytest.mark.parametrize("name", ["max_rate_shift", "max_accuracy_drop"])
def test_compare_summaries_thresholds_are_numbers_between_0_and_1(name):
    base = {"positive_rate": 0.5, "accuracy": 0.5}
    for ok in (0, 1):
        assert not compare_summaries(base, base, **{name: ok}).fired
    for bad in (-0.5, 1.5):
        with pytest.raises(InvalidArgumentError) as err:
            compare_summaries(base, base, **{name: bad})
        assert str(err.value) == f"{name} must be a number between 0 and 1, got {bad!r}."


def test_compare_summaries_refuses_something_that_is_not_a_summary():
    base = {"positive_rate": 0.5, "accuracy": 0.5}
    with pytest.raises(InvalidArgumentError) as err:
        compare_summaries([0.5, 0.5], base)
    assert str(err.value) == (
        "live must be one version's summary (a dict with 'positive_rate' and 'accuracy'), got list."
    )
    with pytest.raises(InvalidArgumentError) as err:
        compare_summaries(base, (0.5,))
    assert str(err.value).startswith("baseline must be one version's summary") and str(err.value).endswith("tuple.")


def test_comparison_str_lists_every_reason_and_every_skipped_check():
    c = Comparison("2.0.0", "1.0.0", reasons=("rate moved", "accuracy dropped"), skipped=("a", "b"))
    assert str(c) == "✗ ALARM v2.0.0 vs v1.0.0: rate moved; accuracy dropped (not checked: a; b)"
    assert str(Comparison("2.0.0", "1.0.0")) == "✓ all clear: v2.0.0 vs v1.0.0"
    assert str(Comparison("2.0.0", "1.0.0", skipped=("a",))) == "✓ all clear: v2.0.0 vs v1.0.0 (not checked: a)"


def _record_batch(log, tag, labels_by_version, outcomes_by_version=None):
    """Record one prediction per label for each version; return the request ids by version."""
    ids = {}
    for version, labels in labels_by_version.items():
        ids[version] = [f"req-{tag}-{version}-{i}" for i in range(len(labels))]
        for rid, label in zip(ids[version], labels, strict=True):
            log.record(_pred(rid, labels=(label,), version=version), artifact_sha256="0" * 64)
        for rid, truth in zip(ids[version], (outcomes_by_version or {}).get(version, ()), strict=False):
            log.record_outcome(rid, truth)
    log.flush()
    return ids


def test_compare_reads_only_its_time_window_and_applies_the_given_thresholds(audit):
    import time

    from persistlib.serving._audit_db import now

    # Before: 1.0.0 predicts 1, 2.0.0 predicts 0. After: the other way round. Over all time the rates agree.
    _record_batch(audit, "before", {"1.0.0": [1] * 4, "2.0.0": [0] * 4})
    last_before = max(r["ts"] for r in audit.rows())
    while now() <= last_before:
        time.sleep(0.001)
    _record_batch(
        audit,
        "after",
        {"1.0.0": [0] * 4, "2.0.0": [1] * 4},
        {"1.0.0": [0, 0, 0, 0], "2.0.0": [1, 1, 1, 0]},  # accuracy 1.0 and 0.75
    )
    cut = min(r["ts"] for r in audit.rows() if r["request_id"].startswith("req-after"))
    assert cut > last_before

    whole = audit.compare("2.0.0", "1.0.0", max_accuracy_drop=0.25)
    assert not whole.fired and (whole.version, whole.baseline_version) == ("2.0.0", "1.0.0")
    rate = "predicted positive rate {:.2f} vs {:.2f} (moved 1.00, more than 0.15)"
    later = audit.compare("2.0.0", "1.0.0", since=cut, max_accuracy_drop=0.25)
    assert later.reasons == (rate.format(1, 0),) and later.baseline_version == "1.0.0"
    earlier = audit.compare("2.0.0", "1.0.0", until=cut)
    assert earlier.reasons == (rate.format(0, 1),)
    assert earlier.skipped == ("accuracy (no outcomes yet for v2.0.0)",)
    # The thresholds reach the rule: a shift of exactly 1 and a drop of exactly 0.25 do not fire.
    assert not audit.compare("2.0.0", "1.0.0", since=cut, max_rate_shift=1, max_accuracy_drop=0.25).fired
    c = audit.compare("2.0.0", "1.0.0", since=cut, max_rate_shift=1)
    assert c.reasons == ("accuracy 0.750 vs 1.000 (dropped 0.250, more than 0.05)",)


def test_compare_says_which_versions_the_window_holds(audit):
    with pytest.raises(AuditError, match=r"versions recorded there: none\); .*call flush\(\) first\."):
        audit.compare("2.0.0", "1.0.0")
    _record_batch(audit, "x", {"1.0.0": [1], "2.0.0": [0]})
    with pytest.raises(
        AuditError, match=r"no prediction by v9\.9\.9 .*\(versions recorded there: \['1\.0\.0', '2\.0\.0'\]\)"
    ):
        audit.compare("9.9.9", "1.0.0")


def test_flush_names_at_most_five_problems_and_says_when_there_are_more(audit):
    ids = [f"req-{i}" for i in range(7)]
    for rid in ids:
        audit.record(_pred(rid), artifact_sha256="0" * 64)
    audit.flush()

    def dup(rid):
        return f"duplicate request_id {rid!r} (already recorded)"

    for n, more in ((5, ""), (6, " ...")):
        for rid in ids[:n]:  # each one a second time: n rows that cannot be written
            audit.record(_pred(rid), artifact_sha256="0" * 64)
        with pytest.raises(AuditError) as e:
            audit.flush()
        named = "; ".join(dup(rid) for rid in ids[:5])
        assert f"{n} row(s) could not be written ({named}{more}). Every other row" in str(e.value)


def test_flush_names_at_most_five_unmatched_outcomes_and_says_when_there_are_more(audit):
    ids = [f"req-nosuch-{i}" for i in range(6)]
    for n, more in ((5, ""), (6, " ...")):
        for rid in ids[:n]:
            audit.record_outcome(rid, 1)
        with pytest.raises(AuditError) as e:
            audit.flush()
        named = ", ".join(repr(rid) for rid in ids[:5])
        assert f"{n} outcome(s) name a request_id with no recorded prediction ({named}{more});" in str(e.value)


def test_flush_waits_ten_seconds_by_default(tmp_path, waits):
    with pl.AuditLog(tmp_path / "a.sqlite") as log:
        log.flush()
    assert waits == [10.0]


def test_a_closed_log_says_what_it_cannot_do(tmp_path):
    log = pl.AuditLog(tmp_path / "a.sqlite")
    log.close()
    for call, action in (
        (lambda: log.record(_pred("req-0"), artifact_sha256="0" * 64), "record predictions"),
        (lambda: log.record_outcome("req-0", 1), "record outcomes"),
    ):
        with pytest.raises(AuditError) as e:
            call()
        assert str(e.value).startswith(f"this AuditLog is closed, so it cannot {action}; open a new AuditLog(path)")


def test_a_row_without_user_id_stores_none_and_latency_is_kept_to_four_decimals(audit):
    p = Prediction(labels=[1], probabilities=None, version="1.0.0", request_id="req-anon", latency_ms=1.23456789)
    audit.record(p, artifact_sha256="0" * 64)
    audit.flush()
    row = audit.get("req-anon")
    assert row["user_key"] is None  # not the text "None"
    assert row["latency_ms"] == 1.2346  # 0.1 microsecond: finer digits are noise


def test_rows_limit_returns_the_oldest_rows_first(audit):
    for i in range(4):
        audit.record(_pred(f"req-{i}"), artifact_sha256="0" * 64)
    audit.flush()
    assert [r["request_id"] for r in audit.rows(limit=2)] == ["req-0", "req-1"]
    assert len(audit.rows(limit=0)) == 0 and len(audit.rows()) == 4
