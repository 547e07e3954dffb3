"""Serve a :class:`~persistlib.serving.ModelServer` over HTTP (FastAPI on uvicorn).

Endpoints::

    POST /predict          {"rows": [{feature: value, ...}], "user_id": optional}
                           -> {"labels", "probabilities", "version", "request_id", "arm"}
    GET  /health           -> {"status", "version", "audit"}
    GET  /version          -> {"version", "previous", "artifact_sha256", "trained_at", "ab"}
    POST /admin/swap       {"ref": "2.0.0"} -> {"version", "previous"}     (needs the admin token)
    POST /admin/rollback                    -> {"version", "previous"}     (needs the admin token)
    POST /admin/follow/check                -> {"alias", "moved", "version"} (needs the admin token;
                           tells the server's AliasFollower to read its alias now: see follow_alias)

Every bad request gets a 4xx with a ``detail`` that names the problem, and the
server keeps serving: 400 (not JSON), 401/403 (admin token, foreign ``Host``),
413 (too large), 415 (not ``application/json``), 422 (not a valid request),
404/409 (a swap that cannot happen), 503 (a fail-closed server that cannot
audit). The guards, and what each one stops:

* **An admin token.** ``/admin/*`` answers only ``Authorization: Bearer
  <token>``. ``start_http`` makes a random token unless you pass one, and
  puts it on ``server.admin_token`` for its owner, as Jupyter's server does.
* **JSON only.** A web page can POST ``text/plain`` to ``127.0.0.1`` without a
  CORS preflight; requiring ``Content-Type: application/json`` forces the
  preflight, which this server never answers, so the browser refuses.
* **Loopback ``Host`` only.** A DNS-rebinding page reaches ``127.0.0.1`` with a
  foreign ``Host`` header; it gets a 403.
* **Size limits.** A body over ``max_body_bytes`` or more than ``max_rows`` rows
  gets a 413 before it is read, so oversized requests cannot starve ``/health``.

:func:`persistlib.serving.background.start_http` runs it in a background
thread, bound to loopback, so a notebook can talk to it. This module needs
fastapi and uvicorn (optional), so :mod:`persistlib.serving` does not import
it: use ``persistlib.start_http``.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from .._checks import check_number
from .._display import clip
from ..errors import (
    AuditUnavailableError,
    InvalidArgumentError,
    InvalidInputError,
    PersistError,
    VersionNotFoundError,
)
from .docs_page import docs_html
from .follow import follower_of
from .server import ModelServer

__all__ = ["create_app", "LOOPBACK_HOSTS", "DEFAULT_MAX_BODY_BYTES", "DEFAULT_MAX_ROWS"]

#: Host names (without port) a loopback server answers to.
LOOPBACK_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")
#: Default request limits, sized for the course: a churn row is about 300 bytes of JSON.
DEFAULT_MAX_BODY_BYTES = 1 << 20
DEFAULT_MAX_ROWS = 1000
#: What any Host may read (through jupyter-server-proxy the Host is the hub's): the docs page and its spec.
_DOCS_PATHS = ("/docs", "/openapi.json")
_MAX_INT_DIGITS = 300  # longer JSON integers are not parsed: no feature value needs them


class _LongInteger:
    """A JSON integer too long to be a feature value; kept unparsed so the error can name its feature."""

    def __init__(self, digits: int):
        self.digits = digits

    def __repr__(self) -> str:
        return f"an integer of {self.digits} digits"


def _parse_int(text: str) -> Any:
    return int(text) if len(text) <= _MAX_INT_DIGITS else _LongInteger(len(text))


def create_app(
    server: ModelServer,
    *,
    admin_token: str | None = None,
    allowed_hosts: Sequence[str] = LOOPBACK_HOSTS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> FastAPI:
    """A FastAPI app that serves ``server`` behind the guards described in the module docstring.

    ``admin_token=None`` makes a random one; either way it is stored on ``server.admin_token``.
    """
    token = _check_token(admin_token)
    server.admin_token = token
    hosts = {h.lower().strip("[]") for h in allowed_hosts}
    max_body_bytes = check_number(max_body_bytes, "max_body_bytes", low=1, integer=True)
    max_rows = check_number(max_rows, "max_rows", low=1, integer=True)
    root = getattr(server.registry, "root", None)
    hide = sorted({str(root), str(root.resolve())} if root is not None else set(), key=len, reverse=True)
    # docs_url=None: FastAPI's Swagger page needs a CDN; /docs below is self-contained and works through a proxy
    app = FastAPI(title="persistlib model server", version="1", docs_url=None, redoc_url=None)
    app.state.model_server = server

    def problem(status: int, detail: str) -> JSONResponse:
        for path in hide:  # never tell a client where the registry lives on the server
            detail = detail.replace(path, "<registry>")
        return JSONResponse({"detail": detail}, status_code=status)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        if request.url.path.startswith("/admin"):  # the token first, before anything else
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not given.strip():
                return problem(
                    401,
                    "the admin API needs the header 'Authorization: Bearer <token>'; the token was "
                    "shown when the server started (server.admin_token in Python).",
                )
            if not hmac.compare_digest(given.strip().encode("latin-1"), token.encode()):
                return problem(403, "wrong admin token; use the one shown when the server started.")
        host = _host_name(request.headers.get("host", ""))
        read_docs = request.method in ("GET", "HEAD") and request.url.path in _DOCS_PATHS
        if host not in hosts and not read_docs:  # the docs are read-only and public: readable through a proxy
            return problem(
                403,
                f"Host {clip(repr(host), 60)} is not served here; this server answers only to "
                f"{sorted(hosts)} (a page using DNS rebinding would send another).",
            )
        if request.method == "POST":
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "application/json":
                return problem(
                    415,
                    f"send the body as JSON with 'Content-Type: application/json' (got "
                    f"{clip(repr(ctype or 'none'), 40)}).",
                )
            length = request.headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > max_body_bytes):
                return problem(
                    413,
                    f"the body is larger than {max_body_bytes:,} bytes, the limit of this server; "
                    f"send at most {max_rows:,} rows per request.",
                )
        return await call_next(request)

    async def read_json(request: Request) -> tuple[Any, JSONResponse | None]:
        """``(payload, None)`` for a JSON body, or ``(None, a 4xx response)`` naming what is wrong with it."""
        body, size = bytearray(), 0
        async for chunk in request.stream():  # a body sent without Content-Length is counted as it arrives
            size += len(chunk)
            if size > max_body_bytes:
                return None, problem(
                    413, f"the body is larger than {max_body_bytes:,} bytes, the limit of this server."
                )
            body += chunk
        if not body.strip():
            return None, problem(
                400, 'the request body is empty; send JSON such as {"rows": [{"tenure_months": 3, ...}]}.'
            )
        try:
            return json.loads(bytes(body), parse_int=_parse_int), None
        except RecursionError:
            return None, problem(400, "the request body is not valid JSON (nested too deeply).")
        except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
            return None, problem(400, f"the request body is not valid JSON ({clip(str(e), 120)}).")

    row = {
        "type": "object",
        "properties": {f: {"type": "number"} for f in server.features},
        "required": list(server.features),
        "additionalProperties": False,
    }
    predict_body = {
        "type": "object",
        "required": ["rows"],
        "additionalProperties": False,
        "properties": {
            "rows": {"type": "array", "items": row, "minItems": 1, "maxItems": max_rows},
            "user_id": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        },
    }
    swap_body = {"type": "object", "required": ["ref"], "properties": {"ref": {"type": "string", "minLength": 1}}}

    def documented(schema: dict[str, Any]) -> dict[str, Any]:  # the body is parsed by hand; the spec shows it
        return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}

    @app.post("/predict", openapi_extra=documented(predict_body))
    async def predict(request: Request) -> Any:
        payload, error = await read_json(request)
        if error is not None:
            return error
        if not isinstance(payload, dict):
            return problem(422, f"the body must be a JSON object with 'rows', got {type(payload).__name__}.")
        if "rows" not in payload:
            return problem(422, "the body has no 'rows'; send {\"rows\": [{feature: value, ...}]}.")
        unknown = sorted(set(payload) - {"rows", "user_id"})
        if unknown:
            return problem(
                422, f"unknown field(s) {clip(str(unknown), 80)}; the body takes 'rows' and optional 'user_id'."
            )
        user_id = payload.get("user_id")
        if user_id is not None and (isinstance(user_id, bool) or not isinstance(user_id, str | int)):
            return problem(422, f"'user_id' must be a string or an integer, got {clip(repr(user_id), 40)}.")
        if isinstance(payload["rows"], list) and len(payload["rows"]) > max_rows:
            return problem(
                413,
                f"{len(payload['rows']):,} rows in one request; this server takes at most "
                f"{max_rows:,}. Split the request.",
            )
        try:
            pred = await run_in_threadpool(server.predict, payload["rows"], user_id=user_id)
        except InvalidInputError as e:
            return problem(422, str(e))
        except AuditUnavailableError as e:
            return problem(503, str(e))
        return pred.to_dict()

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Any:
        return HTMLResponse(
            docs_html(app.openapi()),
            headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"},
        )

    @app.get("/health")
    async def health() -> Any:
        snap, why = server.snapshot(), server.audit_problem()
        audit = (
            None
            if server.audit is None
            else {
                "ok": why is None,
                "problem": why,
                "policy": server.audit_policy,
                "lost": getattr(server.audit, "lost", 0),
            }
        )
        if why is None:
            return {"status": "ok", "version": snap.version, "audit": audit}
        refusing = server.audit_policy == "fail-closed"
        body = {"status": "unavailable" if refusing else "degraded", "version": snap.version, "audit": audit}
        return JSONResponse(body, status_code=503 if refusing else 200)

    @app.get("/version")
    async def version() -> Any:
        snap = server.snapshot()  # one read: a concurrent swap cannot mix two models' fields
        return {
            "version": snap.version,
            "previous": snap.previous_version,
            "artifact_sha256": snap.artifact_sha256,
            "trained_at": snap.trained_at,
            "ab": snap.ab,
        }

    @app.post("/admin/swap", openapi_extra=documented(swap_body))
    async def swap(request: Request) -> Any:
        payload, error = await read_json(request)
        if error is not None:
            return error
        ref = payload.get("ref") if isinstance(payload, dict) else None
        if not isinstance(ref, str) or not ref or len(ref) > 200:
            return problem(422, 'send a JSON object {"ref": "<version or alias>"}, e.g. {"ref": "2.0.0"}.')
        try:
            snap = await run_in_threadpool(server.swap_snapshot, ref)
        except VersionNotFoundError as e:
            return problem(404, str(e))
        except PersistError as e:  # failed verification or warm-up: the old model keeps serving
            return problem(409, f"not swapped, still serving v{server.version}: {e}")
        return {"version": snap.version, "previous": snap.previous_version}  # the state this swap made

    @app.post("/admin/rollback", openapi_extra=documented({"type": "object"}))
    async def rollback() -> Any:
        try:  # in a worker thread: rollback waits for any swap in progress, the event loop must not
            snap = await run_in_threadpool(server.rollback_snapshot)
        except PersistError as e:
            return problem(409, str(e))
        return {"version": snap.version, "previous": snap.previous_version}

    @app.post("/admin/follow/check", openapi_extra=documented({"type": "object"}))
    async def follow_check() -> Any:
        follower = follower_of(server)
        if follower is None:
            return problem(409, "this server follows no alias; start one in Python: pl.follow_alias(server).")
        try:  # in a worker thread: a swap loads and verifies a model
            moved = await run_in_threadpool(follower.check)
        except PersistError as e:  # FollowError: the old model keeps serving
            return problem(409, str(e))
        return {"alias": follower.alias, "moved": moved, "version": server.snapshot().version}

    return app


def _host_name(header: str) -> str:
    """``"127.0.0.1:8000"`` -> ``"127.0.0.1"``, ``"[::1]:8000"`` -> ``"::1"``, lower case."""
    if header.startswith("["):
        return header[1:].split("]", 1)[0].lower()
    return (header.rsplit(":", 1)[0] if header.count(":") == 1 else header).lower()


def _check_token(token: str | None) -> str:
    if token is None:
        return secrets.token_urlsafe(32)
    if not isinstance(token, str) or len(token) < 16 or not token.isascii() or not token.isprintable() or " " in token:
        raise InvalidArgumentError(
            "admin_token must be at least 16 printable ASCII characters without spaces (or None for a random one)."
        )
    return token
