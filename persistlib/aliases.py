"""Aliases and their history: which version ``production`` points to, and every move it made.

Two small files in the registry folder:

* ``aliases.json`` maps each alias to the versions it has held, newest last
  (``{"production": ["1.0.0", "1.1.0"]}``). The stack is what makes
  :meth:`~persistlib.registry.Registry.rollback` one step: pop the top.
  It is rewritten atomically on every move.
* ``history.jsonl`` is append-only, one JSON object per move
  (``{"at", "alias", "action", "from", "to"}``), flushed to disk before the
  move returns: the audit trail of deployments.

The registry holds its lock around every read-modify-write of these files.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ._files import append_synced, atomic_write
from .card import utc_now
from .errors import CardError, InvalidArgumentError

__all__ = [
    "ALIASES_FILE",
    "HISTORY_FILE",
    "check_alias",
    "read_stacks",
    "write_stacks",
    "append_history",
    "read_history",
]

ALIASES_FILE = "aliases.json"
HISTORY_FILE = "history.jsonl"

_ALIAS_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


def check_alias(alias: Any) -> str:
    """Return ``alias`` if it is a valid alias name (``"latest"`` is reserved), else raise."""
    if not isinstance(alias, str) or not _ALIAS_RE.fullmatch(alias) or alias == "latest":
        raise InvalidArgumentError(
            f"alias {alias!r} is not allowed: use a short name that starts with a letter "
            "(letters, digits, '-', '_'), such as 'production' or 'staging'."
        )
    return alias


def read_stacks(root: Path) -> dict[str, list[str]]:
    """Each alias -> the versions it has held, newest last (``{}`` before the first promotion)."""
    path = root / ALIASES_FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        raise CardError(
            f"{path} is not valid JSON; fix it by hand (it maps alias -> list of "
            "versions, newest last) or delete it and promote again."
        ) from None
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise CardError(f"{path} must map each alias to a list of versions, newest last.")
    return data


def write_stacks(root: Path, stacks: dict[str, list[str]]) -> None:
    """Replace ``aliases.json`` atomically."""
    atomic_write(root / ALIASES_FILE, json.dumps(stacks, indent=2, sort_keys=True).encode())


def append_history(root: Path, alias: str, action: str, old: str | None, new: str) -> None:
    """Append one move to ``history.jsonl`` and flush it to disk."""
    entry = {"at": utc_now(), "alias": alias, "action": action, "from": old, "to": new}
    append_synced(root / HISTORY_FILE, json.dumps(entry) + "\n")


def read_history(root: Path) -> list[dict[str, Any]]:
    """Every alias move, oldest first."""
    path = root / HISTORY_FILE
    if not path.exists():
        return []
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                raise CardError(f"{HISTORY_FILE} line {n} is not JSON; fix or delete that line.") from None
    return out
