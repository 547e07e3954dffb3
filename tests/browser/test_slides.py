"""A slide show starts: jupyterlab-rise turns a notebook's slide metadata into reveal.js slides.

The RISE command in JupyterLab (the toolbar button) opens a new tab at ``/rise/<path>``: the same
page a Binder link (``?urlpath=rise/notebooks/X.ipynb``) opens directly, so one test covers both
ways in.
"""

from __future__ import annotations

import pytest

from .conftest import ARTIFACTS

pytestmark = pytest.mark.browser

NOTEBOOK = "notebooks/00_start_here.ipynb"

# Wait for JupyterLab and the notebook, then report whether the RISE command exists and is enabled.
OPEN_NOTEBOOK = """
async () => {
  const app = window.jupyterapp;
  await app.started; await app.restored;
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  for (let i = 0; i < 600; i++) {
    const w = app.shell.currentWidget;
    if (w && w.content && w.context) { await w.context.ready; break; }
    await sleep(100);
  }
  return {has: app.commands.hasCommand("RISE:slideshow"), enabled: app.commands.isEnabled("RISE:slideshow")};
}
"""


def assert_slide_show(show, first_heading: str, second_heading: str) -> None:
    from playwright.sync_api import expect

    show.wait_for_selector(".reveal .slides section", timeout=120_000)
    current = show.locator(".reveal .slides section.present").first
    expect(current).to_contain_text(first_heading)
    assert show.get_by_text("Error displaying widget").count() == 0
    show.locator(".reveal").focus()
    show.keyboard.press("ArrowRight")  # the next "## " heading is the next slide
    expect(show.locator(".reveal .slides section.present").first).to_contain_text(second_heading)


def test_the_rise_command_starts_a_slide_show(page, lab):
    page.goto(lab.notebook_url("00_start_here.ipynb"))
    page.wait_for_function("() => !!window.jupyterapp", timeout=60_000)
    state = page.evaluate(OPEN_NOTEBOOK)
    assert state == {"has": True, "enabled": True}, f"jupyterlab-rise is not loaded or not enabled: {state}"
    with page.context.expect_page(timeout=60_000) as opened:
        page.evaluate("() => window.jupyterapp.commands.execute('RISE:slideshow')")
    show = opened.value
    assert f"/rise/{NOTEBOOK}" in show.url  # the page a Binder ?urlpath=rise/... link opens
    assert_slide_show(show, "Start here", "Who it is for")
    ARTIFACTS.mkdir(exist_ok=True)
    # let reveal.js's slide transition (CSS transitions, ~0.8 s) finish, so the screenshot shows one slide
    show.wait_for_function("() => !document.getAnimations().some(a => a instanceof CSSTransition)")
    show.screenshot(path=str(ARTIFACTS / "slides_00_start_here.png"))
