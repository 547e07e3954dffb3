"""A fresh JupyterLab, set up like Binder's (binder/overrides.json), opens with nothing over the page.

Without the overrides, JupyterLab 4.6 greets every fresh launch with a toast, "Would you like to get
notified about official Jupyter news?", at the bottom right, over the widgets. The ``lab`` fixture
installs binder/overrides.json as postBuild does (the app settings directory), so this checks the
file Binder uses.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
NEWS = "official Jupyter news"


def test_the_settings_come_from_the_binder_overrides(lab):
    overrides = json.loads((ROOT / "binder" / "overrides.json").read_text())
    for plugin, wanted in overrides.items():
        got = lab.api("GET", f"/lab/api/settings/{plugin}")
        assert got["raw"].strip() in ("", "{}"), f"{plugin}: the user has settings of their own: {got['raw']!r}"
        defaults = {key: spec.get("default") for key, spec in got["schema"]["properties"].items()}
        for key, value in wanted.items():  # overrides change the defaults a fresh user gets
            assert defaults[key] == value, f"{plugin}: the default of {key} is {defaults[key]!r}, not {value!r}"


class Requests:
    """The requests of a page in flight, and when one last started or ended (listening from its creation)."""

    def __init__(self, page) -> None:
        self.page = page
        self.in_flight: set = set()
        self.last = time.monotonic()
        page.on("request", self._started)
        page.on("requestfinished", self._ended)
        page.on("requestfailed", self._ended)

    def _started(self, request) -> None:
        self.in_flight.add(request)
        self.last = time.monotonic()

    def _ended(self, request) -> None:
        self.in_flight.discard(request)
        self.last = time.monotonic()

    def wait_until_quiet(self, quiet: float = 0.5, timeout: float = 60) -> None:
        """Wait until every request has been answered and none started or ended for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        while self.in_flight or time.monotonic() - self.last < quiet:
            waiting = [r.url for r in self.in_flight]
            assert time.monotonic() < deadline, f"the page never went quiet in {timeout} s; in flight: {waiting}"
            self.page.wait_for_timeout(50)


def test_no_news_popup_on_a_fresh_launch(page, lab):
    from playwright.sync_api import expect

    # JupyterLab asks the news question once the app is restored and the announcements plugin has read its
    # settings (a request made after the restore); the question's toast then loads a script of its own.
    # So the test waits for the restore, then until every request has been answered and none followed for
    # 0.5 s, then until the browser is idle: by then a question asked is in the count and on the page
    # (with an empty binder/overrides.json this test fails).
    requests = Requests(page)
    page.goto(f"{lab.url}/lab?reset&token={lab.token}")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell", timeout=60_000)
    page.evaluate("async () => { await window.jupyterapp.started; await window.jupyterapp.restored; }")
    expect(page.locator(".jp-Notification-Status-Text")).to_be_visible()  # the notification centre is there
    requests.wait_until_quiet()
    page.evaluate("() => new Promise(done => requestIdleCallback(() => requestIdleCallback(done)))")
    shot = ROOT / "test-artifacts" / "fresh_launch_no_news.png"
    shot.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(shot))
    assert page.get_by_text(NEWS).count() == 0, f"the news pop-up is showing; see {shot}"
    assert page.locator(".Toastify__toast").count() == 0, f"a notification toast covers the page; see {shot}"
    expect(page.locator(".jp-Notification-Status-Text")).to_have_text("0")  # nothing waiting in the centre
