"""Notebooks 11 and 12 in JupyterLab: the course quiz answers, scores per topic, and labels its controls."""

from __future__ import annotations

import pytest

from .test_notebooks_in_lab import run_notebook, visible

pytestmark = pytest.mark.browser


def test_11_check_your_understanding(page, lab):
    from playwright.sync_api import expect

    run_notebook(page, lab, "11_check_your_understanding.ipynb")
    quiz = page.locator(".persistlib-quiz").last  # the course quiz; the exercise's own question comes first
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


def test_12_summary(page, lab):
    from playwright.sync_api import expect

    run_notebook(page, lab, "12_summary.ipynb")
    expect(page.get_by_text("10. rollback  server back to v1.0.0").first).to_be_visible()
    quiz = visible(page, ".persistlib-quiz")
    question = quiz.locator(".persistlib-quiz-question").first
    question.locator(".persistlib-quiz-choices input").nth(2).check()
    question.locator(".persistlib-quiz-check").click()
    expect(question.locator(".persistlib-quiz-feedback")).to_contain_text("✓ Correct!")
    expect(quiz.locator(".persistlib-quiz-topics")).to_contain_text("Nothing to revisit so far.")
