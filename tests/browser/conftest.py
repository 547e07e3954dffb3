"""Fixtures for the real-browser tests: one JupyterLab server, headless Debian Chromium.

* ``lab``: a JupyterLab server (one per test session) serving *copies* of the notebooks
  from a temporary folder, so running cells never touches the saved notebooks and every
  file they write lands in the temporary folder too. Config, data and runtime folders are
  temporary as well: nothing of the user's Jupyter set-up is read or written.
* ``page``: a fresh Chromium page; on failure a screenshot goes to ``test-artifacts/``.

Chromium must be Debian's (``/usr/bin/chromium``); nothing is ever downloaded. Without it
the tests are skipped locally and fail in CI (when the ``CI`` environment variable is set).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
#: A stand-in for Binder's host name: Chromium maps it to 127.0.0.1 (see test_binder_proxy.py).
HUB_HOST = "hub.binder.test"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    f"--host-resolver-rules=MAP {HUB_HOST} 127.0.0.1",
]


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


def _need_browser() -> None:
    problem = None
    if not CHROMIUM.exists():
        problem = f"{CHROMIUM} is missing; install Debian's chromium (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "the playwright package is missing; pip install -r requirements-dev.txt"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run in CI: {problem}.")
        pytest.skip(f"browser tests skipped: {problem}.")


def _server_port(runtime: Path, proc: subprocess.Popen) -> int | None:
    """The port the server listens on, from the ``jpserver-<pid>.json`` it writes once it is up (else None)."""
    for info_file in (runtime / f"jpserver-{proc.pid}.json", *sorted(runtime.glob("jpserver-*.json"))):
        try:
            info = json.loads(info_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # not written yet, or half written
            continue
        if info.get("port"):
            return int(info["port"])
    return None


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    log: Path

    def api(self, method: str, path: str) -> object:
        req = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

    def notebook_url(self, name: str) -> str:
        # ?reset: start from an empty layout, so earlier tests' notebooks do not reopen
        return f"{self.url}/lab/tree/notebooks/{name}?reset&token={self.token}"

    def shutdown_sessions(self) -> None:
        for s in self.api("GET", "/api/sessions") or []:
            self.api("DELETE", f"/api/sessions/{s['id']}")


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """A JupyterLab server on a port the OS picks, serving copies of the notebooks.

    The server binds port 0 itself (no retries) and the fixture reads the port it got from the
    ``jpserver-<pid>.json`` it writes into its runtime folder: no port is picked here and then
    handed over, so another process cannot take it in between.
    """
    _need_browser()
    base = tmp_path_factory.mktemp("lab")
    root = base / "course"
    shutil.copytree(
        ROOT / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns("workspace", ".ipynb_checkpoints")
    )
    config, runtime = base / "config", base / "runtime"
    # The JupyterLab defaults Binder gets (binder/postBuild installs the same file): no news pop-up.
    app_settings = base / "app-settings"
    app_settings.mkdir()
    shutil.copy(ROOT / "binder" / "overrides.json", app_settings / "overrides.json")
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "JUPYTER_DATA_DIR": str(base / "data"),
        "JUPYTERLAB_SETTINGS_DIR": str(config / "lab" / "user-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(config / "lab" / "workspaces"),
        "MPLBACKEND": "Agg",
    }
    token = secrets.token_hex(16)
    log = base / "jupyter-lab.log"
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port=0",
        "--ServerApp.port_retries=0",
        f"--ServerApp.token={token}",
        "--LabApp.expose_app_in_browser=True",
        f"--LabApp.app_settings_dir={app_settings}",
        # a name that stands for a hub's host (Chromium maps it to 127.0.0.1): requests through the proxy
        f"--ServerApp.local_hostnames={['localhost', HUB_HOST]}",
        f"--ServerApp.root_dir={root}",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root)
    server = None
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with code {proc.returncode}; log:\n{log.read_text()[-3000:]}")
            if server is None and (port := _server_port(runtime, proc)) is not None:
                server = Lab(f"http://127.0.0.1:{port}", token, root, log)
            if server is not None:
                try:
                    server.api("GET", "/api/status")
                    break
                except OSError:
                    pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not answer within 90 s; log:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def chromium(lab):
    """One headless Debian Chromium for the whole session."""
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()
        pw.stop()


def screenshot_if_failed(pg, request, lab) -> None:
    """Save ``pg`` to test-artifacts/<test name>.png if the test's call failed."""
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / f"{request.node.name}.png"
        try:
            pg.screenshot(path=str(shot), full_page=True)
            print(f"screenshot saved: {shot}; server log: {lab.log}")
        except Exception as e:  # the page may be gone; keep the original failure
            print(f"could not save a screenshot: {e}")


@pytest.fixture()
def page(chromium, lab, request):
    """A fresh page; a screenshot is saved to test-artifacts/ if the test fails."""
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(60_000)
    pg = context.new_page()
    try:
        yield pg
    finally:
        screenshot_if_failed(pg, request, lab)
        context.close()
        try:
            lab.shutdown_sessions()
        except OSError:
            pass
