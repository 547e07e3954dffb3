"""HTTP: FastAPI on uvicorn in a background thread, bad input, swaps under load, the CLI."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from conftest import auth
from sklearn.ensemble import RandomForestClassifier

import persistlib as pl
from persistlib.__main__ import main
from persistlib.data import CHURN_FEATURES
from persistlib.serving.background import running_servers

FEATURES = list(CHURN_FEATURES)
GOOD = dict.fromkeys(FEATURES, 1.0)


@pytest.fixture(scope="module")
def reg(two_forests):
    return two_forests[0]


@pytest.fixture()
def live(reg):
    """(ModelServer, base_url); the HTTP server is stopped, and checked stopped, afterwards."""

    def http_threads():
        return {t for t in threading.enumerate() if t.name == "persistlib-http"}

    before = http_threads()  # e.g. the module's shared server
    server = pl.ModelServer(reg)
    url = pl.start_http(server)
    try:
        yield server, url
    finally:
        pl.stop_http(url)
    assert url not in running_servers()
    assert http_threads() == before, "the server's thread is gone"


def test_predict_health_version(live):
    server, url = live
    with httpx.Client(base_url=url) as c:
        r = c.post("/predict", json={"rows": [GOOD, GOOD], "user_id": "u-1"})
        assert r.status_code == 200
        body = r.json()
        assert body.keys() == {"labels", "probabilities", "version", "request_id", "arm"}
        assert len(body["labels"]) == 2 and body["version"] == "1.0.0" and body["arm"] is None
        assert body["labels"] == server.predict([GOOD, GOOD]).labels
        assert c.get("/health").json() == {"status": "ok", "version": "1.0.0", "audit": None}
        v = c.get("/version").json()
        assert v["version"] == "1.0.0" and v["artifact_sha256"] == server.card.artifact_sha256


def test_admin_swap_and_rollback(live):
    server, url = live
    with httpx.Client(base_url=url, headers=auth(server)) as c:
        assert c.post("/admin/swap", json={"ref": "2.0.0"}).json() == {"version": "2.0.0", "previous": "1.0.0"}
        assert c.post("/predict", json={"rows": [GOOD]}).json()["version"] == "2.0.0"
        r = c.post("/admin/swap", json={"ref": "7.0.0"})
        assert r.status_code == 404 and "7.0.0" in r.json()["detail"]
        assert c.post("/admin/swap", json={"nope": 1}).status_code == 422
        assert c.post("/admin/rollback", json={}).json() == {"version": "1.0.0", "previous": "2.0.0"}


@pytest.mark.parametrize(
    "body, status, words",
    [
        (b"", 400, "empty"),
        (b"   ", 400, "empty"),
        (b'{"rows": [', 400, "not valid JSON"),
        (b"\xff\xfe", 400, "not valid JSON"),
        pytest.param(b"[" * 100_000, 400, "nested too deeply", id="deeply-nested"),
        (b"[1, 2]", 422, "JSON object"),
        (b'"rows"', 422, "JSON object"),
        (b"{}", 422, "no 'rows'"),
        (b'{"rows": {"tenure_months": 1}, "extra": 1}', 422, "unknown field"),
        (b'{"rows": "all of them"}', 422, "must be a list"),
        (b'{"rows": 5}', 422, "must be a list"),
        (b'{"rows": []}', 422, "is empty"),
        (b'{"rows": [1, 2]}', 422, "row 0 must be an object"),
        (json.dumps({"rows": [{k: v for k, v in GOOD.items() if k != "senior"}]}).encode(), 422, "missing feature"),
        (json.dumps({"rows": [{**GOOD, "zodiac": 3}]}).encode(), 422, "unknown feature"),
        (json.dumps({"rows": [{**GOOD, "contract": "monthly"}]}).encode(), 422, "not a number"),
        (json.dumps({"rows": [{**GOOD, "contract": None}]}).encode(), 422, "not a number"),
        (json.dumps({"rows": [{**GOOD, "contract": [1]}]}).encode(), 422, "not a number"),
        (b'{"rows": [{"tenure_months": NaN}]}', 422, "feature"),
        (json.dumps({"rows": [GOOD], "user_id": [1]}).encode(), 422, "user_id"),
        pytest.param(json.dumps({"rows": [GOOD], "user_id": True}).encode(), 422, "user_id", id="boolean-user_id"),
        pytest.param(json.dumps({"rows": [GOOD], "user_id": False}).encode(), 422, "user_id", id="false-user_id"),
        (json.dumps({"rows": [GOOD], "user_id": 1.5}).encode(), 422, "user_id"),
    ],
)
def test_bad_input_gets_a_4xx_naming_the_problem_and_serving_continues(http_server, body, status, words):
    _, url = http_server
    with httpx.Client(base_url=url) as c:
        r = c.post("/predict", content=body, headers={"content-type": "application/json"})
        assert r.status_code == status, r.text
        assert words in r.json()["detail"]
        assert c.post("/predict", json={"rows": [GOOD]}).status_code == 200


@pytest.mark.parametrize(
    "body",
    [b"[1, 2]", b'"2.0.0"', b"null", b"7", b"true", b'{"ref": 2}', b'{"ref": ""}', b'{"ref": ["2.0.0"]}', b"{}"],
)
def test_a_bad_admin_swap_body_is_a_422_and_nothing_moves(http_server, body):
    server, url = http_server
    headers = {"content-type": "application/json", **auth(server)}
    with httpx.Client(base_url=url) as c:
        r = c.post("/admin/swap", content=body, headers=headers)
        assert r.status_code == 422, r.text
        assert r.json()["detail"].startswith('send a JSON object {"ref": "<version or alias>"}')
        assert server.version == "1.0.0" and c.post("/predict", json={"rows": [GOOD]}).status_code == 200


def test_hammering_http_while_swapping_gives_zero_errors(live, reg):
    server, url = live
    stop = threading.Event()
    versions, failures = [], []

    def client():
        with httpx.Client(base_url=url, timeout=10) as c:
            while not stop.is_set():
                try:
                    r = c.post("/predict", json={"rows": [GOOD]})
                    if r.status_code != 200:
                        failures.append(r.status_code)
                    else:
                        versions.append(r.json()["version"])
                except httpx.HTTPError as e:
                    failures.append(repr(e))

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    with httpx.Client(base_url=url, headers=auth(server)) as admin:
        for i in range(10):
            time.sleep(0.03)
            assert admin.post("/admin/swap", json={"ref": "2.0.0" if i % 2 == 0 else "1.0.0"}).status_code == 200
    time.sleep(0.03)
    stop.set()
    for t in threads:
        t.join(10)
    assert failures == []
    assert len(versions) > 10 and set(versions) <= set(reg.versions())


def test_start_http_binds_loopback_only_and_stop_http_checks_its_argument(reg):
    with pytest.raises(ValueError, match="loopback"):
        pl.start_http(pl.ModelServer(reg), host="0.0.0.0")
    with pytest.raises(ValueError, match="no server started"):
        pl.stop_http("http://127.0.0.1:1")


# uvicorn ends its thread with SystemExit when it cannot bind; start_http turns that into the error.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_start_http_on_a_port_in_use_is_an_http_server_error(reg):
    from persistlib.errors import HttpServerError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(HttpServerError, match="failed to start") as info:
            pl.start_http(pl.ModelServer(reg), port=port)
    assert isinstance(info.value, pl.PersistError)
    assert not any(u.endswith(f":{port}") for u in running_servers())


def test_cli_refuses_a_missing_registry(tmp_path, capsys):
    assert main(["serve", "--registry", str(tmp_path / "nope")]) == 2
    assert "no registry folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["serve"])  # --registry is required
    assert info.value.code == 2 and "--registry" in capsys.readouterr().err


def _wait_for_health(url: str, proc: subprocess.Popen, timeout: float = 30) -> httpx.Response:
    """Poll ``url``/health until the CLI server in ``proc`` answers; fail if it dies or never does."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(f"{url}/health", timeout=1)
        except httpx.TransportError:
            assert proc.poll() is None, "the CLI server exited before it answered"
            assert time.monotonic() < deadline, "the CLI server did not start"
            time.sleep(0.1)


def test_hot_swap_console_over_http(live, wait_until):
    server, url = live
    console = pl.HotSwapConsole(url, rows=[GOOD], swap_to=["2.0.0"])
    assert repr(console) == "<HotSwapConsole: v1.0.0, stopped, 0 errors>"
    console.start()
    try:
        wait_until(lambda: console.requests >= 10, "10 requests before the swap")
        console.swap_button.click()
        assert server.version == "2.0.0"
        n = console.requests
        wait_until(lambda: console.requests >= n + 10, "10 more requests after the swap")
    finally:
        console.stop()
    assert console.errors == 0 and console.versions_seen == ["1.0.0", "2.0.0"]
    console.rollback_button.click()
    assert server.version == "1.0.0" and console.version_label.value == "serving: v1.0.0"
    with pytest.raises(ValueError, match="rows="):
        pl.HotSwapConsole(url)


def test_admin_swap_to_a_tampered_artefact_is_a_409_and_the_old_model_keeps_serving(tmp_path):
    X, y = pl.make_churn(300, random_state=5)
    reg = pl.Registry(tmp_path / "r")
    for v in ("1.0.0", "1.1.0"):
        reg.save(RandomForestClassifier(n_estimators=2, random_state=0).fit(X, y), version=v)
    reg.promote("1.0.0")
    art = reg.root / "model_v1.1.0.pkl"
    art.write_bytes(art.read_bytes() + b"tampered")
    url = pl.start_http(server := pl.ModelServer(reg))
    try:
        with httpx.Client(base_url=url, headers=auth(server)) as c:
            r = c.post("/admin/swap", json={"ref": "1.1.0"})
            assert r.status_code == 409 and "still serving v1.0.0" in r.json()["detail"]
            assert c.post("/predict", json={"rows": [GOOD]}).json()["version"] == "1.0.0"
            r = c.post("/admin/rollback", json={})
            assert r.status_code == 409 and "no previous version" in r.json()["detail"]
    finally:
        pl.stop_http(url)


def test_start_http_serves_a_model_server_and_stop_http_stops_it(tmp_path):
    import httpx
    from sklearn.tree import DecisionTreeClassifier

    X, y = pl.make_churn(300, random_state=0)
    reg = pl.Registry(tmp_path / "reg")
    reg.promote(reg.save(DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)).version)
    server = pl.ModelServer(reg)
    url = pl.start_http(server, port=0)
    try:
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/version").json()["version"] == "1.0.0"
        answer = httpx.post(f"{url}/predict", json={"rows": X.head(2).to_dict("records")}).json()
        assert answer["version"] == "1.0.0" and len(answer["labels"]) == 2
    finally:
        assert pl.stop_http(url) == [url]
    assert url not in running_servers()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", timeout=1)


class _HeldLoads:
    """Wraps a registry; while ``hold`` is set, load() signals ``loading`` and waits for ``release``."""

    def __init__(self, inner):
        self.inner, self.hold = inner, False
        self.loading, self.release = threading.Event(), threading.Event()

    def load(self, ref):
        if self.hold:
            self.loading.set()
            assert self.release.wait(30), "the test never released the load"
        return self.inner.load(ref)

    def __getattr__(self, name):
        return getattr(self.inner, name)


class _WatchedLock:
    """A lock that says when someone has to wait for it (``contended`` is set before they block)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.contended = threading.Event()

    def __enter__(self):
        if not self._lock.acquire(blocking=False):
            self.contended.set()
            self._lock.acquire()
        return self

    def __exit__(self, *exc):
        self._lock.release()


def test_health_answers_while_a_rollback_waits_for_a_slow_swap(reg):
    """/health is answered while a rollback provably waits for the swap lock that a slow swap holds."""
    held = _HeldLoads(reg)
    server = pl.ModelServer(held)
    server.swap("2.0.0")  # now there is something to roll back to
    server._swap_lock = lock = _WatchedLock()
    url = pl.start_http(server)
    results = {}

    def post(name, path, body):
        results[name] = httpx.post(f"{url}{path}", json=body, headers=auth(server), timeout=30)

    swap = threading.Thread(target=post, args=("swap", "/admin/swap", {"ref": "1.0.0"}))
    rollback = threading.Thread(target=post, args=("rollback", "/admin/rollback", {}))
    try:
        held.hold = True
        swap.start()
        assert held.loading.wait(10), "the swap never started loading"  # it holds the swap lock now
        rollback.start()
        assert lock.contended.wait(10), "the rollback never waited for the swap lock"
        health = httpx.get(f"{url}/health", timeout=10)
        assert health.status_code == 200 and health.json()["version"] == "2.0.0"
        # /health was answered while both admin requests were still stuck behind the held load:
        assert not held.release.is_set() and swap.is_alive() and rollback.is_alive() and results == {}
    finally:
        held.release.set()
        for t in (swap, rollback):
            if t.ident is not None:
                t.join(30)
        held.hold = False
        pl.stop_http(url)
    assert results["swap"].json() == {"version": "1.0.0", "previous": "2.0.0"}
    assert results["rollback"].json() == {"version": "2.0.0", "previous": "1.0.0"}


def test_version_reads_one_snapshot_even_if_a_swap_lands_between_reads(reg):
    server = pl.ModelServer(reg)
    server.swap("2.0.0")
    before, after = server._state, type(server._state)(current=server._state.previous, previous=server._state.current)

    class Racy(pl.ModelServer):
        """Every look at the state after the first sees a rollback that happened meanwhile."""

        @property
        def _state(self):
            self.reads = getattr(self, "reads", 0) + 1
            return before if self.reads == 1 else after

        @_state.setter
        def _state(self, value):
            pass

    racy = Racy.__new__(Racy)
    racy.registry, racy.audit, racy.audit_policy = reg, None, "fail-closed"
    url = pl.start_http(racy)
    racy.reads = 0  # building the app read the features once (for its OpenAPI schema)
    try:
        v = httpx.get(f"{url}/version").json()
        card = reg.card(v["version"])
        assert (v["version"], v["previous"]) == ("2.0.0", "1.0.0")
        assert v["artifact_sha256"] == card.artifact_sha256 and v["trained_at"] == card.trained_at
        racy.reads = 0
        assert httpx.get(f"{url}/health").json() == {"status": "ok", "version": "2.0.0", "audit": None}
    finally:
        pl.stop_http(url)


def test_cli_serves_a_registry_on_the_port_it_prints(reg):
    """The server binds port 0 itself and prints the port it got: no free-port race."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "persistlib", "serve", "--registry", str(reg.root), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line and not line.rstrip().endswith(":0"), line
        url = line.rstrip().rsplit(" ", 1)[1]
        r = _wait_for_health(url, proc)
        assert r.json() == {"status": "ok", "version": "1.0.0", "audit": None}
        assert httpx.post(f"{url}/predict", json={"rows": [GOOD]}).json()["version"] == "1.0.0"
    finally:
        proc.terminate()
        proc.wait(10)


def test_cli_serve_freezes_its_start_up_objects_before_serving(reg, monkeypatch, capsys):
    # A full garbage collection walks every tracked object while requests wait; `serve` takes the start-up
    # objects (the imports, the ModelServer and its model) out of its reach before the first request.
    import gc

    import uvicorn

    from persistlib.serving import ModelServer

    seen = {}

    def run(self, sockets=None):
        tracked = gc.get_objects()  # the frozen generation is not listed
        seen["server tracked"] = any(isinstance(o, ModelServer) for o in tracked)
        seen["frozen"] = gc.get_freeze_count()

    monkeypatch.setattr(uvicorn.Server, "run", run)
    gc.unfreeze()
    try:
        assert main(["serve", "--registry", str(reg.root), "--port", "0"]) == 0
    finally:
        gc.freeze()  # as the test process was (conftest)
    assert seen["server tracked"] is False and seen["frozen"] > 10_000, seen
    assert "serving v1.0.0" in capsys.readouterr().out


def test_cli_reports_a_bad_audit_path_without_a_traceback(reg, tmp_path, capsys):
    assert main(["serve", "--registry", str(reg.root), "--audit", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --audit") and "is a folder" in err and "Traceback" not in err


def test_cli_reports_a_port_in_use(reg, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["serve", "--registry", str(reg.root), "--port", str(port)]) == 2
    assert "cannot listen on 127.0.0.1:" in capsys.readouterr().err
