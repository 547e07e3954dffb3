"""Run the HTTP app in a background thread, so a notebook can talk to its own server.

:func:`start_http` starts uvicorn on loopback in a daemon thread and returns
the URL once the server accepts connections; :func:`stop_http` shuts it down
and waits for the thread. The servers started here are remembered with their
admin tokens, so a widget in the same process can find the token for a URL
(:func:`admin_token_for`).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .._checks import check_number
from ..errors import HttpServerError, InvalidArgumentError
from .http import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_ROWS, LOOPBACK_HOSTS, create_app
from .server import ModelServer

__all__ = ["start_http", "stop_http", "running_servers", "admin_token_for"]

_RUNNING: dict[str, tuple[Any, threading.Thread, str | None]] = {}  # base_url -> (uvicorn.Server, thread, token)
_RUNNING_LOCK = threading.Lock()


def start_http(
    server_or_app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    admin_token: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_rows: int = DEFAULT_MAX_ROWS,
    timeout: float = 10.0,
) -> str:
    """Run the HTTP server in a background thread; return its base URL.

    Parameters
    ----------
    server_or_app : ModelServer or ASGI app
    host : str, default="127.0.0.1"
        Loopback only. Put a real gateway (TLS, authentication) in front to expose a model.
    port : int, default=0
        0 picks a free port; the URL tells you which.
    admin_token : str, optional
        The token ``/admin/*`` requires; ``None`` makes a random one. Either way
        it is on ``server.admin_token`` (and :func:`admin_token_for(url) <admin_token_for>`).
    max_body_bytes, max_rows : int
        Larger requests get a 413.

    Returns
    -------
    str
        e.g. ``"http://127.0.0.1:50123"``. Pass it to :func:`stop_http`.
    """
    import uvicorn

    if host not in LOOPBACK_HOSTS:
        raise InvalidArgumentError(
            f"start_http binds only to the loopback interface (127.0.0.1), got host={host!r}. "
            "Put a real gateway in front to expose a model."
        )
    token = None
    if isinstance(server_or_app, ModelServer):
        app = create_app(server_or_app, admin_token=admin_token, max_body_bytes=max_body_bytes, max_rows=max_rows)
        token = server_or_app.admin_token
    else:
        app = server_or_app
    port = check_number(port, "port", low=0, high=65535, integer=True)
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=3
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
        _RUNNING[url] = (srv, thread, token)
    return url


def stop_http(base_url: str | None = None, *, timeout: float = 10.0) -> list[str]:
    """Stop the server at ``base_url`` (or every server :func:`start_http` started). Returns their URLs."""
    with _RUNNING_LOCK:
        if base_url is None:
            urls = list(_RUNNING)
        elif isinstance(base_url, str) and base_url.rstrip("/") in _RUNNING:
            urls = [base_url.rstrip("/")]
        else:
            raise InvalidArgumentError(f"no server started at {base_url!r}; running: {list(_RUNNING) or 'none'}.")
        entries = [(u, _RUNNING.pop(u)) for u in urls]
    for _, (srv, _, _) in entries:
        srv.should_exit = True
    for url, (_, thread, _) in entries:
        thread.join(timeout)
        if thread.is_alive():
            raise HttpServerError(f"the server at {url} did not stop within {timeout:g}s.")
    return urls


def running_servers() -> list[str]:
    """The base URLs of servers started by :func:`start_http` and not yet stopped."""
    with _RUNNING_LOCK:
        return list(_RUNNING)


def admin_token_for(base_url: str) -> str | None:
    """The admin token of a server :func:`start_http` started in this process, or ``None``."""
    with _RUNNING_LOCK:
        entry = _RUNNING.get(str(base_url).rstrip("/"))
    return entry[2] if entry else None
