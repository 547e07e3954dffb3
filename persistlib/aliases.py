"""Aliases and their history: which version ``production`` points to, and every move it made.

Two small files in the registry folder:

* ``aliases.json`` maps each alias to the versions it has held, newest last
  (``{"production": ["1.0.0", "1.1.0"]}``). The stack is what makes
  :meth:`~persistlib.registry.Registry.rollback` one step: pop the top.
  It is rewritten atomically on every move.
* ``history.jsonl`` is append-only, one JSON object per move
  (``{"at", "alias", "action", "from", "to"}``), flushed to disk before the
  move returns: the audit trail of deployments.

Both are read as untrusted input: every alias name and every version in them
is checked before it is used (a version becomes part of a file name), and a
damaged file gives a :class:`~persistlib.errors.RegistryFileError` that says
how to repair it. The registry holds its lock around every read-modify-write.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ._display import clip
from ._files import append_line, atomic_write, json_lines, read_regular, storage_errors
from .card import utc_now
from .errors import InvalidArgumentError, RegistryFileError
from .versions import is_version, normalise_version

__all__ = [
    "ALIASES_FILE",
    "HISTORY_FILE",
    "check_alias",
    "read_stacks",
    "write_stacks",
    "append_history",
    "record_move",
    "read_history",
]

ALIASES_FILE = "aliases.json"
HISTORY_FILE = "history.jsonl"

_ALIAS_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_MAX_ALIASES_BYTES = 1 << 20  # a million bytes is tens of thousands of promotions
_MAX_HISTORY_BYTES = 64 << 20


def is_alias(name: Any) -> bool:
    """Whether ``name`` is a valid alias name (``"latest"`` is reserved)."""
    return isinstance(name, str) and _ALIAS_RE.fullmatch(name) is not None and name != "latest"


def check_alias(alias: Any) -> str:
    """Return ``alias`` if it is a valid alias name, else raise."""
    if not is_alias(alias):
        raise InvalidArgumentError(
            f"alias {clip(repr(alias), 80)} is not allowed: use a short name that starts with a letter "
            "(letters, digits, '-', '_'), such as 'production' or 'staging'."
        )
    return alias


def _damaged(root: Path, problem: str) -> RegistryFileError:
    return RegistryFileError(
        f"{ALIASES_FILE} in {root} is damaged: {problem}. Every version is still there and loads by number "
        "(registry.load('1.2.0')). To repair it, restore the file from a backup, or delete it and promote "
        f"again; {HISTORY_FILE} lists which version each alias held."
    )


def read_stacks(root: Path) -> dict[str, list[str]]:
    """Each alias -> the versions it has held, newest last (``{}`` before the first promotion).

    Raises
    ------
    RegistryFileError
        If ``aliases.json`` is not a UTF-8 JSON object mapping alias names to
        lists of versions.
    """
    path = root / ALIASES_FILE
    try:
        raw = read_regular(path, max_bytes=_MAX_ALIASES_BYTES, what=f"{ALIASES_FILE} in {root}")
    except FileNotFoundError:
        return {}
    if len(raw) > _MAX_ALIASES_BYTES:
        raise _damaged(root, f"it is larger than {_MAX_ALIASES_BYTES:,} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _damaged(root, "it is not UTF-8 text") from None
    except RecursionError:
        raise _damaged(root, "it is nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, or an integer too long to parse
        raise _damaged(root, f"it is not valid JSON ({clip(str(e), 80)})") from None
    if not isinstance(data, dict):
        raise _damaged(root, f"it holds a {type(data).__name__}, not an object of alias -> versions")
    stacks: dict[str, list[str]] = {}
    for alias, stack in data.items():
        if not is_alias(alias):
            raise _damaged(root, f"{clip(repr(alias), 60)} is not a valid alias name")
        if not isinstance(stack, list) or not all(isinstance(v, str) and is_version(v) for v in stack):
            raise _damaged(
                root, f"alias {alias!r} must hold a list of versions like '1.2.0', got {clip(repr(stack), 60)}"
            )
        stacks[alias] = [normalise_version(v) for v in stack]
    return stacks


def write_stacks(root: Path, stacks: dict[str, list[str]]) -> None:
    """Replace ``aliases.json`` atomically."""
    atomic_write(root / ALIASES_FILE, json.dumps(stacks, indent=2, sort_keys=True).encode())


def record_move(root: Path, stacks: dict[str, list[str]], alias: str, action: str, old: str | None, new: str) -> None:
    """Write the new alias stacks, then append the move to the history (both flushed to disk)."""
    with storage_errors(f"{action} {alias!r} to v{new} in {root}"):
        write_stacks(root, stacks)
        append_history(root, alias, action, old, new)


def append_history(root: Path, alias: str, action: str, old: str | None, new: str) -> None:
    """Append one move to ``history.jsonl`` and flush it to disk (a torn last line is never glued onto)."""
    entry = {"at": utc_now(), "alias": alias, "action": action, "from": old, "to": new}
    append_line(root / HISTORY_FILE, json.dumps(entry))


def read_history(root: Path) -> list[dict[str, Any]]:
    """Every alias move, oldest first.

    Raises
    ------
    RegistryFileError
        Naming the first line that is not a JSON object (e.g. a line torn by a crash).
    """
    path = root / HISTORY_FILE
    try:
        raw = read_regular(path, max_bytes=_MAX_HISTORY_BYTES, what=f"{HISTORY_FILE} in {root}")
    except FileNotFoundError:
        return []
    if len(raw) > _MAX_HISTORY_BYTES:
        raise RegistryFileError(
            f"{HISTORY_FILE} in {root} is larger than {_MAX_HISTORY_BYTES:,} bytes; archive it (move it away) "
            "and a new one starts with the next move."
        )
    entries, bad = json_lines(raw)
    if bad is not None:
        n, torn = bad
        why = "is incomplete (torn by a crash mid-write?)" if torn else "is not a JSON object"
        raise RegistryFileError(
            f"{HISTORY_FILE} in {root}: line {n} {why}. Delete that line (the other lines are intact); "
            "aliases and models are not affected."
        )
    return entries
