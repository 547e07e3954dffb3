"""CompressionExplorer: real measurements, cached, charted as PNG."""

from __future__ import annotations

import ipywidgets  # noqa: F401 -- a course requirement: missing is a failure, not a skip
import joblib
import matplotlib  # noqa: F401 -- a course requirement: missing is a failure, not a skip
import pytest

import persistlib as pl
from persistlib.widgets.compression import default_methods


def test_default_methods_are_joblib_levels_and_other_compressors():
    methods = default_methods()
    assert methods[:10] == [f"joblib-{i}" for i in range(10)]
    assert "joblib-lzma-3" in methods


def test_measures_real_files_and_charts_them(small_model, tmp_path):
    ex = pl.CompressionExplorer(small_model, tmp_path, methods=["joblib-0", "joblib-3", "joblib-9"])
    assert set(ex.measurements) == {"joblib-0", "joblib-3", "joblib-9"}
    raw, z3 = ex.measurements["joblib-0"], ex.measurements["joblib-3"]
    assert raw.bytes == (tmp_path / "model_joblib-0.joblib").stat().st_size
    joblib.dump(small_model, tmp_path / "check.pkl", compress=3)
    assert z3.bytes == (tmp_path / "check.pkl").stat().st_size
    assert z3.bytes < raw.bytes
    assert ex.chart.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert "joblib-9" in ex.table.value and f"{raw.bytes / z3.bytes:.1f}×" in ex.table.value
    assert repr(ex) == "<CompressionExplorer: 3 of 3 methods shown>"


def test_replotting_uses_the_cache(small_model, tmp_path, monkeypatch):
    ex = pl.CompressionExplorer(small_model, tmp_path, methods=["joblib-0", "joblib-1"])
    calls = []
    monkeypatch.setattr(
        "persistlib.widgets.compression.measure", lambda *a, **k: calls.append(a) or pytest.fail("measured again")
    )
    ex.show.value = ("joblib-1",)
    ex.show.value = ("joblib-0", "joblib-1")
    assert calls == [] and ex.plots == 3
    assert "from the cache: 2" in ex.status.value


def test_a_selection_seen_before_reuses_its_chart(small_model, tmp_path, monkeypatch):
    ex = pl.CompressionExplorer(small_model, tmp_path, methods=["joblib-0", "joblib-1"])
    ex.show.value = ("joblib-1",)
    drawn = []
    monkeypatch.setattr("persistlib.widgets.compression._chart", lambda rows: drawn.append(rows) or b"new")
    ex.show.value = ("joblib-0", "joblib-1")  # the first chart, from the chart cache
    assert drawn == [] and ex.chart.value[:4] == b"\x89PNG"
    ex.show.value = ("joblib-0",)  # never drawn: drawn now, from cached measurements
    assert [r.method for r in drawn[0]] == ["joblib-0"] and ex.chart.value == b"new"


def test_measure_again_forgets_the_cache(small_model, tmp_path):
    ex = pl.CompressionExplorer(small_model, tmp_path, methods=["joblib-0"], measure_now=False)
    assert ex.measurements == {} and ex.chart.value == b""
    ex.measure_button.click()
    first = ex.measurements["joblib-0"]
    ex.measure_button.click()
    assert ex.measurements["joblib-0"] is not first
    assert "measured now: 1" in ex.status.value


def test_bad_input(small_model, tmp_path):
    with pytest.raises(ValueError, match="unknown persistence method"):
        pl.CompressionExplorer(small_model, tmp_path, methods=["joblib-12"])
    with pytest.raises(ValueError, match="methods is empty"):
        pl.CompressionExplorer(small_model, tmp_path, methods=[])
    with pytest.raises(TypeError, match="fitted model"):
        pl.CompressionExplorer(None, tmp_path)
