"""A real MLflow tracking server on 127.0.0.1, started in the background for a lesson or a test.

``mlflow server`` is what a team runs (with PostgreSQL and S3 behind it);
:func:`start_tracking_server` runs the same command on this machine with the
embedded default, a SQLite file, and a folder for the artefacts::

    server = start_tracking_server("workspace/mlflow")   # picks a free port
    registry = MlflowRegistry(server.url, "churn")
    ...
    server.stop()

The operating system picks the port (``--port 0``) and the server reports it in
its log, so there is no race between finding a free port and binding it. The
server runs in its own folder (``cwd``), writes its log to ``server.log`` there,
listens on loopback only, and is stopped when Python exits if you forget.

The server needs the full ``mlflow`` package (``pip install mlflow==3.17.2``):
the course pins only the client, ``mlflow-skinny``, to keep Binder under 1.2 GB.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import weakref
from importlib import metadata
from pathlib import Path

from .._checks import check_number
from .._display import clip
from ..errors import BackendUnavailableError, InvalidArgumentError, TrackingServerError
from ._mlflow_schema import prepare_sqlite_store
from ._mlflow_store import INSTALL_HINT

__all__ = ["TrackingServer", "start_tracking_server", "server_installed"]

_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_RUNNING = re.compile(rb"Uvicorn running on https?://\S+?:(\d+)")


def _mlflow_version() -> str:
    """The installed mlflow's version, or ``""`` (no tables are shipped for that)."""
    try:
        return metadata.version("mlflow")
    except metadata.PackageNotFoundError:
        return ""


def server_installed() -> bool:
    """Whether the full ``mlflow`` package (server and UI) is installed; the course pins only ``mlflow-skinny``."""
    return _mlflow_version() != ""


class TrackingServer:
    """A running ``mlflow server``: its ``url``, ``folder``, ``pid`` and how long it took to start (``started_in``)."""

    def __init__(self, process: subprocess.Popen, folder: Path, url: str, started_in: float):
        self.process = process
        self.folder = folder
        self.url = url
        self.started_in = started_in
        self._finalizer = weakref.finalize(self, _terminate, process, 10.0)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def __repr__(self) -> str:
        return f"<TrackingServer {self.url} {'running' if self.running else 'stopped'}>"

    def __enter__(self) -> TrackingServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, timeout: float = 10.0) -> int:
        """Stop the server cleanly (SIGTERM, then SIGKILL after ``timeout`` s). Idempotent; returns the exit code."""
        self._finalizer.detach()
        return _terminate(self.process, timeout)


def start_tracking_server(
    folder: str | os.PathLike, *, host: str = "127.0.0.1", port: int = 0, timeout: float = 180.0
) -> TrackingServer:
    """Start ``mlflow server`` with a SQLite store in ``folder`` and wait until it answers ``/health``.

    Parameters
    ----------
    folder : str or os.PathLike
        Holds ``mlflow.db`` (runs, models, aliases), ``artifacts/`` (the model
        files, served through the server) and ``server.log``. Created if missing.
    host : {"127.0.0.1", "localhost", "::1"}
        Loopback only: this server has no authentication.
    port : int, default=0
        0 lets the operating system pick a free port; ``server.url`` says which.
    timeout : float, default=180
        Seconds to wait for the server to answer (a first start creates the database).

    Raises
    ------
    BackendUnavailableError
        If only ``mlflow-skinny`` is installed (it has no server): ``pip install mlflow==3.17.2``.
    TrackingServerError
        If it exits or does not answer in time; the message quotes its log.
    """
    if host not in _LOOPBACK:
        raise InvalidArgumentError(
            f"host must be a loopback address {_LOOPBACK}: this server has no login; got {host!r}."
        )
    port = check_number(port, "port", low=0, high=65535, integer=True)
    timeout = check_number(timeout, "timeout", low=0, low_open=True)
    if not server_installed():
        raise BackendUnavailableError(
            f"the MLflow tracking server and UI come with the full mlflow package, and only the client "
            f"(mlflow-skinny) is installed. Install it with `{INSTALL_HINT}`, or use a SQLite store: "
            "MlflowRegistry('sqlite:////abs/path/mlflow.db')."
        )
    folder = Path(folder).absolute()
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / "server.log"
    prepare_sqlite_store(f"sqlite:///{folder / 'mlflow.db'}", _mlflow_version())  # a first start: faster
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{folder / 'mlflow.db'}",
        "--artifacts-destination",
        str(folder / "artifacts"),
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no background job runner: one process
    started = time.monotonic()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=folder, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,  # its own process group: stop() ends the CLI and the uvicorn it starts
        )  # fmt: skip
    try:
        url = _wait_until_up(process, log_path, host, started + timeout)
    except BaseException:
        _terminate(process, 5.0)
        raise
    return TrackingServer(process, folder, url, time.monotonic() - started)


def _wait_until_up(process: subprocess.Popen, log_path: Path, host: str, deadline: float) -> str:
    """The server's URL once its log names the port and ``/health`` answers; else an error quoting the log."""
    url = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise TrackingServerError(
                f"mlflow server exited with code {process.returncode} before answering. Its log ends: "
                f"{_tail(log_path)} (Is MLflow installed? {INSTALL_HINT})"
            )
        if url is None and (m := _RUNNING.search(log_path.read_bytes())):
            url = f"http://{'[::1]' if host == '::1' else host}:{int(m[1])}"
        if url is not None:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
                    if answer.status == 200:
                        return url
            except OSError:
                pass
        time.sleep(0.1)
    raise TrackingServerError(
        f"mlflow server did not answer within the timeout (the machine may be busy; pass a larger timeout=). "
        f"Its log ends: {_tail(log_path)}"
    )


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return clip(" | ".join(lines[-4:]) or "(empty)", 400)


def _terminate(process: subprocess.Popen, timeout: float) -> int:
    """SIGTERM the server's process group, wait, then SIGKILL it; return the exit code."""
    if process.poll() is None:
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
    try:  # the uvicorn child may outlive the CLI by a moment; never leave it behind
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return process.wait()
