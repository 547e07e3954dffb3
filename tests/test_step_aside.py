"""A swap loads its model politely: between reads it steps aside for requests that are running.

Unpickling a joblib file holds the GIL, so a request that needs it back waits, up to the
interpreter's switch interval each time. ``artefacts.yielding_to`` lets the loading thread call a
``pause`` between reads; ``ModelServer`` pauses there, after each slice of loading, while any request
is running (at most ``_STEP_ASIDE_MAX`` at a time), and once more before the warm-up prediction.
The clock is faked, so nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import io
import threading

import joblib
import pytest
from sklearn.ensemble import RandomForestClassifier

import persistlib as pl
import persistlib.serving.server as server_module
from persistlib import artefacts
from persistlib.errors import InvalidInputError


@pytest.fixture(scope="module")
def forest_bytes():
    X, y = pl.make_churn(300, random_state=0)
    buffer = io.BytesIO()
    joblib.dump(RandomForestClassifier(5, random_state=0).fit(X, y), buffer, compress=3)
    return buffer.getvalue()


def test_a_load_inside_yielding_to_pauses_between_reads_and_only_there(forest_bytes):
    outer, inner = [], []
    artefacts.loads(forest_bytes, format="joblib")  # no pause set: nothing is called
    with artefacts.yielding_to(lambda: outer.append(1)):
        model = artefacts.loads(forest_bytes, format="joblib")
        after_outer = len(outer)
        with artefacts.yielding_to(lambda: inner.append(1)):
            artefacts.loads(forest_bytes, format="joblib")
        assert len(outer) == after_outer, "the inner block's pause replaces the outer one"
        artefacts.loads(forest_bytes, format="joblib")  # the outer pause is back
    assert type(model).__name__ == "RandomForestClassifier"
    assert after_outer > 1 and len(inner) > 1, "a pause between reads, many times per load"
    assert len(outer) == 2 * after_outer
    done = len(outer)
    artefacts.loads(forest_bytes, format="joblib")
    assert len(outer) == done, "after the block, loads do not pause"


def test_the_pause_is_per_thread(forest_bytes):
    calls = []
    other = threading.Thread(target=lambda: artefacts.loads(forest_bytes, format="joblib"))
    with artefacts.yielding_to(lambda: calls.append(threading.get_ident())):
        other.start()
        other.join()
    assert calls == [], "another thread's load does not call this thread's pause"


class _Clock:
    """Stands in for the server module's ``time``: ``sleep`` advances ``perf_counter`` and runs a hook."""

    def __init__(self):
        self.now = 100.0
        self.sleeps: list[float] = []
        self.on_sleep = None

    def perf_counter(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))


@pytest.fixture()
def served(monkeypatch, tmp_path):
    X, y = pl.make_churn(300, random_state=0)
    registry = pl.Registry(tmp_path / "registry")
    for seed in (0, 1):
        registry.save(RandomForestClassifier(3, random_state=seed).fit(X, y))
    registry.promote("1.0.0")
    server = pl.ModelServer(registry)
    clock = _Clock()
    monkeypatch.setattr(server_module, "time", clock)
    return server, clock


def test_no_request_running_means_no_waiting(served):
    server, clock = served
    server._step_aside(now=True)
    assert clock.sleeps == []


def test_it_waits_while_a_request_runs_and_goes_on_when_it_ends(served):
    server, clock = served
    server._running.add(12345)  # a request is running in another thread
    clock.on_sleep = lambda n: server._running.discard(12345) if n == 3 else None
    server._step_aside(now=True)
    assert clock.sleeps == [0.0002] * 3, "short real sleeps (they hand the GIL over) until the request ended"
    assert server._slice_started == clock.now, "a new slice of loading starts after the pause"


def test_it_never_waits_longer_than_the_cap(served):
    server, clock = served
    server._running.add(12345)  # a request that never ends
    started = clock.now
    server._step_aside(now=True)
    waited = clock.now - started
    assert server_module._STEP_ASIDE_MAX <= waited < server_module._STEP_ASIDE_MAX + 0.001
    assert len(clock.sleeps) == pytest.approx(server_module._STEP_ASIDE_MAX / 0.0002, abs=1)


def test_within_a_slice_of_loading_it_does_not_stop(served):
    server, clock = served
    server._running.add(12345)
    server._slice_started = clock.now
    clock.now += server_module._LOAD_SLICE / 2
    server._step_aside()
    assert clock.sleeps == [], "half a slice in: keep loading"
    clock.now += server_module._LOAD_SLICE
    server._step_aside()
    assert clock.sleeps, "a slice done and a request running: step aside"


def test_a_swap_pauses_between_reads_and_before_its_warm_up(served, monkeypatch):
    server, _ = served
    calls = []
    real = server._step_aside
    monkeypatch.setattr(server, "_step_aside", lambda now=False: (calls.append(now), real(now=now))[1])
    assert server.swap("1.1.0") == "1.1.0"
    assert calls.count(True) == 1, "one pause right before the warm-up prediction"
    assert calls.count(False) > 1, "pauses between the reads of the model's bytes"
    assert calls[-1] is True, "the warm-up comes after the last read"


def test_a_request_is_running_only_while_it_is_answered(served):
    server, _ = served
    seen = []
    row = dict.fromkeys(server.features, 1.0)
    model = server._state.current.model
    real = model.predict_proba

    def spy(X):
        seen.append(set(server._running))
        return real(X)

    model.predict_proba = spy
    server.predict([row])
    assert seen == [{threading.get_ident()}] and server._running == set()
    with pytest.raises(InvalidInputError):
        server.predict([{"no such feature": 1}])
    assert server._running == set(), "a refused request is not left running"
