"""Saving into MLflow for :meth:`MlflowRegistry.save <persistlib.backends.mlflow.MlflowRegistry.save>`.

The steps, and why in this order:

1. Check every argument and the gate before anything is written (as ``Registry`` does).
2. Write the MLflow model folder locally with MLflow's own writer
   (``mlflow.sklearn.save_model``, skops with the reviewed types), hash the
   model file, and put the card beside it. The pip requirements are passed
   explicitly, from the running versions: MLflow would otherwise start a
   subprocess to guess them, seconds per save.
3. One run: metrics, hyperparameters as params, the data set as the run's
   input (its full sha256 in the source), and the folder as the run's logged model.
4. Register the version with all the card's tags in one call: the commit
   point. A crash before it leaves a run and unregistered files, never a
   version without its card.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import artefacts
from .._display import clip
from .._files import sha256_file
from ..card import describe_dataset, new_card
from ..environment import environment_versions
from ..errors import ArgumentTypeError, InvalidArgumentError, UntrustedTypeError, VersionExistsError
from ..gate import GateReport, require_pass, validate_scores
from ..versions import BUMPS, bump_version, normalise_version
from ._mlflow_store import CARD_FILE, TAG, card_tags, semantic_version

if TYPE_CHECKING:  # pragma: no cover
    from ..card import ModelCard
    from .mlflow import MlflowRegistry

__all__ = ["save"]

_MODEL_FILES = {"skops": "model.skops", "joblib": "model.pkl"}
_REQUIREMENTS = ("scikit-learn", "numpy", "scipy")


def save(
    registry: MlflowRegistry,
    model: Any,
    *,
    metrics: Mapping[str, float] | None,
    dataset: Any,
    version: str | None,
    bump: str,
    gate_report: GateReport | Mapping[str, Any] | None,
    format: str | None,
    trusted_types: list[str] | None,
    notes: str,
) -> ModelCard:
    """Save ``model`` into ``registry`` as a new version; see ``MlflowRegistry.save``."""
    if model is None:
        raise ArgumentTypeError("save() got model=None; pass a fitted estimator.")
    fmt = artefacts.check_format(format or registry.format)
    if fmt == "joblib" and not registry.allow_pickle:
        raise UntrustedTypeError(
            "format='joblib' saves a pickle, which runs code when loaded; open the MlflowRegistry with "
            "allow_pickle=True to opt in, or save in the default skops format."
        )
    if bump not in BUMPS:
        raise InvalidArgumentError(f"bump must be 'major', 'minor' or 'patch', got {bump!r}.")
    if not isinstance(notes, str):
        raise ArgumentTypeError(f"notes must be a string, got {type(notes).__name__}.")
    requested = normalise_version(version) if version is not None else None
    gate_report = require_pass(gate_report)  # GateRejected before anything is written
    if metrics is None and gate_report is not None:
        metrics = {r.metric: r.value for r in gate_report.rows}
    metrics = validate_scores(metrics or {}, "metrics")
    described = describe_dataset(dataset)

    existing = registry.versions()
    if requested is not None and requested in existing:
        raise VersionExistsError(
            f"v{requested} already exists in MLflow model {registry.name!r}; nothing was written. "
            f"Pick another version or omit version= to bump from {existing[-1]}."
        )
    new = requested or (bump_version(existing[-1], bump) if existing else "1.0.0")

    with tempfile.TemporaryDirectory(prefix="persistlib-mlflow-") as tmp:
        folder = Path(tmp) / "model"
        reviewed = _write_model(registry, model, folder, fmt, trusted_types)
        digest, size = sha256_file(folder / _MODEL_FILES[fmt])
        card = new_card(
            model,
            version=new,
            artifact=_MODEL_FILES[fmt],
            sha256=digest,
            size=size,
            format=fmt,
            dataset=described,
            metrics=metrics,
            gate=gate_report,
            trusted_types=reviewed,
            notes=notes,
        )
        card_bytes = card.to_json().encode("utf-8")
        (folder / CARD_FILE).write_bytes(card_bytes)
        run_id, model_id, source = _log_run(registry, card, described, folder)
    _register(registry, card, hashlib.sha256(card_bytes).hexdigest(), run_id, model_id, source)
    return card


def _write_model(
    registry: MlflowRegistry, model: Any, folder: Path, fmt: str, trusted_types: list[str] | None
) -> list[str] | None:
    """Write the MLflow model folder; return the reviewed skops types (``None`` for a pickle)."""
    versions = environment_versions()
    needs = _REQUIREMENTS + (("skops",) if fmt == "skops" else ())
    pip = [f"{p}=={versions[p]}" for p in needs if p in versions]
    reviewed = None
    if fmt == "skops":
        import skops.io as sio

        reviewed = artefacts.check_reviewed(sio.get_untrusted_types(data=sio.dumps(model)), trusted_types)
    with registry._errors(f"write the MLflow model folder for {type(model).__name__}"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow warns about pickles; the opt-in was explicit
        registry._mlflow.sklearn.save_model(
            model,
            str(folder),
            serialization_format="skops" if fmt == "skops" else "pickle",
            skops_trusted_types=reviewed,
            pip_requirements=pip,
        )
    return reviewed


def _log_run(
    registry: MlflowRegistry, card: ModelCard, described: tuple[str | None, dict | None], folder: Path
) -> tuple[str, str, str]:
    """One finished run holding the metrics, params, data set and model folder: ``(run id, model id, source)``."""
    entities = registry._mlflow.entities
    client = registry._client
    with registry._errors(f"log v{card.version} of {registry.name}"):
        experiment = client.get_experiment_by_name(registry.name)
        if experiment is not None:
            experiment_id = experiment.experiment_id
        else:
            experiment_id = client.create_experiment(registry.name, artifact_location=registry.artifact_location)
        run = client.create_run(experiment_id, run_name=f"v{card.version}", tags={TAG + "version": card.version})
        run_id = run.info.run_id
        try:
            now = int(time.time() * 1000)
            client.log_batch(
                run_id,
                metrics=[entities.Metric(k, v, now, 0) for k, v in card.metrics.items()],
                params=[entities.Param(k, clip(str(v), 500)) for k, v in card.hyperparams.items()],
            )
            name, fp = described
            if fp is not None:
                data = entities.Dataset(
                    name=clip(name or "training data", 200),
                    digest=fp["sha256"][:16],
                    source_type="persistlib",
                    source=json.dumps({"sha256": fp["sha256"], "rows": fp["rows"], "kind": fp["kind"]}),
                )
                context = entities.InputTag("mlflow.data.context", "training")
                client.log_inputs(run_id, datasets=[entities.DatasetInput(data, tags=[context])])
            logged = client.create_logged_model(experiment_id, name="model", source_run_id=run_id)
            client.log_model_artifacts(logged.model_id, str(folder))
            client.finalize_logged_model(logged.model_id, "READY")
            client.set_terminated(run_id, "FINISHED")
        except BaseException:
            client.set_terminated(run_id, "FAILED")
            raise
    return run_id, logged.model_id, logged.artifact_location


def _register(
    registry: MlflowRegistry, card: ModelCard, card_sha256: str, run_id: str, model_id: str, source: str
) -> None:
    """Register the version with the card's tags (the commit point); undo it if a racing save took the number."""
    client = registry._client
    with registry._errors(f"register v{card.version} of {registry.name}"):
        if registry._registered_model() is None:
            try:
                client.create_registered_model(registry.name, description="Saved by persistlib.MlflowRegistry.")
            except Exception as e:  # another process created it first
                if str(getattr(e, "error_code", "")) != "RESOURCE_ALREADY_EXISTS":
                    raise
        mv = client.create_model_version(
            registry.name, source, run_id=run_id, tags=card_tags(card, card_sha256), model_id=model_id
        )
        twins = [
            m
            for m in client.search_model_versions(f"name='{registry.name}'")
            if semantic_version(m.tags) == card.version and int(m.version) < int(mv.version)
        ]
        if twins:
            client.delete_model_version(registry.name, mv.version)
    if twins:
        raise VersionExistsError(
            f"another process saved v{card.version} of {registry.name} at the same moment (MLflow version "
            f"{twins[0].version}); this save was withdrawn. Save again to get the next version."
        )
