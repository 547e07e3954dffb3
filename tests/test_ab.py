"""ABRouter: weighted, sticky, reproducible splits; per-arm metrics with intervals."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from sklearn.ensemble import RandomForestClassifier

import persistlib as pl
from persistlib.errors import InvalidArgumentError
from persistlib.serving import Decision, Prediction, wilson_interval


@pytest.mark.parametrize(
    "weights", [{"1.0.0": 0.5, "2.0.0": 0.5}, {"1.0.0": 0.9, "2.0.0": 0.1}, {"a": 1, "b": 2, "c": 1}]
)
def test_split_is_within_two_percent_of_the_weights_over_10000_users(weights):
    router = pl.ABRouter(weights)
    counts = dict.fromkeys(weights, 0)
    for i in range(10_000):
        counts[router.assign(f"user-{i}")] += 1
    total = sum(weights.values())
    for arm, w in weights.items():
        assert abs(counts[arm] / 10_000 - w / total) <= 0.02, counts


def test_assignment_is_sticky_and_reproducible_across_routers():
    a = pl.ABRouter({"1.0.0": 0.5, "2.0.0": 0.5})
    b = pl.ABRouter({"1.0.0": 0.5, "2.0.0": 0.5})
    users = [f"user-{i}" for i in range(500)] + [7, 12345]
    first = [a.assign(u) for u in users]
    assert first == [a.assign(u) for u in users] == [b.assign(u) for u in users]
    # The bucket is a plain sha256 of "salt:user": the same in every process and Python version.
    digest = hashlib.sha256(b"persistlib-ab:user-0").digest()
    assert a.bucket("user-0") == int.from_bytes(digest[:8], "big") / 2**64
    other = pl.ABRouter({"1.0.0": 0.5, "2.0.0": 0.5}, salt="experiment-2")
    assert [other.assign(u) for u in users] != first  # a new salt reshuffles users


def test_bad_weights_are_refused():
    for bad, words in [
        ({}, "non-empty"),
        ({"1.0.0": -1}, ">= 0"),
        ({"1.0.0": 0, "2.0.0": 0}, "positive"),
        ({"1.0.0": "half"}, "finite number"),
        ([("1.0.0", 1)], "non-empty dict"),
    ]:
        with pytest.raises(ValueError, match=words):
            pl.ABRouter(bad)
    router = pl.ABRouter({"1.0.0": 1, "2.0.0": 1})
    with pytest.raises(ValueError, match="same arms"):
        router.set_weights({"1.0.0": 1, "3.0.0": 1})
    with pytest.raises(ValueError, match="user id"):
        router.assign(None)


def test_weights_normalise_and_zero_weight_gets_no_traffic():
    router = pl.ABRouter({"1.0.0": 3, "2.0.0": 1})
    assert router.weights == {"1.0.0": 0.75, "2.0.0": 0.25}
    router.set_weights({"1.0.0": 1, "2.0.0": 0})
    assert {router.assign(f"u{i}") for i in range(300)} == {"1.0.0"}


def test_wilson_interval_matches_the_textbook_value():
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(0, 50)
    assert lo == 0.0 and 0 < hi < 0.1


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    X, y = pl.make_churn(800, random_state=4)
    reg = pl.Registry(tmp_path_factory.mktemp("ab") / "registry")
    reg.save(RandomForestClassifier(n_estimators=8, max_depth=6, random_state=0).fit(X, y), version="1.0.0")
    reg.save(RandomForestClassifier(n_estimators=8, max_depth=6, random_state=0).fit(X, 1 - y), version="2.0.0")
    reg.promote("1.0.0")
    return reg, X, y


def test_routed_server_records_the_arm_and_per_arm_metrics(reg):
    registry, X, y = reg
    server = pl.ModelServer(registry)
    router = pl.ABRouter({"1.0.0": 0.5, "2.0.0": 0.5})
    server.route(router)
    preds = []
    for i in range(300):
        p = server.predict(X.iloc[i : i + 1], user_id=f"user-{i}")
        assert p.arm == router.assign(f"user-{i}") == p.version
        preds.append(p)
    assert server.predict(X.iloc[:1], user_id="user-3").arm == preds[3].arm  # sticky through the server
    for i, p in enumerate(preds):
        router.record_outcome(p.request_id, int(y.iloc[i]))
    m = router.metrics()
    assert m["1.0.0"]["requests"] + m["2.0.0"]["requests"] == 301
    assert m["1.0.0"]["outcomes"] + m["2.0.0"]["outcomes"] == 300
    for arm in m:
        hits = sum(p.labels[0] == int(y.iloc[i]) for i, p in enumerate(preds) if p.arm == arm)
        assert m[arm]["accuracy"] == pytest.approx(hits / m[arm]["outcomes"])
        lo, hi = m[arm]["ci"]
        assert lo <= m[arm]["accuracy"] <= hi
    # 2.0.0 was trained on flipped labels: it loses, and the intervals say so.
    assert m["1.0.0"]["accuracy"] > 0.8 > 0.2 > m["2.0.0"]["accuracy"]
    decision = router.decide()
    assert decision.winner == "1.0.0" and str(decision).startswith("1.0.0 wins")
    server.route(None)
    assert server.predict(X.iloc[:1], user_id="user-1").arm is None


def _router_with_outcomes(results: dict[str, tuple[int, int]]) -> pl.ABRouter:
    """A router whose arms have seen ``{arm: (correct, total)}`` single-row outcomes."""
    router = pl.ABRouter(dict.fromkeys(results, 1))
    for arm, (correct, total) in results.items():
        for i in range(total):
            p = Prediction(labels=[1], probabilities=None, version=arm, request_id=f"req-{arm}-{i}", arm=arm)
            router.record(p)
            router.record_outcome(p.request_id, 1 if i < correct else 0)
    return router


def test_overlapping_intervals_give_no_winner_even_when_the_accuracies_differ():
    router = _router_with_outcomes({"1.0.0": (14, 20), "2.0.0": (10, 20)})
    m = router.metrics()
    assert m["1.0.0"]["accuracy"] == 0.7 > m["2.0.0"]["accuracy"] == 0.5  # a leader on point estimates ...
    assert m["1.0.0"]["ci"][0] < m["2.0.0"]["ci"][1]  # ... whose interval overlaps the other's
    decision = router.decide()
    assert decision.winner is None and not decision.decided
    assert str(decision) == "no decision yet: the intervals overlap (leader 1.0.0); collect more outcomes"
    # The same accuracies with ten times the outcomes: the intervals separate, and 1.0.0 wins.
    assert _router_with_outcomes({"1.0.0": (140, 200), "2.0.0": (100, 200)}).decide().winner == "1.0.0"


def test_a_winner_must_clear_every_other_arm_not_just_one():
    router = _router_with_outcomes({"a": (190, 200), "b": (100, 200), "c": (180, 200)})
    assert router.metrics()["a"]["ci"][0] > router.metrics()["b"]["ci"][1]  # a clears b ...
    assert router.metrics()["a"]["ci"][0] < router.metrics()["c"]["ci"][1]  # ... but not c
    assert router.decide().winner is None


def test_record_outcome_checks_its_input(reg):
    registry, X, _ = reg
    server = pl.ModelServer(registry)
    router = pl.ABRouter({"1.0.0": 1, "2.0.0": 1})
    assert router.decide() == Decision(None, "no decision yet: not every arm has outcomes")
    server.route(router)
    p = server.predict(X.iloc[:2], user_id="u")
    with pytest.raises(InvalidArgumentError, match="not routed"):
        router.record_outcome("req-unknown", 1)
    with pytest.raises(ValueError, match="2 row"):
        router.record_outcome(p.request_id, [1])
    router.record_outcome(p.request_id, [0, 1])
    assert router.metrics()[p.arm]["outcomes"] == 2
    with pytest.raises(TypeError, match="ABRouter"):
        server.route({"1.0.0": 1})


def test_ab_panel_slider_moves_the_split_and_shows_intervals(reg):
    registry, X, y = reg
    router = pl.ABRouter({"1.0.0": 0.5, "2.0.0": 0.5})
    server = pl.ModelServer(registry)
    server.route(router)
    panel = pl.ABPanel(router)
    assert repr(panel) == "<ABPanel: 1.0.0 50% / 2.0.0 50%>"
    assert panel.decision.value.startswith("… no decision yet")
    panel.split.value = 20
    assert router.weights == {"1.0.0": pytest.approx(0.8), "2.0.0": pytest.approx(0.2)}
    for i in range(200):
        p = server.predict(X.iloc[i : i + 1], user_id=f"user-{i}")
        router.record_outcome(p.request_id, int(y.iloc[i]))
    panel.refresh_button.click()
    m = router.metrics()
    lo, hi = m["1.0.0"]["ci"]
    assert f"[{lo:.3f}, {hi:.3f}]" in panel.table.value
    assert panel.decision.value == "✓ " + router.decide().text and "1.0.0 wins" in panel.decision.value
    assert bytes(panel.chart.value).startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="two arms"):
        pl.ABPanel(pl.ABRouter({"a": 1, "b": 1, "c": 1}))


def test_decision_is_data_and_the_panel_reads_its_winner_not_its_words(reg):
    """Overlapping intervals: no winner, even though the sentence names a leader."""
    d = Decision("2.0.0", "2.0.0 wins: its accuracy interval lies above every other arm's")
    assert str(d) == d.text and d.decided
    assert not Decision(None, "x").decided
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.winner = "1.0.0"  # frozen
    router = pl.ABRouter({"1.0.0": 1, "2.0.0": 1})
    # A sentence that says "wins" but a Decision without a winner: the panel must trust the field.
    router.decide = lambda: Decision(None, "no decision yet: nobody wins yet")  # type: ignore[method-assign]
    panel = pl.ABPanel(router)
    assert panel.decision.value.startswith("… no decision yet")


def test_router_forgets_the_oldest_pending_requests_beyond_max_pending():
    from persistlib.serving import Prediction

    router = pl.ABRouter({"1.0.0": 1, "2.0.0": 1}, max_pending=3)
    preds = [
        Prediction(labels=[1], probabilities=None, version="1.0.0", request_id=f"req-{i:06x}", arm="1.0.0")
        for i in range(5)
    ]
    for p in preds:
        router.record(p)
    assert router.pending == 3 and router.expired == 2
    assert router.metrics()["1.0.0"]["requests"] == 5
    with pytest.raises(InvalidArgumentError, match="expired.*max_pending=3.*2 expired"):
        router.record_outcome(preds[0].request_id, 1)
    assert router.record_outcome(preds[4].request_id, 1) is True
    assert router.pending == 2 and not router.is_pending(preds[4].request_id)
    with pytest.raises(InvalidArgumentError, match="already recorded"):
        router.record_outcome(preds[4].request_id, 1)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(InvalidArgumentError, match="max_pending"):
            pl.ABRouter({"a": 1}, max_pending=bad)


def test_record_outcome_takes_a_series_or_an_array_of_labels(reg):
    import numpy as np

    registry, X, y = reg
    server = pl.ModelServer(registry)
    router = pl.ABRouter({"1.0.0": 1, "2.0.0": 1})
    server.route(router)
    p = server.predict(X.iloc[:2], user_id="u")
    truth = y.iloc[:2]
    expected = [a == b for a, b in zip(p.labels, truth.tolist(), strict=True)]
    assert router.record_outcome(p.request_id, truth) is all(expected)  # a pandas Series
    q = server.predict(X.iloc[:3], user_id="u")
    with pytest.raises(InvalidArgumentError, match="3 row.*2 true label"):
        router.record_outcome(q.request_id, y.iloc[:2])  # counts the labels, not the Series object
    assert router.is_pending(q.request_id)  # a refused outcome keeps the request pending
    router.record_outcome(q.request_id, np.asarray(y.iloc[:3]))
    assert router.metrics()[p.arm]["outcomes"] == 5


class _PlacedRouter(pl.ABRouter):
    """A router whose users stand where the test puts them: ``bucket(position) == position``."""

    def bucket(self, user_id):
        return user_id


def test_the_weights_cut_half_open_slices_and_a_zero_weight_arm_gets_no_user_at_all():
    router = _PlacedRouter({"a": 1, "b": 1})
    assert [router.assign(x) for x in (0.0, 0.4999, 0.5, 0.9999)] == ["a", "a", "b", "b"]  # [0, .5) and [.5, 1)
    # bucket() can round up to 1.0 (the top 2**-54 of sha256 values): that user goes to the last arm ...
    assert _PlacedRouter({"a": 1, "b": 1, "c": 1}).assign(1.0) == "c"
    # ... unless the last arm has weight 0: a zero-weight arm gets nobody, wherever it stands.
    assert _PlacedRouter({"a": 1, "b": 1, "c": 0}).assign(1.0) == "b"
    assert _PlacedRouter({"a": 0, "b": 1}).assign(0.0) == "b"


def test_wilson_interval_stays_within_0_and_1_despite_float_rounding():
    for z in (1.0, 1.96, 2.576):
        for n in range(1, 200):
            for successes in (0, 1, n - 1, n):
                lo, hi = wilson_interval(successes, n, z)
                assert 0.0 <= lo <= hi <= 1.0, (successes, n, z, lo, hi)
    # All 12 out of 12 at z=1: the formula's upper end is 1.0000000000000002 in floats; it is clipped.
    assert wilson_interval(12, 12, 1.0)[1] == 1.0


def test_max_pending_is_a_positive_integer_100000_by_default_and_1_keeps_only_the_latest():
    router = pl.ABRouter({"1.0.0": 1, "2.0.0": 1})
    with pytest.raises(InvalidArgumentError, match=r"keeps the latest max_pending=100000 requests; 0 expired"):
        router.record_outcome("req-unknown", 1)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(InvalidArgumentError) as e:
            pl.ABRouter({"a": 1}, max_pending=bad)
        assert str(e.value) == f"max_pending must be a positive integer, got {bad!r}."
    one = pl.ABRouter({"1.0.0": 1, "2.0.0": 1}, max_pending=1)
    first, last = (
        Prediction(labels=[1], probabilities=None, version="1.0.0", request_id=rid, arm="1.0.0")
        for rid in ("req-first", "req-last")
    )
    one.record(first)
    one.record(last)
    assert one.pending == 1 and one.expired == 1
    assert one.is_pending("req-last") and not one.is_pending("req-first")


def test_arm_names_must_be_non_empty_strings_and_bad_weights_are_named():
    for arm in ("", 1, None):
        with pytest.raises(InvalidArgumentError) as e:
            pl.ABRouter({arm: 1, "2.0.0": 1})
        assert str(e.value) == f"arm names must be version strings like '2.0.0', got {arm!r}."
    with pytest.raises(InvalidArgumentError) as e:
        pl.ABRouter({"1.0.0": 1, "2.0.0": -1})
    assert str(e.value) == "weight for '2.0.0' must be a finite number >= 0, got -1."


def test_record_refuses_a_prediction_from_an_arm_the_router_does_not_have():
    router = pl.ABRouter({"1.0.0": 1, "2.0.0": 1})
    stray = Prediction(labels=[1], probabilities=None, version="3.0.0", request_id="req-stray", arm="3.0.0")
    with pytest.raises(InvalidArgumentError, match=r"arm '3.0.0', which is not one of this router's arms"):
        router.record(stray)
    assert router.pending == 0 and not router.is_pending("req-stray")
    assert {arm: m["requests"] for arm, m in router.metrics().items()} == {"1.0.0": 0, "2.0.0": 0}


def test_intervals_that_only_touch_give_no_winner():
    # 337/625 and 288/625: the leader's lower end and the other arm's upper end are both exactly 0.5.
    router = _router_with_outcomes({"1.0.0": (337, 625), "2.0.0": (288, 625)})
    m = router.metrics()
    assert m["1.0.0"]["ci"][0] == m["2.0.0"]["ci"][1]
    assert router.decide().winner is None  # "above" means strictly above
