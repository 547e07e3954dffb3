"""ModelServer: predict, swap, rollback, input validation, and swaps under concurrent load."""
from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.tree import DecisionTreeClassifier

import persistlib as pl
from persistlib.card import ModelCard
from persistlib.serving import InvalidInputError, validate_rows

FEATURES = list(pl.CHURN_FEATURES)


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


def test_rollback_before_any_swap_is_refused(two_versions):
    with pytest.raises(pl.RollbackError, match="no previous version"):
        pl.ModelServer(two_versions[0]).rollback()


def test_failed_swaps_keep_the_old_model_serving(two_versions, tmp_path):
    reg, X, _ = two_versions
    server = pl.ModelServer(reg)
    with pytest.raises(pl.VersionNotFoundError):
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
    with pytest.raises(pl.IntegrityError):
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
    """A tiny classifier whose predict_proba can be told to wait, to hold a request in flight."""

    feature_names_in_ = np.array(FEATURES, dtype=object)
    classes_ = np.array([0, 1])

    def __init__(self, answer: int):
        self.answer = answer
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def predict_proba(self, X):
        self.entered.set()
        self.release.wait(5)
        p = np.zeros((len(X), 2))
        p[:, self.answer] = 1.0
        return p


class _DictRegistry:
    """Any object honouring the Registry contract will do; this one keeps models in a dict."""

    def __init__(self, models):
        self.models = models

    def versions(self):
        return sorted(self.models)

    def aliases(self):
        return {"production": "1.0.0"}

    def resolve(self, ref):
        v = self.aliases().get(ref, ref)
        if v not in self.models:
            raise pl.VersionNotFoundError(f"no {ref!r}")
        return v

    def load(self, ref):
        v = self.resolve(ref)
        card = ModelCard(version=v, trained_at="2026-01-01T00:00:00+00:00", algorithm="Slow",
                         artifact=f"m{v}", artifact_sha256="0" * 64)
        return self.models[v], card


def test_requests_in_flight_finish_on_the_old_model():
    old, new = _SlowModel(0), _SlowModel(1)
    server = pl.ModelServer(_DictRegistry({"1.0.0": old, "2.0.0": new}))
    old.entered.clear()
    old.release.clear()
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("p", server.predict(dict.fromkeys(FEATURES, 1))))
    t.start()
    assert old.entered.wait(5)
    assert server.swap("2.0.0") == "2.0.0"  # the swap does not wait for the request in flight
    assert server.predict(dict.fromkeys(FEATURES, 1)).labels == [1]
    old.release.set()
    t.join(5)
    assert result["p"].version == "1.0.0" and result["p"].labels == [0]


def test_registry_without_the_contract_is_refused():
    with pytest.raises(TypeError, match=r"\.load\(\)"):
        pl.ModelServer(object())


def test_model_without_feature_names_is_refused(tmp_path):
    X, y = pl.make_churn(200, random_state=0)
    reg = pl.Registry(tmp_path / "r")
    reg.save(DecisionTreeClassifier(max_depth=3, random_state=0).fit(X.to_numpy(), y), version="1.0.0")
    reg.promote("1.0.0")
    with pytest.raises(InvalidInputError, match="feature_names_in_"):
        pl.ModelServer(reg)


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
            except Exception as e:  # noqa: BLE001 - any error fails the test
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


@pytest.mark.parametrize("rows, message", [
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
])
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
    with pytest.raises(pl.PersistError):
        server.predict([{"nope": 1}])
    assert server.predict(X.iloc[:1]).version == "1.0.0"


# --------------------------------------------------------------------------- HotSwapConsole


def test_hot_swap_console_driven_from_python(two_versions):
    pytest.importorskip("ipywidgets")
    reg, X, _ = two_versions
    server = pl.ModelServer(reg)
    console = pl.HotSwapConsole(server, rows=X.iloc[:1].to_dict("records"), swap_to=["2.0.0", "1.0.0"])
    assert repr(console) == "<HotSwapConsole: v1.0.0, stopped, 0 errors>"
    assert "persistlib-hotswap" in console._dom_classes
    console.start()
    try:
        deadline = time.monotonic() + 5
        while console.requests < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        console.swap_button.click()
        assert server.version == "2.0.0" and console.status.value.startswith("✓ swap: now serving v2.0.0")
        n = console.requests
        while console.requests < n + 20 and time.monotonic() < deadline:
            time.sleep(0.01)
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
    assert bytes(console.chart.value).startswith(b"\x89PNG")
    console.rollback_button.click()
    assert server.version == "1.0.0" and "rollback: now serving v1.0.0" in console.status.value


def test_hot_swap_console_reports_a_failed_swap_and_counts_errors(two_versions):
    pytest.importorskip("ipywidgets")
    reg, _, _ = two_versions
    server = pl.ModelServer(reg)
    console = pl.HotSwapConsole(server, rows=[{"bad": 1}], swap_to="9.9.9")
    console.swap_button.click()
    assert console.status.value.startswith("✗ swap failed, still serving v1.0.0")
    console.start()
    deadline = time.monotonic() + 5
    while console.requests < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    console.stop()
    assert console.errors == console.requests >= 3 and "missing feature" in console.last_error
    with pytest.raises(TypeError, match="ModelServer or an http"):
        pl.HotSwapConsole(42)
