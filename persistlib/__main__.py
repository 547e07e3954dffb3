"""Command line: ``python -m persistlib serve --registry DIR --alias production --port 8000``.

Two more commands are for the course's instructors:

* ``python -m persistlib reset-workspaces`` empties every notebook's workspace
  (``notebooks/workspace/*``, or ``--root``), so the next class starts clean;
* ``python -m persistlib slides notebooks/*.ipynb`` sets the RISE slide type of every cell
  (:func:`persistlib.course.set_slide_metadata`: cell metadata only, idempotent).

Serves the model an alias points to over HTTP until you press Ctrl+C. The
endpoints are those of :mod:`persistlib.serving.http` (``POST /predict``, ``GET
/health``, ``GET /version``, ``POST /admin/swap``, ``POST /admin/rollback``).

Secrets come from the environment or a file, never from the command line
(where other users of the machine could read them in the process list):

* the admin token from ``PERSISTLIB_ADMIN_TOKEN``; without it, a random token
  is made and printed once at start;
* a signed registry's key from ``PERSISTLIB_SIGNING_KEY`` or ``--signing-key-file``.

Every failure to start is one ``error:`` line on stderr and exit code 1 (2 for
a usage error), never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["main", "ADMIN_TOKEN_ENV", "WORKSPACES"]

#: Environment variable the ``serve`` command reads its admin token from.
ADMIN_TOKEN_ENV = "PERSISTLIB_ADMIN_TOKEN"

#: Where ``reset-workspaces`` looks by default: the course's notebooks write only under it.
WORKSPACES = "notebooks/workspace"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="persistlib", description="persistlib command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve a registry's model over HTTP (127.0.0.1 only)")
    serve.add_argument("--registry", required=True, help="the registry folder")
    serve.add_argument("--alias", default="production", help="version or alias to serve (default: production)")
    serve.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default: 8000; 0 = any free)")
    serve.add_argument("--audit", default=None, help="optional SQLite file for the audit trail")
    serve.add_argument(
        "--audit-policy",
        default="fail-closed",
        choices=("fail-closed", "best-effort"),
        help="refuse predictions that cannot be audited (default), or serve them and report it",
    )
    serve.add_argument(
        "--signing-key-file", default=None, help="file holding a signed registry's key (or set PERSISTLIB_SIGNING_KEY)"
    )
    reset = sub.add_parser("reset-workspaces", help="empty every notebook's workspace folder before a class")
    reset.add_argument(
        "--root", default=WORKSPACES, help=f"the folder of workspaces, named 'workspace' (default: {WORKSPACES})"
    )
    slides = sub.add_parser("slides", help="set RISE slide metadata on notebooks (cell metadata only, idempotent)")
    slides.add_argument("notebooks", nargs="+", help=".ipynb files")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        try:
            return _serve(args)
        except KeyboardInterrupt:
            return 0
        except Exception as e:  # the promise: one error line, never a traceback
            print(f"error: could not serve: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
    if args.command == "reset-workspaces":
        return _reset_workspaces(Path(args.root))
    if args.command == "slides":
        return _slides(args.notebooks)
    return 2  # pragma: no cover - argparse already refuses unknown commands


def _fail(message: str, code: int = 1) -> int:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)  # one line, whatever the message holds
    return code


def _reset_workspaces(root: Path) -> int:
    """Remove everything inside ``root`` (a folder named ``workspace``); the notebooks recreate what they need."""
    import shutil

    if root.is_symlink() or (root.exists() and not root.is_dir()):
        return _fail(f"--root {str(root)!r} is not a folder; pass the course's notebooks/workspace folder.", 2)
    if root.name != "workspace":
        return _fail(
            f"--root {str(root)!r} is not a folder named 'workspace'; reset-workspaces only empties the "
            "course's notebooks/workspace folder (pass it with --root).",
            2,
        )
    if not root.exists():
        print(f"nothing to reset: no folder {str(root)!r} here (run from the course's root folder, or pass --root).")
        return 0
    removed = []
    try:
        for entry in sorted(root.iterdir()):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry.name)
    except OSError as e:
        return _fail(f"could not remove {e.filename!r} ({e.strerror or e}); close what uses it and run this again.")
    names = ", ".join(removed) if removed else "it was already empty"
    print(f"reset {len(removed)} workspace{'s' if len(removed) != 1 else ''} in {root}: {names}")
    return 0


def _slides(paths: list[str]) -> int:
    """Set RISE slide metadata on each notebook; one line per file."""
    from .course import write_slide_metadata
    from .errors import PersistError

    for name in paths:
        if not name.endswith(".ipynb") or not Path(name).is_file():
            return _fail(f"{name!r} is not a .ipynb file; pass notebooks, e.g. notebooks/*.ipynb.", 2)
    for name in paths:
        try:
            changed = write_slide_metadata(name)
        except PersistError as e:
            return _fail(str(e))
        print(f"{name}: {changed} cell{'s' if changed != 1 else ''} updated" if changed else f"{name}: up to date")
    return 0


def _signing_key(path: str | None) -> bytes | None:
    if path is None:
        return None
    from .errors import InvalidArgumentError

    key = Path(path).read_bytes().strip()
    if not key:
        raise InvalidArgumentError(f"the signing key file {path!r} is empty")
    return key


def _serve(args: argparse.Namespace) -> int:
    from .errors import PersistError
    from .registry import Registry

    root = Path(args.registry)
    if not root.is_dir():
        return _fail(f"no registry folder at {str(root)!r}; pass --registry with an existing registry.", 2)
    if not 0 <= args.port <= 65535:
        return _fail(f"--port must be between 0 and 65535, got {args.port}.", 2)
    token = os.environ.get(ADMIN_TOKEN_ENV)
    if token is not None and len(token.strip()) < 16:
        return _fail(f"{ADMIN_TOKEN_ENV} must hold at least 16 characters (or be unset for a random token).", 2)
    try:
        key = _signing_key(args.signing_key_file)
    except (OSError, ValueError) as e:
        return _fail(f"--signing-key-file: {e}.", 2)
    import gc
    import socket

    import uvicorn

    from .serving.audit import AuditLog
    from .serving.http import create_app
    from .serving.server import ModelServer

    audit = None
    try:
        audit = AuditLog(args.audit) if args.audit else None
    except PersistError as e:  # a bad --audit path is a usage error
        return _fail(f"--audit {args.audit!r}: {e}", 2)
    try:
        try:
            server = ModelServer(
                Registry(root, signing_key=key), args.alias, audit=audit, audit_policy=args.audit_policy
            )
            app = create_app(server, admin_token=token.strip() if token else None)
        except PersistError as e:
            return _fail(str(e))
        # Bind first, so the printed URL names the real port (also for --port 0).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", args.port))
        except OSError as e:
            sock.close()
            return _fail(
                f"cannot listen on 127.0.0.1:{args.port} ({e.strerror or e}); pass another --port, "
                "or --port 0 for any free one.",
                2,
            )
        port = sock.getsockname()[1]
        print(f"serving v{server.version} ({args.alias}) from {root} on http://127.0.0.1:{port}", flush=True)
        if token is None:  # shown once, to the owner of this terminal, as Jupyter shows its token
            print(f"admin token (send 'Authorization: Bearer <token>' to /admin/*): {server.admin_token}", flush=True)
        # Start-up is over: its objects (the imports, the model) leave the garbage collector, whose full
        # collections would walk them all while requests wait (README, "Benchmarks").
        gc.collect()
        gc.freeze()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info", lifespan="off")
        with sock:
            uvicorn.Server(config).run(sockets=[sock])
    finally:
        if audit is not None:
            audit.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
