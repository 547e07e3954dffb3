"""PipelineExplorer: six stages, each run live, earlier stages on demand."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import ipywidgets  # noqa: F401 -- a course requirement: missing is a failure, not a skip
import pytest
from sklearn.ensemble import RandomForestClassifier

import persistlib as pl
from persistlib.widgets.pipeline import EXPLANATIONS, STAGES


@pytest.fixture()
def explorer(tmp_path):
    small = RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0)
    return pl.PipelineExplorer(tmp_path / "ws", model=small, n_samples=1500)


def test_before_any_click(explorer):
    assert [b.description for b in explorer.buttons.values()] == list(STAGES)
    assert STAGES == ("Train", "Evaluate", "Save", "Version", "Load", "Serve")
    assert "Tap a stage above" in explorer.explanation.value
    assert explorer.artefact.value == "" and explorer.done == []
    assert repr(explorer) == "<PipelineExplorer: no stage run yet>"


def test_each_click_explains_and_runs_its_stage(explorer, tmp_path, monkeypatch):
    from persistlib.widgets import pipeline

    ticks = iter([100.0, 102.5])  # a clock that reads 100 s when training starts and 102.5 s when it ends
    monkeypatch.setattr(pipeline, "time", SimpleNamespace(perf_counter=lambda: next(ticks)))
    explorer.buttons["Train"].click()
    monkeypatch.undo()
    assert "Tap a stage" not in explorer.explanation.value
    assert EXPLANATIONS["Train"][:40] in explorer.explanation.value
    assert "Trained RandomForestClassifier on 1125 rows × 12 features in 2.50 s." in explorer.artefact.value
    assert explorer.train_seconds == 2.5

    explorer.buttons["Evaluate"].click()
    assert explorer.metrics == pytest.approx(pl.evaluate(explorer.model, explorer.X_test, explorer.y_test))
    assert "Gate: PASS" in explorer.artefact.value or "Gate: FAIL" in explorer.artefact.value

    explorer.buttons["Save"].click()
    path = tmp_path / "ws" / "model.pkl"
    assert path.exists() and "model.pkl" in explorer.artefact.value and "KiB" in explorer.artefact.value
    assert repr(explorer) == "<PipelineExplorer: Save>"


def test_serve_first_runs_the_stages_it_needs(tmp_path):
    explorer = pl.PipelineExplorer(
        tmp_path / "ws", model=RandomForestClassifier(n_estimators=10, random_state=0), n_samples=800, random_state=1
    )
    text = explorer.run("Serve")
    assert explorer.done == ["Train", "Evaluate", "Version", "Load", "Serve"]
    assert "churn probability" in text and "latency" in text
    risks = explorer.model.predict_proba(explorer.X_test.iloc[:200])[:, 1]
    assert "lowest-risk customer" in text and f"churn probability {risks.min():.2f}" in text
    assert "highest-risk customer" in text and f"churn probability {risks.max():.2f}" in text
    assert risks.max() - risks.min() > 0.5  # the two answers differ visibly
    reg = pl.Registry(tmp_path / "ws" / "registry")
    assert reg.aliases() == {"production": "1.0.0"}
    # Load reported the real checksum of the real file
    digest = hashlib.sha256((reg.root / reg.card("1.0.0").artifact).read_bytes()).hexdigest()
    explorer.run("Load")
    assert digest[:12] in explorer.artefact.value and "checksum verified" in explorer.artefact.value


def test_version_refuses_a_model_that_fails_the_gate(tmp_path):
    from sklearn.dummy import DummyClassifier

    explorer = pl.PipelineExplorer(tmp_path / "ws", model=DummyClassifier(strategy="most_frequent"), n_samples=400)
    text = explorer.run("Version")
    assert "FAIL" in text and explorer.card is None
    # the refusal is the registry's own GateRejected, not the widget's guess
    assert text.startswith("✗ The registry refused to version this model: the model failed its gate")
    assert pl.Registry(tmp_path / "ws" / "registry").versions() == []
    assert "FAIL" in explorer.run("Serve")  # nothing to serve


def test_retraining_makes_later_artefacts_stale(explorer):
    explorer.run("Version")
    assert explorer.card.version == "1.0.0"  # this small forest passes the lesson's gate
    explorer.run("Train")
    assert explorer.done == ["Train"] and explorer.card is None
    explorer.run("Version")
    assert explorer.card.version == "1.1.0"


def test_bad_input(tmp_path):
    with pytest.raises(TypeError, match="unfitted scikit-learn estimator"):
        pl.PipelineExplorer(tmp_path, model="forest")
    explorer = pl.PipelineExplorer(tmp_path, model=RandomForestClassifier(n_estimators=5), n_samples=200)
    with pytest.raises(ValueError, match="stage must be one of"):
        explorer.run("Deploy")


def test_css_classes(explorer):
    assert "persistlib-pipeline" in explorer._dom_classes
    assert "persistlib-stage-train" in explorer.buttons["Train"]._dom_classes
    assert "persistlib-pipeline-explanation" in explorer.explanation._dom_classes


def test_load_shows_the_registrys_refusal_of_a_tampered_file(explorer):
    explorer.run("Version")
    path = explorer.registry.root / explorer.card.artifact
    path.write_bytes(path.read_bytes()[:-10])
    text = explorer.run("Load")
    assert text.startswith("✗ registry.load('1.0.0') refused") and "does not match its card" in text
    assert explorer.loaded is None and "Load" not in explorer.done
    assert "refused" in explorer.run("Serve")  # nothing loaded, nothing served


def test_serve_reports_the_latency_from_predict_latency(explorer, monkeypatch):
    from persistlib.format_benchmark import Latency

    calls = []

    def fake(predict, X, **kw):
        calls.append((len(X), kw))
        return Latency(single_p50_s=0.0123, single_p99_s=0.02, batch_s=0.0123, batch_rows=1)

    monkeypatch.setattr("persistlib.widgets.pipeline.predict_latency", fake)
    text = explorer.run("Serve")
    assert "latency for one customer (median of 5): 12.3 ms" in text
    assert calls == [(1, {"n_single": 5, "batch_rows": 1, "batch_repeat": 1})]
