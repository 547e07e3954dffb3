"""Following an alias: promote or roll back once in the registry, and every running server swaps to it."""

from __future__ import annotations

import math
import threading

import httpx
import pandas as pd
import pytest
from conftest import auth, server_processes, versions_served
from sklearn.tree import DecisionTreeClassifier

import persistlib as pl
from persistlib.data import CHURN_FEATURES
from persistlib.errors import ArgumentTypeError, FollowError, IntegrityError, InvalidArgumentError
from persistlib.serving.follow import AliasFollower, follower_of, next_delay

VERSIONS = ("1.0.0", "2.0.0", "3.0.0")


@pytest.fixture()
def reg(tmp_path):
    """A fresh registry with three tiny trees; production -> 1.0.0. Each test moves the alias as it likes."""
    X, y = pl.make_churn(300, random_state=3)
    registry = pl.Registry(tmp_path / "registry")
    for depth, version in enumerate(VERSIONS, start=1):
        registry.save(DecisionTreeClassifier(max_depth=depth, random_state=0).fit(X, y), version=version)
    registry.promote("1.0.0")
    return registry


@pytest.fixture()
def rows():
    return pl.make_churn(20, random_state=4)[0].to_dict("records")


class _Flaky:
    """A registry that can be switched off, as a registry service behind a network would be."""

    def __init__(self, inner):
        self.inner = inner
        self.down = False

    def resolve(self, ref):
        if self.down:
            raise ConnectionError("registry.example:5000 refused the connection")  # not a PersistError
        return self.inner.resolve(ref)

    def __getattr__(self, name):
        return getattr(self.inner, name)


class _Counting:
    """A registry that counts the models loaded from it."""

    def __init__(self, inner):
        self.inner = inner
        self.loads = 0

    def load(self, ref):
        self.loads += 1
        return self.inner.load(ref)

    def __getattr__(self, name):
        return getattr(self.inner, name)


# --------------------------------------------------------------------------- told: check()


def test_check_swaps_when_the_alias_moves_and_returns_none_when_it_did_not(reg):
    server = pl.ModelServer(reg)
    follower = AliasFollower(server, "production")  # not started: only told
    assert follower.check() is None and server.version == "1.0.0" and follower.swaps == 0
    reg.promote("2.0.0")
    assert follower.check() == "2.0.0"
    assert server.version == "2.0.0" and follower.version == "2.0.0" and follower.swaps == 1
    assert follower.check() is None and follower.swaps == 1
    reg.rollback()
    assert follower.check() == "1.0.0" and server.version == "1.0.0" and follower.swaps == 2
    assert follower.checks == 4 and follower.errors == 0 and follower.last_error is None


def test_the_first_check_brings_a_server_started_elsewhere_onto_the_alias(reg):
    server = pl.ModelServer(reg, alias="3.0.0")
    follower = AliasFollower(server, "production")
    assert follower.version == "3.0.0"
    assert follower.check() == "1.0.0" and server.version == "1.0.0"


def test_a_manual_swap_holds_until_the_alias_moves_again(reg):
    server = pl.ModelServer(reg)
    follower = AliasFollower(server, "production")
    server.swap("3.0.0")  # an operator's emergency swap
    assert follower.check() is None and server.version == "3.0.0"
    reg.promote("2.0.0")
    assert follower.check() == "2.0.0" and server.version == "2.0.0"


def test_checks_told_from_many_threads_swap_exactly_once(reg):
    counting = _Counting(reg)
    server = pl.ModelServer(counting)
    follower = AliasFollower(server, "production")
    counting.loads = 0
    reg.promote("2.0.0")
    start = threading.Barrier(8)
    results = []

    def tell():
        start.wait(10)
        results.append(follower.check())

    threads = [threading.Thread(target=tell) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results, key=str) == ["2.0.0"] + [None] * 7
    assert follower.swaps == 1 and server.version == "2.0.0" and server.previous_version == "1.0.0"
    assert counting.loads == 1, "checks ran side by side: each loaded the new version"


def test_told_checks_and_the_poller_together_still_swap_exactly_once(reg, wait_until):
    server = pl.ModelServer(reg)
    with pl.follow_alias(server, every=0.001) as follower:
        wait_until(lambda: follower.checks >= 1, "the first check")
        reg.promote("2.0.0")
        results = []
        threads = [threading.Thread(target=lambda: results.append(follower.check())) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        wait_until(lambda: server.version == "2.0.0", "the swap to 2.0.0")
    assert results.count("2.0.0") <= 1 and results.count(None) >= 7  # the poller may have been first
    assert follower.swaps == 1 and server.previous_version == "1.0.0"


# --------------------------------------------------------------------------- polling


def test_a_running_follower_follows_promotions_and_rollbacks(reg, wait_until):
    server = pl.ModelServer(reg)
    with pl.follow_alias(server, "production", every=0.01) as follower:
        assert isinstance(follower, pl.AliasFollower) and follower.running
        assert follower_of(server) is follower
        reg.promote("2.0.0")
        wait_until(lambda: server.version == "2.0.0", "the server followed the promotion to 2.0.0")
        reg.promote("3.0.0")
        wait_until(lambda: server.version == "3.0.0", "the server followed the promotion to 3.0.0")
        reg.rollback()
        wait_until(lambda: server.version == "2.0.0", "the server followed the rollback to 2.0.0")
        assert follower.version == "2.0.0" and follower.swaps == 3 and follower.errors == 0
    assert not follower.running and follower_of(server) is None


def test_an_unreachable_registry_is_recorded_serving_continues_and_the_follower_recovers(reg, rows, wait_until):
    flaky = _Flaky(reg)
    server = pl.ModelServer(flaky)
    with pl.follow_alias(server, every=0.01, max_backoff=0.02) as follower:
        wait_until(lambda: follower.checks >= 1, "the first check")
        flaky.down = True
        reg.promote("2.0.0")
        wait_until(lambda: follower.errors >= 3, "three failed checks")
        assert follower.running, "an error must never end the polling thread"
        assert "ConnectionError" in follower.last_error and "still serving v1.0.0" in follower.last_error
        assert server.predict(rows).version == "1.0.0"
        with pytest.raises(FollowError, match="refused the connection"):
            follower.check()  # told while the registry is down: a clear error, nothing swapped
        flaky.down = False
        wait_until(lambda: server.version == "2.0.0", "the follower caught up once the registry answered")
        wait_until(lambda: follower.last_error is None, "the error cleared after a good check")


def test_a_version_that_fails_verification_is_never_served(reg, rows, wait_until):
    server = pl.ModelServer(reg)
    follower = AliasFollower(server, "production", every=0.01, max_backoff=0.02)  # not polling yet
    reg.promote("2.0.0")  # the promotion verifies the artefact ...
    artefact = reg.root / reg.card("2.0.0").artifact
    good = artefact.read_bytes()
    artefact.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # ... and then someone changes one bit
    with pytest.raises(FollowError, match="still serving v1.0.0") as info:
        follower.check()
    assert isinstance(info.value.__cause__, IntegrityError)
    assert follower.version == "1.0.0" and follower.errors == 1 and "IntegrityError" in follower.last_error
    with follower.start():  # polling: every tick fails the same way, and serving goes on
        wait_until(lambda: follower.errors >= 4, "three more failed checks")
        assert follower.running and server.version == "1.0.0" and server.predict(rows).version == "1.0.0"
        artefact.write_bytes(good)
        wait_until(lambda: server.version == "2.0.0", "the follower swapped once the artefact was restored")
    assert follower.swaps == 1


def test_zero_errors_while_the_alias_moves_under_load(reg, rows, wait_until):
    server = pl.ModelServer(reg)
    expected = {v: reg.load(v)[0].predict(pd.DataFrame(rows)).tolist() for v in VERSIONS}
    stop = threading.Event()
    seen, errors, wrong = [], [], []

    def client():
        while not stop.is_set():
            try:
                p = server.predict(rows)
            except Exception as e:  # any error fails the test
                errors.append(e)
                continue
            seen.append(p.version)
            if p.labels != expected[p.version]:
                wrong.append(p)

    clients = [threading.Thread(target=client) for _ in range(2)]
    for t in clients:
        t.start()
    try:
        with pl.follow_alias(server, every=0.01) as follower:
            moves = [("promote", "2.0.0"), ("promote", "3.0.0"), ("rollback", "2.0.0"), ("rollback", "1.0.0")]
            moves += [("promote", "3.0.0"), ("promote", "2.0.0"), ("rollback", "3.0.0")]
            for move, version in moves:
                if move == "promote":
                    reg.promote(version)
                else:
                    reg.rollback()
                wait_until(lambda v=version: server.version == v, f"the server followed the {move} to {version}")
                served = len(seen)
                wait_until(lambda n=served: len(seen) > n + 5, f"requests answered by {version}")
    finally:
        stop.set()
        for t in clients:
            t.join(30)
    assert errors == [] and wrong == [] and follower.errors == 0
    assert follower.swaps == len(moves) and set(seen) == set(VERSIONS)


# --------------------------------------------------------------------------- arguments and life cycle


@pytest.mark.parametrize("every", [0, -1, math.nan, math.inf, "1", True, None])
def test_every_must_be_a_positive_number_of_seconds(reg, every):
    with pytest.raises(InvalidArgumentError, match="every must be a number of seconds > 0"):
        pl.follow_alias(pl.ModelServer(reg), "production", every=every)


def test_bad_arguments_get_clear_errors(reg):
    server = pl.ModelServer(reg)
    for empty in ("", " "):
        with pytest.raises(InvalidArgumentError, match="alias must name an alias"):
            pl.follow_alias(server, empty)
    with pytest.raises(ArgumentTypeError, match="alias must be a string"):
        pl.follow_alias(server, 3)
    with pytest.raises(InvalidArgumentError, match=r"no alias 'staging' to follow \(aliases: \['production'\]\)"):
        pl.follow_alias(server, "staging")
    with pytest.raises(ArgumentTypeError, match="takes a ModelServer, got Registry"):
        pl.follow_alias(reg)
    with pytest.raises(InvalidArgumentError, match="max_backoff"):
        pl.follow_alias(server, max_backoff=0)
    assert follower_of(server) is None, "a refused follower never started"


def test_one_follower_per_server_and_stop_is_idempotent(reg):
    server = pl.ModelServer(reg)
    first = pl.follow_alias(server, every=0.01)
    try:
        with pytest.raises(FollowError, match="already follows 'production'"):
            pl.follow_alias(server, every=0.01)
        assert first.start() is first  # starting a running follower again changes nothing
    finally:
        first.stop()
    first.stop()  # idempotent
    assert not first.running and "stopped" in repr(first)
    with pytest.raises(FollowError, match="was stopped"):
        first.start()
    second = pl.follow_alias(server, every=0.01)  # the server is free again
    second.stop()


def test_the_wait_doubles_after_each_failure_from_every_up_to_the_cap():
    delays, delay = [], 0.0
    for _ in range(8):
        delay = next_delay(delay, every=0.5, cap=10.0)
        delays.append(delay)
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert next_delay(0.0, every=60.0, cap=30.0) == 60.0  # never faster than asked


# --------------------------------------------------------------------------- told over HTTP


def test_admin_follow_check_over_http(reg, wait_until):
    server = pl.ModelServer(reg)
    url = pl.start_http(server)
    try:
        endpoint = f"{url}/admin/follow/check"
        assert httpx.post(endpoint, json={}).status_code == 401  # the admin guards apply
        r = httpx.post(endpoint, json={}, headers=auth(server))
        assert r.status_code == 409 and "follows no alias" in r.json()["detail"]
        with pl.follow_alias(server, every=3600) as follower:  # polls once, then only when told
            wait_until(lambda: follower.checks >= 1, "the first check")
            reg.promote("2.0.0")
            r = httpx.post(endpoint, json={}, headers=auth(server))
            assert r.status_code == 200
            assert r.json() == {"alias": "production", "moved": "2.0.0", "version": "2.0.0"}
            r = httpx.post(endpoint, json={}, headers=auth(server))
            assert r.json() == {"alias": "production", "moved": None, "version": "2.0.0"}
            artefact = reg.root / reg.card("3.0.0").artifact
            reg.promote("3.0.0")
            artefact.write_bytes(b"not the model any more")
            r = httpx.post(endpoint, json={}, headers=auth(server))
            assert r.status_code == 409 and "still serving v2.0.0" in r.json()["detail"]
            assert str(reg.root) not in r.json()["detail"]  # the guards hide where the registry lives
            assert httpx.get(f"{url}/version").json()["version"] == "2.0.0"
    finally:
        pl.stop_http(url)


# --------------------------------------------------------------------------- two server processes

_SERVER_PROCESS = """
import sys
import persistlib as pl

server = pl.ModelServer(pl.Registry(sys.argv[1]))
follower = pl.follow_alias(server, "production", every=0.1)
url = pl.start_http(server)
print(url, flush=True)
sys.stdin.read()  # serve until the test closes our stdin
follower.stop()
pl.stop_http(url)
"""


def test_two_server_processes_follow_production_when_it_is_promoted_and_rolled_back(reg, wait_until):
    with server_processes(_SERVER_PROCESS, str(reg.root)) as urls:

        def served() -> list[str]:
            return versions_served(urls)

        assert served() == ["1.0.0", "1.0.0"]
        reg.promote("2.0.0")
        wait_until(lambda: served() == ["2.0.0", "2.0.0"], "both servers followed the promotion to 2.0.0")
        reg.rollback()
        wait_until(lambda: served() == ["1.0.0", "1.0.0"], "both servers followed the rollback to 1.0.0")
        for u in urls:
            assert (
                httpx.post(f"{u}/predict", json={"rows": [dict.fromkeys(CHURN_FEATURES, 0.0)]}).json()["version"]
                == "1.0.0"
            )
