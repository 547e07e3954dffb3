"""Artefact I/O: turning a model into bytes on disk and back, in each format.

A registry version is a pair: the *artefact* (the model's bytes) and its card.
This module knows the artefact side only: which formats exist, how each one
is written (and flushed to disk) and how verified bytes become a model again.
It knows nothing of versions, aliases or signatures; :mod:`persistlib.registry`
decides *which* bytes may be loaded, this module only loads them.

Formats:

* ``"joblib"`` (``.pkl``): ``joblib.dump(model, compress=...)``. Fast, compact,
  and pickle-based: loading runs code named inside the file, so load only
  bytes whose sha256 you checked against a card you trust.
* ``"skops"`` (``.skops``): a zip of JSON and arrays. Loading rebuilds only
  types someone reviewed (``trusted_types``) and never runs a pickle.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import threading
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._files import read_regular, write_synced
from .errors import ArtefactLoadError, IntegrityError, InvalidArgumentError, PersistError, UntrustedTypeError

__all__ = ["FORMATS", "JOBLIB_COMPRESSORS", "check_format", "check_compress", "dump", "loads", "read_verified"]

#: Artefact formats and their file extensions.
FORMATS: dict[str, str] = {"joblib": ".pkl", "skops": ".skops"}
#: The compressors ``joblib.dump(compress=(method, level))`` accepts.
JOBLIB_COMPRESSORS: tuple[str, ...] = ("zlib", "gzip", "bz2", "lzma", "xz", "lz4")


def check_format(fmt: Any) -> str:
    """Return ``fmt`` if it is a known format, else raise naming the choices."""
    if fmt not in FORMATS:
        raise InvalidArgumentError(f"format must be one of {sorted(FORMATS)}, got {fmt!r}.")
    return fmt


def check_compress(compress: Any) -> Any:
    """Return ``compress`` if it is an int 0-9 or a ``(method, level)`` pair joblib accepts."""

    def level_ok(level: Any) -> bool:
        return isinstance(level, int) and not isinstance(level, bool) and 0 <= level <= 9

    ok = level_ok(compress) or (
        isinstance(compress, tuple)
        and len(compress) == 2
        and compress[0] in JOBLIB_COMPRESSORS
        and level_ok(compress[1])
    )
    if not ok:
        raise InvalidArgumentError(
            f"compress must be an int 0-9 or a (method, level) pair with method in "
            f"{JOBLIB_COMPRESSORS}, e.g. 3 or ('lz4', 3); got {compress!r}."
        )
    if isinstance(compress, tuple) and compress[0] == "lz4" and not _lz4_installed():
        raise InvalidArgumentError(
            f"compress={compress!r} needs the lz4 package, which is not installed: pip install lz4, or use "
            "zlib (e.g. compress=3)."
        )
    return compress


def _lz4_installed() -> bool:
    from joblib import compressor  # joblib's own answer (lz4 is None when the package is missing)

    return compressor.lz4 is not None


def dump(
    model: Any,
    path: str | os.PathLike,
    *,
    format: str = "joblib",
    compress: int | tuple[str, int] = 3,
    trusted_types: list[str] | None = None,
) -> list[str] | None:
    """Write ``model`` to ``path`` in ``format`` and fsync it.

    Parameters
    ----------
    model : object
    path : str or os.PathLike
        Overwritten if it exists. Write to a temporary name and rename it
        yourself if readers must never see half a file (the registry does).
    format : {"joblib", "skops"}, default="joblib"
    compress : int 0-9 or (method, level), default=3
        joblib compression; for skops, a zip deflate level (0 = stored).
    trusted_types : list of str, optional
        skops only: the types you reviewed. Writing fails if the model holds
        any other type.

    Returns
    -------
    list of str or None
        skops: every type in the file that skops would ask a loader to trust
        (record them, e.g. on the card). joblib: ``None``.

    Raises
    ------
    UntrustedTypeError
        skops only, if the model holds a type not in ``trusted_types``.
    """
    check_format(format)
    check_compress(compress)
    path = Path(path)
    if format == "joblib":
        import joblib

        write_synced(path, lambda f: joblib.dump(model, f, compress=compress))
        return None
    import skops.io as sio

    level = compress[1] if isinstance(compress, tuple) else compress
    write_synced(
        path,
        lambda f: sio.dump(
            model, f, compression=zipfile.ZIP_DEFLATED if level else zipfile.ZIP_STORED, compresslevel=level or None
        ),
    )
    return check_reviewed(sio.get_untrusted_types(file=path), trusted_types)


def check_reviewed(found: list[str], trusted_types: list[str] | None) -> list[str]:
    """The types skops would ask a loader to trust, sorted; refused if one was not reviewed.

    Raises
    ------
    UntrustedTypeError
        If ``trusted_types`` is given and ``found`` holds a type it does not list.
    """
    found = sorted(found)
    if trusted_types is not None:
        unreviewed = sorted(set(found) - set(trusted_types))
        if unreviewed:
            raise UntrustedTypeError(
                f"the model holds types you did not list in trusted_types: {unreviewed}. "
                "Review them and add them, or change the model."
            )
    return found


def loads(data: bytes, *, format: str, trusted_types: list[str] | None = None, label: str = "the artefact") -> Any:
    """Turn an artefact's bytes back into a model.

    Call it only on bytes you already verified (the registry checks their
    sha256 against the card first): for ``"joblib"`` this unpickles them.

    Parameters
    ----------
    data : bytes
    format : {"joblib", "skops"}
    trusted_types : list of str, optional
        skops only: the reviewed types. A type in the file that is not on this
        list is refused, before anything is built.
    label : str
        Names the artefact in error messages, e.g. ``"v1.2.0: model_v1.2.0.skops"``.

    Raises
    ------
    UntrustedTypeError
        skops only, for a type that was not reviewed.
    ArtefactLoadError
        If the unpickler or skops fails: e.g. a function the model needs was
        defined in a notebook (``__main__``), or a package or codec is missing.
    """
    check_format(format)
    try:
        if format == "joblib":
            import joblib

            return joblib.load(_SharingReader(_decompressing(data, label)))
        import skops.io as sio

        found = sio.get_untrusted_types(data=data)
        reviewed = set(trusted_types or [])
        unreviewed = sorted(set(found) - reviewed)
        if unreviewed:
            raise UntrustedTypeError(
                f"{label} holds type(s) {unreviewed} that were not reviewed when it was saved; refusing to load "
                "them. If you trust them, inspect the file with skops.io.get_untrusted_types and re-save with "
                "trusted_types=[...]."
            )
        return sio.loads(data, trusted=sorted(reviewed & set(found)))
    except PersistError:
        raise
    except Exception as e:  # whatever the unpickler or skops raised, said with its remedy
        raise ArtefactLoadError(_why_not_loaded(label, e)) from e


def _why_not_loaded(label: str, error: Exception) -> str:
    """The message for a load that failed: what was raised, and the remedy that fits it."""
    kind = type(error).__qualname__
    if type(error).__module__ != "builtins":
        kind = f"{type(error).__module__}.{kind}"
    said = f"{label} could not become a model again: {kind}" + (f": {error}" if str(error) else "")
    if isinstance(error, MemoryError):
        return f"{said}. There is not enough memory here to rebuild it: free some, or load it on a larger machine."
    if isinstance(error, ImportError) or str(error).startswith("Can't get attribute"):  # pickle's find_class
        return (
            f"{said}. It needs code that this Python cannot import: a function or class defined in a notebook "
            "or script (__main__), or a package (or package version) not installed here. Move such code into a "
            "module installed wherever the model loads and save the model again, or install the package "
            "versions recorded on the card."
        )
    return (
        f"{said}. If these bytes came from a registry, they matched their card's sha256, so the cause is this "
        "environment, not the file: install the package versions recorded on the card, or save the model again "
        "with these."
    )


_courtesy = threading.local()  # .pause: what a load in this thread calls before each read (see yielding_to)


@contextmanager
def yielding_to(pause: Callable[[], None]) -> Iterator[None]:
    """Within this block, a joblib load in this thread calls ``pause()`` before each read of the unpickler.

    Unpickling a joblib file runs Python's pure-Python unpickler, which holds the
    GIL all along: a server that hot-swaps under load would load the new model in
    one thread while requests in others wait for the GIL, up to the interpreter's
    5 ms switch interval each time. ``pause`` lets the loading thread step aside:
    :class:`~persistlib.serving.ModelServer` waits there while requests are running
    (``benchmarks/serving.py`` measures the effect).
    """
    previous = getattr(_courtesy, "pause", None)
    _courtesy.pause = pause
    try:
        yield
    finally:
        _courtesy.pause = previous


def _decompressing(data: bytes, label: str) -> io.BufferedIOBase:
    """``data`` as joblib's unpickler reads it: through joblib's own decompressor if it was saved compressed.

    Decompressing here, not inside ``joblib.load``, puts :class:`_SharingReader` on the unpickler's side:
    joblib would read the decompressed pickle through a 1 MiB buffer, and the unpickler would then run for
    6-10 ms of CPU time (a RandomForest(100), ``benchmarks/serving.py``) between two reads of the compressed
    bytes, without a pause. Streamed: never a second copy in memory.
    """
    from joblib.compressor import _COMPRESSORS  # private, but joblib is pinned; a test covers every method
    from joblib.numpy_pickle_utils import _ZFILE_PREFIX

    if data.startswith(_ZFILE_PREFIX):
        raise ArtefactLoadError(
            f"{label} was written by joblib older than 0.10, which cannot be read from memory: load it with "
            "joblib.load(path) where you trust it, and save the model again."
        )
    raw = io.BytesIO(data)
    for name, wrapper in _COMPRESSORS.items():
        if data.startswith(wrapper.prefix):
            if name == "lz4" and not _lz4_installed():
                raise ArtefactLoadError(
                    f"{label} is compressed with lz4, and the lz4 package is not installed here: pip install lz4."
                )
            return io.BufferedReader(wrapper.decompressor_file(raw))
    return raw  # not compressed


class _SharingReader:
    """The pickle for the unpickler; before each read it calls this thread's ``pause`` (:func:`yielding_to`)."""

    def __init__(self, stream: io.BufferedIOBase):
        self._stream = stream

    def read(self, size: int | None = -1) -> bytes:
        _pause()
        return self._stream.read(size)

    def readline(self, size: int | None = -1) -> bytes:  # protocols 0 and 1 read text lines
        _pause()
        return self._stream.readline(size)

    def seek(self, offset: int) -> int:  # joblib peeks at the first bytes, then seeks back to 0
        return self._stream.seek(offset)


def _pause() -> None:
    pause = getattr(_courtesy, "pause", None)
    if pause is not None:
        pause()


def read_verified(root: Path, name: str, *, sha256: str, size: int | None, version: str) -> bytes:
    """Read artefact ``name`` from folder ``root`` and return its bytes only if their sha256 is ``sha256``.

    The bytes returned are the bytes hashed: there is no second read between
    the check and the use, so a file swapped after the check is never loaded.
    Only a regular file is read, and never more than ``size`` bytes (the size
    the card records; 4 GiB for an older card that records none), so a FIFO, a
    device or a huge file cannot hang the reader or fill its memory.

    Raises
    ------
    IntegrityError
        If ``name`` is not a plain file name, the file is missing or not a
        regular file, or its size or bytes do not match.
    """
    if not isinstance(name, str) or not name or Path(name).name != name or name.startswith("."):
        raise IntegrityError(
            f"v{version}'s card names artefact {name!r}, which is not a plain "
            "file name in the registry; the card was tampered with."
        )
    try:
        data = read_regular(Path(root) / name, max_bytes=_max_bytes(size), what=f"v{version}: artefact {name}")
    except FileNotFoundError:
        raise IntegrityError(
            f"v{version}: artefact {name} is missing from {root}. Restore it from a backup, or load another version."
        ) from None
    actual = hashlib.sha256(data).hexdigest()
    if size is not None and len(data) != size:
        mismatch = f"{len(data):,} bytes ≠ recorded {size:,}"
    elif not hmac.compare_digest(actual.encode(), str(sha256).encode()):
        mismatch = f"sha256 {actual[:12]}… ≠ recorded {str(sha256)[:12]}…"
    else:
        return data
    unread = "loaded" if name.endswith(".skops") else "unpickled"  # a skops file is not a pickle
    raise IntegrityError(
        f"v{version}: {name} does not match its card ({mismatch}). The file was changed, truncated or "
        f"swapped; it was NOT {unread}. Restore the original file, or load another version."
    )


def _max_bytes(size: int | None) -> int:
    """How much to read at most: the recorded size (one byte more shows a grown file), else 4 GiB."""
    return size if isinstance(size, int) and size >= 0 else 4 << 30
