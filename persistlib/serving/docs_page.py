"""The model server's docs page: plain HTML made from its OpenAPI spec, and where to open it.

FastAPI's own ``/docs`` page loads Swagger UI's JavaScript from a CDN, so offline it is
blank, and it fetches ``/openapi.json`` by an absolute path, which misses when the server
is reached through Jupyter's proxy (``.../proxy/PORT/docs``). :func:`docs_html` makes a page
that is complete in itself (no script, no download) and links to ``openapi.json`` relatively,
so it works directly and through the proxy.

:func:`docs_link` says where a student opens it: ``http://127.0.0.1:PORT/docs`` on their own
machine, or, on Binder or any JupyterHub (where the browser cannot reach the server's
loopback), the path jupyter-server-proxy serves it under, ``/user/<name>/proxy/PORT/docs``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from html import escape
from typing import Any
from urllib.parse import urlsplit

from ..errors import InvalidArgumentError

__all__ = ["docs_html", "docs_link", "example_of"]

_METHODS = ("get", "post", "put", "patch", "delete")


def docs_link(base_url: str, *, environ: Mapping[str, str] | None = None) -> str:
    """Where a browser opens the docs page of the server at ``base_url`` (from ``start_http``).

    Under JupyterHub (Binder included) the kernel has ``JUPYTERHUB_SERVICE_PREFIX``; the
    page is then reached through jupyter-server-proxy: ``<prefix>proxy/<port>/docs``.
    """
    env = os.environ if environ is None else environ
    parts = urlsplit(base_url) if isinstance(base_url, str) else None
    try:
        port = parts.port if parts is not None else None
    except ValueError:
        port = None
    if parts is None or parts.scheme != "http" or port is None:
        raise InvalidArgumentError(
            f"base_url must be a server address such as 'http://127.0.0.1:8000' (what start_http "
            f"returns), got {base_url!r}."
        )
    prefix = env.get("JUPYTERHUB_SERVICE_PREFIX", "")
    if prefix:
        return f"/{prefix.strip('/')}/proxy/{port}/docs"
    return f"http://{parts.netloc}/docs"


def example_of(schema: Mapping[str, Any]) -> Any:
    """A small example value for a JSON schema (objects, arrays, numbers, strings)."""
    if "anyOf" in schema:
        return example_of(schema["anyOf"][0])
    kind = schema.get("type")
    if kind == "object":
        return {name: example_of(sub) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [example_of(schema.get("items", {}))]
    if kind in ("number", "integer"):
        return 0
    if kind == "string":
        return "1.0.0" if schema.get("minLength") else "text"
    return None


def _operation(path: str, method: str, op: Mapping[str, Any]) -> str:
    e = escape
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    parts = [
        f'<h2 id="{e(method)}-{e(path.strip("/").replace("/", "-"))}"><code>{e(method.upper())} {e(path)}</code></h2>'
    ]
    if op.get("summary"):
        parts.append(f"<p>{e(op['summary'])}</p>")
    if path.startswith("/admin"):
        parts.append("<p><b>Needs the admin token:</b> <code>Authorization: Bearer &lt;token&gt;</code>.</p>")
    if body is not None:
        example = json.dumps(example_of(body), indent=1)
        parts.append("<p>Send <code>Content-Type: application/json</code> with a body like:</p>")
        parts.append(f"<pre>{e(example)}</pre>")
        parts.append(
            f"<details><summary>JSON schema of the body</summary><pre>{e(json.dumps(body, indent=1))}</pre></details>"
        )
    codes = ", ".join(sorted(op.get("responses", {})))
    if codes:
        parts.append(f"<p>Answers: {e(codes)} (and a 4xx naming the problem for a bad request).</p>")
    return "\n".join(parts)


def docs_html(spec: Mapping[str, Any]) -> str:
    """A self-contained HTML page describing every endpoint of an OpenAPI ``spec``."""
    info = spec.get("info", {})
    title = f"{info.get('title', 'API')} {info.get('version', '')}".strip()
    sections = [
        _operation(path, method, op)
        for path, methods in spec.get("paths", {}).items()
        for method, op in methods.items()
        if method in _METHODS
    ]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)} · docs</title>
<style>body{{font-family:sans-serif;max-width:50em;margin:1em auto;padding:0 1em;line-height:1.4}}
pre{{background:#f4f4f4;padding:.5em;overflow:auto}}h2{{margin-top:1.5em}}</style></head>
<body><main><h1>{escape(title)}</h1>
<p>Every endpoint of this server. The machine-readable spec is <a href="openapi.json">openapi.json</a>.
This page needs no internet and works through Jupyter's proxy.</p>
{chr(10).join(sections)}
</main></body></html>
"""
