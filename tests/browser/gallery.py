"""The widget gallery: one generated notebook that builds every course widget on small data.

Each cell builds a widget with the same public calls as its lesson (the lesson named in the
cell's comment), but on a few hundred rows, so the whole gallery runs in seconds. The tests in
test_widget_gallery.py open it in JupyterLab once and use each widget there; nbval runs the
lessons themselves. The constants below are the gallery's set-up: the tests derive what they
expect from them (e.g. which version is in production), never from a lesson's data.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

NAME = "widget_gallery.ipynb"

#: 05's registry: these versions are saved and promoted in this order, so the last is in production
#: and Rollback moves production to the one before it.
REGISTRY_VERSIONS = ("1.0.0", "1.1.0", "1.2.0")
#: 09's drill: the old version, then the one that goes wrong; the second is promoted and served first,
#: and the console's Swap goes back to the first.
DRILL_OLD, DRILL_NEW = "1.9.0", "2.0.0"
#: 03's gate: each threshold starts this many slider steps (0.01) below the model's score, floored to
#: two decimals, so the gate passes until the accuracy slider moves that many steps plus one up.
GATE_STEPS_BELOW = 2
#: 10's months: (label, drift) for each month the dashboard can run.
DRIFT_MONTHS = (("2025-01", 0.0), ("2025-02", 1.0))
#: The two quizzes, in the order the gallery shows them: the course quiz of 11, then a lesson quiz.
COURSE_QUIZ, LESSON_QUIZ = "11_check_your_understanding", "12_summary"

SETUP = """\
import math

from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import persistlib as pl

WS = pl.workspace("widget_gallery")
X, y = pl.make_churn(800, random_state=42)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=42, stratify=y)


def train(X, y):
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
"""

PIPELINE = """\
# 02_pipeline_tour: the explorer, every stage run in order
small_forest = RandomForestClassifier(n_estimators=20, max_depth=6, random_state=42)
explorer = pl.PipelineExplorer(WS / "pipeline", model=small_forest, n_samples=600, random_state=42)
for stage in ("Train", "Evaluate", "Save", "Version", "Load", "Serve"):
    explorer.run(stage)
explorer
"""

GATE = f"""\
# 03_evaluation_gate: the gate panel, thresholds {GATE_STEPS_BELOW} slider steps below the model's scores
forest = RandomForestClassifier(n_estimators=20, max_depth=6, random_state=42).fit(X_train, y_train)
scores = pl.evaluate(forest, X_test, y_test)
start = {{m: math.floor(scores[m] * 100) / 100 - {GATE_STEPS_BELOW} / 100 for m in ("accuracy", "precision", "recall")}}
gate_panel = pl.GatePanel(
    forest, X_test, y_test, registry=pl.Registry(WS / "gate"), dataset=X_train, thresholds=start, baseline=start
)
gate_panel
"""

COMPRESSION = """\
# 04_serialisation: the compression explorer, on a small forest
pl.CompressionExplorer(forest, WS / "compression")
"""

CARD = f"""\
# 05_versioning_and_model_cards: versions {", ".join(REGISTRY_VERSIONS)}, each promoted in turn; the first one's card
registry = pl.Registry(WS / "registry")
gate = pl.Gate(pl.DEFAULT_THRESHOLDS)
for version in {REGISTRY_VERSIONS!r}:
    model = train(X_train, y_train)
    metrics = pl.evaluate(model, X_test, y_test)
    registry.save(model, version=version, metrics=metrics, dataset=X_train, gate_report=gate.check(metrics))
    registry.promote(version)
pl.ModelCardView(registry.card({REGISTRY_VERSIONS[0]!r}))
"""

REGISTRY = """\
pl.RegistryBrowser(registry)
"""

HOTSWAP = f"""\
# 09_rollback_drill: v{DRILL_OLD}, then v{DRILL_NEW} promoted and served over HTTP; the console swaps back
drill = pl.Registry(WS / "drill")
for version in ({DRILL_OLD!r}, {DRILL_NEW!r}):
    drill.save(train(X_train, y_train), version=version)
    drill.promote(version)
url = pl.start_http(pl.ModelServer(drill))
console = pl.HotSwapConsole(url, rows=X_test.iloc[[0]].to_dict("records"), swap_to=[{DRILL_OLD!r}])
console
"""

DRIFT = f"""\
# 10_retrain_loop: the dashboard over a retrain loop; no month run yet
loop_registry = pl.Registry(WS / "loop")
v1 = train(X_train, y_train)
v1_metrics = pl.evaluate(v1, X_test, y_test)
loop_registry.save(v1, metrics=v1_metrics, dataset=X_train)
loop_registry.promote("1.0.0")
loop = pl.RetrainLoop(
    loop_registry, pl.ModelServer(loop_registry), train, monitor=pl.DriftMonitor(X_train), tolerance=0.02
)
months = []
for i, (label, drift) in enumerate({DRIFT_MONTHS!r}):
    X_m, y_m = pl.make_churn(600, drift=drift, random_state=40 + i)
    X_h, y_h = pl.make_churn(300, drift=drift, random_state=140 + i)
    months.append((label, X_m, y_m, X_h, y_h))
pl.DriftDashboard(loop, months)
"""

COURSE = f"""\
# 11_check_your_understanding: the course quiz, scored per topic
pl.Quiz.from_notebook({COURSE_QUIZ!r})
"""

LESSON = f"""\
# a lesson's quiz
pl.Quiz.from_notebook({LESSON_QUIZ!r})
"""

CELLS = (SETUP, PIPELINE, GATE, COMPRESSION, CARD, REGISTRY, HOTSWAP, DRIFT, COURSE, LESSON)


def build() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Widget gallery\nGenerated by tests/browser/gallery.py: every course widget.")
    ]
    nb.cells += [nbformat.v4.new_code_cell(src) for src in CELLS]
    return nb


def write(folder: Path) -> Path:
    """Write the gallery into ``folder`` (the lab's copy of notebooks/) and return its path."""
    path = Path(folder) / NAME
    nbformat.write(build(), path)
    return path
