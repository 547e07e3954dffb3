"""persistlib: train, gate, save, version, load and serve models, safely.

The top level holds what a student or a user calls; helpers stay importable
from their own module (``persistlib.environment.environment_versions``,
``persistlib.errors.LockTimeoutError``, ...). The core (data, gate, card,
registry) needs only numpy, pandas, scikit-learn, joblib and filelock and is
imported here. Serving, monitoring (``DriftMonitor``, ``RetrainLoop``, ``psi``;
they need scipy), ONNX, the course helpers and the widgets are imported on first
use, so ``import persistlib`` stays fast and works even if an optional package
is missing or broken. "How persistlib is built" in the README maps the
modules and their layers.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .bootstrap import bootstrap_metric
from .card import ModelCard
from .data import fingerprint, make_churn
from .errors import (
    CompatibilityError,
    CompatibilityWarning,
    GateRejected,
    IntegrityError,
    InvalidVersionError,
    PersistError,
    RollbackError,
    UntrustedTypeError,
    VersionNotFoundError,
)
from .gate import DEFAULT_BASELINE, DEFAULT_THRESHOLDS, Gate, GateReport, baseline_from, evaluate
from .registry import Registry
from .versions import bump_version, parse_version

__version__ = "0.1.0"

# Names from optional modules, imported on first use: name -> module.
_LAZY: dict[str, str] = {
    **dict.fromkeys(
        (
            "PipelineExplorer",
            "GatePanel",
            "CompressionExplorer",
            "ModelCardView",
            "RegistryBrowser",
            "Quiz",
            "HotSwapConsole",
            "ABPanel",
            "DriftDashboard",
            "ControlRoom",
        ),
        "widgets",
    ),
    **dict.fromkeys(("ModelServer", "ABRouter", "AuditLog"), "serving"),
    **dict.fromkeys(("start_http", "stop_http"), "serving.background"),
    **dict.fromkeys(("follow_alias", "AliasFollower"), "serving.follow"),
    **dict.fromkeys(("MlflowRegistry",), "backends.mlflow"),
    **dict.fromkeys(("start_tracking_server",), "backends.tracking_server"),
    **dict.fromkeys(("DriftMonitor", "RetrainLoop", "psi"), "monitoring"),
    **dict.fromkeys(("export_onnx", "load_onnx", "check_agreement"), "onnx_export"),
    **dict.fromkeys(("workspace", "environment_check"), "course"),
    **dict.fromkeys(("PALETTE",), "_display"),
}


# Submodules reached as attributes, imported on first use: ``pl.exercises.check(...)``.
_LAZY_MODULES = ("exercises", "quiz")


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        return import_module(f".{name}", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'persistlib' has no attribute {name!r}")
    return getattr(import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_LAZY_MODULES))


__all__ = [
    # data and evaluation
    "make_churn",
    "fingerprint",
    "evaluate",
    "bootstrap_metric",
    # the gate
    "Gate",
    "GateReport",
    "DEFAULT_THRESHOLDS",
    "DEFAULT_BASELINE",
    "baseline_from",
    # cards, versions and the registry
    "ModelCard",
    "Registry",
    "parse_version",
    "bump_version",
    # the errors a caller handles most (all of them: persistlib.errors)
    "PersistError",
    "GateRejected",
    "IntegrityError",
    "CompatibilityError",
    "CompatibilityWarning",
    "UntrustedTypeError",
    "InvalidVersionError",
    "VersionNotFoundError",
    "RollbackError",
    *_LAZY,
]
