"""Command line: ``python -m persistlib serve --registry DIR --alias production --port 8000``.

Serves the model an alias points to over HTTP until you press Ctrl+C. The
endpoints are those of :mod:`persistlib.serving.http` (``POST /predict``, ``GET
/health``, ``GET /version``, ``POST /admin/swap``, ``POST /admin/rollback``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="persistlib", description="persistlib command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve a registry's model over HTTP (127.0.0.1 only)")
    serve.add_argument("--registry", required=True, help="the registry folder")
    serve.add_argument("--alias", default="production", help="version or alias to serve (default: production)")
    serve.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default: 8000; 0 = any free)")
    serve.add_argument("--audit", default=None, help="optional SQLite file for the audit trail")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return 2  # pragma: no cover - argparse already refuses unknown commands


def _serve(args: argparse.Namespace) -> int:
    from .errors import PersistError
    from .registry import Registry

    root = Path(args.registry)
    if not root.is_dir():
        print(
            f"error: no registry folder at {str(root)!r}; pass --registry with an existing registry.", file=sys.stderr
        )
        return 2
    if not 0 <= args.port <= 65535:
        print(f"error: --port must be between 0 and 65535, got {args.port}.", file=sys.stderr)
        return 2
    import socket

    import uvicorn

    from .serving.audit import AuditLog
    from .serving.http import create_app
    from .serving.server import ModelServer

    audit = None
    try:
        audit = AuditLog(args.audit) if args.audit else None
    except PersistError as e:  # a bad --audit path is a usage error
        print(f"error: --audit {args.audit!r}: {e}", file=sys.stderr)
        return 2
    try:
        try:
            server = ModelServer(Registry(root), args.alias, audit=audit)
        except PersistError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        # Bind first, so the printed URL names the real port (also for --port 0).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", args.port))
        except OSError as e:
            sock.close()
            print(
                f"error: cannot listen on 127.0.0.1:{args.port} ({e.strerror or e}); pass another --port, "
                "or --port 0 for any free one.",
                file=sys.stderr,
            )
            return 2
        port = sock.getsockname()[1]
        print(f"serving v{server.version} ({args.alias}) from {root} on http://127.0.0.1:{port}", flush=True)
        config = uvicorn.Config(create_app(server), host="127.0.0.1", port=port, log_level="info", lifespan="off")
        with sock:
            uvicorn.Server(config).run(sockets=[sock])
    finally:
        if audit is not None:
            audit.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
