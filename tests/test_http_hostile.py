"""HTTP under attack: every bad request gets a 4xx, and the admin API answers only its owner.

Each test plays a hostile client or web page against a real server on loopback
(uvicorn in a thread): oversized bodies, numbers no model can take, cross-site
and DNS-rebinding requests, missing or wrong admin tokens, swaps that must
fail, and any JSON string at all as a user id. The server must answer each with
a 4xx that says what is wrong, never a 500, and keep serving.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading

import httpx
import pytest
from conftest import auth, defined_in_main
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import persistlib as pl
from persistlib import errors
from persistlib.__main__ import main
from persistlib.data import CHURN_FEATURES
from persistlib.serving.http import DEFAULT_MAX_ROWS

GOOD = dict.fromkeys(CHURN_FEATURES, 1.0)


@pytest.fixture(scope="module")
def reg(two_forests):
    return two_forests[0]


def raw(url: str, request: bytes) -> bytes:
    """Send raw HTTP bytes (headers a browser or attacker chooses) and return the whole answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(request)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


# --------------------------------------------------------------------------- 7. limits


def test_too_many_rows_or_too_large_a_body_is_a_413_naming_the_limit(http_server):
    _, url = http_server
    r = httpx.post(f"{url}/predict", json={"rows": [GOOD] * (DEFAULT_MAX_ROWS + 1)})
    assert r.status_code == 413 and f"at most {DEFAULT_MAX_ROWS:,}" in r.json()["detail"]
    r = httpx.post(
        f"{url}/predict", content=b'{"rows": "' + b"x" * (2 << 20) + b'"}', headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413 and "1,048,576 bytes" in r.json()["detail"]


def test_a_chunked_body_without_length_is_cut_at_the_limit(http_server):
    _, url = http_server

    def chunks():
        yield b'{"rows": "'
        for _ in range(64):
            yield b"x" * 65536  # 4 MiB in all, announced by no Content-Length

    r = httpx.post(f"{url}/predict", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def test_oversized_requests_at_once_never_stall_health(http_server):
    """Four 50 MB requests at once are refused from their headers: /health answers all along."""
    _, url = http_server
    statuses, started = [], threading.Barrier(5)

    def big():
        head = (
            f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {50 << 20}\r\nConnection: close\r\n\r\n"
        ).encode()
        started.wait()
        statuses.append(raw(url, head + b"{").split(b" ", 2)[1])

    threads = [threading.Thread(target=big) for _ in range(4)]
    for t in threads:
        t.start()
    started.wait()
    assert httpx.get(f"{url}/health", timeout=10).status_code == 200
    for t in threads:
        t.join(20)
    assert statuses == [b"413"] * 4


def test_limits_are_configurable(reg):
    server = pl.ModelServer(reg)
    url = pl.start_http(server, max_rows=2, max_body_bytes=10_000)
    try:
        assert httpx.post(f"{url}/predict", json={"rows": [GOOD] * 2}).status_code == 200
        r = httpx.post(f"{url}/predict", json={"rows": [GOOD] * 3})
        assert r.status_code == 413 and "at most 2" in r.json()["detail"]
    finally:
        pl.stop_http(url)


# --------------------------------------------------------------------------- 8. numbers


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (b"9" * 5000, "an integer of 5000 digits"),
        (b"1e39", "beyond"),
        (b"-3.5e38", "beyond"),
        (b"1e400", "not a finite number"),
        (b"NaN", "not a finite number"),
    ],
    ids=["5000-digits", "float32-overflow", "negative-overflow", "inf", "nan"],
)
def test_numbers_no_model_can_take_are_a_422_naming_the_feature(http_server, value, words):
    _, url = http_server
    row = json.dumps({**GOOD, "tenure_months": "VALUE"}).encode().replace(b'"VALUE"', value)
    r = httpx.post(f"{url}/predict", content=b'{"rows": [' + row + b"]}", headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert "'tenure_months'" in r.json()["detail"] and words in r.json()["detail"]


def test_whatever_makes_the_model_raise_is_a_422(reg):
    server = pl.ModelServer(reg)
    bundle = server._state.current

    class Explodes:
        classes_ = bundle.model.classes_

        def predict_proba(self, X):
            raise ValueError("Input X contains infinity or a value too large for dtype('float32').")

    server._state = type(server._state)(current=type(bundle)(Explodes(), bundle.card, bundle.features, bundle.classes))
    with pytest.raises(pl.PersistError, match="could not predict these rows: ValueError: Input X contains"):
        server.predict([GOOD])


# --------------------------------------------------------------------------- 9. cross-site calls


def test_a_cross_site_text_plain_post_is_refused(http_server):
    server, url = http_server
    for path, body in (("/predict", json.dumps({"rows": [GOOD]})), ("/admin/swap", '{"ref": "2.0.0"}')):
        r = httpx.post(f"{url}{path}", content=body, headers={"Content-Type": "text/plain", **auth(server)})
        assert r.status_code == 415 and "application/json" in r.json()["detail"]
    assert server.version == "1.0.0"


def test_a_dns_rebinding_host_is_refused(http_server):
    server, url = http_server
    r = httpx.post(f"{url}/admin/swap", json={"ref": "2.0.0"}, headers={"Host": "evil.example", **auth(server)})
    assert r.status_code == 403 and "evil.example" in r.json()["detail"]
    r = httpx.get(f"{url}/version", headers={"Host": "evil.example:80"})
    assert r.status_code == 403
    for host in ("127.0.0.1", "localhost:1234", "[::1]:80"):
        assert httpx.get(f"{url}/health", headers={"Host": host}).status_code == 200
    assert server.version == "1.0.0"


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Basic abc"}, 401), ({"Authorization": "Bearer wrong-token"}, 403)],
    ids=["missing", "wrong-scheme", "wrong-token"],
)
def test_admin_calls_need_the_token_checked_before_anything_else(http_server, headers, status):
    server, url = http_server
    for path in ("/admin/swap", "/admin/rollback", "/admin/follow/check"):
        r = httpx.post(f"{url}{path}", content=b"not even json", headers={"Content-Type": "text/plain", **headers})
        assert r.status_code == status, r.text  # not 415, not 400: the token comes first
    assert server.version == "1.0.0"


def test_start_http_makes_a_random_token_or_takes_one(reg):
    a, b = pl.ModelServer(reg), pl.ModelServer(reg)
    url_a = pl.start_http(a)
    url_b = pl.start_http(b, admin_token="a-token-of-my-own-choosing")
    try:
        assert len(a.admin_token) >= 32 and b.admin_token == "a-token-of-my-own-choosing"
        r = httpx.post(f"{url_b}/admin/swap", json={"ref": "2.0.0"}, headers=auth(b))
        assert r.status_code == 200 and b.version == "2.0.0"
        r = httpx.post(f"{url_a}/admin/swap", json={"ref": "2.0.0"}, headers=auth(b))  # another server's token
        assert r.status_code == 403
    finally:
        pl.stop_http(url_a)
        pl.stop_http(url_b)
    with pytest.raises(pl.PersistError, match="at least 16"):
        pl.start_http(a, admin_token="short")


# --------------------------------------------------------------------------- 10-11. swaps


def test_no_server_path_in_a_reply(http_server, reg):
    server, url = http_server
    r = httpx.post(f"{url}/admin/swap", json={"ref": "7.7.7"}, headers=auth(server))
    assert r.status_code == 404 and str(reg.root) not in r.text and "<registry>" in r.text


@pytest.mark.parametrize(
    "damage, error, words",
    [("card", errors.CardError, "missing required field"), ("aliases", errors.RegistryFileError, "not UTF-8")],
)
def test_a_swap_that_cannot_happen_is_a_409_and_the_old_model_keeps_serving(tmp_path, damage, error, words):
    from sklearn.tree import DecisionTreeClassifier

    X, y = pl.make_churn(300, random_state=3)
    r = pl.Registry(tmp_path / "reg")
    for _ in range(2):
        r.promote(r.save(DecisionTreeClassifier(max_depth=2).fit(X, y)).version)
    server = pl.ModelServer(r, "1.0.0")
    if damage == "card":
        (r.root / "model_v1.1.0_meta.json").write_text('{"version": 3}')
        ref = "1.1.0"
    else:
        (r.root / "aliases.json").write_bytes(b"\xff")
        ref = "production"
    with pytest.raises(error, match=words):
        server.swap(ref)
    url = pl.start_http(server)
    try:
        resp = httpx.post(f"{url}/admin/swap", json={"ref": ref}, headers=auth(server))
        assert resp.status_code == 409 and "still serving v1.0.0" in resp.json()["detail"]
        assert httpx.post(f"{url}/predict", json={"rows": [GOOD]}).json()["version"] == "1.0.0"
    finally:
        pl.stop_http(url)


def _identity(X):
    return X


# Python 3.11 formats the AttributeError with the repr of xdist's __main__, a deprecated call.
@pytest.mark.filterwarnings("ignore:BuiltinImporter.module_repr:DeprecationWarning")
def test_a_swap_to_a_model_that_cannot_be_rebuilt_here_is_a_409(tmp_path, monkeypatch):
    # v1.1.0 needs a function that lived in the __main__ of the process that saved it (a notebook).
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.tree import DecisionTreeClassifier

    X, y = pl.make_churn(300, random_state=3)
    r = pl.Registry(tmp_path / "reg")
    r.promote(r.save(DecisionTreeClassifier(max_depth=2).fit(X, y)).version)
    with defined_in_main(monkeypatch, _identity):
        r.save(make_pipeline(FunctionTransformer(_identity), DecisionTreeClassifier(max_depth=2)).fit(X, y))
    server = pl.ModelServer(r, "1.0.0")
    url = pl.start_http(server)
    try:
        resp = httpx.post(f"{url}/admin/swap", json={"ref": "1.1.0"}, headers=auth(server))
        assert resp.status_code == 409, resp.text
        detail = resp.json()["detail"]
        assert detail.startswith("not swapped, still serving v1.0.0: v1.1.0: model_v1.1.0.pkl could not become")
        assert "AttributeError" in detail and "_identity" in detail and "__main__" in detail
        assert httpx.post(f"{url}/predict", json={"rows": [GOOD]}).json()["version"] == "1.0.0"
    finally:
        pl.stop_http(url)


def test_a_model_whose_warm_up_raises_is_refused(reg, monkeypatch):
    server = pl.ModelServer(reg)
    real = reg.load

    def load(ref, **kw):
        model, card = real(ref, **kw)
        model.predict_proba = lambda X: (_ for _ in ()).throw(RuntimeError("boom"))
        return model, card

    monkeypatch.setattr(reg, "load", load)
    with pytest.raises(pl.PersistError, match="failed its warm-up prediction.*RuntimeError: boom"):
        server.swap("2.0.0")
    assert server.version == "1.0.0"


def test_a_non_object_body_to_admin_swap_is_a_422(http_server):
    server, url = http_server
    for body in ([1, 2], "2.0.0", None, 7, {"ref": 2}, {"ref": ""}):
        r = httpx.post(
            f"{url}/admin/swap", content=json.dumps(body), headers={"Content-Type": "application/json", **auth(server)}
        )
        assert r.status_code == 422, (body, r.text)


# --------------------------------------------------------------------------- 12. any JSON string


def test_lone_surrogates_as_user_id_route_and_are_audited(reg, tmp_path):
    audit = pl.AuditLog(tmp_path / "audit.sqlite")
    server = pl.ModelServer(reg, audit=audit)
    server.route(pl.ABRouter({"1.0.0": 1, "2.0.0": 1}))
    url = pl.start_http(server)
    try:
        for uid in ('"\\udfff"', '"\\ud800x"', '"a\\u0000b"'):
            body = b'{"rows": [' + json.dumps(GOOD).encode() + b'], "user_id": ' + uid.encode() + b"}"
            r = httpx.post(f"{url}/predict", content=body, headers={"Content-Type": "application/json"})
            assert r.status_code == 200, r.text
        for uid in (True, 1.5, [1], {"a": 1}):
            r = httpx.post(f"{url}/predict", json={"rows": [GOOD], "user_id": uid})
            assert r.status_code == 422 and "user_id" in r.json()["detail"]
        audit.flush()
        assert audit.count() == 3
    finally:
        pl.stop_http(url)
        audit.close()


# --------------------------------------------------------------------------- the command line


def test_cli_takes_its_token_from_the_environment_or_prints_one(reg, tmp_path):
    env = {"PERSISTLIB_ADMIN_TOKEN": "an-admin-token-from-the-env"}
    for extra_env, expect_printed in ((env, False), ({}, True)):
        import os

        proc = subprocess.Popen(
            [sys.executable, "-m", "persistlib", "serve", "--registry", str(reg.root), "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, **extra_env},
        )
        try:
            url = proc.stdout.readline().rstrip().rsplit(" ", 1)[1]
            if expect_printed:
                token = proc.stdout.readline().rstrip().rsplit(" ", 1)[1]
            else:
                token = env["PERSISTLIB_ADMIN_TOKEN"]
            for _ in range(100):
                try:
                    r = httpx.post(
                        f"{url}/admin/swap", json={"ref": "2.0.0"}, headers={"Authorization": f"Bearer {token}"}
                    )
                    break
                except httpx.ConnectError:
                    threading.Event().wait(0.1)
            assert r.status_code == 200 and r.json()["version"] == "2.0.0"
        finally:
            proc.terminate()
            proc.wait(10)


@pytest.mark.parametrize(
    "case", ["corrupt-registry", "audit-parent-is-a-file", "audit-nul", "empty-key-file", "signed-without-key"]
)
def test_every_failure_to_start_is_one_error_line(reg, tmp_path, capsys, monkeypatch, case):
    monkeypatch.delenv("PERSISTLIB_SIGNING_KEY", raising=False)
    args = ["serve", "--registry", str(reg.root), "--port", "0"]
    if case == "corrupt-registry":
        bad = tmp_path / "bad"
        bad.mkdir()
        (bad / "aliases.json").write_text("{")
        args[2] = str(bad)
    elif case == "audit-parent-is-a-file":
        (tmp_path / "file").write_text("x")
        args += ["--audit", str(tmp_path / "file" / "audit.sqlite")]
    elif case == "audit-nul":
        args += ["--audit", str(tmp_path / "a\0b.sqlite")]
    elif case == "empty-key-file":
        (tmp_path / "key").write_text("\n")
        args += ["--signing-key-file", str(tmp_path / "key")]
    else:
        signed = pl.Registry(tmp_path / "signed", signing_key="k" * 20)
        signed.promote(signed.save(reg.load("1.0.0")[0]).version)
        args[2] = str(signed.root)
    assert main(args) in (1, 2)
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err


# --------------------------------------------------------------------------- fuzz from the OpenAPI spec


def _from_schema(schema: dict) -> st.SearchStrategy:
    """Hypothesis values for the JSON schema /openapi.json documents (enough of it for this API)."""
    if "anyOf" in schema:
        return st.one_of([_from_schema(s) for s in schema["anyOf"]])
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        if not props:
            return st.dictionaries(st.text(max_size=5), st.none() | st.integers(), max_size=3)
        required = {k: _from_schema(v) for k, v in props.items() if k in schema.get("required", [])}
        optional = {k: _from_schema(v) for k, v in props.items() if k not in required}
        return st.fixed_dictionaries(required, optional=optional)
    if kind == "array":
        return st.lists(_from_schema(schema["items"]), min_size=schema.get("minItems", 0), max_size=3)
    if kind == "number":
        return st.floats(allow_nan=False) | st.integers(min_value=-(10**40), max_value=10**40)
    if kind == "integer":
        return st.integers()
    return st.text(max_size=20)


JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@pytest.mark.slow
def test_fuzzing_the_openapi_spec_never_gets_a_500(http_server):
    server, url = http_server
    spec = httpx.get(f"{url}/openapi.json").json()
    posts = {
        path: ops["post"]["requestBody"]["content"]["application/json"]["schema"]
        for path, ops in spec["paths"].items()
        if "post" in ops
    }
    assert set(posts) == {"/predict", "/admin/swap", "/admin/rollback", "/admin/follow/check"}
    client = httpx.Client(base_url=url, headers=auth(server), timeout=10)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(path=st.sampled_from(sorted(posts)), data=st.data())
    def post(path, data):
        body = data.draw(_from_schema(posts[path]) | JSON)
        try:
            payload = json.dumps(body).encode()
        except ValueError:  # NaN in a strict encoder: send it as JavaScript would not
            return
        r = client.post(path, content=payload, headers={"Content-Type": "application/json"})
        assert r.status_code < 500, (path, body, r.text)

    try:
        post()
        assert client.get("/health").status_code == 200
        assert client.post("/predict", json={"rows": [GOOD]}).status_code == 200
    finally:
        client.close()


# --------------------------------------------------------------------------- 14. auditing cannot fail silently


@pytest.mark.parametrize("policy", ["fail-closed", "best-effort"])
def test_a_read_only_audit_log_shows_on_health_and_the_policy_decides(reg, tmp_path, policy):
    audit = pl.AuditLog(tmp_path / "audit.sqlite")
    server = pl.ModelServer(reg, audit=audit, audit_policy=policy)
    url = pl.start_http(server)
    try:
        assert httpx.post(f"{url}/predict", json={"rows": [GOOD]}).status_code == 200
        audit.flush()  # the writer is idle now, with its connection open
        audit._writer.con.execute("PRAGMA query_only=ON")  # the database refuses writes, even for root
        assert httpx.post(f"{url}/predict", json={"rows": [GOOD]}).status_code == 200  # not known yet
        with pytest.raises(errors.AuditError, match="readonly"):
            audit.flush()  # the write failed: now the log knows
        health = httpx.get(f"{url}/health")
        body = health.json()
        assert body["audit"]["ok"] is False and "readonly" in body["audit"]["problem"]
        assert body["audit"]["policy"] == policy and body["audit"]["lost"] == 1
        r = httpx.post(f"{url}/predict", json={"rows": [GOOD]})
        if policy == "fail-closed":
            assert health.status_code == 503 and body["status"] == "unavailable"
            assert r.status_code == 503 and "could not be audited" in r.json()["detail"]
        else:
            assert health.status_code == 200 and body["status"] == "degraded"
            assert r.status_code == 200
            with pytest.raises(pl.PersistError, match="1 row"):
                audit.flush()  # the answer served unaudited is reported, and counted
            assert audit.lost == 2
        audit._writer.con.execute("PRAGMA query_only=OFF")
        audit.record(pl.ModelServer(reg).predict([GOOD]), artifact_sha256="0" * 64)
        audit.flush()  # a write succeeds again: healthy, and serving resumes
        assert httpx.get(f"{url}/health").json()["status"] == "ok"
        assert httpx.post(f"{url}/predict", json={"rows": [GOOD]}).status_code == 200
    finally:
        pl.stop_http(url)
        audit.close()


def test_the_default_policy_is_fail_closed_and_a_closed_log_refuses(reg, tmp_path):
    audit = pl.AuditLog(tmp_path / "audit.sqlite")
    server = pl.ModelServer(reg, audit=audit)
    assert server.audit_policy == "fail-closed"
    audit.close()
    with pytest.raises(pl.PersistError, match="could not be audited.*closed"):
        server.predict([GOOD])
    with pytest.raises(pl.PersistError, match="audit_policy must be one of"):
        pl.ModelServer(reg, audit_policy="sometimes")
