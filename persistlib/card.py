"""The model card: the metadata file saved beside every model.

A card answers, years later: *what is this file, where did it come from, how
good was it, and what do I need installed to load it?* It is plain JSON, so a
person can read it and any tool can parse it.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._display import clip, mark
from .data import fingerprint
from .environment import check_compatibility, environment_versions
from .errors import CardError, CompatibilityError, CompatibilityWarning, warn_caller

__all__ = [
    "ModelCard",
    "card_file_name",
    "utc_now",
    "algorithm_name",
    "hyperparameters",
    "describe_dataset",
    "new_card",
]


def card_file_name(version: str) -> str:
    """The card's file name in a registry folder: ``model_v1.2.0_meta.json``."""
    return f"model_v{version}_meta.json"


def utc_now() -> str:
    """The current time in UTC, ISO 8601, to the second: ``2026-11-26T16:40:00+00:00``."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@dataclass
class ModelCard:
    """Metadata saved next to a model as ``model_vX.Y.Z_meta.json``.

    The registry fills this in; you rarely build one by hand.
    """

    version: str
    trained_at: str
    algorithm: str
    artifact: str
    artifact_sha256: str
    format: str = "joblib"
    dataset: str | None = None
    dataset_sha256: str | None = None
    dataset_rows: int | None = None
    hyperparams: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    dependencies: dict[str, str] = field(default_factory=environment_versions)
    artifact_bytes: int | None = None
    gate: dict[str, Any] | None = None
    trusted_types: list[str] | None = None
    notes: str = ""
    signature: str | None = None

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        """Serialise to pretty, key-sorted JSON (what the ``_meta.json`` file holds)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "card") -> ModelCard:
        """Parse a card; raise :class:`CardError` naming ``source`` if it is malformed."""
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise CardError(
                f"{source} is not valid JSON ({clip(str(e), 80)}); restore it from a backup, "
                "or delete this version's files and save the model again."
            ) from None
        if not isinstance(data, dict):
            raise CardError(f"{source} must hold a JSON object, got {type(data).__name__}.")
        known = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
        missing = sorted(required - data.keys())
        unknown = sorted(data.keys() - known)
        if missing:
            raise CardError(
                f"{source} is missing required field(s) {missing}; it is incomplete or not a persistlib card."
            )
        if unknown:
            raise CardError(
                f"{source} has unknown field(s) {clip(str(unknown), 80)}; it was written by another "
                "tool or a newer persistlib (upgrade persistlib)."
            )
        for name, value in data.items():
            problem = _FIELD_CHECKS[name](value)
            if problem:
                raise CardError(
                    f"{source}: field {name!r} {problem}, got {clip(repr(value), 60)}. The card is damaged or "
                    "was edited by hand; restore it from a backup."
                )
        return cls(**data)

    def signing_payload(self) -> bytes:
        """The canonical bytes a signature covers: the card without its signature."""
        d = self.to_dict()
        d["signature"] = None
        return json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    # ------------------------------------------------------------------ checks

    def check_environment(self, *, allow_version_mismatch: bool = False) -> list[str]:
        """Check this card's recorded dependencies against the running environment.

        Warns with :class:`CompatibilityWarning` for each small difference and
        returns them. Raises :class:`CompatibilityError` for a large one, unless
        ``allow_version_mismatch=True``, in which case it warns instead.
        """
        try:
            notes = check_compatibility(self.dependencies)
        except CompatibilityError as e:
            if not allow_version_mismatch:
                raise CompatibilityError(f"model v{self.version}: {e}") from None
            notes = [f"loading v{self.version} despite: {e}"]
        for n in notes:
            warn_caller(f"model v{self.version}: {n}", CompatibilityWarning)
        return notes

    # ------------------------------------------------------------------ display

    def __str__(self) -> str:
        m = ", ".join(f"{k}={v:.3f}" for k, v in self.metrics.items())
        verdict = "" if self.gate is None else ("gate PASS" if self.gate.get("passed") else "gate FAIL")
        return (
            f"model v{self.version} · {self.algorithm} · trained {self.trained_at}\n"
            f"  metrics: {m or '—'} {('· ' + verdict) if verdict else ''}\n"
            f"  artefact: {self.artifact} ({self.format}) sha256 {self.artifact_sha256[:12]}…\n"
            f"  dataset: {self.dataset or '—'} sha256 {(self.dataset_sha256 or '—')[:12]}"
        )

    def _repr_html_(self) -> str:
        e = html.escape

        def table(title: str, d: dict[str, Any]) -> str:
            body = "".join(
                f'<tr><td style="text-align:left">{e(str(k))}</td>'
                f'<td style="text-align:left" title="{e(str(v))}"><code>{e(_short(v))}</code></td></tr>'
                for k, v in d.items()
            )
            return (
                f'<table class="persistlib-card-{title}" style="margin:0"><tr><th colspan="2" '
                f'style="text-align:left">{title}</th></tr>{body}</table>'
            )

        gate = ""
        if self.gate is not None:
            ok = bool(self.gate.get("passed"))
            gate = f' · <b class="persistlib-card-gate">{mark(ok)} gate {"PASS" if ok else "FAIL"}</b>'
        sections = [
            table("metrics", {k: f"{v:.3f}" for k, v in self.metrics.items()} or {"—": "none recorded"}),
            table(
                "artefact",
                {
                    "file": self.artifact,
                    "format": self.format,
                    "bytes": self.artifact_bytes,
                    "sha256": _hash(self.artifact_sha256),
                },
            ),
            table("data", {"dataset": self.dataset, "rows": self.dataset_rows, "sha256": _hash(self.dataset_sha256)}),
            table("environment", self.dependencies),
        ]
        notes = f"<p>{e(self.notes)}</p>" if self.notes else ""
        box = "border:2px solid #444;border-radius:8px;padding:6px 14px;max-width:760px"
        grid = "display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:4px 18px;align-items:start"
        return f"""<div class="persistlib-card" style="{box}">
<h3 style="margin:4px 0">Model passport · v{e(self.version)}</h3>
<p style="margin:2px 0"><b>{e(self.algorithm)}</b> · trained {e(self.trained_at)}{gate}</p>{notes}
<div style="{grid}">{"".join(sections)}</div>
<details><summary>hyperparameters</summary>{table("hyperparameters", self.hyperparams)}</details>
</div>"""


def _text(v: Any) -> str | None:
    return None if isinstance(v, str) else "must be a string"


def _name(v: Any) -> str | None:
    return None if isinstance(v, str) and v.strip() and "\x00" not in v else "must be a string (not empty)"


def _count(v: Any) -> str | None:
    ok = v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0)
    return None if ok else "must be a whole number >= 0 or null"


def _mapping(values: type | tuple[type, ...], what: str) -> Any:
    def check(v: Any) -> str | None:
        ok = isinstance(v, dict) and all(
            isinstance(k, str) and isinstance(x, values) and not isinstance(x, bool) for k, x in v.items()
        )
        return None if ok else f"must be an object of name -> {what}"

    return check


def _optional(check: Any) -> Any:
    return lambda v: None if v is None else check(v)


#: What each card field may hold: a function returning what is wrong, or None.
_FIELD_CHECKS: dict[str, Any] = {
    "version": _name,
    "trained_at": _text,
    "algorithm": _text,
    "artifact": _name,
    "artifact_sha256": lambda v: (
        None
        if isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v)
        else ("must be 64 lowercase hex digits (a sha256)")
    ),
    "format": lambda v: None if v in ("joblib", "skops") else "must be 'joblib' or 'skops'",
    "dataset": _optional(_text),
    "dataset_sha256": _optional(_text),
    "dataset_rows": _count,
    "hyperparams": lambda v: None if isinstance(v, dict) else "must be an object",
    "metrics": _mapping((int, float), "number"),
    "dependencies": _mapping(str, "version string"),
    "artifact_bytes": _count,
    "gate": lambda v: None if v is None or isinstance(v, dict) else "must be an object or null",
    "trusted_types": lambda v: (
        None
        if v is None or (isinstance(v, list) and all(isinstance(t, str) for t in v))
        else ("must be a list of type names or null")
    ),
    "notes": _text,
    "signature": _optional(_text),
}


def _hash(h: str | None) -> str | None:
    """The first 16 hex digits of a hash, for display (the full value is in the tooltip and the JSON)."""
    return None if h is None else h[:16] + "…"


def _short(v: Any) -> str:
    return clip("—" if v is None else str(v), 70)


# --------------------------------------------------------------------------- filling in a card


def algorithm_name(model: Any) -> str:
    """What the card calls the model: its class, or ``Pipeline(Scaler → LogisticRegression)``."""
    steps = getattr(model, "steps", None)
    if isinstance(steps, list) and steps:
        return "Pipeline(" + " → ".join(type(s[1]).__name__ for s in steps) + ")"
    return type(model).__name__


def hyperparameters(model: Any) -> dict[str, Any]:
    """The model's top-level ``get_params()``, as JSON-ready values (anything else as a short repr)."""
    get = getattr(model, "get_params", None)
    if get is None:
        return {}
    out = {}
    for k, v in sorted(get(deep=False).items()):
        if v is None or isinstance(v, bool | str | int | float):
            out[k] = v
        elif getattr(v, "ndim", None) == 0 and hasattr(v, "item"):  # a numpy scalar
            out[k] = v.item()
        else:
            out[k] = clip(repr(v), 200)
    return out


def new_card(
    model: Any,
    *,
    version: str,
    artifact: str,
    sha256: str,
    size: int,
    format: str,
    dataset: tuple[str | None, dict[str, Any] | None] = (None, None),
    metrics: dict[str, float] | None = None,
    gate: Any = None,
    trusted_types: list[str] | None = None,
    notes: str = "",
) -> ModelCard:
    """The card for a model just written: what it is, what it was trained on, how it scored, what it needs.

    ``dataset`` is :func:`describe_dataset`'s answer; ``gate`` a ``GateReport`` (or ``None``).
    """
    name, fp = dataset
    return ModelCard(
        version=version,
        trained_at=utc_now(),
        algorithm=algorithm_name(model),
        artifact=artifact,
        artifact_sha256=sha256,
        artifact_bytes=size,
        format=format,
        dataset=name,
        dataset_sha256=fp["sha256"] if fp else None,
        dataset_rows=fp["rows"] if fp else None,
        hyperparams=hyperparameters(model),
        metrics=dict(metrics or {}),
        dependencies=environment_versions(),
        gate=gate.to_dict() if gate is not None else None,
        trusted_types=trusted_types,
        notes=notes,
    )


def describe_dataset(dataset: Any) -> tuple[str | None, dict[str, Any] | None]:
    """``(a short description, its fingerprint)`` of the training data, or ``(None, None)``."""
    if dataset is None:
        return None, None
    fp = fingerprint(dataset)
    if fp["kind"] == "file":
        return Path(dataset).name, fp
    shape = getattr(dataset, "shape", (fp["rows"],))
    cols = f" × {shape[1]} columns" if len(shape) > 1 else ""
    return f"{type(dataset).__name__}: {fp['rows']} rows{cols}", fp
