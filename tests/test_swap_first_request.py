"""A swap under traffic lets its first request try the new model, instead of a smoke prediction.

A smoke prediction is one more prediction on an interpreter that answers one request at a time,
so a request that arrives meanwhile waits for it (benchmarks/serving.py measures it). A server
that has traffic does not need one: the next request answers with the new model and, if that
works, switches to it. If the new model fails rows the old one answers, the old one answers and
the swap is refused; rows that say nothing about the new model leave the try to the next request.
An idle server, or one running an A/B test, still warms up with a smoke prediction. The models
here answer a fixed label and can be held or made to fail; the waits are on events, not clocks.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import DictRegistry

import persistlib as pl
import persistlib.serving.server as server_module
from persistlib.data import CHURN_FEATURES
from persistlib.errors import InvalidInputError, UnservableModelError
from persistlib.serving.state import _Bundle
from persistlib.serving.warm_up import _Trial

FEATURES = list(CHURN_FEATURES)
ROW = dict.fromkeys(FEATURES, 1.0)


class _Model:
    """A classifier that answers ``answer`` for every row; it can be made to fail, or held mid-prediction."""

    classes_ = np.array([0, 1])

    def __init__(self, answer: int, features=FEATURES):
        self.answer = answer
        self.feature_names_in_ = np.array(features, dtype=object)
        self.fails_on = None  # a predicate on the rows: where it holds, predict_proba raises
        self.hold = None  # an (entered, release) pair of events: the next predict_proba waits inside
        self.calls = 0

    def predict_proba(self, X):
        self.calls += 1
        if self.hold is not None:
            (entered, release), self.hold = self.hold, None
            entered.set()
            assert release.wait(30), "the test never released the prediction"
        if self.fails_on is not None and self.fails_on(X):
            raise ValueError("this model cannot score these rows")
        p = np.zeros((len(X), 2))
        p[:, self.answer] = 1.0
        return p


@pytest.fixture()
def server(monkeypatch):
    """Serving 1.0.0 (answers 0); 2.0.0 (answers 1) is ready to swap in. Smoke predictions are counted."""
    old, new = _Model(0), _Model(1)
    srv = pl.ModelServer(DictRegistry({"1.0.0": old, "2.0.0": new}))
    srv.smoke = []
    real = srv._warm_up
    monkeypatch.setattr(srv, "_warm_up", lambda bundle: (srv.smoke.append(bundle.version), real(bundle))[1])
    srv.old, srv.new = old, new
    return srv


def _swap_in_background(server, ref="2.0.0"):
    """Start server.swap(ref) in a thread; return the thread and a dict that gets its result or error."""
    out = {}

    def run():
        try:
            out["version"] = server.swap(ref)
        except Exception as e:  # handed to the test
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def _trial_open(server, wait_until):
    wait_until(lambda: server._trial is not None, "the swap offers its new model to the next request")


def test_under_traffic_the_next_request_answers_with_the_new_model_and_switches(server, wait_until, monkeypatch):
    monkeypatch.setattr(server_module, "_TRIAL_WAIT", 60.0)  # only a request can end the wait in time
    assert server.predict(ROW).version == "1.0.0"  # traffic: a request just came in
    swap, out = _swap_in_background(server)
    _trial_open(server, wait_until)
    first = server.predict(ROW)
    swap.join(30)
    assert not swap.is_alive(), "the request answered, and the swap waited on"
    assert (first.version, first.labels) == ("2.0.0", [1]), "the first request met the new model"
    assert out == {"version": "2.0.0"} and server.version == "2.0.0" and server.previous_version == "1.0.0"
    assert server.smoke == [], "no smoke prediction: the request was the warm-up"
    assert server._trial is None
    assert server.predict(ROW).version == "2.0.0"


def test_the_request_installs_what_the_swap_reports(server, wait_until, monkeypatch):
    monkeypatch.setattr(server_module, "_TRIAL_WAIT", 60.0)
    server.predict(ROW)
    before = server._state.current
    out = {}
    swap = threading.Thread(target=lambda: out.setdefault("snap", server.swap_snapshot("2.0.0")), daemon=True)
    swap.start()
    _trial_open(server, wait_until)
    server.predict(ROW)
    swap.join(30)
    assert out["snap"] == server.snapshot(), "swap_snapshot() describes the state the request installed"
    assert (out["snap"].version, out["snap"].previous_version) == ("2.0.0", "1.0.0")
    assert server._state.previous is before, "the old model stays in memory"
    assert server.rollback() == "1.0.0"


def test_a_new_model_that_fails_a_request_the_old_one_answers_is_refused(server, wait_until, monkeypatch):
    monkeypatch.setattr(server_module, "_TRIAL_WAIT", 60.0)
    server.new.fails_on = lambda X: True
    server.predict(ROW)
    swap, out = _swap_in_background(server)
    _trial_open(server, wait_until)
    first = server.predict(ROW)
    swap.join(30)
    assert (first.version, first.labels) == ("1.0.0", [0]), "the old model answered the request the new one failed"
    assert isinstance(out.get("error"), UnservableModelError)
    assert str(out["error"]).startswith("v2.0.0 was not swapped in: it failed a request that v1.0.0 answered (")
    assert "this model cannot score these rows" in str(out["error"])
    assert server.version == "1.0.0" and server.previous_version is None, "nothing moved"
    assert server.smoke == []
    assert server.predict(ROW).version == "1.0.0"


def test_rows_the_new_schema_refuses_leave_the_try_to_the_next_request(monkeypatch, wait_until):
    monkeypatch.setattr(server_module, "_TRIAL_WAIT", 60.0)
    wider = _Model(1, features=[*FEATURES, "loyalty_points"])  # 2.0.0 needs one more feature
    server = pl.ModelServer(DictRegistry({"1.0.0": _Model(0), "2.0.0": wider}))
    server.predict(ROW)
    swap, out = _swap_in_background(server)
    _trial_open(server, wait_until)
    p = server.predict(ROW)  # valid for 1.0.0, not for 2.0.0: says nothing about 2.0.0
    assert p.version == "1.0.0" and wider.calls == 0
    assert swap.is_alive() and server._trial is not None, "the swap still waits for a request to try 2.0.0"
    second = server.predict({**ROW, "loyalty_points": 3.0})
    swap.join(30)
    assert second.version == "2.0.0" and out == {"version": "2.0.0"}


def test_rows_neither_model_answers_are_the_requests_fault(server, wait_until, monkeypatch):
    monkeypatch.setattr(server_module, "_TRIAL_WAIT", 60.0)
    server.new.fails_on = server.old.fails_on = lambda X: bool((X[FEATURES[0]] < 0).any())
    server.predict(ROW)
    swap, out = _swap_in_background(server)
    _trial_open(server, wait_until)
    with pytest.raises(InvalidInputError, match="v1.0.0 could not predict these rows"):
        server.predict({**ROW, FEATURES[0]: -1.0})
    assert swap.is_alive() and server._trial is not None, "a bad request does not decide the swap"
    assert server.predict(ROW).version == "2.0.0"
    swap.join(30)
    assert out == {"version": "2.0.0"}


def test_a_request_still_trying_when_the_wait_ends_decides_the_swap(server, wait_until, monkeypatch):
    times_up = threading.Event()

    class _TimedTrial(_Trial):
        def __init__(self, *args):
            super().__init__(*args)
            real_wait = self.decided.wait
            self.decided.wait = lambda timeout: (times_up.wait(30), real_wait(0))[1]

    monkeypatch.setattr(server_module, "_Trial", _TimedTrial)
    server.predict(ROW)
    swap, out = _swap_in_background(server)
    _trial_open(server, wait_until)
    entered, release = threading.Event(), threading.Event()
    server.new.hold = (entered, release)
    request = threading.Thread(target=lambda: out.setdefault("first", server.predict(ROW)), daemon=True)
    request.start()
    assert entered.wait(30), "the request never reached the new model"
    times_up.set()  # the swap's wait ends while the request is inside the new model
    wait_until(lambda: server._trial is None, "the swap stops offering the new model")
    assert swap.is_alive(), "the swap waits for the request still trying the new model"
    release.set()
    swap.join(30)
    request.join(30)
    assert out["first"].version == "2.0.0" and out["version"] == "2.0.0"
    assert server.smoke == [], "the request was the warm-up"


def test_with_no_request_in_time_the_swap_warms_up_itself(server, monkeypatch):
    monkeypatch.setattr(server_module, "_TRIAL_WAIT", 0.05)
    server.predict(ROW)
    assert server.swap("2.0.0") == "2.0.0"
    assert server.smoke == ["2.0.0"] and server._trial is None
    assert server.predict(ROW).version == "2.0.0"


def test_an_idle_server_warms_up_at_once_without_waiting(server, monkeypatch):
    offered = []
    monkeypatch.setattr(server_module, "_Trial", lambda *a: offered.append(a))
    assert server.swap("2.0.0") == "2.0.0"  # no request ever came
    assert offered == [] and server.smoke == ["2.0.0"]
    monkeypatch.setattr(server_module, "_TRIAL_WAIT", 0.5)
    monkeypatch.setattr(server_module, "time", _FrozenClock(100.0))
    server.predict(ROW)
    assert server._last_arrival == 100.0, "a request notes when it came in"
    server_module.time.now = 100.5
    assert server.swap("1.0.0") == "1.0.0"  # the last request came exactly _TRIAL_WAIT ago: not recent
    assert offered == [] and server.smoke == ["2.0.0", "1.0.0"]


def test_a_request_just_inside_the_wait_counts_as_traffic(server, monkeypatch):
    offered = []
    real_trial = server_module._Trial
    monkeypatch.setattr(server_module, "_Trial", lambda *a: offered.append(a) or real_trial(*a))
    monkeypatch.setattr(server_module, "_TRIAL_WAIT", 0.5)
    monkeypatch.setattr(server_module, "time", _FrozenClock(100.0))
    server.predict(ROW)
    server_module.time.now = 100.25
    assert server.swap("2.0.0") == "2.0.0"
    assert len(offered) == 1, "a request 0.25 s ago is traffic: the swap offered its model to the next one"
    assert server.smoke == ["2.0.0"], "none came within the wait: a smoke prediction instead"


def test_during_an_ab_test_a_swap_warms_up_itself(server, monkeypatch):
    offered = []
    monkeypatch.setattr(server_module, "_Trial", lambda *a: offered.append(a))
    server.route(pl.ABRouter({"1.0.0": 0.5, "2.0.0": 0.5}))  # its requests go to the arms, never to a trial
    server.smoke.clear()
    server.predict(ROW, user_id="u1")
    assert server.swap("2.0.0") == "2.0.0"
    assert offered == [] and server.smoke == ["2.0.0"]


class _FrozenClock:
    def __init__(self, now):
        self.now = now

    def perf_counter(self):
        return self.now


# --------------------------------------------------------------------------- the trial on its own


def _bundle(version, model):
    return _Bundle(
        model=model,
        card=DictRegistry({version: model}).load(version)[1],
        features=tuple(map(str, model.feature_names_in_)),
        classes=(0, 1),
    )


def _trial(new_model=None):
    switched = []
    trial = _Trial(_bundle("2.0.0", new_model or _Model(1)), switch=lambda: switched.append(True))
    return trial, switched


OLD = _bundle("1.0.0", _Model(0))


def test_one_request_at_a_time_tries_the_new_model():
    trial, switched = _trial(_Model(1, features=[*FEATURES, "loyalty_points"]))
    assert trial.claim()
    assert not trial.claim(), "a second request meets the old model meanwhile"
    assert trial.answer(OLD, [ROW])[0] is OLD, "rows the new schema refuses: the old model answers"
    assert not trial.decided.is_set() and switched == []
    assert trial.claim(), "undecided: the next request tries"


def test_a_trial_that_answered_switches_once_and_lets_no_one_else_in():
    trial, switched = _trial()
    assert trial.claim()
    bundle, (labels, _) = trial.answer(OLD, [ROW])
    assert bundle is trial.bundle and labels == [1]
    assert switched == [True] and trial.decided.is_set() and trial.answered and trial.refusal is None
    assert not trial.claim()


def test_a_refused_trial_switches_nothing_and_lets_no_one_else_in():
    failing = _Model(1)
    failing.fails_on = lambda X: True
    trial, switched = _trial(failing)
    assert trial.claim()
    bundle, (labels, _) = trial.answer(OLD, [ROW])
    assert bundle is OLD and labels == [0]
    assert switched == [] and trial.decided.is_set() and not trial.answered
    assert trial.refusal.startswith("it failed a request that v1.0.0 answered (v2.0.0 could not predict")
    assert not trial.claim()


def test_a_closed_trial_lets_no_one_in():
    trial, _ = _trial()
    trial.close()
    assert not trial.claim() and not trial.decided.is_set()


def test_closing_waits_for_the_request_still_trying():
    trial, switched = _trial()
    assert trial.claim()
    closer = threading.Thread(target=trial.close, daemon=True)
    closer.start()
    closer.join(0.2)
    assert closer.is_alive(), "close() returned while a request was still trying the new model"
    trial.answer(OLD, [ROW])
    closer.join(30)
    assert not closer.is_alive() and switched == [True] and not trial.claim()
