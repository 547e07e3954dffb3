"""Benchmark persistence formats side by side: file size, save time, load time, prediction latency.

This module *measures* formats; it does not define them (the registry's own
formats live in :mod:`persistlib.artefacts`, and the methods here reuse its
writer and reader). Used by the CompressionExplorer widget, notebooks 04 and
07, and ``benchmarks/formats.py``. Method names::

    "pickle"                        pickle protocol 5, no compression (the baseline)
    "joblib-0" ... "joblib-9"       joblib.dump(compress=level)  (zlib)
    "joblib-lz4-3", "joblib-lzma-3" joblib with another compressor and level
    "skops"                         skops.io, zip-deflated

:func:`compare_formats` also takes ``"onnx"`` and adds prediction latency
(:func:`predict_latency`) per format.
"""

from __future__ import annotations

import importlib.util
import pickle
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import artefacts
from ._checks import check_number
from ._display import SERIES
from .errors import InvalidArgumentError

__all__ = [
    "PersistMethod",
    "available_methods",
    "measure",
    "Measurement",
    "Latency",
    "predict_latency",
    "compare_formats",
    "plot_comparison",
    "BENCHMARK_FORMATS",
]


@dataclass(frozen=True)
class Measurement:
    """One method's round trip: file size in bytes, best dump and load times in seconds."""

    method: str
    bytes: int
    dump_s: float
    load_s: float


@dataclass(frozen=True)
class PersistMethod:
    """A named way to write a model to a file and read it back."""

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


def _artefact(fmt: str, compress: Any) -> tuple[Callable[[Any, Path], None], Callable[[Path], Any]]:
    """A registry artefact format as a method: written and read by :mod:`persistlib.artefacts`."""
    reviewed: dict[Path, list[str] | None] = {}

    def dump(obj: Any, path: Path) -> None:
        reviewed[path] = artefacts.dump(obj, path, format=fmt, compress=compress)

    def load(path: Path) -> Any:  # trusts what this process just wrote, after listing its types
        return artefacts.loads(path.read_bytes(), format=fmt, trusted_types=reviewed.get(path))

    return dump, load


def available_methods() -> list[str]:
    """Method names usable here (lz4 and skops only when installed)."""
    names = ["pickle"] + [f"joblib-{i}" for i in range(10)]
    if importlib.util.find_spec("lz4") is not None:
        names.append("joblib-lz4-3")
    names.append("joblib-lzma-3")
    if importlib.util.find_spec("skops") is not None:
        names.append("skops")
    return names


def get_method(name: str) -> PersistMethod:
    """Look up a method by name (see the module docstring)."""
    if name == "pickle":
        return PersistMethod(name, ".pkl", _pickle_dump, _pickle_load)
    if name == "skops":
        return PersistMethod(name, ".skops", *_artefact("skops", 6))
    parts = name.split("-")
    if parts[0] == "joblib":
        if len(parts) == 2 and parts[1].isdigit() and 0 <= int(parts[1]) <= 9:
            return PersistMethod(name, ".joblib", *_artefact("joblib", int(parts[1])))
        if len(parts) == 3 and parts[1] in artefacts.JOBLIB_COMPRESSORS and parts[2].isdigit():
            return PersistMethod(name, ".joblib", *_artefact("joblib", (parts[1], int(parts[2]))))
    raise InvalidArgumentError(f"unknown persistence method {name!r}; choose from {available_methods()}.")


def measure(model: Any, method: str, folder: str | Path, *, repeat: int = 1) -> Measurement:
    """Save and load ``model`` with ``method`` in ``folder``; keep the best of ``repeat`` timings."""
    size, dump_s, load_s, _ = _round_trip(model, get_method(method), folder, repeat)
    return Measurement(method, size, dump_s, load_s)


def _round_trip(model: Any, m: PersistMethod, folder: str | Path, repeat: int) -> tuple[int, float, float, Any]:
    """Dump and load ``repeat`` times: (file bytes, best dump s, best load s, the loaded object)."""
    check_number(repeat, "repeat", low=1, integer=True)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"model_{m.name}{m.suffix}"
    dump_s = load_s = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        m.dump(model, path)
        t1 = time.perf_counter()
        loaded = m.load(path)
        t2 = time.perf_counter()
        dump_s, load_s = min(dump_s, t1 - t0), min(load_s, t2 - t1)
    return path.stat().st_size, dump_s, load_s, loaded


# --------------------------------------------------------------------------- prediction latency
# Once a model is loaded, how fast does it answer one row, and a batch of 1,000?


@dataclass(frozen=True)
class Latency:
    """Prediction latency of a loaded model, in seconds."""

    single_p50_s: float  #: median time to predict one row
    single_p99_s: float  #: 99th percentile for one row (the slow tail a user notices)
    batch_s: float  #: best time to predict ``batch_rows`` rows at once
    batch_rows: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def predict_latency(
    predict: Callable[[Any], Any], X: Any, *, n_single: int = 200, batch_rows: int = 1000, batch_repeat: int = 5
) -> Latency:
    """Time ``predict`` on single rows and on one batch.

    Parameters
    ----------
    predict : callable
        e.g. ``model.predict``; called with a one-row slice of ``X``, then with
        ``batch_rows`` rows.
    X : DataFrame or 2-D array
        Rows to predict. Single-row calls cycle through the first rows of ``X``;
        the batch is ``X[:batch_rows]`` (repeated if ``X`` is shorter).
    n_single : int, default=200
        Single-row calls to time (after 3 warm-up calls). p99 needs about 100
        to mean anything.
    batch_rows : int, default=1000
    batch_repeat : int, default=5
        Batch timings; the best is kept.
    """
    import numpy as np

    for name, value in (("n_single", n_single), ("batch_rows", batch_rows), ("batch_repeat", batch_repeat)):
        check_number(value, name, low=1, integer=True)
    rows = _take_rows(X)
    n = len(X)
    if n == 0:
        raise InvalidArgumentError("predict_latency needs at least one row in X.")
    singles = [rows(slice(i % n, i % n + 1)) for i in range(n_single + 3)]
    times = []
    for i, row in enumerate(singles):
        t0 = time.perf_counter()
        predict(row)
        if i >= 3:
            times.append(time.perf_counter() - t0)
    batch = rows(np.arange(batch_rows) % n)
    best = float("inf")
    for _ in range(batch_repeat):
        t0 = time.perf_counter()
        predict(batch)
        best = min(best, time.perf_counter() - t0)
    p50, p99 = np.percentile(times, [50, 99])
    return Latency(float(p50), float(p99), best, int(batch_rows))


def _take_rows(X: Any) -> Callable[[Any], Any]:
    if hasattr(X, "iloc"):
        return lambda idx: X.iloc[idx]
    return lambda idx: X[idx]


#: The formats :func:`compare_formats` knows: the methods above, plus ONNX.
BENCHMARK_FORMATS: tuple[str, ...] = (
    "pickle",
    "joblib-0",
    "joblib-3",
    "joblib-9",
    "joblib-lz4-3",
    "joblib-lzma-3",
    "skops",
    "onnx",
)


def compare_formats(
    model: Any,
    X: Any,
    folder: str | Path,
    *,
    formats: tuple[str, ...] | list[str] | None = None,
    n_single: int = 200,
    batch_rows: int = 1000,
    repeat: int = 1,
    label: str = "",
) -> list[dict[str, Any]]:
    """Save, load and predict with ``model`` in several formats, side by side, in one run.

    For each format: file size, save time, load time (best of ``repeat``), then
    single-row and batch latency of the model *as loaded from that format*
    (pickle, joblib and skops give back the same scikit-learn object; ONNX gives
    an onnxruntime session). ``predict`` is timed: labels, one row at a time.

    Parameters
    ----------
    model : fitted estimator
    X : DataFrame or 2-D array
        Rows for ONNX's input shape and for the latency runs (use held-out rows).
    folder : str or Path
        Where the files are written (overwritten on each call).
    formats : sequence of str, optional
        Default :data:`BENCHMARK_FORMATS` (those installed here).
    n_single, batch_rows : int
        See :func:`predict_latency`.
    repeat : int, default=1
    label : str
        Goes into each row's ``model`` field, e.g. ``"RF(200)"``.

    Returns
    -------
    list of dict
        One row per format: ``model, format, bytes, save_s, load_s,
        single_p50_s, single_p99_s, batch_s, batch_rows``.
    """
    if formats is None:
        known = set(available_methods()) | {"onnx"}
        formats = [
            f
            for f in BENCHMARK_FORMATS
            if f in known and (f != "onnx" or importlib.util.find_spec("onnxruntime") is not None)
        ]
    out = []
    for fmt in formats:
        m = _onnx_method(X) if fmt == "onnx" else get_method(fmt)
        size, save_s, load_s, loaded = _round_trip(model, m, folder, repeat)
        lat = predict_latency(loaded.predict, X, n_single=n_single, batch_rows=batch_rows)
        out.append(
            {
                "model": label or type(model).__name__,
                "format": fmt,
                "bytes": size,
                "save_s": save_s,
                "load_s": load_s,
                **lat.to_dict(),
            }
        )
    return out


def _onnx_method(X: Any) -> PersistMethod:
    """ONNX as a method: export needs a few sample rows for the input shape."""
    from .onnx_export import export_onnx, load_onnx

    return PersistMethod("onnx", ".onnx", lambda model, path: export_onnx(model, X[:5], path), load_onnx)


def plot_comparison(rows: list[dict[str, Any]]) -> Any:
    """A matplotlib Figure of :func:`compare_formats` rows: size, save, load, single-row p50.

    One panel per measure, one bar group per format, one colour per model,
    with log scales where the values span orders of magnitude.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    if not rows:
        raise InvalidArgumentError("plot_comparison needs at least one row from compare_formats().")
    models = list(dict.fromkeys(r["model"] for r in rows))
    formats = list(dict.fromkeys(r["format"] for r in rows))
    panels = [
        ("bytes", "file size (MB)", 1e-6),
        ("save_s", "save (s)", 1.0),
        ("load_s", "load (s)", 1.0),
        ("single_p50_s", "1-row predict p50 (ms)", 1e3),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6))
    width = 0.8 / len(models)
    x = np.arange(len(formats))
    for ax, (key, title, scale) in zip(axes, panels, strict=True):
        for j, name in enumerate(models):
            vals = [
                next((r[key] * scale for r in rows if r["model"] == name and r["format"] == f), np.nan) for f in formats
            ]
            ax.bar(x + j * width - 0.4 + width / 2, vals, width, label=name, color=SERIES[j % len(SERIES)])
        ax.set_title(title)
        ax.set_xticks(x, formats, rotation=60, ha="right")
        ax.set_yscale("log")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(models), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return fig
