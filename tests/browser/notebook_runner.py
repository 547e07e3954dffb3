"""Run a notebook in JupyterLab from Playwright, and small helpers the browser tests share."""

from __future__ import annotations

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
    """Open ``notebooks/<name>`` in the lab, run every cell, and check none failed and every widget rendered."""
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
    """The first element matching ``selector``, scrolled into view and asserted visible."""
    loc = page.locator(selector).first
    loc.scroll_into_view_if_needed()
    assert loc.is_visible(), f"{selector} is not visible"
    return loc


def image_loaded(locator) -> bool:
    """Whether an ``<img>`` has loaded a real picture (not an empty or broken one)."""
    return locator.evaluate("img => img.complete && img.naturalWidth > 100")
