"""A student on Binder opens the model server's docs page through jupyter-server-proxy.

On Binder the browser cannot reach the kernel's ``127.0.0.1:PORT``; jupyter-server-proxy serves it at
``<lab>/proxy/PORT/``. The proxy passes the browser's ``Host`` header on, and on Binder that is the
hub's name, not a loopback one. So the test reaches JupyterLab by a stand-in hub name
(``HUB_HOST``, mapped to 127.0.0.1 inside Chromium), and blocks every other host: the page must
work offline (no CDN). The server's loopback guard stays on for everything but the docs.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from .conftest import HUB_HOST, ROOT

pytestmark = pytest.mark.browser


def test_docs_page_opens_through_the_proxy_offline(page, lab, http_server):
    from playwright.sync_api import expect

    _, url = http_server
    port = urlsplit(url).port
    lab_port = urlsplit(lab.url).port
    hub = f"http://{HUB_HOST}:{lab_port}"
    outside: list[str] = []

    def only_the_hub(route):
        if urlsplit(route.request.url).hostname == HUB_HOST:
            route.continue_()
        else:  # a CDN, a font, anything: the page must not need it
            outside.append(route.request.url)
            route.abort()

    page.context.route("**/*", only_the_hub)
    page.goto(f"{hub}/lab?token={lab.token}")  # logs in: the proxy needs Jupyter's login, like every page
    page.wait_for_function("() => !!window.jupyterapp", timeout=60_000)

    answer = page.goto(f"{hub}/proxy/{port}/docs")
    assert answer.status == 200, answer.text()[:300]
    expect(page).to_have_title("persistlib model server 1 · docs")
    expect(page.locator("h2", has_text="POST /predict")).to_be_visible()
    expect(page.locator("h2", has_text="POST /admin/swap")).to_contain_text("/admin/swap")
    shot = ROOT / "test-artifacts" / "proxy_docs.png"
    shot.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)

    with page.expect_navigation():
        page.get_by_role("link", name="openapi.json").click()
    assert page.url == f"{hub}/proxy/{port}/openapi.json"
    spec = json.loads(page.locator("body").inner_text())
    assert {"/predict", "/health", "/admin/swap"} <= set(spec["paths"])
    assert outside == [], f"the docs page fetched from outside the lab: {outside}"

    refused = page.goto(f"{hub}/proxy/{port}/health")  # the rest keeps the loopback Host guard
    assert refused.status == 403 and HUB_HOST in refused.text()
