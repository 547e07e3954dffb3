"""PipelineExplorer: the six stages of a model's life, each one run live.

Train → Evaluate → Save → Version → Load → Serve. Click a stage: the widget
explains it and runs it on a real model, showing what the stage produces.
Clicking a later stage first runs the earlier ones it needs.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as W

from .._display import human_bytes, human_seconds, mark
from .._model_lock import one_model_call
from ..data import make_churn
from ..errors import ArgumentTypeError, GateRejected, InvalidArgumentError, PersistError
from ..format_benchmark import predict_latency
from ..gate import DEFAULT_BASELINE, DEFAULT_THRESHOLDS, Gate, evaluate
from ..registry import Registry

__all__ = ["PipelineExplorer", "STAGES", "EXPLANATIONS"]

#: The stage names, in order; each is a button labelled exactly so.
STAGES: tuple[str, ...] = ("Train", "Evaluate", "Save", "Version", "Load", "Serve")

#: What each stage does and why it matters (shown when you click it).
EXPLANATIONS: dict[str, str] = {
    "Train": "The model learns from historical data. This is the slow, expensive step: it needs all "
    "the data and a lot of compute, so it runs rarely (nightly, weekly), on a big machine.",
    "Evaluate": "Before anyone relies on the new model, score it on data it never saw and put it "
    "through a gate: it must reach fixed thresholds <i>and</i> be at least as good as the "
    "model in production. A model that fails stops here.",
    "Save": "Serialise the fitted model: turn the Python object in RAM into bytes on disk. Here "
    "<code>joblib.dump(model, path, compress=3)</code>. The file is all a server needs later; "
    "no training data, no training code run.",
    "Version": "Give the file a version number and a card beside it (a versioned pair): data hash, "
    "hyperparameters, metrics, library versions and the file's sha256. Versions are what "
    "make rollback, A/B tests, audits and hot-swaps possible.",
    "Load": "Another process (often on another machine) reads the file back. First check the bytes "
    "against the sha256 on the card and the library versions against the environment; only "
    "then unpickle, because unpickling can run code.",
    "Serve": "Answer requests with the loaded model: one customer in, a churn probability out, in "
    "milliseconds. Serving is fast, light and continuous; it never waits for training.",
}

_ARTEFACT_OF = {
    "Train": "training time",
    "Evaluate": "metrics against the gate",
    "Save": "the file and its size",
    "Version": "the card",
    "Load": "the loaded model, checksum verified",
    "Serve": "a prediction and its latency",
}


class PipelineExplorer(W.VBox):
    """Six stage buttons drawn as a pipeline; a click explains and runs a stage.

    Parameters
    ----------
    workspace : str or os.PathLike
        A folder this widget may write to (the saved file and a ``registry/``).
    model : unfitted scikit-learn classifier, optional
        What to train. Default: ``RandomForestClassifier(n_estimators=100, max_depth=8)``.
    n_samples : int, default=2000
        Rows of :func:`persistlib.make_churn` data (a quarter held out for testing).
    random_state : int, default=0
        Seeds the data, the split and the default model. With the default model,
        some seeds (1, 4 and 5 of 0-9) fail the tour's gate (``DEFAULT_THRESHOLDS``
        with ``DEFAULT_BASELINE``), and Version then refuses the model: the gate
        at work, not a fault.

    Attributes
    ----------
    buttons : dict of str to Button
        ``explorer.buttons["Train"].click()`` runs Train.
    explanation : HTML
        "Tap a stage above" until a stage is clicked, then what it does.
    artefact : HTML
        What the last stage produced.
    done : list of str
        Stages that have run, in order.
    """

    def __init__(
        self, workspace: str | Path, *, model: Any = None, n_samples: int = 2000, random_state: int = 0
    ) -> None:
        from sklearn.model_selection import train_test_split

        self.workspace = Path(workspace)
        self.workspace.mkdir(parents=True, exist_ok=True)
        if model is None:
            from sklearn.ensemble import RandomForestClassifier

            model = RandomForestClassifier(n_estimators=100, max_depth=8, random_state=random_state, n_jobs=1)
        if not hasattr(model, "fit"):
            raise ArgumentTypeError(
                f"model must be an unfitted scikit-learn estimator with .fit(), got {type(model).__name__}."
            )
        self._template = model
        X, y = make_churn(n_samples, random_state=random_state)
        self.X_train, self.X_test, self.y_train, self.y_test = train_test_split(
            X, y, test_size=0.25, random_state=random_state, stratify=y
        )
        self.gate_ = Gate(DEFAULT_THRESHOLDS, baseline=DEFAULT_BASELINE)
        self.registry = Registry(self.workspace / "registry")
        self.model = self.metrics = self.report = self.saved_path = self.card = self.loaded = None
        self.train_seconds: float | None = None
        self.done: list[str] = []
        self.current: str | None = None

        self.buttons: dict[str, W.Button] = {}
        row: list[W.Widget] = []
        for i, name in enumerate(STAGES):
            b = W.Button(
                description=name, tooltip=f"{name}: run it and show {_ARTEFACT_OF[name]}", layout=W.Layout(width="96px")
            )
            b.add_class("persistlib-stage")
            b.add_class(f"persistlib-stage-{name.lower()}")
            b.on_click(lambda _b, name=name: self.run(name))
            self.buttons[name] = b
            if i:
                arrow = W.HTML("<span style='font-size:20px'>→</span>", layout=W.Layout(width="auto"))
                arrow.add_class("persistlib-pipeline-arrow")
                row.append(arrow)
            row.append(b)
        stages = W.HBox(row, layout=W.Layout(align_items="center", flex_flow="row wrap"))
        stages.add_class("persistlib-pipeline-stages")
        self.explanation = W.HTML("<p><i>Tap a stage above</i> to see what happens there, and to run it.</p>")
        self.explanation.add_class("persistlib-pipeline-explanation")
        self.artefact = W.HTML("")
        self.artefact.add_class("persistlib-pipeline-artefact")
        super().__init__([stages, self.explanation, self.artefact])
        self.add_class("persistlib-pipeline")

    # ------------------------------------------------------------------ running

    def run(self, stage: str) -> str:
        """Run one stage (and any earlier stage it needs); show and return its artefact as text."""
        if stage not in STAGES:
            raise InvalidArgumentError(f"stage must be one of {list(STAGES)}, got {stage!r}.")
        text = self._steps[stage](self)
        self.current = stage
        for name, b in self.buttons.items():
            b.button_style = "info" if name == stage else ""
            b.icon = "check" if name in self.done else ""
        self.explanation.value = f"<h4>{STAGES.index(stage) + 1}. {stage}</h4><p>{EXPLANATIONS[stage]}</p>"
        self.artefact.value = f"<p><b>Artefact · {_ARTEFACT_OF[stage]}:</b></p><pre>{html.escape(text)}</pre>"
        return text

    def __repr__(self) -> str:
        return f"<PipelineExplorer: {self.current or 'no stage run yet'}>"

    # ------------------------------------------------------------------ the stages

    def _finish(self, stage: str) -> None:
        if stage not in self.done:
            self.done.append(stage)

    def _train(self) -> str:
        from sklearn.base import clone

        model = clone(self._template)
        t0 = time.perf_counter()
        model.fit(self.X_train, self.y_train)
        self.train_seconds = time.perf_counter() - t0
        self.model = model
        # a new model makes every later artefact stale
        self.metrics = self.report = self.saved_path = self.card = self.loaded = None
        self.done = ["Train"]
        return (
            f"Trained {type(model).__name__} on {len(self.X_train)} rows × {self.X_train.shape[1]} "
            f"features in {human_seconds(self.train_seconds)}."
        )

    def _evaluate(self) -> str:
        if self.model is None:
            self._train()
        self.metrics = evaluate(self.model, self.X_test, self.y_test)
        self.report = self.gate_.check(self.metrics)
        self._finish("Evaluate")
        return f"Scored on {len(self.X_test)} held-out rows.\n{self.report}"

    def _save(self) -> str:
        import joblib

        if self.model is None:
            self._train()
        path = self.workspace / "model.pkl"
        joblib.dump(self.model, path, compress=3)
        self.saved_path = path
        self._finish("Save")
        return f"joblib.dump(model, '{path.name}', compress=3)\n→ {path.name}: {human_bytes(path.stat().st_size)}"

    def _version(self) -> str:
        if self.report is None:
            self._evaluate()
        try:  # the registry itself refuses a model whose gate report failed
            self.card = self.registry.save(
                self.model,
                metrics=self.metrics,
                gate_report=self.report,
                dataset=self.X_train,
                notes="saved by the PipelineExplorer",
            )
        except GateRejected as e:
            return f"{mark(False)} The registry refused to version this model: {e}\n{self.report}"
        self.registry.promote(self.card.version)
        self._finish("Version")
        return f"{self.card.artifact} + model_v{self.card.version}_meta.json  (now 'production')\n{self.card}"

    def _load(self) -> str:
        if self.card is None:
            out = self._version()
            if self.card is None:
                return out
        t0 = time.perf_counter()
        try:  # registry.load checks sha256 and library versions before it unpickles anything
            self.loaded, card = self.registry.load(self.card.version)
        except PersistError as e:
            self.loaded = None
            return f"{mark(False)} registry.load('{self.card.version}') refused: {e}"
        seconds = time.perf_counter() - t0
        self._finish("Load")
        return (
            f"registry.load('{card.version}') → {type(self.loaded).__name__} in {human_seconds(seconds)}\n"
            f"{mark(True)} checksum verified: before unpickling, the registry compared the sha256 of "
            f"{card.artifact} with the card's {card.artifact_sha256[:12]}…\n"
            f"{mark(True)} library versions checked against the card"
        )

    def _serve(self) -> str:
        if self.loaded is None:
            out = self._load()
            if self.loaded is None:
                return out
        # Two customers whose risks differ visibly, so the answer shows the model tells them apart.
        sample = self.X_test.iloc[:200]
        with one_model_call():  # one model call at a time in the process (persistlib._model_lock says why)
            risks = self.loaded.predict_proba(sample)[:, 1]
            latency = predict_latency(
                self.loaded.predict_proba, sample.iloc[[0]], n_single=5, batch_rows=1, batch_repeat=1
            )
        self._finish("Serve")
        shown = ("tenure_months", "monthly_charges", "contract", "support_calls")
        lines = []
        for label, i in (("lowest-risk", int(risks.argmin())), ("highest-risk", int(risks.argmax()))):
            row = sample.iloc[i]
            customer = ", ".join(f"{k}={row[k]:g}" for k in shown)
            verdict = "likely to leave" if risks[i] >= 0.5 else "likely to stay"
            lines.append(f"{label} customer: {customer}, …\n   → churn probability {risks[i]:.2f}: {verdict}")
        return "\n".join(lines) + f"\nlatency for one customer (median of 5): {human_seconds(latency.single_p50_s)}"

    _steps: dict[str, Callable[[PipelineExplorer], str]] = {
        "Train": _train,
        "Evaluate": _evaluate,
        "Save": _save,
        "Version": _version,
        "Load": _load,
        "Serve": _serve,
    }
