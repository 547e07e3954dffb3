"""Interactive widgets for the notebooks (needs ipywidgets; imported only on use).

Every widget is an ipywidgets box whose behaviour can be driven from Python:
set a slider's ``.value``, call a button's ``.click()``, read a Label's or an
HTML's ``.value``. Each carries stable CSS classes (``persistlib-...``) for
browser tests, and reports status with text and symbols (✓/✗, PASS/FAIL),
never colour alone.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# widget name -> submodule of persistlib.widgets that defines it
_WHERE = {
    "PipelineExplorer": "pipeline",
    "GatePanel": "gate_panel",
    "CompressionExplorer": "compression",
    "ModelCardView": "registry_browser",
    "RegistryBrowser": "registry_browser",
    "Quiz": "quiz",
    "HotSwapConsole": "serving",
    "ABPanel": "ab_panel",
    "DriftDashboard": "drift_dashboard",
    "ControlRoom": "control_room",
}

__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'persistlib.widgets' has no attribute {name!r}")
    return getattr(import_module(f".{_WHERE[name]}", __name__), name)
