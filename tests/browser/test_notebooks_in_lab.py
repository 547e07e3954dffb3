"""One whole lesson in JupyterLab, end to end: 08_serving, every cell run in headless Chromium, its widgets used.

nbval already runs every lesson's cells and compares their outputs, and test_widget_gallery.py
renders and uses every other course widget in one small generated notebook. This module keeps
one full lesson run in the browser as the end-to-end check: a real lesson, top to bottom, in a
real JupyterLab, with its HotSwapConsole, ABPanel and quiz rendering and responding.
"""

from __future__ import annotations

import re

import pytest

from .notebook_runner import image_loaded, run_notebook, visible

pytestmark = pytest.mark.browser


def test_08_serving(page, lab):
    from playwright.sync_api import expect

    run_notebook(page, lab, "08_serving.ipynb")
    console = visible(page, ".persistlib-hotswap")
    expect(console.locator(".persistlib-hotswap-errors")).to_have_text("errors: 0")
    expect(console.locator(".persistlib-hotswap-version")).to_contain_text("serving: v")
    assert image_loaded(console.locator(".persistlib-hotswap-chart"))
    ab = visible(page, ".persistlib-ab")
    expect(ab.locator(".persistlib-ab-decision")).to_contain_text("2.0.0 wins")

    # the quiz: pick an answer, press Check, see feedback and the score move
    quiz = visible(page, ".persistlib-quiz")
    question = quiz.locator(".persistlib-quiz-question").first
    question.locator(".persistlib-quiz-choices input").first.check()
    question.locator(".persistlib-quiz-check").click()
    expect(question.locator(".persistlib-quiz-feedback")).to_contain_text(re.compile("[✓✗]"))
    expect(quiz.locator(".persistlib-quiz-score")).to_contain_text("/1 correct")
