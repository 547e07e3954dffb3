"""The control room: the whole lifecycle on one screen, for an instructor to present (Voila).

:func:`prepare` builds a small world in an empty folder in a few seconds: a registry
with two versions (``production`` on the newer one, so Rollback has somewhere to go),
a server answering with it, a candidate for the gate, and six months of drifting
customers for a retrain loop. :class:`ControlRoom` shows it as five tabs, one per
widget, all on the same registry and server, under one line that always says what
is serving and where ``production`` points::

    room = ControlRoom.from_workspace(pl.workspace("control_room"))
    room  # in a notebook, or `voila notebooks/control_room.ipynb`

Everything the tabs do goes through the widgets below it (and they through
persistlib); every tab can be driven from Python: ``room.gate.sliders[...]``,
``room.registry_browser.rollback_button.click()``, ``room.show("Drift")``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets as W

from .._display import mark
from ..data import make_churn
from ..errors import ArgumentTypeError, InvalidArgumentError
from ..gate import DEFAULT_THRESHOLDS, Gate, baseline_from, evaluate
from ..monitoring import DriftMonitor, RetrainLoop
from ..registry import Registry
from ..serving import ModelServer
from .drift_dashboard import DriftDashboard
from .gate_panel import GatePanel
from .pipeline import PipelineExplorer
from .registry_browser import RegistryBrowser
from .serving import HotSwapConsole

__all__ = ["ControlRoom", "ControlRoomSetup", "prepare", "TABS", "DRIFT_BY_MONTH", "LOOP_THRESHOLDS", "TOLERANCE"]

#: The tab titles, in order (``room.show("Gate")`` selects one by name).
TABS: tuple[str, ...] = ("Pipeline", "Gate", "Registry", "Hot-swap", "Drift")

#: How far the customers have moved, month by month, in the drift tab (as in notebook 10).
DRIFT_BY_MONTH: tuple[float, ...] = (0.0, 0.3, 0.6, 0.9, 1.2, 1.2)

#: How far below production a candidate may score (test-set noise), in the set-up, the gate tab and the loop.
TOLERANCE = 0.02

#: The retrain loop's gate: the world moves, so a fixed 0.88 would refuse every retrained model (notebook 10).
LOOP_THRESHOLDS: dict[str, float] = {"accuracy": 0.80, "precision": 0.70, "recall": 0.65}

_TIPS = {
    "Pipeline": "Click a stage: it runs live on a fresh model (a later stage runs the ones before it).",
    "Gate": "Move a threshold or the tolerance: the verdict follows. Serialise saves the candidate on PASS.",
    "Registry": "Promote or Rollback moves the 'production' alias; the server keeps serving until you swap.",
    "Hot-swap": "Start load, then Swap or Rollback: the counters show zero errors; Stop load draws the chart.",
    "Drift": "Run cycle: one month of customers; drift → retrain → gate → save → promote → hot-swap.",
}


# Larger text for a projector: every widget inside the room reads these variables (ipywidgets' own CSS).
_PROJECTOR_CSS = (
    "<style>.persistlib-control-room{--jp-widgets-font-size:16px;--jp-widgets-inline-height:32px;"
    "--jp-widgets-inline-label-width:110px}"
    ".persistlib-control-room .lm-TabBar-tab{font-size:17px;min-height:34px;line-height:32px}</style>"
)


def train(X: Any, y: Any) -> Any:
    """The control room's training recipe: scaling and a logistic regression (fast, a few ms)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)


@dataclass
class ControlRoomSetup:
    """What :func:`prepare` built: the shared registry and server, the gate's candidate, the drift months."""

    workspace: Path
    registry: Registry
    server: ModelServer
    loop: RetrainLoop
    months: list[tuple[str, Any, Any, Any, Any]]
    candidate: Any
    candidate_metrics: dict[str, float]
    X_train: Any
    X_test: Any
    y_test: Any
    random_state: int


def prepare(workspace: str | Path, *, random_state: int = 1) -> ControlRoomSetup:
    """Build the control room's world in ``workspace`` (an empty or new folder), in a few seconds.

    * ``registry/``: v1.0.0 (700 customers) and v1.1.0 (2,100 customers), both gated;
      ``production`` promoted to v1.0.0, then v1.1.0, so a rollback returns to v1.0.0.
    * a :class:`ModelServer` answering with ``production`` (v1.1.0);
    * a candidate for the gate, retrained with 4,000 more customers, scored on v1.1.0's test set;
    * a :class:`RetrainLoop` on that registry and server, and six months of customers drifting
      by :data:`DRIFT_BY_MONTH` (1,500 to check and train on, 600 held out, per month).

    Raises
    ------
    InvalidArgumentError
        If ``workspace`` already holds a registry: pass an empty folder
        (``pl.workspace(name)`` empties its folder on every run).
    """
    from sklearn.model_selection import train_test_split

    if isinstance(random_state, bool) or not isinstance(random_state, int):
        raise ArgumentTypeError(f"random_state must be an int, got {type(random_state).__name__}.")
    workspace = Path(workspace)
    if (workspace / "registry").exists():
        raise InvalidArgumentError(
            f"{str(workspace)!r} already holds a registry; pass an empty folder "
            "(pl.workspace(name) empties its folder on every run)."
        )
    workspace.mkdir(parents=True, exist_ok=True)
    registry = Registry(workspace / "registry")
    X, y = make_churn(3000, random_state=random_state)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    for version, rows, notes in (
        ("1.0.0", 700, "the first model: 700 customers"),
        ("1.1.0", len(X_train), "retrained on all 2,100 customers"),
    ):
        model = train(X_train.iloc[:rows], y_train.iloc[:rows])
        metrics = evaluate(model, X_test, y_test)
        report = Gate(DEFAULT_THRESHOLDS, baseline=baseline_from(registry), tolerance=TOLERANCE).check(metrics)
        registry.save(
            model, version=version, metrics=metrics, gate_report=report, dataset=X_train.iloc[:rows], notes=notes
        )
        registry.promote(version)
    server = ModelServer(registry)
    X_more, y_more = make_churn(4000, random_state=random_state + 4)
    candidate = train(_concat(X_train, X_more), _concat(y_train, y_more))
    loop = RetrainLoop(
        registry,
        server,
        train,
        monitor=DriftMonitor(X_train),  # the reference: production's training rows
        thresholds=LOOP_THRESHOLDS,
        tolerance=TOLERANCE,
        cooldown=1,
        log_path=workspace / "decisions.jsonl",
    )
    months = []
    for month, drift in enumerate(DRIFT_BY_MONTH, start=1):
        Xm, ym = make_churn(1500, drift=drift, random_state=random_state + 40 + month)
        Xh, yh = make_churn(600, drift=drift, random_state=random_state + 140 + month)
        months.append((f"2025-{month:02d}", Xm, ym, Xh, yh))
    return ControlRoomSetup(
        workspace=workspace,
        registry=registry,
        server=server,
        loop=loop,
        months=months,
        candidate=candidate,
        candidate_metrics=evaluate(candidate, X_test, y_test),
        X_train=X_train,
        X_test=X_test,
        y_test=y_test,
        random_state=random_state,
    )


class ControlRoom(W.VBox):
    """Five tabs on one registry and one server, under a line that says what serves and where production points.

    Parameters
    ----------
    setup : ControlRoomSetup
        From :func:`prepare` (or use :meth:`from_workspace`).

    Attributes
    ----------
    state : Label
        ``"serving v1.1.0 · production → v1.1.0 · 2 versions"``, updated after every action in any tab.
    tabs : Tab
        One tab per name in :data:`TABS`; the first is selected at start.
    tip : Label
        What to do in the selected tab.
    pipeline, gate, registry_browser, console, drift : the widgets in the tabs
        :class:`PipelineExplorer`, :class:`GatePanel` (the candidate against production),
        :class:`RegistryBrowser`, :class:`HotSwapConsole` (stopped at start) and :class:`DriftDashboard`.
    """

    def __init__(self, setup: ControlRoomSetup) -> None:
        if not isinstance(setup, ControlRoomSetup):
            raise ArgumentTypeError(
                f"ControlRoom needs the ControlRoomSetup that prepare(folder) returns, got {type(setup).__name__}; "
                "or call ControlRoom.from_workspace(folder)."
            )
        self.setup = setup
        reg, server = setup.registry, setup.server
        # Lesson 02's seed, whatever the room's: its forest clears the tour's gate, and the tab is there to
        # show all six stages (other seeds may fail the gate: PipelineExplorer's random_state).
        self.pipeline = PipelineExplorer(setup.workspace / "pipeline")
        self.gate = GatePanel(
            setup.candidate,
            metrics=setup.candidate_metrics,
            registry=reg,
            tolerance=TOLERANCE,
            dataset=setup.X_train,
        )
        self.registry_browser = RegistryBrowser(reg)
        # "production" first: after a Promote or a Rollback in the registry tab, Swap follows the alias.
        self.console = HotSwapConsole(
            server,
            rows=setup.X_test.iloc[[0]].to_dict("records"),
            swap_to=["production", *reg.versions()],
            interval=0.005,
        )
        self.drift = DriftDashboard(setup.loop, setup.months)
        self.state = W.Label(style={"font_size": "18px", "font_weight": "bold"}).add_class(
            "persistlib-control-room-state"
        )
        self.tip = W.Label().add_class("persistlib-control-room-tip")
        self.tabs = W.Tab(
            children=[self.pipeline, self.gate, self.registry_browser, self.console, self.drift], titles=TABS
        ).add_class("persistlib-control-room-tabs")
        self.tabs.selected_index = 0
        self.tabs.observe(self._on_tab, names="selected_index")
        # Any action in any tab ends by writing its status: refresh the shared state then.
        for widget, name in (
            (self.gate.result, "value"),
            (self.registry_browser.status, "value"),
            (self.console.status, "value"),
            (self.console.version_label, "value"),
            (self.drift.status, "value"),
            (self.pipeline.artefact, "value"),
        ):
            widget.observe(self._on_action, names=name)
        self.console.refresh_chart()  # an empty chart, not a broken image, until the load runs
        # Charts at their own size: a flex box would stretch them (and their text) to its width or height.
        for chart in (self.console.chart, self.drift.psi_chart, self.drift.accuracy_chart):
            chart.layout.align_self = "flex-start"
        super().__init__([W.HTML(_PROJECTOR_CSS), self.state, self.tip, self.tabs])
        self.add_class("persistlib-control-room")
        self.refresh()
        self._on_tab()

    @classmethod
    def from_workspace(cls, workspace: str | Path, *, random_state: int = 1) -> ControlRoom:
        """:func:`prepare` the world in ``workspace`` (an empty folder) and show it."""
        return cls(prepare(workspace, random_state=random_state))

    def __repr__(self) -> str:
        return f"<ControlRoom: {self.state.value}>"

    def show(self, tab: str) -> None:
        """Select a tab by its name in :data:`TABS`."""
        if tab not in TABS:
            raise InvalidArgumentError(f"tab must be one of {list(TABS)}, got {tab!r}.")
        self.tabs.selected_index = TABS.index(tab)

    def refresh(self) -> None:
        """Re-read the registry and the server into the state line (and the registry tab)."""
        reg = self.setup.registry
        production = reg.aliases().get("production")
        serving = self.setup.server.version
        agree = (
            f"{mark(True)} serving what production points to"
            if serving == production
            else f"{mark(False)} not serving production yet: press Swap in the Hot-swap tab"
        )
        n = len(reg.versions())
        self.state.value = f"serving v{serving} · production → v{production} · {n} versions · {agree}"
        self.registry_browser.refresh()  # versions, aliases and history may have moved in another tab

    def close(self) -> None:
        """Stop the hot-swap console's load and close the widgets."""
        console = getattr(self, "console", None)  # None if __init__ failed before building it
        if console is not None:
            console.stop()
        super().close()

    def _on_action(self, _change: Any = None) -> None:
        self.refresh()

    def _on_tab(self, _change: Any = None) -> None:
        name = TABS[self.tabs.selected_index or 0]
        self.tip.value = f"{name}: {_TIPS[name]}"
        self.refresh()


def _concat(a: Any, b: Any) -> Any:
    import pandas as pd

    return pd.concat([a, b], ignore_index=True)
