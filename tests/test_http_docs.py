"""The server's docs page: self-contained, readable through a proxy, and the only thing a foreign Host gets."""

from __future__ import annotations

import httpx
import pytest

import persistlib as pl
from persistlib.serving.docs_page import docs_html, docs_link, example_of


def test_docs_page_lists_every_endpoint_and_needs_nothing_from_outside(http_server):
    _, url = http_server
    page = httpx.get(f"{url}/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    spec = httpx.get(f"{url}/openapi.json").json()
    for path, methods in spec["paths"].items():
        for method in methods:
            assert f"{method.upper()} {path}</code>" in page.text
    assert "<script" not in page.text.lower() and "http" not in page.text.split("<body>")[1]  # no CDN, no link out
    assert 'href="openapi.json"' in page.text  # relative: right under /proxy/PORT/ too
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert httpx.get(f"{url}/redoc").status_code in (403, 404)  # FastAPI's CDN pages are off


@pytest.mark.parametrize("path", ["/docs", "/openapi.json"])
def test_a_proxy_host_may_read_the_docs(http_server, path):
    _, url = http_server
    assert httpx.get(f"{url}{path}", headers={"Host": "hub.mybinder.org"}).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/health"), ("GET", "/version"), ("POST", "/predict"), ("POST", "/docs")]
)
def test_a_foreign_host_gets_nothing_else(http_server, method, path):
    _, url = http_server
    r = httpx.request(method, f"{url}{path}", headers={"Host": "hub.mybinder.org"}, json={"rows": []})
    assert r.status_code == 403 and "hub.mybinder.org" in r.json()["detail"]


def test_admin_stays_guarded_from_a_proxy_host(http_server):
    server, url = http_server
    r = httpx.post(f"{url}/admin/rollback", headers={"Host": "hub.mybinder.org"}, json={})
    assert r.status_code == 401
    r = httpx.post(
        f"{url}/admin/rollback",
        headers={"Host": "hub.mybinder.org", "Authorization": f"Bearer {server.admin_token}"},
        json={},
    )
    assert r.status_code == 403 and "hub.mybinder.org" in r.json()["detail"]


def test_docs_html_escapes_what_the_spec_says():
    spec = {"info": {"title": "<b>x</b>"}, "paths": {"/a": {"get": {"summary": "<script>alert(1)</script>"}}}}
    html = docs_html(spec)
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_example_of_follows_the_schema():
    schema = {
        "type": "object",
        "properties": {
            "rows": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "number"}}}},
            "who": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        },
    }
    assert example_of(schema) == {"rows": [{"a": 0}], "who": "text"}


def test_docs_link_direct_and_through_a_hub():
    assert docs_link("http://127.0.0.1:8123", environ={}) == "http://127.0.0.1:8123/docs"
    hub = {"JUPYTERHUB_SERVICE_PREFIX": "/user/ann-abc123/"}
    assert docs_link("http://127.0.0.1:8123/", environ=hub) == "/user/ann-abc123/proxy/8123/docs"


@pytest.mark.parametrize("bad", ["127.0.0.1:8000", "http://127.0.0.1", "ftp://x:1", "http://x:99999", 8000, None])
def test_docs_link_refuses_what_is_not_a_server_address(bad):
    with pytest.raises(pl.errors.InvalidArgumentError, match="base_url"):
        docs_link(bad, environ={})
