"""RetrainLoop: promoted, gate failed, no drift, insufficient data, cooldown, a crash mid-cycle, an alarm's rollback."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from sklearn.dummy import DummyClassifier
from sklearn.tree import DecisionTreeClassifier

import persistlib as pl
from persistlib.errors import (
    ArgumentTypeError,
    DecisionLogError,
    InvalidArgumentError,
    MissingFileError,
    PersistError,
    RetrainError,
    StorageError,
    SwapError,
)
from persistlib.monitoring import CycleResult, DriftMonitor, RetrainLoop

# Low enough for a small tree on drifted data; the baseline (production on the same holdout) does the real work.
THRESHOLDS = {"accuracy": 0.6, "precision": 0.6, "recall": 0.6}
# What v1.0.0's card claims: measured on last year's data, and far above what any model scores after drift.
CARD_METRICS = {"accuracy": 0.99, "precision": 0.99, "recall": 0.99}


def tree(X, y):
    """The user's training recipe."""
    return DecisionTreeClassifier(max_depth=5, random_state=0).fit(X, y)


def month(drift, seed, rows=1000):
    """(X_recent, y_recent, X_holdout, y_holdout): a window to train on, and different rows of the same month."""
    X, y = pl.make_churn(rows, drift=drift, random_state=seed)
    X_hold, y_hold = pl.make_churn(600, drift=drift, random_state=seed + 1000)
    return X, y, X_hold, y_hold


class Counting:
    """Wraps a training function and counts its calls."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, X, y):
        self.calls += 1
        return self.fn(X, y)


@pytest.fixture()
def world(tmp_path):
    """v1.0.0 trained on today's data, in production and served; a monitor whose reference is that data."""
    X0, y0 = pl.make_churn(1000, random_state=0)
    v1 = tree(X0, y0)
    registry = pl.Registry(tmp_path / "registry")
    registry.save(v1, metrics=CARD_METRICS)
    registry.promote("1.0.0")
    audit = pl.AuditLog(tmp_path / "audit.sqlite")
    server = pl.ModelServer(registry, audit=audit)
    yield SimpleNamespace(X0=X0, v1=v1, registry=registry, server=server, audit=audit, train=Counting(tree))
    audit.close()


def make_loop(w, **kwargs):
    kwargs.setdefault("thresholds", THRESHOLDS)
    return RetrainLoop(w.registry, w.server, w.train, monitor=DriftMonitor(w.X0), **kwargs)


def logged(w):
    return RetrainLoop.read_log(w.registry.root / "retrain_log.jsonl")


# --------------------------------------------------------------------------- the gate passes


def test_drift_and_a_better_candidate_make_a_new_version_and_serve_it(world):
    w = world
    loop = make_loop(w)
    X, y, X_hold, y_hold = month(1.0, seed=1)
    result = loop.run_cycle(X, y, X_hold, y_hold, label="2026-03")

    assert result.decision == "promoted" and result.cycle == 1 and result.window == "2026-03"
    assert result.candidate_version == "1.1.0" == result.production_version
    assert w.registry.aliases() == {"production": "1.1.0"} and w.server.version == "1.1.0"
    # champion and challenger on the same holdout: production's score there is the baseline, not its card
    assert result.production_metrics == pl.evaluate(w.v1, X_hold, y_hold)
    new_model, card = w.registry.load("1.1.0")
    assert result.candidate_metrics == pl.evaluate(new_model, X_hold, y_hold) == card.metrics
    assert card.metrics["accuracy"] < CARD_METRICS["accuracy"]  # promoted although below the old card's claim
    rows = {r["metric"]: r for r in result.gate["rows"]}
    assert result.gate["passed"] and set(rows) == set(THRESHOLDS)
    assert all(rows[m]["baseline"] == result.production_metrics[m] for m in THRESHOLDS)
    # the card records the data, the gate and why it exists
    assert card.dataset_rows == len(X) and card.dataset_sha256 == pl.fingerprint(X)["sha256"]
    assert "cycle 1: 2026-03" in card.notes and card.gate["passed"]
    # the older edition stays on the shelf
    assert w.registry.versions() == ["1.0.0", "1.1.0"]
    assert w.registry.load("1.0.0")[1].version == "1.0.0"
    # the monitor's normal is now the data the new model learned from
    assert loop.monitor.reference.equals(X)
    assert result.drift.drifted and result.reasons[0].startswith(
        "v1.1.0 matched or beat v1.0.0 on the same holdout (accuracy"
    )
    assert str(result).startswith("✓ cycle 1 (2026-03): promoted v1.1.0, serving v1.1.0")
    assert logged(w) == [json.loads(json.dumps(result.to_dict()))] and loop.history == [result]


def test_within_the_tolerance_a_candidate_may_trail_production_and_each_promotion_bumps_the_minor_version(world):
    w = world
    strict = make_loop(w, cooldown=0)
    assert strict.run_cycle(*month(1.0, seed=1)).candidate_version == "1.1.0"
    X, y, X_hold, y_hold = month(2.5, seed=2)
    production, candidate = (pl.evaluate(m, X_hold, y_hold) for m in (w.registry.load("1.1.0")[0], tree(X, y)))
    trailing = [m for m in THRESHOLDS if candidate[m] < production[m]]
    assert trailing and all(production[m] - candidate[m] < 0.03 for m in trailing)  # this month's situation

    failed = strict.run_cycle(X, y, X_hold, y_hold)
    assert failed.decision == "gate failed" and w.server.version == "1.1.0"
    assert [r.split()[0] for r in failed.reasons] == trailing

    tolerant = RetrainLoop(w.registry, w.server, tree, monitor=strict.monitor, thresholds=THRESHOLDS, tolerance=0.03)
    passed = tolerant.run_cycle(X, y, X_hold, y_hold)
    assert passed.decision == "promoted" and passed.gate["tolerance"] == 0.03
    assert passed.production_metrics == production and passed.candidate_metrics == candidate
    assert w.registry.versions() == ["1.0.0", "1.1.0", "1.2.0"] and w.server.version == "1.2.0"
    assert w.registry.load("1.1.0")[1].version == "1.1.0"


# --------------------------------------------------------------------------- the gate fails


@pytest.mark.parametrize("weak", [DummyClassifier(strategy="most_frequent"), DecisionTreeClassifier(max_depth=1)])
def test_a_candidate_worse_than_production_on_the_same_data_changes_nothing(world, weak):
    w = world
    loop = make_loop(w, thresholds={"accuracy": 0.5})  # the weak candidate clears this; production's score it must beat
    X, y, X_hold, y_hold = month(1.0, seed=1)
    candidate = type(weak)(**weak.get_params()).fit(X, y)
    assert pl.evaluate(candidate, X_hold, y_hold)["accuracy"] < pl.evaluate(w.v1, X_hold, y_hold)["accuracy"]
    loop.train = Counting(lambda X, y: candidate)
    files = sorted(p.name for p in w.registry.root.iterdir())

    result = loop.run_cycle(X, y, X_hold, y_hold, label="2026-04")

    assert result.decision == "gate failed" and result.candidate_version is None
    assert result.reasons and all("below the baseline" in r for r in result.reasons)
    production_accuracy = pl.evaluate(w.v1, X_hold, y_hold)["accuracy"]
    assert f"below the baseline {production_accuracy:.3f}" in " ".join(result.reasons)
    assert result.gate["passed"] is False
    assert w.registry.versions() == ["1.0.0"] and w.registry.aliases() == {"production": "1.0.0"}
    assert w.server.version == "1.0.0" and loop.monitor.reference.equals(w.X0)
    assert sorted(p.name for p in w.registry.root.iterdir()) == sorted([*files, "retrain_log.jsonl"])
    assert [e["decision"] for e in logged(w)] == ["gate failed"]
    assert str(result).startswith("✗ cycle 1 (2026-04): gate failed, serving v1.0.0")


def test_a_candidate_below_the_thresholds_fails_even_if_it_beats_production(world):
    w = world
    loop = make_loop(w, thresholds={"accuracy": 0.999})
    result = loop.run_cycle(*month(1.0, seed=1))
    assert result.decision == "gate failed" and any("below the threshold 0.999" in r for r in result.reasons)
    assert result.candidate_metrics["accuracy"] > result.production_metrics["accuracy"]
    assert w.registry.versions() == ["1.0.0"] and w.server.version == "1.0.0"


# --------------------------------------------------------------------------- no retraining


def test_no_drift_means_no_retraining(world):
    w = world
    loop = make_loop(w)
    X, y, X_hold, y_hold = month(0.0, seed=5)
    result = loop.run_cycle(X, y, X_hold, y_hold, label="2026-01")
    assert result.decision == "no drift" and w.train.calls == 0
    assert result.candidate_metrics is None and result.gate is None and result.candidate_version is None
    assert result.production_metrics == pl.evaluate(w.v1, X_hold, y_hold)  # performance is tracked every month
    assert w.registry.versions() == ["1.0.0"] and w.server.version == "1.0.0"
    assert result.reasons and "no feature drifted" in result.reasons[0]
    assert [e["decision"] for e in logged(w)] == ["no drift"]


def test_a_small_window_is_not_judged_and_not_retrained_on(world):
    w = world
    loop = make_loop(w)
    X, y, X_hold, y_hold = month(3.0, seed=6, rows=50)  # heavily drifted, but only 50 rows
    result = loop.run_cycle(X, y, X_hold, y_hold)
    assert result.decision == "insufficient data" and w.train.calls == 0
    assert result.reasons == result.drift.reasons and "50 rows" in result.reasons[0]
    assert w.registry.versions() == ["1.0.0"] and w.server.version == "1.0.0"


def test_cooldown_stops_a_retrain_right_after_a_promotion(world):
    w = world
    loop = make_loop(w, cooldown=1)
    assert loop.run_cycle(*month(1.0, seed=1)).decision == "promoted"
    second = loop.run_cycle(*month(2.5, seed=2))  # drifted again, relative to the new reference
    assert second.drift.drifted and second.decision == "cooldown"
    assert w.train.calls == 1 and w.server.version == "1.1.0" and w.registry.versions() == ["1.0.0", "1.1.0"]
    assert "cooldown" in second.reasons[0] and "cycle 3" in second.reasons[0]
    third = loop.run_cycle(*month(2.5, seed=3))  # the cooldown is over
    assert third.decision in ("promoted", "gate failed") and w.train.calls == 2
    assert [e["decision"] for e in logged(w)] == ["promoted", "cooldown", third.decision]


# --------------------------------------------------------------------------- a crash mid-cycle


def test_a_crash_between_save_and_promote_leaves_production_untouched(world, monkeypatch):
    w = world
    loop = make_loop(w)

    def disk_full(*args, **kwargs):
        raise StorageError("could not promote: the disk is full")

    monkeypatch.setattr(w.registry, "promote", disk_full)
    with pytest.raises(RetrainError, match="saved v1.1.0 but could not serve it") as caught:
        loop.run_cycle(*month(1.0, seed=1))
    assert isinstance(caught.value, PersistError) and isinstance(caught.value.__cause__, StorageError)
    assert caught.value.saved_version == "1.1.0" and caught.value.production_version == "1.0.0"
    assert w.registry.aliases() == {"production": "1.0.0"} and w.server.version == "1.0.0"
    assert "1.1.0" in w.registry.versions()  # saved, simply not promoted
    assert loop.history == [] and not (w.registry.root / "retrain_log.jsonl").exists()
    assert loop.monitor.reference.equals(w.X0)

    monkeypatch.undo()  # the disk has room again: the same cycle runs and promotes the next version
    again = loop.run_cycle(*month(1.0, seed=1))
    assert again.cycle == 1 and again.candidate_version == "1.2.0" == w.server.version


def test_a_swap_that_fails_after_the_promotion_moves_the_alias_back(world, monkeypatch):
    w = world
    loop = make_loop(w)

    def refuse(*args, **kwargs):
        raise SwapError("warm-up prediction failed")

    monkeypatch.setattr(w.server, "swap", refuse)
    with pytest.raises(RetrainError, match="'production' was moved back to v1.0.0"):
        loop.run_cycle(*month(1.0, seed=1))
    assert w.registry.aliases() == {"production": "1.0.0"} and w.server.version == "1.0.0"
    assert [(h["action"], h["to"]) for h in w.registry.history()][-2:] == [("promote", "1.1.0"), ("rollback", "1.0.0")]


# --------------------------------------------------------------------------- the alarm


def _serve(w, rows, *, truth):
    """Serve ``rows``; report as outcomes the true labels, or (truth=None) the opposite of every answer."""
    p = w.server.predict(rows)
    outcomes = [1 - label for label in p.labels] if truth is None else list(truth)
    w.server.record_outcome(p.request_id, outcomes)
    return p


def test_an_alarm_after_the_swap_rolls_back(world):
    w = world
    loop = make_loop(w, audit=w.audit, alarm={"max_accuracy_drop": 0.05, "max_rate_shift": 1.0})
    live, truth = pl.make_churn(300, drift=1.0, random_state=9)
    assert _serve(w, live, truth=truth).version == "1.0.0"
    promoted = loop.run_cycle(*month(1.0, seed=1), label="2026-05")
    assert promoted.decision == "promoted"
    assert _serve(w, live, truth=None).version == "1.1.0"  # live, every answer of v1.1.0 turns out wrong

    rolled = loop.check_alarm()

    assert isinstance(rolled, CycleResult) and rolled.decision == "rolled back"
    assert rolled.cycle == promoted.cycle and rolled.window == "2026-05" and rolled.production_version == "1.0.0"
    assert any(r.startswith("accuracy") for r in rolled.reasons)
    assert w.registry.aliases() == {"production": "1.0.0"} and w.server.version == "1.0.0"
    assert "1.1.0" in w.registry.versions()  # kept for the post-mortem
    assert loop.monitor.reference.equals(w.X0)  # production's normal again
    assert str(rolled).startswith("✗ cycle 1 (2026-05): rolled back, serving v1.0.0: accuracy")
    assert [e["decision"] for e in logged(w)] == ["promoted", "rolled back"]
    assert loop.check_alarm() is None  # nothing left to watch


def test_no_alarm_when_the_new_version_does_well_live(world):
    w = world
    loop = make_loop(w, audit=w.audit, alarm={"max_accuracy_drop": 0.05, "max_rate_shift": 1.0})
    live, truth = pl.make_churn(300, drift=1.0, random_state=9)
    _serve(w, live, truth=truth)
    assert loop.check_alarm() is None  # nothing promoted yet
    loop.run_cycle(*month(1.0, seed=1))
    _serve(w, live, truth=truth)
    assert loop.check_alarm() is None
    assert w.server.version == "1.1.0" and w.registry.aliases() == {"production": "1.1.0"}
    assert [e["decision"] for e in logged(w)] == ["promoted"]


def test_the_alarm_does_not_overrule_a_human(world):
    w = world
    loop = make_loop(w, audit=w.audit, alarm={"max_accuracy_drop": 0.05, "max_rate_shift": 1.0})
    live, truth = pl.make_churn(300, drift=1.0, random_state=9)
    _serve(w, live, truth=truth)
    loop.run_cycle(*month(1.0, seed=1))
    _serve(w, live, truth=None)
    w.registry.rollback()  # someone rolled back by hand already
    w.server.rollback()
    with pytest.raises(RetrainError, match="production moved"):
        loop.check_alarm()
    assert w.server.version == "1.0.0" and w.registry.aliases() == {"production": "1.0.0"}


# --------------------------------------------------------------------------- the log and bad arguments


def test_the_log_survives_the_loop_and_refuses_a_torn_line(world, tmp_path):
    w = world
    make_loop(w).run_cycle(*month(0.0, seed=5))
    path = w.registry.root / "retrain_log.jsonl"
    assert make_loop(w).run_cycle(*month(0.0, seed=7)).cycle == 1  # a new loop: a new run, the same log
    assert [e["cycle"] for e in RetrainLoop.read_log(path)] == [1, 1]
    with open(path, "a") as f:
        f.write('{"cycle": 2, "deci')
    with pytest.raises(DecisionLogError, match="line 3"):
        RetrainLoop.read_log(path)
    with pytest.raises(MissingFileError, match="no decision log"):
        RetrainLoop.read_log(tmp_path / "nowhere.jsonl")
    custom = tmp_path / "logs" / "march.jsonl"
    make_loop(w, log_path=custom).run_cycle(*month(0.0, seed=5))
    assert len(RetrainLoop.read_log(custom)) == 1


def test_train_must_return_a_model(world):
    w = world
    loop = make_loop(w)
    loop.train = lambda X, y: None
    with pytest.raises(ArgumentTypeError, match="train\\(\\) must return a fitted model"):
        loop.run_cycle(*month(1.0, seed=1))
    assert w.registry.versions() == ["1.0.0"] and loop.history == []


def test_run_cycle_refuses_mismatched_data(world):
    loop = make_loop(world)
    X, y, X_hold, y_hold = month(1.0, seed=1)
    with pytest.raises(InvalidArgumentError, match="X_recent has 1000 rows but y_recent has 10"):
        loop.run_cycle(X, y[:10], X_hold, y_hold)
    with pytest.raises(InvalidArgumentError, match="X_holdout"):
        loop.run_cycle(X, y, X_hold, y_hold[:5])
    with pytest.raises(ArgumentTypeError, match="label"):
        loop.run_cycle(X, y, X_hold, y_hold, label=3)
    assert world.train.calls == 0


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"monitor": "drift"}, ArgumentTypeError, "DriftMonitor"),
        ({"cooldown": -1}, InvalidArgumentError, "cooldown"),
        ({"cooldown": 1.5}, InvalidArgumentError, "cooldown"),
        ({"tolerance": -0.1}, InvalidArgumentError, "tolerance"),
        ({"thresholds": {}}, InvalidArgumentError, "at least one threshold"),
        ({"thresholds": {"accuracy": "high"}}, ArgumentTypeError, "accuracy"),
        ({"alias": "../prod"}, InvalidArgumentError, "alias"),
        ({"alias": "staging"}, InvalidArgumentError, "serves 'production'"),
        ({"alarm": {"max_accuracy_drop": 0.05}}, InvalidArgumentError, "needs audit"),
        ({"log_path": "."}, InvalidArgumentError, "folder"),
    ],
)
def test_the_loop_refuses_bad_arguments(world, kwargs, error, match):
    w = world
    kwargs.setdefault("monitor", DriftMonitor(w.X0))
    with pytest.raises(error, match=match):
        RetrainLoop(w.registry, w.server, tree, **kwargs)


def test_the_loop_refuses_bad_parts_and_alarm_options(world):
    w = world
    monitor = DriftMonitor(w.X0)
    with pytest.raises(ArgumentTypeError, match="registry"):
        RetrainLoop("registry", w.server, tree, monitor=monitor)
    with pytest.raises(ArgumentTypeError, match="server"):
        RetrainLoop(w.registry, object(), tree, monitor=monitor)
    with pytest.raises(ArgumentTypeError, match="train"):
        RetrainLoop(w.registry, w.server, "tree", monitor=monitor)
    with pytest.raises(InvalidArgumentError, match="unknown option"):
        RetrainLoop(w.registry, w.server, tree, monitor=monitor, audit=w.audit, alarm={"max_latency": 1})
    with pytest.raises(InvalidArgumentError, match="max_rate_shift"):
        RetrainLoop(w.registry, w.server, tree, monitor=monitor, audit=w.audit, alarm={"max_rate_shift": 2})
    with pytest.raises(TypeError, match="positional argument"):
        RetrainLoop(w.registry, w.server, tree, monitor)  # options are keyword-only
