"""ModelServer: predict, swap, rollback, input validation, and swaps under concurrent load."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest
from conftest import DictRegistry
from sklearn.ensemble import RandomForestClassifier
from sklearn.tree import DecisionTreeClassifier

import persistlib as pl
import persistlib.serving.server as server_module
from persistlib.data import CHURN_FEATURES
from persistlib.errors import (
    ArgumentTypeError,
    ConsoleWaitError,
    InvalidArgumentError,
    InvalidInputError,
    PersistError,
)
from persistlib.serving import ServerSnapshot, validate_rows

FEATURES = list(CHURN_FEATURES)


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory):
    """A registry holding 1.0.0 (forest) and 2.0.0 (decision tree); production -> 1.0.0."""
    X, y = pl.make_churn(800, random_state=1)
    reg = pl.Registry(tmp_path_factory.mktemp("serving") / "registry")
    m1 = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).fit(X, y)
    m2 = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    reg.save(m1, version="1.0.0")
    reg.save(m2, version="2.0.0")
    reg.promote("1.0.0")
    return reg, X, (m1, m2)


def test_predict_matches_the_model_and_names_the_version(two_versions):
    reg, X, (m1, _) = two_versions
    server = pl.ModelServer(reg)
    rows = X.iloc[:5].to_dict("records")
    p = server.predict(rows)
    assert p.version == "1.0.0" == server.version
    assert p.labels == m1.predict(X.iloc[:5]).tolist()
    np.testing.assert_allclose(p.probabilities, m1.predict_proba(X.iloc[:5]))
    assert p.request_id.startswith("req-") and p.arm is None
    assert p.to_dict().keys() == {"labels", "probabilities", "version", "request_id", "arm"}
    assert server.predict(rows).request_id != p.request_id


def test_predict_accepts_a_dataframe_in_any_column_order_and_a_single_dict(two_versions):
    reg, X, (m1, _) = two_versions
    server = pl.ModelServer(reg)
    shuffled = X.iloc[:3][FEATURES[::-1]]
    assert server.predict(shuffled).labels == m1.predict(X.iloc[:3]).tolist()
    assert server.predict(X.iloc[0].to_dict()).labels == m1.predict(X.iloc[:1]).tolist()


def test_swap_then_rollback_is_instant_and_uses_no_registry_load(two_versions):
    reg, X, (_, m2) = two_versions

    class Counting:
        def __init__(self, inner):
            self.inner, self.loads = inner, 0

        def load(self, ref):
            self.loads += 1
            return self.inner.load(ref)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    counting = Counting(reg)
    server = pl.ModelServer(counting)
    assert server.swap("2.0.0") == "2.0.0"
    assert server.previous_version == "1.0.0"
    assert server.predict(X.iloc[:4]).labels == m2.predict(X.iloc[:4]).tolist()
    loads = counting.loads
    assert server.rollback() == "1.0.0" and server.version == "1.0.0"
    assert server.rollback() == "2.0.0"  # and back: both stay warm
    assert counting.loads == loads


def test_repr_shows_the_version_and_any_ab_split(two_versions):
    reg = two_versions[0]
    server = pl.ModelServer(reg)
    assert repr(server) == "<ModelServer: v1.0.0>"
    server.route(pl.ABRouter({"1.0.0": 0.5, "2.0.0": 0.5}))
    assert repr(server) == "<ModelServer: v1.0.0, A/B {'1.0.0': 0.5, '2.0.0': 0.5}>"


def test_rollback_before_any_swap_is_refused(two_versions):
    with pytest.raises(pl.RollbackError, match="no previous version"):
        pl.ModelServer(two_versions[0]).rollback()


def test_failed_swaps_keep_the_old_model_serving(two_versions, tmp_path):
    reg, X, _ = two_versions
    server = pl.ModelServer(reg)
    with pytest.raises(pl.VersionNotFoundError, match="no version or alias '9.9.9'"):
        server.swap("9.9.9")
    assert server.version == "1.0.0"
    # A tampered artefact fails verification before unpickling; nothing changes.
    copy = pl.Registry(tmp_path / "copy")
    copy.save(RandomForestClassifier(n_estimators=3, random_state=0).fit(X, X["contract"] > 0), version="1.0.0")
    copy.save(RandomForestClassifier(n_estimators=3, random_state=1).fit(X, X["contract"] > 0), version="1.1.0")
    copy.promote("1.0.0")
    s2 = pl.ModelServer(copy)
    artefact = copy.root / "model_v1.1.0.pkl"
    artefact.write_bytes(artefact.read_bytes()[:-10])
    with pytest.raises(pl.IntegrityError, match="v1.1.0: model_v1.1.0.pkl does not match its card"):
        s2.swap("1.1.0")
    assert s2.version == "1.0.0" and s2.previous_version is None
    assert s2.predict(X.iloc[:1]).version == "1.0.0"


def test_swap_without_ref_follows_the_alias(two_versions, tmp_path):
    _, X, (m1, m2) = two_versions
    reg = pl.Registry(tmp_path / "r")
    reg.save(m1, version="1.0.0")
    reg.save(m2, version="1.1.0")
    reg.promote("1.0.0")
    server = pl.ModelServer(reg)
    reg.promote("1.1.0")
    assert server.version == "1.0.0"  # a promotion alone changes nothing in memory
    assert server.swap() == "1.1.0"
    assert server.swap() == "1.1.0"  # idempotent: same version, nothing moves
    assert server.previous_version == "1.0.0"


class _SlowModel:
    """A tiny classifier whose predict_proba can be held, to keep a request in flight."""

    feature_names_in_ = np.array(FEATURES, dtype=object)
    classes_ = np.array([0, 1])

    def __init__(self, answer: int):
        self.answer = answer
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.during_predict = None  # called once, in the middle of the next predict_proba
        self.held_too_long = False

    def predict_proba(self, X):
        self.entered.set()
        if not self.release.wait(30):
            self.held_too_long = True  # the test never released it: the test fails below
        if self.during_predict is not None:
            action, self.during_predict = self.during_predict, None
            action()
        p = np.zeros((len(X), 2))
        p[:, self.answer] = 1.0
        return p


def test_a_swap_finishes_while_a_request_is_still_in_flight():
    old, new = _SlowModel(0), _SlowModel(1)
    server = pl.ModelServer(DictRegistry({"1.0.0": old, "2.0.0": new}))
    old.entered.clear()
    old.release.clear()  # the next request on 1.0.0 stays inside the model until we release it
    result = {}
    request = threading.Thread(target=lambda: result.setdefault("p", server.predict(dict.fromkeys(FEATURES, 1))))
    request.start()
    swapped = threading.Event()
    swapper = threading.Thread(target=lambda: (server.swap("2.0.0"), swapped.set()))
    try:
        assert old.entered.wait(10), "the request never reached the model"
        swapper.start()
        finished = swapped.wait(10)
        still_in_flight = request.is_alive() and "p" not in result
        assert finished, "swap() waited for the request in flight"
        assert still_in_flight, "the request had already left the model, so the swap proved nothing"
        assert server.version == "2.0.0"
        assert server.predict(dict.fromkeys(FEATURES, 1)).labels == [1]  # new requests: the new model
    finally:
        old.release.set()
        request.join(10)
        if swapper.ident is not None:
            swapper.join(10)
    assert not old.held_too_long
    assert result["p"].version == "1.0.0" and result["p"].labels == [0]  # it finished on the old model


@pytest.mark.parametrize("swap_during", ["validation", "inference"])
def test_a_request_uses_one_model_throughout_even_if_a_swap_lands_mid_request(tmp_path, monkeypatch, swap_during):
    """Force the race: a swap lands between the request's first look at the server and its last.

    Whatever the request reports (version, labels, probabilities) and whatever the audit
    records (version, artefact sha256, answer) must all come from the model it started on.
    """
    from persistlib.serving import server as server_module

    old, new = _SlowModel(0), _SlowModel(1)
    registry = DictRegistry({"1.0.0": old, "2.0.0": new})
    with pl.AuditLog(tmp_path / "audit.sqlite") as audit:
        server = pl.ModelServer(registry, audit=audit)
        swaps = []

        def swap_now():
            swaps.append(server.swap("2.0.0"))

        if swap_during == "inference":
            old.during_predict = swap_now  # the model itself triggers the swap, mid-request
        else:
            real_validate = server_module.validate_rows
            armed = [True]

            def validate_then_swap(*args, **kwargs):
                out = real_validate(*args, **kwargs)
                if armed:  # once: the swap's own warm-up validates rows too
                    armed.clear()
                    swap_now()
                return out

            monkeypatch.setattr(server_module, "validate_rows", validate_then_swap)
        p = server.predict(dict.fromkeys(FEATURES, 1))
        assert swaps == ["2.0.0"] and server.version == "2.0.0", "the swap landed during the request"
        assert (p.version, p.labels, p.probabilities) == ("1.0.0", [0], [[1.0, 0.0]])
        audit.flush()
        row = audit.get(p.request_id)
        assert row["version"] == "1.0.0" and row["prediction"] == [0]
        assert row["artifact_sha256"] == registry.card("1.0.0").artifact_sha256
        after = server.predict(dict.fromkeys(FEATURES, 1))  # the next request: all on the new model
        audit.flush()
        assert (after.version, after.labels) == ("2.0.0", [1])
        assert audit.get(after.request_id)["artifact_sha256"] == registry.card("2.0.0").artifact_sha256


def test_registry_without_the_contract_is_refused():
    with pytest.raises(TypeError, match=r"\.load\(\)"):
        pl.ModelServer(object())


def test_model_without_feature_names_is_refused_as_a_model_problem_not_an_input_problem(tmp_path):
    from persistlib.errors import UnservableModelError

    X, y = pl.make_churn(200, random_state=0)
    reg = pl.Registry(tmp_path / "r")
    reg.save(DecisionTreeClassifier(max_depth=3, random_state=0).fit(X.to_numpy(), y), version="1.0.0")
    reg.promote("1.0.0")
    with pytest.raises(UnservableModelError, match="saved model v1.0.0 has no feature_names_in_") as info:
        pl.ModelServer(reg)
    assert isinstance(info.value, pl.PersistError) and not isinstance(info.value, InvalidInputError)


def test_hammering_predict_while_swapping_gives_zero_errors(two_versions):
    reg, X, (m1, m2) = two_versions
    server = pl.ModelServer(reg)
    rows = X.iloc[:3].to_dict("records")
    expected = {"1.0.0": m1.predict(X.iloc[:3]).tolist(), "2.0.0": m2.predict(X.iloc[:3]).tolist()}
    stop = threading.Event()
    seen, errors, mismatches = [], [], []

    def client():
        while not stop.is_set():
            try:
                p = server.predict(rows)
            except Exception as e:  # any error fails the test
                errors.append(e)
                continue
            seen.append(p.version)
            if p.labels != expected.get(p.version):
                mismatches.append(p)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(20):
        server.swap("2.0.0" if i % 2 == 0 else "1.0.0")
        time.sleep(0.005)
    stop.set()
    for t in threads:
        t.join(10)
    assert errors == [] and mismatches == []
    assert len(seen) > 20
    assert set(seen) <= set(reg.versions()) and set(seen) == {"1.0.0", "2.0.0"}


# --------------------------------------------------------------------------- validate_rows

GOOD = dict.fromkeys(FEATURES, 1.0)


def _without(key):
    return {k: v for k, v in GOOD.items() if k != key}


@pytest.mark.parametrize(
    "rows, message",
    [
        ("tenure", "must be a list"),
        (42, "must be a list"),
        (None, "must be a list"),
        ([], "is empty"),
        ([GOOD, [1, 2, 3]], "row 1 must be an object"),
        ([_without("region")], r"missing feature\(s\) \['region'\]"),
        ([{**GOOD, "shoe_size": 42}], r"unknown feature\(s\) \['shoe_size'\]"),
        ([{**_without("senior"), "age": 70}], "missing.*'senior'.*unknown.*'age'"),
        ([{**GOOD, "contract": "two years"}], "'contract': 'two years' is not a number"),
        ([{**GOOD, "contract": None}], "'contract': None is not a number"),
        ([{**GOOD, "senior": True}], "'senior': True is not a number"),
        ([{**GOOD, "tenure_months": float("nan")}], "not a finite number"),
        ([{**GOOD, "tenure_months": float("inf")}], "not a finite number"),
        ([{**GOOD, "tenure_months": 10**400}], "not a finite number"),
    ],
)
def test_bad_rows_get_a_clear_error(rows, message):
    with pytest.raises(InvalidInputError, match=message):
        validate_rows(rows, FEATURES)


def test_bad_dataframes_get_a_clear_error():
    frame = pd.DataFrame([GOOD])
    with pytest.raises(InvalidInputError, match=r"missing feature\(s\) \['region'\]"):
        validate_rows(frame.drop(columns="region"), FEATURES)
    with pytest.raises(InvalidInputError, match="no rows"):
        validate_rows(frame.iloc[:0], FEATURES)
    with pytest.raises(InvalidInputError, match="non-numeric"):
        validate_rows(frame.assign(region="east"), FEATURES)
    with pytest.raises(InvalidInputError, match="NaN"):
        validate_rows(frame.assign(region=np.nan), FEATURES)


def test_good_rows_become_an_ordered_float_frame():
    out = validate_rows([dict(reversed(list(GOOD.items()))), {**GOOD, "region": 3}], FEATURES)
    assert list(out.columns) == FEATURES and out.shape == (2, 12)
    assert out["region"].tolist() == [1.0, 3.0]


def test_bad_input_is_a_persist_error_and_the_server_keeps_serving(two_versions):
    reg, X, _ = two_versions
    server = pl.ModelServer(reg)
    with pytest.raises(InvalidInputError, match=r"row 0 has missing feature\(s\).*unknown feature\(s\) \['nope'\]"):
        server.predict([{"nope": 1}])
    assert issubclass(InvalidInputError, pl.PersistError)
    assert server.predict(X.iloc[:1]).version == "1.0.0"


# --------------------------------------------------------------------------- HotSwapConsole


@pytest.fixture()
def drawn(monkeypatch):
    """The matplotlib Figures the hot-swap console draws, kept to look inside."""
    import persistlib.widgets._version_chart as chart_module

    figures = []
    real = chart_module.figure_png
    monkeypatch.setattr(chart_module, "figure_png", lambda fig: (figures.append(fig), real(fig))[1])
    return figures


def test_before_any_request_the_chart_says_how_to_fill_it(two_versions, drawn):
    reg, X, _ = two_versions
    console = pl.HotSwapConsole(pl.ModelServer(reg), rows=X.iloc[:1].to_dict("records"), swap_to=["2.0.0"])
    console.refresh_chart()
    [ax] = drawn[-1].axes
    assert not ax.axison, "no empty axes"
    [text] = ax.texts
    assert text.get_text().startswith("No requests yet.") and "Start load" in text.get_text()
    console.swap_button.click()
    console.refresh_chart()
    assert drawn[-1].axes[0].texts[0].get_text().startswith("1 swap so far, no requests yet.")
    assert console.chart.layout.display is None and bytes(console.chart.value).startswith(b"\x89PNG")


def test_the_chart_shows_every_request_swap_and_version(two_versions, drawn):
    reg, X, _ = two_versions
    console = pl.HotSwapConsole(pl.ModelServer(reg), rows=X.iloc[:1].to_dict("records"), swap_to=["2.0.0"])
    # requests long after the console was created, as in a lesson: the view starts where they do
    console.timeline[:] = [(30.0, "1.0.0"), (30.5, None), (31.5, "2.0.0"), (32.0, "2.0.0")]
    console.swaps[:] = [(31.0, "2.0.0")]
    console.refresh_chart()
    [ax] = drawn[-1].axes
    left, right = ax.get_xlim()
    assert 29.0 < left < 30.0 and 32.0 < right < 33.0, "every request and swap in view, little else"
    low, high = ax.get_ylim()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["error", "v1.0.0", "v2.0.0"]
    assert low < -1 and high > 1, "the error row and both versions' rows in view"
    assert [line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == "--"] == [31.0]
    assert ax.get_title() == "4 requests · 1 error · dashed line = swap"


def test_hot_swap_console_driven_from_python(two_versions, wait_until):
    reg, X, _ = two_versions
    server = pl.ModelServer(reg)
    console = pl.HotSwapConsole(server, rows=X.iloc[:1].to_dict("records"), swap_to=["2.0.0", "1.0.0"])
    assert repr(console) == "<HotSwapConsole: v1.0.0, stopped, 0 errors>"
    assert "persistlib-hotswap" in console._dom_classes
    assert console.chart.layout.display == "none", "no broken-image icon before the first drawing"
    console.start()
    try:
        wait_until(lambda: console.requests >= 20, "20 requests before the swap")
        console.swap_button.click()
        assert server.version == "2.0.0" and console.status.value.startswith("✓ swap: now serving v2.0.0")
        n = console.requests
        wait_until(lambda: console.requests >= n + 20, "20 more requests after the swap")
    finally:
        console.stop()
    assert not console.running
    assert console.errors == 0 and console.errors_label.value == "errors: 0"
    assert console.versions_seen == ["1.0.0", "2.0.0"]
    assert console.requests_label.value == f"requests: {console.requests}"
    assert console.version_label.value == "serving: v2.0.0"
    # A clean step: once 2.0.0 answered, 1.0.0 never answered again.
    versions = [v for _, v in console.timeline]
    first_new = versions.index("2.0.0")
    assert set(versions[first_new:]) == {"2.0.0"}
    assert bytes(console.chart.value).startswith(b"\x89PNG") and console.chart.layout.display is None
    console.rollback_button.click()
    assert server.version == "1.0.0" and "rollback: now serving v1.0.0" in console.status.value


def test_hot_swap_console_reports_a_failed_swap_and_counts_errors(two_versions, wait_until):
    reg, _, _ = two_versions
    server = pl.ModelServer(reg)
    console = pl.HotSwapConsole(server, rows=[{"bad": 1}], swap_to="9.9.9")
    console.swap_button.click()
    assert console.status.value.startswith("✗ swap failed, still serving v1.0.0")
    console.start()
    try:
        wait_until(lambda: console.requests >= 3, "3 requests")
    finally:
        console.stop()
    assert console.errors == console.requests >= 3 and "missing feature" in console.last_error
    with pytest.raises(TypeError, match="ModelServer or an http"):
        pl.HotSwapConsole(42)


# --------------------------------------------------------------------------- helpers and snapshots


def test_as_labels_turns_any_label_container_into_plain_scalars():
    from persistlib.serving import as_labels

    y = pd.Series([1, 0, 1], index=[10, 11, 12], dtype="int64")
    assert as_labels(y) == [1, 0, 1] and all(type(v) is int for v in as_labels(y))
    assert as_labels(y.iloc[:2]) == [1, 0]
    assert as_labels(np.array([0, 1])) == [0, 1] and type(as_labels(np.array([0, 1]))[0]) is int
    assert as_labels(np.int64(1)) == [1] and type(as_labels(np.int64(1))[0]) is int
    assert as_labels(np.array(1)) == [1]
    assert as_labels((True, False)) == [True, False]
    assert as_labels("yes") == ["yes"] and as_labels(0.5) == [0.5]
    assert as_labels([np.float64(0.5), 1]) == [0.5, 1]
    for bad, words in [
        (None, "None"),
        ({"a": 1}, "dict"),
        (np.zeros((2, 2)), "one-dimensional"),
        (pd.DataFrame({"y": [1]}), "one-dimensional"),
        ([[1, 2]], "single value"),
    ]:
        with pytest.raises(ArgumentTypeError, match=words):
            as_labels(bad)
    with pytest.raises(InvalidArgumentError, match="no label"):
        as_labels([])


def test_snapshot_reads_the_state_once(two_versions):
    reg, _, _ = two_versions
    server = pl.ModelServer(reg)
    server.swap("2.0.0")
    snap = server.snapshot()
    assert (snap.version, snap.previous_version) == ("2.0.0", "1.0.0")
    card = reg.card("2.0.0")
    assert snap.artifact_sha256 == card.artifact_sha256 and snap.trained_at == card.trained_at
    assert snap.features == tuple(FEATURES) and snap.ab is None
    assert snap.to_dict()["features"] == FEATURES

    class SwapsBetweenReads(pl.ModelServer):
        """Each look at the state after the first one sees the other model: a concurrent swap."""

        @property
        def _state(self):
            self.reads += 1
            return self._states[min(self.reads - 1, 1)]

        @_state.setter
        def _state(self, value):
            self._states = [value, None]

    racy = SwapsBetweenReads.__new__(SwapsBetweenReads)
    racy.reads = 0
    racy._state = server._state
    racy._states[1] = type(server._state)(current=server._state.previous, previous=server._state.current)
    snap = racy.snapshot()
    assert racy.reads == 1
    assert (snap.version, snap.previous_version, snap.artifact_sha256) == ("2.0.0", "1.0.0", card.artifact_sha256)


def test_swap_snapshot_and_rollback_snapshot_return_the_state_they_installed(two_versions):
    reg, _, _ = two_versions
    server = pl.ModelServer(reg)
    with pytest.raises(pl.RollbackError, match="no previous version"):
        server.rollback_snapshot()
    snap = server.swap_snapshot("2.0.0")
    assert isinstance(snap, ServerSnapshot)
    assert (snap.version, snap.previous_version) == ("2.0.0", "1.0.0") and snap == server.snapshot()
    assert server.swap_snapshot("2.0.0") == snap  # already serving: nothing changes
    back = server.rollback_snapshot()
    assert (back.version, back.previous_version) == ("1.0.0", "2.0.0") and server.version == "1.0.0"
    assert server.swap("2.0.0") == "2.0.0" and server.rollback() == "1.0.0"  # the str-returning wrappers


def test_server_record_outcome_feeds_the_router_and_the_audit_log(two_versions, tmp_path):
    reg, X, _ = two_versions
    y = pd.Series([0, 1, 1], index=[5, 6, 7])
    with pl.AuditLog(tmp_path / "a.sqlite") as audit:
        server = pl.ModelServer(reg, audit=audit)
        before = server.predict(X.iloc[:1], user_id="u-0")  # made before the A/B test started
        router = pl.ABRouter({"1.0.0": 1, "2.0.0": 1})
        server.route(router)
        p = server.predict(X.iloc[:3], user_id="u-1")
        assert server.record_outcome(p.request_id, y) == (p.labels == [0, 1, 1])
        assert router.metrics()[p.arm]["outcomes"] == 3
        assert server.record_outcome(before.request_id, 1) is None  # not routed: the audit log only
        with pytest.raises(InvalidArgumentError, match="3 row"):
            server.record_outcome(server.predict(X.iloc[:3], user_id="u-2").request_id, [1])
        audit.flush()
        assert audit.get(p.request_id)["outcome"] == [0, 1, 1]
        assert audit.get(before.request_id)["outcome"] == [1]
    bare = pl.ModelServer(reg)
    with pytest.raises(InvalidArgumentError, match="nowhere to go"):
        bare.record_outcome("req-0", 1)
    bare.route(pl.ABRouter({"1.0.0": 1}))
    q = bare.predict(X.iloc[:1], user_id="u")
    assert bare.record_outcome(q.request_id, q.labels) is True


# --------------------------------------------------------------------------- HotSwapConsole logic


def test_first_swap_click_changes_the_version_with_default_refs(two_versions):
    reg, X, _ = two_versions
    server = pl.ModelServer(reg)  # serving 1.0.0, which is registry.versions()[0]
    console = pl.HotSwapConsole(server, rows=X.iloc[:1].to_dict("records"))
    console.swap_button.click()
    assert server.version == "2.0.0", console.status.value
    console.swap_button.click()
    assert server.version == "1.0.0"


def test_clean_step_is_computed_from_the_timeline(two_versions):
    reg, X, _ = two_versions
    console = pl.HotSwapConsole(pl.ModelServer(reg), rows=X.iloc[:1].to_dict("records"))
    assert not console.clean_step  # nothing answered yet
    console.timeline = [(0.1, "1.0.0"), (0.2, "1.0.0"), (0.3, "2.0.0"), (0.4, "2.0.0")]
    assert console.clean_step  # one change, even with no press on this console (a swap elsewhere)
    console.timeline = [(0.1, "1.0.0"), (0.2, "2.0.0"), (0.3, "1.0.0"), (0.4, "2.0.0")]
    assert not console.clean_step  # flip-flop after a single swap
    console.swaps = [(0.15, "2.0.0"), (0.25, "1.0.0"), (0.35, "2.0.0")]
    assert console.clean_step  # three presses explain three changes
    console.timeline = [(0.1, "1.0.0"), (0.2, None), (0.3, "2.0.0")]
    assert not console.clean_step  # an error is never clean


def test_wait_returns_once_the_load_sent_that_many_more_requests(two_versions):
    reg, X, _ = two_versions
    console = pl.HotSwapConsole(pl.ModelServer(reg), rows=X.iloc[:1].to_dict("records"), interval=0)
    with pytest.raises(ConsoleWaitError, match=r"not running: call start\(\) before wait\(\)"):
        console.wait(1)
    console.start()
    try:
        for n in (1, 25):
            before = console.requests
            console.wait(n)
            assert console.requests >= before + n
        for bad in (0, -1, 1.5, True):
            with pytest.raises(PersistError, match="requests"):
                console.wait(bad)
        for bad in (0, -1, float("inf"), 1e12):  # 0 could only fail; above TIMEOUT_MAX, Condition.wait would
            with pytest.raises(InvalidArgumentError, match="timeout"):
                console.wait(1, timeout=bad)
    finally:
        console.stop()


def _hung_console(two_versions) -> tuple[pl.HotSwapConsole, threading.Event]:
    """A console whose server answers one request, then hangs in the second until the event is set."""
    reg, X, _ = two_versions
    server = pl.ModelServer(reg)
    console = pl.HotSwapConsole(server, rows=X.iloc[:1].to_dict("records"), interval=0)
    release, answer = threading.Event(), server.predict

    def predict(rows):
        if console.requests >= 1:
            release.wait(30)
        return answer(rows)

    server.predict = predict
    return console, release


def _waiting_for_5(console, wait_until) -> tuple[threading.Thread, list[Exception]]:
    """A thread inside ``console.wait(5, timeout=60)`` (returned once it waits), and the errors it raises."""
    raised: list[Exception] = []

    def waiter():
        try:
            console.wait(5, timeout=60)
        except ConsoleWaitError as e:
            raised.append(e)

    waiting = threading.Thread(target=waiter)
    waiting.start()
    wait_until(lambda: console._sent._waiters, "wait() waiting")
    return waiting, raised


def test_wait_on_a_hung_server_names_the_timeout(two_versions, wait_until):
    console, release = _hung_console(two_versions)
    console.start()
    try:
        wait_until(lambda: console.requests == 1, "the first request")
        with pytest.raises(ConsoleWaitError, match=r"waited for 3 requests, 3 still missing: 0.05 s passed\.$"):
            console.wait(3, timeout=0.05)
    finally:
        release.set()
        console.stop()


def test_wait_returns_when_the_load_stops_and_says_so(two_versions, wait_until):
    console, release = _hung_console(two_versions)
    console.start()
    wait_until(lambda: console.requests == 1, "the first request")  # the second one hangs
    waiting, raised = _waiting_for_5(console, wait_until)
    console.stop(timeout=0.05)  # the load is still stuck in its second request
    waiting.join(30)  # stop() wakes it: it must not sit out its 60 s
    assert not waiting.is_alive(), "wait() did not return when the load was stopped"
    assert console.running and console.requests == 1
    release.set()
    console.stop()
    assert [str(e) for e in raised] == ["waited for 5 requests, 5 still missing: the load was stopped."]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the SystemExit below
def test_wait_returns_when_the_load_thread_ends_on_its_own(two_versions, wait_until):
    console, release = _hung_console(two_versions)
    console.start()
    wait_until(lambda: console.requests == 1, "the first request")  # the second one hangs

    def end_the_thread(rows):
        raise SystemExit  # ends the load thread quietly, as nothing else can: every Exception is counted

    waiting, raised = _waiting_for_5(console, wait_until)
    console._server.predict = end_the_thread
    release.set()  # the hung request answers; the next one ends the thread
    waiting.join(30)
    assert not waiting.is_alive(), "wait() did not return when the load thread ended"
    assert not console._stop.is_set() and console.requests == 2
    assert [str(e) for e in raised] == ["waited for 5 requests, 4 still missing: the load ended (last error: None)."]
    console._thread.join(10)  # its end is reported inside this test


def test_a_label_update_that_fails_does_not_end_the_load(two_versions, wait_until):
    reg, X, _ = two_versions
    console = pl.HotSwapConsole(pl.ModelServer(reg), rows=X.iloc[:1].to_dict("records"), interval=0)

    def server_down():
        raise ConnectionError("server down")

    console._update_labels = server_down  # over HTTP, the version label asks the server, which may be gone
    console.start()
    try:
        wait_until(lambda: console.last_error == "ConnectionError('server down')", "the failed update recorded")
        console.wait(5)  # the load goes on
        assert console.running
    finally:
        console._update_labels = lambda: None
        console.stop()


def test_stop_keeps_a_load_thread_that_did_not_finish_and_says_so(two_versions):
    reg, X, _ = two_versions
    console = pl.HotSwapConsole(pl.ModelServer(reg), rows=X.iloc[:1].to_dict("records"))
    release = threading.Event()
    hung = threading.Thread(target=release.wait, args=(10,), daemon=True)
    hung.start()
    console._thread = hung  # a load thread stuck in a request
    console.stop(timeout=0.05)
    assert console.running and console._thread is hung
    assert "still busy" in console.status.value
    release.set()
    console.stop()
    assert not console.running and console.status.value.startswith("stopped")


def test_next_ref_never_picks_the_version_already_serving():
    from persistlib.widgets.serving import next_ref

    refs = ["1.0.0", "2.0.0", "3.0.0"]
    assert next_ref("1.0.0", refs) == "2.0.0"  # not refs[0], which is what is serving
    assert next_ref("2.0.0", refs) == "3.0.0"
    assert next_ref("3.0.0", refs) == "1.0.0"  # wraps around
    assert next_ref("9.0.0", refs) == "1.0.0"  # unknown current: start at the beginning
    assert next_ref("2.0.0", "1.0.0") == "1.0.0"
    aliases = {"production": "1.0.0", "candidate": "2.0.0"}

    def resolve(ref):
        if ref == "broken":
            raise pl.VersionNotFoundError("no such ref")
        return aliases.get(ref, ref)

    assert next_ref("1.0.0", ["production", "candidate"], resolve) == "candidate"
    assert next_ref("2.0.0", ["production", "candidate"], resolve) == "production"
    assert next_ref("1.0.0", ["production", "broken"], resolve) == "broken"  # the swap reports it
    with pytest.raises(InvalidArgumentError, match="already serving"):
        next_ref("1.0.0", ["1.0.0", "production"], resolve)
    with pytest.raises(InvalidArgumentError, match="no version to swap to"):
        next_ref("1.0.0", [])


def test_chart_sorts_versions_numerically_and_aliases_last():
    from persistlib.versions import version_sort_key

    assert sorted(["10.0.0", "2.0.0", "v1.10.0", "1.9.0", "canary"], key=version_sort_key) == [
        "1.9.0",
        "v1.10.0",
        "2.0.0",
        "10.0.0",
        "canary",
    ]


# --------------------------------------------------------------------------- predict's fields, regressors, A/B arms


def test_predict_reports_its_latency_in_milliseconds_and_a_64_bit_request_id(two_versions, monkeypatch):
    import re
    from types import SimpleNamespace

    from persistlib.serving import server as server_module

    reg, X, _ = two_versions
    server = pl.ModelServer(reg)
    clock = iter([100.0, 100.25])  # predict reads the clock when it starts and once the answer is ready
    monkeypatch.setattr(server_module, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    p = server.predict(X.iloc[:2])
    assert p.latency_ms == pytest.approx(250.0)
    assert re.fullmatch(r"req-[0-9a-f]{16}", p.request_id), p.request_id


def test_a_regressor_is_served_with_numbers_and_no_probabilities(tmp_path):
    from sklearn.linear_model import LinearRegression

    X, y = pl.make_churn(200, random_state=0)
    model = LinearRegression().fit(X, y.astype(float))
    reg = pl.Registry(tmp_path / "r")
    reg.save(model, version="1.0.0")
    reg.promote("1.0.0")
    p = pl.ModelServer(reg).predict(X.iloc[:3])
    assert p.probabilities is None
    np.testing.assert_allclose(p.labels, model.predict(X.iloc[:3]))


def test_a_model_that_cannot_score_the_all_zero_warm_up_row_is_not_served():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from persistlib.errors import UnservableModelError

    X, y = pl.make_churn(200, random_state=0)
    logged = make_pipeline(FunctionTransformer(np.log), LogisticRegression(max_iter=500)).fit(X.abs() + 1, y)
    with np.errstate(divide="ignore"), pytest.raises(UnservableModelError, match="v1.0.0 failed its warm-up"):
        pl.ModelServer(DictRegistry({"1.0.0": logged}))  # log(0) is -inf: the model cannot score zeros


def test_without_a_user_id_a_routed_request_gets_an_arm_of_its_own(two_versions):
    reg, X, _ = two_versions
    server = pl.ModelServer(reg)
    router = pl.ABRouter({"1.0.0": 1, "2.0.0": 1})
    server.route(router)
    arms = {server.predict(X.iloc[:1]).arm for _ in range(40)}
    assert arms == {"1.0.0", "2.0.0"}  # each anonymous request is placed by its own request_id
    assert router.metrics()["1.0.0"]["requests"] + router.metrics()["2.0.0"]["requests"] == 40


def test_route_reuses_the_model_in_memory_and_stopping_the_test_frees_the_other_arm(two_versions):
    import gc
    import weakref

    reg, X, _ = two_versions

    class Watching:
        """Counts loads and keeps a weak reference to every model it hands out."""

        def __init__(self, inner):
            self.inner, self.loaded = inner, []

        def load(self, ref):
            model, card = self.inner.load(ref)
            self.loaded.append((card.version, weakref.ref(model)))
            return model, card

        def __getattr__(self, name):
            return getattr(self.inner, name)

    watching = Watching(reg)
    server = pl.ModelServer(watching)  # serves 1.0.0
    server.route(pl.ABRouter({"1.0.0": 1, "2.0.0": 1}))
    assert [v for v, _ in watching.loaded] == ["1.0.0", "2.0.0"]  # 1.0.0 was already in memory
    server.route(None)
    gc.collect()
    [arm_model] = [r for v, r in watching.loaded if v == "2.0.0"]
    assert arm_model() is None  # the test is over: the 2.0.0 arm no longer holds memory
    assert server.predict(X.iloc[:1]).version == "1.0.0"


def test_audit_problem_says_the_log_is_closed(two_versions, tmp_path):
    reg, _, _ = two_versions
    log = pl.AuditLog(tmp_path / "a.sqlite")
    server = pl.ModelServer(reg, audit=log, audit_policy="best-effort")
    assert server.audit_problem() is None
    log.close()
    assert server.audit_problem() == "the audit log is closed"
    assert pl.ModelServer(reg).audit_problem() is None  # no audit log, no problem


# --------------------------------------------------------------------------- a swap steps aside for requests
# Unpickling holds the GIL, so a request that needs it back would queue behind the loading thread. A swap
# loads in slices: after each one it sleeps until the last running request has left (at most
# _STEP_ASIDE_MAX), and once more before its warm-up. The clock and the event are faked, so nothing here
# depends on the machine's speed; one test runs real threads.


class _Clock:
    """Stands in for the server module's ``time``: only ``perf_counter``, which the test moves."""

    def __init__(self):
        self.now = 100.0

    def perf_counter(self):
        return self.now


class _Idle:
    """Stands in for the server's idle event: ``wait`` notes its timeout, runs a hook, moves the clock."""

    def __init__(self, clock):
        self.clock = clock
        self.waits: list[float] = []
        self.during_wait = None  # if set, runs inside wait(): a request leaving, say
        self.during_clear = None  # if set, runs inside clear()
        self.is_set = False

    def clear(self):
        self.is_set = False
        if self.during_clear is not None:
            self.during_clear()

    def set(self):
        self.is_set = True

    def wait(self, timeout):
        self.waits.append(timeout)
        if self.during_wait is not None:
            self.during_wait()
        if not self.is_set:
            self.clock.now += timeout  # nobody woke it: it slept the whole timeout
        return self.is_set


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
    server._idle = _Idle(clock)
    return server, clock


def _leave(server, ident):
    """What the end of predict() does for a request that leaves."""
    server._running.discard(ident)
    if server._load_waiting and not server._running:
        server._idle.set()


def test_no_request_running_means_no_waiting(served):
    server, clock = served
    server._step_aside(now=True)
    assert server._idle.waits == []
    assert server._slice_started == clock.now


def test_it_sleeps_until_the_last_request_leaves(served):
    server, clock = served
    server._running.update({1, 2})  # two requests running in other threads
    left = []

    def first_then_second_leave():
        assert server._load_waiting, "the requests can see that a load waits for them"
        _leave(server, 1)
        left.append(server._idle.is_set)
        _leave(server, 2)
        left.append(server._idle.is_set)

    server._idle.during_wait = first_then_second_leave
    server._step_aside(now=True)
    assert left == [False, True], "the first one out leaves the load asleep, the last one wakes it"
    assert server._idle.waits == [server_module._STEP_ASIDE_MAX], "one sleep, bounded by the cap"
    assert not server._load_waiting, "no request sets the event once the load goes on"
    assert server._slice_started == clock.now, "a new slice of loading starts after the pause"


def test_it_never_sleeps_longer_than_the_cap(served):
    server, clock = served
    server._running.add(12345)  # a request that never ends
    server._step_aside(now=True)
    assert server._idle.waits == [server_module._STEP_ASIDE_MAX]
    assert server._slice_started == clock.now, "after the cap, the next slice of loading starts"


def test_a_stale_wake_up_does_not_skip_the_next_pause(served):
    server, _ = served
    server._idle.set()  # left over from an earlier pause
    server._running.add(12345)
    server._step_aside(now=True)
    assert server._idle.waits == [server_module._STEP_ASIDE_MAX], "the event was cleared before sleeping on it"


def test_a_request_that_leaves_before_the_load_says_it_waits_costs_no_sleep(served):
    server, _ = served
    server._running.add(12345)
    server._idle.during_clear = lambda: _leave(server, 12345)  # it leaves unseen: no load is waiting yet
    server._step_aside(now=True)
    assert server._idle.waits == [], "the load looked again before sleeping, and found no request"
    assert not server._idle.is_set


def test_within_a_slice_of_loading_it_does_not_stop(served):
    server, clock = served
    server._running.add(12345)
    server._slice_started = clock.now
    clock.now += server_module._LOAD_SLICE / 2
    server._step_aside()
    assert server._idle.waits == [], "half a slice in: keep loading"
    clock.now += server_module._LOAD_SLICE
    server._step_aside()
    assert server._idle.waits, "a slice done and a request running: step aside"


def test_a_slice_of_exactly_the_slice_length_is_done(served):
    server, clock = served
    server._running.add(12345)
    clock.now = 0.0
    server._slice_started = 0.0
    clock.now = server_module._LOAD_SLICE  # exactly one slice of loading since it began
    server._step_aside()
    assert server._idle.waits, "a whole slice done: step aside"


def test_a_request_that_leaves_wakes_a_real_sleeping_load(tmp_path, monkeypatch):
    X, y = pl.make_churn(300, random_state=0)
    registry = pl.Registry(tmp_path / "registry")
    registry.save(RandomForestClassifier(3, random_state=0).fit(X, y))
    registry.promote("1.0.0")
    server = pl.ModelServer(registry)
    monkeypatch.setattr(server_module, "_STEP_ASIDE_MAX", 600.0)  # only the request can wake it in time
    inside, release = threading.Event(), threading.Event()
    model = server._state.current.model
    real = model.predict_proba

    def slow(X):
        inside.set()
        assert release.wait(10), "the test never released the request"
        return real(X)

    model.predict_proba = slow
    request = threading.Thread(target=server.predict, args=([dict.fromkeys(server.features, 1.0)],), daemon=True)
    request.start()
    assert inside.wait(10), "the request never started"
    load = threading.Thread(target=server._step_aside, kwargs={"now": True}, daemon=True)
    load.start()
    for _ in range(1000):  # until the load sleeps, at most 10 s
        if server._load_waiting:
            break
        time.sleep(0.01)
    assert server._load_waiting, "the load did not step aside for the running request"
    assert load.is_alive()
    release.set()
    request.join(10)
    load.join(10)
    assert not load.is_alive(), "the request left, and the load slept on"
    assert not server._load_waiting and server._running == set()


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


def test_a_request_sets_the_event_only_when_a_load_waits_and_it_is_the_last(served):
    server, _ = served
    row = [dict.fromkeys(server.features, 1.0)]
    server.predict(row)
    assert not server._idle.is_set, "no load waits: the request leaves without a word"
    server._load_waiting = True
    server._running.add(12345)  # another request still running
    server.predict(row)
    assert not server._idle.is_set, "not the last one out"
    server._running.discard(12345)
    server.predict(row)
    assert server._idle.is_set, "the last one out wakes the load"


def test_starting_an_ab_test_loads_its_arms_politely_too(served, monkeypatch):
    server, _ = served
    calls = []
    real = server._step_aside
    monkeypatch.setattr(server, "_step_aside", lambda now=False: (calls.append(now), real(now=now))[1])
    server.route(pl.ABRouter({"1.0.0": 0.5, "1.1.0": 0.5}))  # 1.1.0 is not in memory: it is loaded
    assert calls.count(True) == 1 and calls.count(False) > 1


def test_the_admin_token_is_none_until_http_starts(served):
    server, _ = served
    assert server.admin_token is None
