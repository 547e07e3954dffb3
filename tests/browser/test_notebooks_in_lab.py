"""Open the notebooks that show widgets in JupyterLab, run every cell in headless Chromium, use the widgets.

Each test checks that the notebook's widgets render (no "Error displaying widget", no
error output), then interacts with its own widgets and asserts the visible change.
Notebooks 00, 01, 06 and 07 show no widget but their quiz: nbval runs their cells, and the
Quiz widget is answered in the browser here (09) and in test_quiz_in_lab.py (11, 12), so
running them again in a browser would test nothing new.
"""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser

# JS: wait until the notebook and its kernel are ready, run all cells, wait until every
# code cell has run and the kernel is idle, then report cells with error outputs.
RUN_ALL = """
async () => {
  const app = window.jupyterapp;
  await app.started; await app.restored;
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  let panel = null;
  for (let i = 0; i < 600 && !panel; i++) {
    const w = app.shell.currentWidget;
    if (w && w.content && w.sessionContext) panel = w; else await sleep(100);
  }
  if (!panel) return {error: "no notebook panel opened"};
  await panel.context.ready;
  await panel.sessionContext.ready;
  await app.commands.execute("notebook:run-all-cells");
  const cells = () => panel.content.widgets.filter(c => c.model.type === "code");
  for (let i = 0; i < 1800; i++) {
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    const done = cells().every(c => c.model.executionCount !== null);
    if (done && kernel && kernel.status === "idle") break;
    await sleep(100);
  }
  const errors = [];
  const unrun = [];
  cells().forEach((c, i) => {
    if (c.model.executionCount === null) unrun.push(i);
    for (let k = 0; k < c.model.outputs.length; k++) {
      const o = c.model.outputs.get(k).toJSON();
      if (o.output_type === "error") errors.push(`cell ${i}: ${o.ename}: ${o.evalue}`);
    }
  });
  return {errors, unrun, status: panel.sessionContext.session.kernel.status};
}
"""


def run_notebook(page, lab, name: str) -> None:
    page.goto(lab.notebook_url(name))
    page.wait_for_function("() => !!window.jupyterapp", timeout=60_000)
    result = page.evaluate(RUN_ALL)
    assert "error" not in result, result
    assert result["unrun"] == [], f"{name}: cells never ran: {result}"
    assert result["errors"] == [], f"{name}: cells raised: {result['errors']}"
    assert result["status"] == "idle"
    page.wait_for_timeout(500)  # let the last widget views attach
    assert page.get_by_text("Error displaying widget").count() == 0


def visible(page, selector: str):
    loc = page.locator(selector).first
    loc.scroll_into_view_if_needed()
    assert loc.is_visible(), f"{selector} is not visible"
    return loc


def test_02_pipeline_tour(page, lab):
    from playwright.sync_api import expect

    run_notebook(page, lab, "02_pipeline_tour.ipynb")
    visible(page, ".persistlib-quiz")
    explorer = visible(page, ".persistlib-pipeline")
    expect(explorer.locator(".persistlib-stage")).to_have_text(
        ["Train", "Evaluate", "Save", "Version", "Load", "Serve"]
    )
    explanation = explorer.locator(".persistlib-pipeline-explanation")
    expect(explanation).to_contain_text("6. Serve")  # the notebook's last run(...) call
    explorer.locator(".persistlib-stage-save").click()
    expect(explanation).to_contain_text("3. Save")
    expect(explanation).to_contain_text("Serialise the fitted model")
    expect(explorer.locator(".persistlib-pipeline-artefact")).to_contain_text("model.pkl")

    # the quiz: pick an answer, press Check, see feedback and the score move
    quiz = visible(page, ".persistlib-quiz")
    question = quiz.locator(".persistlib-quiz-question").first
    question.locator(".persistlib-quiz-choices input").first.check()
    question.locator(".persistlib-quiz-check").click()
    expect(question.locator(".persistlib-quiz-feedback")).to_contain_text(re.compile("[✓✗]"))
    expect(quiz.locator(".persistlib-quiz-score")).to_contain_text("/1 correct")


def test_03_evaluation_gate(page, lab):
    from playwright.sync_api import expect

    run_notebook(page, lab, "03_evaluation_gate.ipynb")
    visible(page, ".persistlib-quiz")
    panel = visible(page, ".persistlib-gate-panel")
    verdict = panel.locator(".persistlib-gate-verdict")
    expect(verdict).to_contain_text("✓ PASS")
    handle = panel.locator(".persistlib-gate-slider-accuracy .noUi-handle")
    handle.focus()
    for _ in range(5):  # 0.88 -> 0.93, above the model's accuracy
        handle.press("ArrowRight")
    expect(verdict).to_contain_text("✗ FAIL")
    expect(panel.locator(".persistlib-gate-rows")).to_contain_text("below the threshold")
    for _ in range(5):
        handle.press("ArrowLeft")
    expect(verdict).to_contain_text("✓ PASS")


def test_04_serialisation(page, lab):
    run_notebook(page, lab, "04_serialisation.ipynb")
    visible(page, ".persistlib-quiz")
    explorer = visible(page, ".persistlib-compression")
    chart = explorer.locator(".persistlib-compression-chart")
    assert chart.evaluate("img => img.complete && img.naturalWidth > 100")
    table = explorer.locator(".persistlib-compression-table").inner_text()
    for method in ("joblib-0", "joblib-3", "joblib-9", "joblib-lzma-3"):
        assert method in table


def test_05_versioning_and_model_cards(page, lab):
    from playwright.sync_api import expect

    run_notebook(page, lab, "05_versioning_and_model_cards.ipynb")
    visible(page, ".persistlib-quiz")
    visible(page, ".persistlib-card-view")
    browser = visible(page, ".persistlib-registry-browser")
    table = browser.locator(".persistlib-registry-table")
    production_row = table.locator("tr.persistlib-row-production")
    expect(production_row).to_contain_text("v1.2.0")
    browser.locator(".persistlib-registry-rollback").click()
    expect(browser.locator(".persistlib-registry-status")).to_contain_text("moved from v1.2.0 to v1.1.0")
    expect(production_row).to_contain_text("v1.1.0")
    assert re.search(r"v1\.1\.0", production_row.inner_text())


def test_08_serving(page, lab):
    from playwright.sync_api import expect

    run_notebook(page, lab, "08_serving.ipynb")
    visible(page, ".persistlib-quiz")
    console = visible(page, ".persistlib-hotswap")
    expect(console.locator(".persistlib-hotswap-errors")).to_have_text("errors: 0")
    expect(console.locator(".persistlib-hotswap-version")).to_contain_text("serving: v")
    assert console.locator(".persistlib-hotswap-chart").evaluate("img => img.complete && img.naturalWidth > 100")
    ab = visible(page, ".persistlib-ab")
    expect(ab.locator(".persistlib-ab-decision")).to_contain_text("2.0.0 wins")


def test_09_rollback_drill(page, lab):
    """The drill's console renders, and its quiz responds."""
    from playwright.sync_api import expect

    run_notebook(page, lab, "09_rollback_drill.ipynb")
    visible(page, ".persistlib-hotswap")
    quiz = visible(page, ".persistlib-quiz")
    question = quiz.locator(".persistlib-quiz-question").first
    question.locator(".persistlib-quiz-choices input").first.check()
    question.locator(".persistlib-quiz-check").click()
    expect(question.locator(".persistlib-quiz-feedback")).to_contain_text("Why:")
    expect(quiz.locator(".persistlib-quiz-score")).to_contain_text("/1 correct")


def test_10_retrain_loop(page, lab):
    from playwright.sync_api import expect

    run_notebook(page, lab, "10_retrain_loop.ipynb")
    visible(page, ".persistlib-quiz")
    dash = visible(page, ".persistlib-drift")
    for chart in (".persistlib-drift-psi", ".persistlib-drift-accuracy"):
        assert dash.locator(chart).evaluate("img => img.complete && img.naturalWidth > 100"), chart
    expect(dash.locator(".persistlib-drift-cycle")).to_contain_text("Hot-swap")
    expect(dash.locator(".persistlib-drift-status")).to_contain_text(re.compile("[✓✗–]"))
