"""persistlib: train, gate, save, version, load and serve models, safely.

The core (data, gate, card, registry) needs only numpy, pandas, scikit-learn,
joblib and filelock. Widgets, serving and ONNX live in their own modules and are
imported only when you use them, so ``import persistlib`` stays fast and works
even if an optional package is missing.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .card import ModelCard, check_compatibility, environment_versions
from .data import CHURN_FEATURES, fingerprint, make_churn
from .errors import (
    CardError,
    CompatibilityError,
    CompatibilityWarning,
    GateRejected,
    IntegrityError,
    InvalidVersionError,
    LockTimeoutError,
    MissingMetricError,
    PersistError,
    RollbackError,
    UntrustedTypeError,
    VersionExistsError,
    VersionNotFoundError,
    InvalidArgumentError,
    ArgumentTypeError,
    MissingFileError,
)
from .gate import (
    DEFAULT_BASELINE,
    DEFAULT_THRESHOLDS,
    Gate,
    GateReport,
    MetricCheck,
    baseline_from,
    bootstrap_metric,
    evaluate,
)
from .registry import Registry, bump_version, parse_version

__version__ = "0.1.0"

# Names from optional modules, imported on first use: name -> module.
_LAZY: dict[str, str] = {
    **{
        w: "widgets"
        for w in (
            "PipelineExplorer",
            "GatePanel",
            "CompressionExplorer",
            "ModelCardView",
            "RegistryBrowser",
            "Quiz",
            "HotSwapConsole",
            "ABPanel",
        )
    },
    "ModelServer": "serving",
    "Prediction": "serving",
    "ABRouter": "serving",
    "validate_rows": "serving",
    "InvalidInputError": "serving",
    "UnservableModelError": "serving",
    "Decision": "serving",
    "ServerSnapshot": "serving",
    "as_labels": "serving",
    "next_ref": "serving",
    "wilson_interval": "serving",
    "AuditLog": "audit",
    "AuditError": "audit",
    "Comparison": "audit",
    "compare_summaries": "audit",
    "start_http": "http",
    "stop_http": "http",
    "create_app": "http",
    "export_onnx": "onnx_export",
    "load_onnx": "onnx_export",
    "check_agreement": "onnx_export",
    "OnnxModel": "onnx_export",
    "workspace": "course",
    "environment_check": "course",
    "QuizError": "quiz",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'persistlib' has no attribute {name!r}")
    return getattr(import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "make_churn",
    "fingerprint",
    "CHURN_FEATURES",
    "evaluate",
    "Gate",
    "GateReport",
    "MetricCheck",
    "DEFAULT_THRESHOLDS",
    "DEFAULT_BASELINE",
    "baseline_from",
    "bootstrap_metric",
    "ModelCard",
    "environment_versions",
    "check_compatibility",
    "Registry",
    "parse_version",
    "bump_version",
    "PersistError",
    "InvalidVersionError",
    "VersionExistsError",
    "VersionNotFoundError",
    "MissingMetricError",
    "GateRejected",
    "CardError",
    "IntegrityError",
    "CompatibilityError",
    "CompatibilityWarning",
    "UntrustedTypeError",
    "LockTimeoutError",
    "RollbackError",
    "InvalidArgumentError",
    "ArgumentTypeError",
    "MissingFileError",
    *_LAZY,
]
