"""The control room renders in Voila, in its start state, and answers clicks in every tab that matters.

A screenshot of the start state goes to ``test-artifacts/control_room_voila.png``: look at it as an
instructor would before a class (readable on a projector, nothing overlapping).
"""

from __future__ import annotations

import pytest

from .conftest import ARTIFACTS

pytestmark = pytest.mark.browser


def test_control_room_in_voila(page, lab):
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1280, "height": 800})  # a common projector resolution
    page.goto(f"{lab.url}/voila/render/notebooks/control_room.ipynb?token={lab.token}")
    room = page.locator(".persistlib-control-room")
    room.wait_for(timeout=180_000)
    assert page.get_by_text("Error displaying widget").count() == 0
    assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
    state = room.locator(".persistlib-control-room-state")
    expect(state).to_contain_text("serving v1.1.0 · production → v1.1.0 · 2 versions · ✓")
    tabs = room.locator(".persistlib-control-room-tabs .lm-TabBar-tab")
    expect(tabs).to_have_text(["Pipeline", "Gate", "Registry", "Hot-swap", "Drift"])
    pipeline = room.locator(".persistlib-pipeline")
    expect(pipeline).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "control_room_voila.png"))

    # the pipeline: six stages; a click on Version runs the stages before it, explains this one and shows
    # its artefact, the card (or the gate's refusal: what the stage writes is nbval's and test_widgets_pipeline's)
    expect(pipeline.locator(".persistlib-stage")).to_have_text(
        ["Train", "Evaluate", "Save", "Version", "Load", "Serve"]
    )
    pipeline.locator(".persistlib-stage-version").click()
    expect(pipeline.locator(".persistlib-pipeline-explanation")).to_contain_text("4. Version")
    expect(pipeline.locator(".persistlib-pipeline-artefact")).to_contain_text("Artefact · the card")

    # the gate: the candidate passes; raise the accuracy threshold above it and the verdict turns
    tabs.nth(1).click()
    gate = room.locator(".persistlib-gate-panel")
    verdict = gate.locator(".persistlib-gate-verdict")
    expect(verdict).to_contain_text("✓ PASS")
    handle = gate.locator(".persistlib-gate-slider-accuracy .noUi-handle")
    handle.focus()
    for _ in range(6):  # 0.88 -> 0.94, above the candidate's accuracy
        handle.press("ArrowRight")
    expect(verdict).to_contain_text("✗ FAIL")
    page.screenshot(path=str(ARTIFACTS / "control_room_voila_gate.png"))

    # the registry: roll production back; the shared state line says the server has not followed yet
    tabs.nth(2).click()
    browser = room.locator(".persistlib-registry-browser")
    browser.locator(".persistlib-registry-rollback").click()
    expect(browser.locator(".persistlib-registry-status")).to_contain_text("moved from v1.1.0 to v1.0.0")
    expect(state).to_contain_text("production → v1.0.0")
    expect(state).to_contain_text("✗ not serving production yet")

    # the hot-swap console: Swap follows production, and the state line agrees again
    tabs.nth(3).click()
    console = room.locator(".persistlib-hotswap")
    console.locator(".persistlib-hotswap-swap").click()
    expect(console.locator(".persistlib-hotswap-version")).to_have_text("serving: v1.0.0")
    expect(state).to_contain_text("serving v1.0.0 · production → v1.0.0")
    page.screenshot(path=str(ARTIFACTS / "control_room_voila_swap.png"))

    # the drift tab: one cycle runs on the first month and says what it decided
    tabs.nth(4).click()
    drift = room.locator(".persistlib-drift")
    expect(drift.locator(".persistlib-drift-status")).to_contain_text("no cycle run yet")
    drift.locator(".persistlib-drift-run").click()
    expect(drift.locator(".persistlib-drift-status")).to_contain_text("cycle 1 (2025-01)")
    expect(drift.locator(".persistlib-drift-month-label")).to_contain_text("month 2 of 6")
    page.screenshot(path=str(ARTIFACTS / "control_room_voila_drift.png"))
