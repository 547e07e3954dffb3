"""Instructors present notebooks as dashboards: the widgets must work in Voila too.

Voila runs the notebook on the server, shows only outputs and widgets, and keeps the
kernel alive so the widgets stay interactive. Here a lesson (03) renders in Voila and its gate
panel answers the slider; test_control_room.py uses every tab of the control room in Voila,
the pipeline explorer among them.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def open_in_voila(page, lab, name: str) -> None:
    page.goto(f"{lab.url}/voila/render/notebooks/{name}?token={lab.token}")
    page.wait_for_selector(".persistlib-quiz", timeout=120_000)  # the last cell has rendered
    assert page.get_by_text("Error displaying widget").count() == 0
    assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count() == 0


def test_gate_panel_in_voila(page, lab):
    from playwright.sync_api import expect

    open_in_voila(page, lab, "03_evaluation_gate.ipynb")
    panel = page.locator(".persistlib-gate-panel").first
    verdict = panel.locator(".persistlib-gate-verdict")
    expect(verdict).to_contain_text("✓ PASS")
    handle = panel.locator(".persistlib-gate-slider-accuracy .noUi-handle")
    handle.focus()
    for _ in range(5):
        handle.press("ArrowRight")
    expect(verdict).to_contain_text("✗ FAIL")
