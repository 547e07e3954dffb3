"""Every course widget in a real JupyterLab: render, click, slide, and see the page change.

nbval already runs every lesson's cells and compares their outputs, so the browser's job is
the front end only. Instead of running each lesson again (17-38 s apiece), the fixture writes
one generated "widget gallery" notebook (gallery.py: each widget built with its lesson's
public calls, on small data) into the lab's folder, opens it and runs all its cells once per
worker; then one test per widget uses it on that page, so a failure names the widget.
08_serving stays a full lesson run in test_notebooks_in_lab.py, as the end-to-end check.
What a test expects (versions, thresholds, months) comes from gallery.py's set-up constants.
"""

from __future__ import annotations

import re

import pytest

from . import gallery
from .conftest import screenshot_if_failed
from .notebook_runner import image_loaded, run_notebook, visible

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def gallery_page(chromium, lab):
    """The gallery notebook, open in JupyterLab with every cell run (once for this module)."""
    gallery.write(lab.root / "notebooks")
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(60_000)
    page = context.new_page()
    try:
        run_notebook(page, lab, gallery.NAME)
        yield page
    finally:
        context.close()
        try:
            lab.shutdown_sessions()
        except OSError:
            pass


@pytest.fixture()
def gpage(gallery_page, request, lab):
    """The gallery page for one test; a screenshot goes to test-artifacts/ if the test fails."""
    yield gallery_page
    screenshot_if_failed(gallery_page, request, lab)


def test_pipeline_explorer(gpage):
    """02: six stages; the last run is explained; a click on a stage explains that one."""
    from playwright.sync_api import expect

    explorer = visible(gpage, ".persistlib-pipeline")
    expect(explorer.locator(".persistlib-stage")).to_have_text(
        ["Train", "Evaluate", "Save", "Version", "Load", "Serve"]
    )
    explanation = explorer.locator(".persistlib-pipeline-explanation")
    expect(explanation).to_contain_text("6. Serve")  # the gallery runs every stage, Serve last
    explorer.locator(".persistlib-stage-save").click()
    expect(explanation).to_contain_text("3. Save")
    expect(explanation).to_contain_text("Serialise the fitted model")
    expect(explorer.locator(".persistlib-pipeline-artefact")).to_contain_text("model.pkl")


def test_gate_panel(gpage):
    """03: the verdict follows the accuracy slider across the model's score and back."""
    from playwright.sync_api import expect

    panel = visible(gpage, ".persistlib-gate-panel")
    verdict = panel.locator(".persistlib-gate-verdict")
    expect(verdict).to_contain_text("✓ PASS")
    handle = panel.locator(".persistlib-gate-slider-accuracy .noUi-handle")
    handle.focus()
    steps = gallery.GATE_STEPS_BELOW + 1  # one step above the model's accuracy
    for _ in range(steps):
        handle.press("ArrowRight")
    expect(verdict).to_contain_text("✗ FAIL")
    expect(panel.locator(".persistlib-gate-rows")).to_contain_text("below the threshold")
    for _ in range(steps):
        handle.press("ArrowLeft")
    expect(verdict).to_contain_text("✓ PASS")


def test_compression_explorer(gpage):
    """04: the chart is drawn and the table lists the lesson's methods; unticking one redraws both."""
    from playwright.sync_api import expect

    explorer = visible(gpage, ".persistlib-compression")
    assert image_loaded(explorer.locator(".persistlib-compression-chart"))
    table = explorer.locator(".persistlib-compression-table")
    for method in ("joblib-0", "joblib-3", "joblib-9", "joblib-lzma-3"):
        expect(table).to_contain_text(method)
    select = explorer.locator(".persistlib-compression-show select")
    shown = select.locator("option").all_inner_texts()
    select.select_option(label=shown[:2])
    expect(explorer.locator(".persistlib-compression-status")).to_contain_text("2 methods shown")
    expect(table).not_to_contain_text(shown[-1])


def test_model_card_view(gpage):
    """05: the card view shows the card it was given."""
    from playwright.sync_api import expect

    card = visible(gpage, ".persistlib-card-view")
    expect(card).to_contain_text(gallery.REGISTRY_VERSIONS[0])


def test_registry_browser(gpage):
    """05: production is on the last version promoted; Rollback moves it to the one before."""
    from playwright.sync_api import expect

    *_, before, last = gallery.REGISTRY_VERSIONS
    browser = visible(gpage, ".persistlib-registry-browser")
    production_row = browser.locator(".persistlib-registry-table tr.persistlib-row-production")
    expect(production_row).to_have_count(1)
    expect(production_row).to_contain_text(f"v{last}")
    browser.locator(".persistlib-registry-rollback").click()
    expect(browser.locator(".persistlib-registry-status")).to_contain_text(f"moved from v{last} to v{before}")
    expect(production_row).to_contain_text(f"v{before}")
    expect(production_row).not_to_contain_text(f"v{last}")


def test_hotswap_console(gpage):
    """09: the drill console serves the new version; under load, Swap goes back to the old one, no errors."""
    from playwright.sync_api import expect

    console = visible(gpage, ".persistlib-hotswap")
    requests = console.locator(".persistlib-hotswap-requests")
    version = console.locator(".persistlib-hotswap-version")
    expect(console.locator(".persistlib-hotswap-errors")).to_have_text("errors: 0")
    expect(version).to_have_text(f"serving: v{gallery.DRILL_NEW}")
    console.locator(".persistlib-hotswap-start").click()
    expect(requests).not_to_have_text("requests: 0")  # the counters update while the load runs
    console.locator(".persistlib-hotswap-swap").click()
    expect(version).to_have_text(f"serving: v{gallery.DRILL_OLD}")
    console.locator(".persistlib-hotswap-stop").click()
    status = console.locator(".persistlib-hotswap-status")
    expect(status).to_contain_text("stopped:")
    expect(status).to_contain_text(f"✓ 0 errors, versions v{gallery.DRILL_NEW}, v{gallery.DRILL_OLD}")
    chart = console.locator(".persistlib-hotswap-chart")
    expect(chart).to_be_visible()
    assert image_loaded(chart)


def test_drift_dashboard(gpage):
    """10: the charts and the cycle's steps render; Run cycle runs the first month and moves to the next."""
    from playwright.sync_api import expect

    dash = visible(gpage, ".persistlib-drift")
    for chart in (".persistlib-drift-psi", ".persistlib-drift-accuracy"):
        assert image_loaded(dash.locator(chart)), chart
    expect(dash.locator(".persistlib-drift-cycle")).to_contain_text("Hot-swap")
    status = dash.locator(".persistlib-drift-status")
    expect(status).to_contain_text("no cycle run yet")
    dash.locator(".persistlib-drift-run").click()
    first, _ = gallery.DRIFT_MONTHS
    expect(status).to_contain_text(re.compile(rf"[✓✗–] cycle 1\b.*{first[0]}"))
    n = len(gallery.DRIFT_MONTHS)
    expect(dash.locator(".persistlib-drift-month-label")).to_contain_text(f"next to run: month 2 of {n}")
    expect(dash.locator(".persistlib-drift-cycle-log li")).to_have_count(1)


def test_course_quiz(gpage):
    """11: the course quiz scores per topic and names the notebook to revisit; its controls are labelled."""
    from playwright.sync_api import expect

    expect(gpage.locator(".persistlib-quiz")).to_have_count(2)
    quiz = gpage.locator(".persistlib-quiz").nth(0)  # the gallery shows the course quiz first
    quiz.scroll_into_view_if_needed()
    topics = quiz.locator(".persistlib-quiz-topics")
    expect(topics).to_contain_text("Answer the questions to see your score per topic.")
    first = quiz.locator(".persistlib-quiz-question").first  # lesson question 1: its first option is wrong
    first.locator(".persistlib-quiz-choices input").first.check()
    first.locator(".persistlib-quiz-check").click()
    expect(first.locator(".persistlib-quiz-feedback")).to_contain_text("✗ Not quite.")
    expect(topics).to_contain_text("Revisit: notebook 01_why_persist")
    expect(topics).to_contain_text("✗ revisit notebook 01_why_persist")
    expect(quiz.locator(".persistlib-quiz-score")).to_contain_text("Score: 0/1 correct")
    third = quiz.locator(".persistlib-quiz-question").nth(2)  # a single-answer question: a labelled radio group
    expect(third.locator(".persistlib-quiz-choices")).to_contain_text("Answer 3:")
    expect(third.locator(".persistlib-quiz-check")).to_have_attribute("title", "Check your answer to question 3")


def test_lesson_quiz(gpage):
    """A lesson's quiz (12's): the right answer is marked correct and explained, and the score moves."""
    from playwright.sync_api import expect

    quiz = gpage.locator(".persistlib-quiz").nth(1)
    quiz.scroll_into_view_if_needed()
    question = quiz.locator(".persistlib-quiz-question").first
    question.locator(".persistlib-quiz-choices input").nth(2).check()  # 12's first question: option 3 is right
    question.locator(".persistlib-quiz-check").click()
    feedback = question.locator(".persistlib-quiz-feedback")
    expect(feedback).to_contain_text("✓ Correct!")
    expect(feedback).to_contain_text("Why:")
    expect(quiz.locator(".persistlib-quiz-score")).to_contain_text("Score: 1/1 correct")
    expect(quiz.locator(".persistlib-quiz-topics")).to_contain_text("Nothing to revisit so far.")
