"""Accessibility of the widgets: every control is labelled, no state is shown by colour alone, and
every chart takes its colours from the colour-blind-safe palette (``persistlib._display.PALETTE``).

Each widget of ``persistlib.widgets`` is built and driven into its interesting states; the test walks
its children. The Quiz (tests/test_widgets_quiz.py) and the control room (tests/test_control_room.py)
are checked by their own tests.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import ipywidgets as W
import matplotlib  # noqa: F401 -- a course requirement: missing is a failure, not a skip
import pytest
from matplotlib.colors import to_hex, to_rgba
from sklearn.tree import DecisionTreeClassifier

import persistlib as pl
import persistlib.widgets as widgets
from persistlib._display import GREY, PALETTE, SERIES
from persistlib.monitoring import DriftMonitor, RetrainLoop

CHECKED_ELSEWHERE = {"Quiz", "ControlRoom"}
#: What tells a state in words or symbols.
STATE_WORDS = re.compile(r"✓|✗|▶|PASS|FAIL|now|done|failed|error", re.IGNORECASE)
#: Outputs a student reads, not controls a student works.
OUTPUTS = (W.Label, W.HTML, W.HTMLMath, W.Image, W.Valid, W.IntProgress, W.FloatProgress)


# --------------------------------------------------------------------------- building every widget


@pytest.fixture(scope="module")
def charts():
    """Every matplotlib figure a widget renders (figure_png is wrapped in each widget module)."""
    import importlib

    figures = []
    with pytest.MonkeyPatch.context() as monkeypatch:
        for module in set(widgets._WHERE.values()):
            mod = importlib.import_module(f"persistlib.widgets.{module}")
            original = getattr(mod, "figure_png", None)
            if original is not None:

                def record(fig, *args, _original=original, **kwargs):
                    figures.append(fig)
                    return _original(fig, *args, **kwargs)

                monkeypatch.setattr(mod, "figure_png", record)
        yield figures


def tree(X, y):
    return DecisionTreeClassifier(max_depth=4, random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def built(tmp_path_factory, small_model, two_forests, charts):
    """{widget name: the widget, driven into the states it shows}.

    Built once for the module (about 4 s): the tests read the widgets, and a test that moves one puts it back.
    """
    tmp_path = tmp_path_factory.mktemp("built")
    reg, X, y = two_forests
    out = {}

    out["GatePanel"] = pl.GatePanel(metrics={"accuracy": 0.91, "precision": 0.80, "recall": 0.70})

    pipeline = pl.PipelineExplorer(tmp_path / "pipeline", model=DecisionTreeClassifier(max_depth=3), n_samples=400)
    pipeline.run("Evaluate")
    out["PipelineExplorer"] = pipeline

    out["CompressionExplorer"] = pl.CompressionExplorer(small_model, tmp_path / "c", methods=["joblib-0", "joblib-3"])
    out["ModelCardView"] = pl.ModelCardView(reg, "1.0.0")
    browser = pl.RegistryBrowser(reg)
    browser.load()
    out["RegistryBrowser"] = browser

    server = pl.ModelServer(reg)
    console = pl.HotSwapConsole(server, rows=X.iloc[:1].to_dict("records"), swap_to=["2.0.0"])
    console.timeline[:] = [(0.0, "1.0.0"), (0.4, None), (0.8, "2.0.0")]  # answers, an error, a swap
    console.swaps[:] = [(0.6, "2.0.0")]
    console.refresh_chart()
    out["HotSwapConsole"] = console

    router = pl.ABRouter({"1.0.0": 0.5, "2.0.0": 0.5})
    ab_server = pl.ModelServer(reg)
    ab_server.route(router)
    for i in range(120):
        p = ab_server.predict(X.iloc[i : i + 1], user_id=f"user-{i}")
        router.record_outcome(p.request_id, int(y.iloc[i]))
    panel = pl.ABPanel(router)
    panel.refresh()
    out["ABPanel"] = panel

    X0, y0 = pl.make_churn(600, random_state=0)
    drift_reg = pl.Registry(tmp_path / "drift")
    model = tree(X0, y0)
    drift_reg.promote(drift_reg.save(model, metrics=pl.evaluate(model, X0, y0), dataset=X0).version)
    loop = RetrainLoop(
        drift_reg,
        pl.ModelServer(drift_reg),
        tree,
        monitor=DriftMonitor(X0),
        thresholds={"accuracy": 0.5},
        tolerance=0.02,
        cooldown=0,
    )
    months = []
    for label, drift, seed in (("2024-01", 0.0, 1), ("2024-02", 1.5, 2)):
        Xm, ym = pl.make_churn(400, drift=drift, random_state=seed)
        Xh, yh = pl.make_churn(300, drift=drift, random_state=seed + 1000)
        months.append((label, Xm, ym, Xh, yh))
    dash = widgets.DriftDashboard(loop, months)
    dash.run_all()
    out["DriftDashboard"] = dash
    return out


def test_every_widget_is_checked_here_or_in_its_own_tests(built):
    assert set(widgets._WHERE) - CHECKED_ELSEWHERE <= set(built), "a new widget: build it in built()"


# --------------------------------------------------------------------------- walking the tree


def walk(widget, parent=None):
    """(widget, its parent) for the widget and every descendant."""
    yield widget, parent
    for child in getattr(widget, "children", ()):
        yield from walk(child, widget)


def labelled(w, parent) -> bool:
    """A description, or a Label/HTML with text just before it in its box."""
    if getattr(w, "description", "").strip():
        return True
    if parent is None:
        return False
    siblings = list(parent.children)
    i = siblings.index(w)
    return i > 0 and isinstance(siblings[i - 1], W.Label | W.HTML) and bool(siblings[i - 1].value.strip())


def test_every_control_has_a_label_or_a_description(built):
    seen = 0
    for name, widget in built.items():
        for w, parent in walk(widget):
            if isinstance(w, W.Button):
                seen += 1
                assert w.description.strip() or w.tooltip, f"{name}: a button with neither text nor a tooltip"
            elif isinstance(w, W.ValueWidget) and not isinstance(w, OUTPUTS):
                seen += 1
                assert labelled(w, parent), f"{name}: a {type(w).__name__} with no label or description"
    assert seen >= 15  # sliders, dropdowns, selections and buttons across the widgets were really walked


def test_a_control_without_a_label_is_caught():
    box = W.VBox([W.IntSlider(), W.Label("month"), W.IntSlider()])
    found = [labelled(w, p) for w, p in walk(box) if isinstance(w, W.IntSlider)]
    assert found == [False, True]


# --------------------------------------------------------------------------- no colour alone


class _Coloured(HTMLParser):
    """Elements whose inline style sets a colour: (the colour, the element's text)."""

    def __init__(self):
        super().__init__()
        self.stack: list[tuple[str | None, list[str]]] = []
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        style = dict(attrs).get("style") or ""
        m = re.search(r"(?:^|;)\s*(?:color|background(?:-color)?)\s*:\s*([^;]+)", style)
        if tag not in ("br", "img", "hr", "input"):
            self.stack.append((m.group(1).strip() if m else None, []))

    def handle_endtag(self, tag):
        if self.stack and tag not in ("br", "img", "hr", "input"):
            colour, text = self.stack.pop()
            if self.stack:
                self.stack[-1][1].extend(text)
            if colour is not None:
                self.found.append((colour, "".join(text)))

    def handle_data(self, data):
        if self.stack:
            self.stack[-1][1].append(data)


def coloured_elements(markup: str) -> list[tuple[str, str]]:
    parser = _Coloured()
    parser.feed(markup)
    parser.close()
    return parser.found


def chromatic(colour) -> bool:
    r, g, b, a = to_rgba(colour)
    return a > 0 and max(r, g, b) - min(r, g, b) > 0.02


def test_no_state_is_shown_by_colour_alone(built):
    for name, widget in built.items():
        for w, _ in walk(widget):
            if isinstance(w, W.HTML):
                for colour, text in coloured_elements(w.value):
                    if chromatic(colour):
                        assert STATE_WORDS.search(text), f"{name}: {colour} marks {text!r} with no word or symbol"
            if isinstance(w, W.Button) and w.button_style in ("success", "danger", "warning"):
                assert w.icon or STATE_WORDS.search(w.description), f"{name}: button {w.description!r}: colour only"
    gate = built["GatePanel"]
    assert gate.verdict.value.startswith("✓ PASS")
    slider = gate.sliders["accuracy"]
    before, slider.value = slider.value, 0.99
    try:
        assert gate.verdict.value.startswith("✗ FAIL") and "✗" in gate.rows.value
    finally:
        slider.value = before
    assert gate.verdict.value.startswith("✓ PASS")
    pipeline = built["PipelineExplorer"]  # the current stage's button is coloured; the heading names it
    assert pipeline.buttons["Evaluate"].button_style and "Evaluate" in pipeline.explanation.value
    assert [n for n, b in pipeline.buttons.items() if b.icon == "check"] == pipeline.done  # done: a ✓ icon
    assert "errors: " in built["HotSwapConsole"].errors_label.value
    assert "▶" in built["DriftDashboard"].cycle.value or "✓" in built["DriftDashboard"].cycle.value


def test_a_colour_without_a_word_is_caught():
    found = coloured_elements('<p><span style="color:#D55E00">0.87</span> <b style="color:red">✗ 0.80</b></p>')
    assert [(c, t, bool(STATE_WORDS.search(t))) for c, t in found] == [
        ("#D55E00", "0.87", False),
        ("red", "✗ 0.80", True),
    ]


# --------------------------------------------------------------------------- chart palettes


def colours_of(fig) -> set[str]:
    """Every chromatic colour a figure draws with, as #rrggbb."""
    found = set()
    for artist in fig.findobj():
        for getter in ("get_color", "get_facecolor", "get_edgecolor", "get_markerfacecolor", "get_markeredgecolor"):
            try:
                value = getattr(artist, getter)()
            except (AttributeError, TypeError, ValueError):
                continue
            values = value if hasattr(value, "ndim") and value.ndim == 2 else [value]
            for v in values:
                try:
                    if isinstance(v, str) and v in ("none", "auto"):
                        continue
                    if chromatic(v):
                        found.add(to_hex(v))
                except (TypeError, ValueError):
                    continue
    return found


def test_charts_use_the_colour_blind_safe_palette(built, charts):
    palette = {c.lower() for c in PALETTE.values()}
    assert len(charts) >= 5, "every widget with a chart drew at least once"
    used = set()
    for fig in charts:
        colours = colours_of(fig)
        assert colours <= palette, f"colours outside the palette: {colours - palette}"
        used |= colours
    assert {PALETTE["blue"].lower(), PALETTE["vermillion"].lower()} <= used  # the charts really were inspected


def test_the_palette_check_catches_matplotlib_defaults():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1])  # tab10's first colour, #1f77b4
    ax.plot([0, 1], [1, 0], "rx")
    assert colours_of(fig) == {"#1f77b4", "#ff0000"}


def test_the_palette_is_okabe_ito():
    assert set(PALETTE.values()) == {
        "#000000",
        "#E69F00",
        "#56B4E9",
        "#009E73",
        "#F0E442",
        "#0072B2",
        "#D55E00",
        "#CC79A7",
    }
    assert set(SERIES) <= set(PALETTE.values()) and len(set(SERIES)) == len(SERIES)
    assert not chromatic(GREY)
