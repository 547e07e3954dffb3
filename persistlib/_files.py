"""Files written safely and hashed once: the one home of atomic writes and sha256.

A reader must see the old file or the new one, never half of either, even if
the machine loses power mid-write. :func:`atomic_write` gets there in three
steps: write a temporary file beside the target, ``fsync`` it, then
``os.replace`` it over the target (atomic on POSIX and Windows) and ``fsync``
the folder so the rename itself is on disk.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from .errors import IntegrityError, LockTimeoutError, PersistError, StorageError

__all__ = [
    "atomic_write",
    "append_line",
    "write_synced",
    "fsync_dir",
    "sha256_file",
    "temp_path",
    "read_regular",
    "file_lock",
    "storage_errors",
    "json_lines",
]

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


def append_line(path: str | os.PathLike, line: str) -> None:
    """Append one line to a log file and fsync it before returning (the entry survives a crash).

    If a crash tore the file's last line (no final newline), the new line starts
    on a line of its own, so it is never glued onto the torn one and lost with it.
    """
    data = line.rstrip("\n").encode("utf-8") + b"\n"
    with open(path, "a+b") as f:
        if f.seek(0, os.SEEK_END) > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                data = b"\n" + data
        f.write(data)
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


def read_regular(path: str | os.PathLike, *, max_bytes: int, what: str) -> bytes:
    """Read at most ``max_bytes + 1`` bytes of a regular file; refuse anything else before reading a byte.

    A registry reads files that someone else may have put there. A FIFO would
    block ``open`` forever, a device such as ``/dev/zero`` would never end, a
    directory cannot be read, and a symbolic link could point anywhere. So the
    file is opened without following a final symlink and without blocking,
    checked to be a regular file with ``fstat``, and read only up to one byte
    past what the caller expects: ``len(result) > max_bytes`` tells the caller
    the file is larger than it should be, without reading all of it.

    Raises
    ------
    FileNotFoundError
        If there is no such file (callers turn it into their own error).
    IntegrityError
        If it is a symlink or not a regular file.
    StorageError
        If the operating system refuses to open it (permissions).
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as e:
        if e.errno == errno.ELOOP or os.path.islink(path):
            raise IntegrityError(
                f"{what} is a symbolic link; a registry holds regular files only. Replace the link with the file."
            ) from None
        if e.errno == errno.EISDIR:
            raise IntegrityError(f"{what} is a folder, not a file. Remove it and restore the file.") from None
        raise StorageError(f"{what} cannot be read: {e.strerror or e}. Check its permissions.") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise IntegrityError(
            f"{what} is not a regular file (a FIFO, a device or a folder); remove it and restore the file."
        )
    with os.fdopen(fd, "rb") as f:
        return f.read(max_bytes + 1)


@contextmanager
def file_lock(path: Path, *, timeout: float, what: str) -> Iterator[None]:
    """Hold an exclusive lock file (across processes) for the ``with`` block; wait at most ``timeout`` s."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(path), timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise LockTimeoutError(
            f"waited {timeout:g}s for the lock on {what}; another process is saving. Try again, or raise lock_timeout."
        ) from None
    try:
        yield
    finally:
        lock.release()


@contextmanager
def storage_errors(action: str) -> Iterator[None]:
    """Turn the operating system's refusals (disk full, read-only, no permission) into a StorageError.

    ``action`` completes the sentence "could not ...", e.g. ``"save v1.2.0 in workspace/registry"``.
    persistlib's own errors pass through unchanged.
    """
    try:
        yield
    except PersistError:
        raise
    except OSError as e:
        cause = {
            errno.ENOSPC: "the disk is full",
            errno.EDQUOT: "the disk quota is used up",
            errno.EROFS: "the file system is read-only",
            errno.EACCES: "permission denied",
            errno.EPERM: "operation not permitted",
        }.get(e.errno, e.strerror or str(e))
        raise StorageError(
            f"could not {action}: {cause}. Nothing half-written is visible; free some space or fix the "
            "folder's permissions, then try again."
        ) from None


def json_lines(raw: bytes) -> tuple[list[dict], tuple[int, bool] | None]:
    """Parse a JSON-lines log: ``(objects, None)``, or ``(objects so far, (line number, torn))`` at the first bad line.

    ``torn`` says the bad line is the last one and has no final newline: a crash
    mid-write, which the caller can name as such. Blank lines are skipped.
    """
    entries = []
    lines = raw.split(b"\n")
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, RecursionError, ValueError):
            entry = None
        if not isinstance(entry, dict):
            return entries, (n, n == len(lines) and not raw.endswith(b"\n"))
        entries.append(entry)
    return entries, None
