"""Serve a :class:`~persistlib.serving.ModelServer` over HTTP (FastAPI on uvicorn).

Endpoints::

    POST /predict      {"rows": [{feature: value, ...}], "user_id": optional}
                       -> {"labels", "probabilities", "version", "request_id", "arm"}
    GET  /health       -> {"status": "ok", "version"}
    GET  /version      -> {"version", "previous", "artifact_sha256", "trained_at", "ab"}
    POST /admin/swap   {"ref": "2.0.0"} -> {"version", "previous"}
    POST /admin/rollback                -> {"version", "previous"}

Bad input gets a 400 (the body is not JSON) or a 422 (the JSON is not a
valid request) with a ``detail`` naming the problem; the server keeps serving.

:func:`start_http` runs the server in a background thread, so a notebook can
talk to it; :func:`stop_http` shuts it down cleanly. The admin endpoints have
no authentication, so these helpers bind to the loopback interface only.

This module needs fastapi and uvicorn, which are optional, so
:mod:`persistlib.serving` does not import it: import it yourself
(``from persistlib.serving.http import start_http``) or use ``persistlib.start_http``.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..errors import HttpServerError, InvalidArgumentError, InvalidInputError, PersistError, VersionNotFoundError
from .server import ModelServer

__all__ = ["create_app", "start_http", "stop_http", "running_servers"]

_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_RUNNING: dict[str, tuple[Any, threading.Thread]] = {}  # base_url -> (uvicorn.Server, thread)
_RUNNING_LOCK = threading.Lock()


def create_app(server: ModelServer) -> FastAPI:
    """A FastAPI app that serves ``server``."""
    app = FastAPI(title="persistlib model server", version="1")
    app.state.model_server = server

    def problem(status: int, detail: str) -> JSONResponse:
        return JSONResponse({"detail": detail}, status_code=status)

    async def read_json(request: Request) -> tuple[Any, JSONResponse | None]:
        """``(payload, None)`` for a JSON body, or ``(None, a 400 response)`` naming what is wrong with it."""
        body = await request.body()
        if not body.strip():
            return None, problem(
                400, 'the request body is empty; send JSON such as {"rows": [{"tenure_months": 3, ...}]}.'
            )
        try:
            return json.loads(body), None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            return None, problem(400, f"the request body is not valid JSON ({e}).")
        except RecursionError:
            return None, problem(400, "the request body is not valid JSON (nested too deeply).")

    @app.post("/predict")
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
            return problem(422, f"unknown field(s) {unknown}; the body takes 'rows' and optional 'user_id'.")
        user_id = payload.get("user_id")
        if user_id is not None and (isinstance(user_id, bool) or not isinstance(user_id, (str, int))):
            return problem(422, f"'user_id' must be a string or an integer, got {user_id!r}.")
        try:
            pred = await run_in_threadpool(server.predict, payload["rows"], user_id=user_id)
        except InvalidInputError as e:
            return problem(422, str(e))
        return pred.to_dict()

    @app.get("/health")
    async def health() -> Any:
        return {"status": "ok", "version": server.snapshot().version}

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

    @app.post("/admin/swap")
    async def swap(request: Request) -> Any:
        payload, error = await read_json(request)
        if error is not None:
            return error
        ref = payload.get("ref") if isinstance(payload, dict) else None
        if not isinstance(ref, str) or not ref:
            return problem(422, 'send {"ref": "<version or alias>"}, e.g. {"ref": "2.0.0"}.')
        try:
            snap = await run_in_threadpool(server.swap_snapshot, ref)
        except VersionNotFoundError as e:
            return problem(404, str(e))
        except PersistError as e:  # failed verification: the old model keeps serving
            return problem(409, f"not swapped, still serving v{server.version}: {e}")
        return {"version": snap.version, "previous": snap.previous_version}  # the state this swap made

    @app.post("/admin/rollback")
    async def rollback() -> Any:
        try:  # in a worker thread: rollback waits for any swap in progress, the event loop must not
            snap = await run_in_threadpool(server.rollback_snapshot)
        except PersistError as e:
            return problem(409, str(e))
        return {"version": snap.version, "previous": snap.previous_version}

    return app


def start_http(server_or_app: Any, *, host: str = "127.0.0.1", port: int = 0, timeout: float = 10.0) -> str:
    """Run the HTTP server in a background thread; return its base URL.

    Parameters
    ----------
    server_or_app : ModelServer or ASGI app
    host : str, default="127.0.0.1"
        Loopback only: the admin endpoints have no authentication.
    port : int, default=0
        0 picks a free port; the URL tells you which.

    Returns
    -------
    str
        e.g. ``"http://127.0.0.1:50123"``. Pass it to :func:`stop_http`.
    """
    import uvicorn

    if host not in _LOOPBACK:
        raise InvalidArgumentError(
            f"start_http binds only to the loopback interface (127.0.0.1), got host={host!r}: "
            "the admin endpoints have no authentication. Put a real gateway in front to expose it."
        )
    app = create_app(server_or_app) if isinstance(server_or_app, ModelServer) else server_or_app
    config = uvicorn.Config(
        app,
        host=host,
        port=int(port),
        log_level="warning",
        lifespan="off",
        access_log=False,
        timeout_graceful_shutdown=3,
    )
    srv = uvicorn.Server(config)
    # uvicorn installs signal handlers only in the main thread, so a background thread is safe.
    thread = threading.Thread(target=srv.run, name="persistlib-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not srv.started:
        if not thread.is_alive():
            raise HttpServerError(
                f"the HTTP server on {host}:{port} failed to start (is the port in use?). "
                "Use port=0 to pick a free one."
            )
        if time.monotonic() > deadline:
            srv.should_exit = True
            thread.join(timeout)
            raise HttpServerError(f"the HTTP server did not start within {timeout:g}s.")
        time.sleep(0.01)
    bound = srv.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{bound}" if host != "::1" else f"http://[::1]:{bound}"
    with _RUNNING_LOCK:
        _RUNNING[url] = (srv, thread)
    return url


def stop_http(base_url: str | None = None, *, timeout: float = 10.0) -> list[str]:
    """Stop the server at ``base_url`` (or every server :func:`start_http` started). Returns their URLs."""
    with _RUNNING_LOCK:
        if base_url is None:
            urls = list(_RUNNING)
        elif base_url.rstrip("/") in _RUNNING:
            urls = [base_url.rstrip("/")]
        else:
            raise InvalidArgumentError(f"no server started at {base_url!r}; running: {list(_RUNNING) or 'none'}.")
        entries = [(u, _RUNNING.pop(u)) for u in urls]
    for _, (srv, _) in entries:
        srv.should_exit = True
    for url, (_, thread) in entries:
        thread.join(timeout)
        if thread.is_alive():
            raise HttpServerError(f"the server at {url} did not stop within {timeout:g}s.")
    return urls


def running_servers() -> list[str]:
    """The base URLs of servers started by :func:`start_http` and not yet stopped."""
    with _RUNNING_LOCK:
        return list(_RUNNING)
