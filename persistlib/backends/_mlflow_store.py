"""The MLflow side of :class:`~persistlib.backends.mlflow.MlflowRegistry`: reaching a store, and what it keeps there.

* **Importing MLflow** happens on first use only (:func:`import_mlflow`); a
  missing or broken install is one :class:`BackendUnavailableError` that names
  the ``pip install``.
* **Where things go.** A tracking URI names the store of runs and registered
  models (``sqlite:///...``, ``http://127.0.0.1:5000``, ``postgresql://...``);
  the artefacts go to an *artifact location*. MLflow's default for a database
  store is ``./mlruns`` in whatever folder Python runs in, so
  :func:`check_tracking_uri` always picks (or demands) an explicit one.
* **The card as tags.** A model version carries ``persistlib.*`` tags: the
  semantic version, the artefact's sha256 and size, and the sha256 of the card
  file stored beside the model. The tags live in the registry's database, the
  bytes in the artifact store: changing one without the other is caught.
* **The alias history.** MLflow keeps only where an alias points *now*. Each
  move is recorded as a registered-model tag ``persistlib.history.<time>``, which
  :func:`read_history` reads back in order and :func:`replay` turns into the
  stacks that make a rollback one step.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .._display import clip
from ..card import ModelCard, utc_now
from ..errors import (
    ArgumentTypeError,
    BackendError,
    BackendUnavailableError,
    InvalidArgumentError,
    RegistryFileError,
    VersionNotFoundError,
)
from ..versions import is_version, normalise_version

__all__ = [
    "MLFLOW_VERSION",
    "INSTALL_HINT",
    "CARD_FILE",
    "TAG",
    "import_mlflow",
    "check_tracking_uri",
    "mlflow_errors",
    "card_tags",
    "history_tag",
    "read_history",
    "replay",
]

#: The MLflow release the course pins (requirements.txt); a test keeps the two equal.
MLFLOW_VERSION = "3.17.2"
INSTALL_HINT = f"pip install mlflow=={MLFLOW_VERSION}"
#: The card's file name inside the MLflow model folder, beside ``MLmodel`` and ``model.skops``.
CARD_FILE = "persistlib_card.json"
#: The prefix of every tag persistlib writes (model-version tags and registered-model tags).
TAG = "persistlib."
_HISTORY = TAG + "history."
_DATABASES = ("postgresql", "mysql", "mssql", "oracle")


def import_mlflow() -> Any:
    """The ``mlflow`` module with the parts MlflowRegistry uses imported, or a clear error.

    Raises
    ------
    BackendUnavailableError
        If MLflow is not installed, or importing it fails in any way (a broken install).
    """
    try:
        import skops.io  # noqa: F401  before MLflow: skops scans every loaded module at import (~1 s CPU more after MLflow)
    except ImportError:
        pass  # a skops save or load names its own install
    try:
        import mlflow
        import mlflow.artifacts
        import mlflow.entities
        import mlflow.sklearn
    except Exception as e:  # ImportError, or anything a half-installed package raises on import
        missing = isinstance(e, ModuleNotFoundError) and (e.name or "").split(".")[0] == "mlflow"
        why = "is not installed" if missing else f"failed to import ({type(e).__name__}: {clip(str(e), 120)})"
        raise BackendUnavailableError(
            f"MlflowRegistry needs MLflow, which {why}. Install it with `{INSTALL_HINT}` "
            "(or use persistlib.Registry, which needs no server)."
        ) from None
    return mlflow


def check_tracking_uri(uri: Any, artifact_location: Any = None) -> tuple[str, str | None]:
    """``(tracking URI, artifact location)`` for a store, with nothing left to default to ``./mlruns``.

    * ``sqlite:///<path>``: the path is made absolute (a later ``os.chdir`` does
      not move the store), and artefacts default to ``<its folder>/artifacts``.
    * ``http(s)://...``: a tracking server; it stores the artefacts
      (``--artifacts-destination``), so the location stays ``None``.
    * ``postgresql://``, ``mysql://``, ...: a team's database; pass
      ``artifact_location`` (e.g. ``s3://bucket/models``).

    Raises
    ------
    ArgumentTypeError, InvalidArgumentError
        For anything else, saying which URI to use instead.
    """
    if not isinstance(uri, str):
        raise ArgumentTypeError(
            f"tracking_uri must be a string such as 'sqlite:////abs/path/mlflow.db' or 'http://127.0.0.1:5000', "
            f"got {type(uri).__name__}."
        )
    if artifact_location is not None and (not isinstance(artifact_location, str) or not artifact_location.strip()):
        raise InvalidArgumentError(
            f"artifact_location must be a folder path or a URI such as 's3://bucket/models', got {artifact_location!r}."
        )
    scheme = uri.partition(":")[0].split("+")[0].lower()
    if uri.startswith("sqlite:///") and len(uri) > len("sqlite:///") and ":memory:" not in uri:
        db = Path(uri[len("sqlite:///") :]).expanduser().absolute()
        if db.is_dir():
            raise InvalidArgumentError(
                f"tracking_uri {uri!r} names a folder; name a file, e.g. sqlite:///{db}/mlflow.db."
            )
        location = artifact_location or str(db.parent / "artifacts")
        return f"sqlite:///{db}", location
    if scheme in ("http", "https") and "://" in uri and len(uri.split("://", 1)[1]) > 0:
        return uri.rstrip("/"), artifact_location
    if scheme in _DATABASES and "://" in uri:
        if artifact_location is None:
            raise InvalidArgumentError(
                f"a {scheme} tracking store needs artifact_location=... (e.g. 's3://bucket/models'); without it "
                "MLflow would write the models into ./mlruns in the current folder."
            )
        return uri, artifact_location
    raise InvalidArgumentError(
        f"tracking_uri {clip(repr(uri), 80)} is not a store MlflowRegistry uses. Pass 'sqlite:////abs/path/mlflow.db' "
        "(one machine), 'http://host:port' (a tracking server), or 'postgresql://...' with artifact_location=... "
        "(MLflow's plain-folder store is deprecated)."
    )


@contextmanager
def mlflow_errors(action: str, where: str) -> Iterator[None]:
    """Turn MLflow's exceptions (and a server that cannot be reached) into persistlib errors.

    A missing model or version becomes :class:`VersionNotFoundError`, a value
    MLflow refuses an :class:`InvalidArgumentError`, anything else a
    :class:`BackendError` naming ``action`` and the store ``where``.
    """
    try:
        yield
    except Exception as e:
        if isinstance(e, InvalidArgumentError | VersionNotFoundError | BackendError) or not _from_mlflow_or_net(e):
            raise
        code = str(getattr(e, "error_code", ""))
        message = clip(str(getattr(e, "message", None) or e).strip().replace("\n", " "), 240)
        if code == "RESOURCE_DOES_NOT_EXIST":
            raise VersionNotFoundError(f"MLflow could not {action}: {message}") from None
        if code == "INVALID_PARAMETER_VALUE":
            raise InvalidArgumentError(f"MLflow refused to {action}: {message}") from None
        raise BackendError(
            f"MLflow could not {action} at {where}: {message}. Check that the tracking server is running and "
            "reachable (or the database file is there), then try again."
        ) from e


def _from_mlflow_or_net(e: BaseException) -> bool:
    module = type(e).__module__ or ""
    return module.startswith(("mlflow", "requests", "urllib3", "sqlalchemy")) or isinstance(e, ConnectionError)


# --------------------------------------------------------------------------- the card as tags


def card_tags(card: ModelCard, card_sha256: str) -> dict[str, str]:
    """The model-version tags that carry a card: what a person reads in MLflow's UI, and what loading checks."""
    tags = {
        TAG + "version": card.version,
        TAG + "artifact": card.artifact,
        TAG + "format": card.format,
        TAG + "sha256": card.artifact_sha256,
        TAG + "bytes": str(card.artifact_bytes),
        TAG + "card_sha256": card_sha256,
        TAG + "algorithm": card.algorithm,
        TAG + "trained_at": card.trained_at,
        TAG + "metrics": json.dumps(card.metrics, sort_keys=True),
    }
    if card.dataset_sha256:
        tags[TAG + "dataset_sha256"] = card.dataset_sha256
    if card.gate is not None:
        tags[TAG + "gate"] = "PASS" if card.gate.get("passed") else "FAIL"
    return tags


def semantic_version(tags: Mapping[str, str]) -> str | None:
    """The persistlib version a model version's tags name, or ``None`` if it was not saved by persistlib."""
    v = tags.get(TAG + "version")
    return v if isinstance(v, str) and is_version(v) and normalise_version(v) == v else None


# --------------------------------------------------------------------------- the alias history


def history_tag(alias: str, action: str, old: str | None, new: str) -> tuple[str, str]:
    """``(key, value)`` of the registered-model tag that records one alias move.

    The key sorts by time (nanoseconds, zero-padded) and ends in a random part,
    so two processes moving aliases at once never overwrite each other's entry.
    """
    entry = {"at": utc_now(), "alias": alias, "action": action, "from": old, "to": new}
    return f"{_HISTORY}{time.time_ns():020d}.{secrets.token_hex(4)}", json.dumps(entry)


def read_history(tags: Mapping[str, str], model: str) -> list[dict[str, Any]]:
    """Every alias move recorded in a registered model's tags, oldest first.

    Raises
    ------
    RegistryFileError
        Naming the first tag whose value is not a move (edited or damaged in the UI).
    """
    entries = []
    for key in sorted(k for k in tags if k.startswith(_HISTORY)):
        try:
            entry = json.loads(tags[key])
        except ValueError:
            entry = None
        if not isinstance(entry, dict) or not {"alias", "action", "to"} <= entry.keys():
            raise RegistryFileError(
                f"registered model {model!r}: history tag {key!r} is not an alias move "
                f"({clip(repr(tags[key]), 60)}). Delete that tag in MLflow; aliases and models are not affected."
            )
        entries.append(entry)
    return entries


def replay(history: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each alias -> the versions it has held, newest last, rebuilt from the moves (what ``aliases.json`` holds)."""
    stacks: dict[str, list[str]] = {}
    for move in history:
        stack = stacks.setdefault(str(move["alias"]), [])
        if move["action"] == "rollback":
            if stack:
                stack.pop()
            if not stack or stack[-1] != move["to"]:
                stack.append(str(move["to"]))
        elif not stack or stack[-1] != move["to"]:
            stack.append(str(move["to"]))
    return stacks
