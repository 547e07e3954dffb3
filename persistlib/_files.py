"""Files written safely and hashed once: the one home of atomic writes and sha256.

A reader must see the old file or the new one, never half of either, even if
the machine loses power mid-write. :func:`atomic_write` gets there in three
steps: write a temporary file beside the target, ``fsync`` it, then
``os.replace`` it over the target (atomic on POSIX and Windows) and ``fsync``
the folder so the rename itself is on disk.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "append_synced", "write_synced", "fsync_dir", "sha256_file", "temp_path"]

_BLOCK = 1 << 20  # hash files a megabyte at a time: memory stays flat for any size


def temp_path(path: Path, suffix: str = "") -> Path:
    """A fresh hidden name beside ``path`` (``.tmp-<random>-<name>``); registries skip such names."""
    return path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}{suffix}")


def write_synced(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Open ``path`` for writing, let ``write(f)`` fill it, then flush and fsync it."""
    with open(path, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the new one, never half."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        write_synced(tmp, lambda f: f.write(data))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def append_synced(path: str | os.PathLike, text: str) -> None:
    """Append ``text`` to a log file and fsync it before returning (the entry survives a crash)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename into it) to disk. A no-op on Windows, which cannot."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_file(path: str | os.PathLike) -> tuple[str, int]:
    """``(sha256 hex digest, size in bytes)`` of a file, read in blocks."""
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size
