"""Measure persistence methods side by side: file size, save time, load time.

Used by the CompressionExplorer widget, notebook 04 and ``benchmarks/formats.py``.
Method names::

    "pickle"                       pickle protocol 5, no compression
    "joblib-0" ... "joblib-9"      joblib.dump(compress=level)  (zlib)
    "joblib-lz4-3", "joblib-lzma-3" joblib with another compressor and level
    "skops"                        skops.io, zip-deflated
"""
from __future__ import annotations

import importlib.util
import pickle
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

__all__ = ["PersistMethod", "available_methods", "measure", "Measurement"]


@dataclass(frozen=True)
class Measurement:
    method: str
    bytes: int
    dump_s: float
    load_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PersistMethod:
    name: str
    suffix: str
    dump: Callable[[Any, Path], None]
    load: Callable[[Path], Any]


def _pickle_dump(obj: Any, path: Path) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=5)


def _pickle_load(path: Path) -> Any:
    with open(path, "rb") as f:
        return pickle.load(f)  # only ever on files this process just wrote


def _joblib(compress: Any) -> tuple[Callable[[Any, Path], None], Callable[[Path], Any]]:
    import joblib

    return (lambda obj, path: joblib.dump(obj, path, compress=compress)), joblib.load


def _skops() -> tuple[Callable[[Any, Path], None], Callable[[Path], Any]]:
    import zipfile

    import skops.io as sio

    def dump(obj: Any, path: Path) -> None:
        sio.dump(obj, path, compression=zipfile.ZIP_DEFLATED)

    def load(path: Path) -> Any:  # trusts what this process just wrote, after listing it
        return sio.load(path, trusted=sio.get_untrusted_types(file=path))

    return dump, load


def available_methods(*, include_slow: bool = True) -> list[str]:
    """Method names usable here (lz4 and skops only when installed).

    ``include_slow=False`` leaves out ``joblib-9`` and ``joblib-lzma-3``, which
    take seconds on a large forest.
    """
    names = ["pickle"] + [f"joblib-{i}" for i in range(10)]
    if importlib.util.find_spec("lz4") is not None:
        names.append("joblib-lz4-3")
    names.append("joblib-lzma-3")
    if importlib.util.find_spec("skops") is not None:
        names.append("skops")
    if not include_slow:
        names = [n for n in names if n not in ("joblib-9", "joblib-lzma-3")]
    return names


def get_method(name: str) -> PersistMethod:
    """Look up a method by name (see the module docstring)."""
    if name == "pickle":
        return PersistMethod(name, ".pkl", _pickle_dump, _pickle_load)
    if name == "skops":
        return PersistMethod(name, ".skops", *_skops())
    parts = name.split("-")
    if parts[0] == "joblib":
        if len(parts) == 2 and parts[1].isdigit() and 0 <= int(parts[1]) <= 9:
            return PersistMethod(name, ".joblib", *_joblib(int(parts[1])))
        if len(parts) == 3 and parts[1] in ("lz4", "lzma", "zlib", "gzip", "bz2", "xz") and parts[2].isdigit():
            return PersistMethod(name, ".joblib", *_joblib((parts[1], int(parts[2]))))
    raise ValueError(f"unknown persistence method {name!r}; choose from {available_methods()}.")


def measure(model: Any, method: str, folder: str | Path, *, repeat: int = 1) -> Measurement:
    """Save and load ``model`` with ``method`` in ``folder``; keep the best of ``repeat`` timings."""
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}.")
    m = get_method(method)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"model_{method}{m.suffix}"
    dump_s = load_s = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        m.dump(model, path)
        t1 = time.perf_counter()
        m.load(path)
        t2 = time.perf_counter()
        dump_s, load_s = min(dump_s, t1 - t0), min(load_s, t2 - t1)
    return Measurement(method, path.stat().st_size, dump_s, load_s)
