"""Reading a version's files back from MLflow, verified, for :class:`~persistlib.backends.mlflow.MlflowRegistry`.

MLflow hands back whatever its artifact store holds; it checks no hash. So
every read here is downloaded into a private temporary folder (never the
working folder) and checked against what MLflow's *database* recorded when
the version was registered:

* the card file against the ``persistlib.card_sha256`` tag;
* the model file against the card's size and sha256, and only those very
  bytes are returned (no second read between the check and the use).

Someone who can change the artifact store (an S3 bucket, a shared folder)
but not the database is caught; someone who can change both is not, exactly
as a folder registry trusts whoever can rewrite its cards.
"""

from __future__ import annotations

import hashlib
import hmac
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import artefacts
from .._display import clip
from .._files import read_regular
from ..card import ModelCard
from ..errors import IntegrityError
from ._mlflow_store import CARD_FILE, TAG, semantic_version

if TYPE_CHECKING:  # pragma: no cover
    from .mlflow import MlflowRegistry

__all__ = ["verified_card", "verified_bytes", "download"]

_MAX_CARD_BYTES = 1 << 20  # a card is a few kilobytes


def verified_card(registry: MlflowRegistry, mv: Any, cache: dict[tuple[str, str], bytes]) -> ModelCard:
    """The card of MLflow model version ``mv``, checked against its tags (verified bytes are cached per hash)."""
    expected = str(mv.tags.get(TAG + "card_sha256", ""))
    label = f"{registry.name} version {mv.version}"
    raw = cache.get((str(mv.version), expected))
    if raw is None:
        with tempfile.TemporaryDirectory(prefix="persistlib-mlflow-") as tmp:
            path = download(registry, mv, CARD_FILE, Path(tmp))
            raw = read_regular(path, max_bytes=_MAX_CARD_BYTES, what=f"the card of {label}")
        actual = hashlib.sha256(raw).hexdigest()
        if not hmac.compare_digest(actual.encode(), expected.encode()):
            raise IntegrityError(
                f"the card of {label} does not match the sha256 MLflow's database records for it "
                f"({actual[:12]}… ≠ {expected[:12] or 'none'}…): the artifact store was changed. "
                "Restore the original files, or load another version."
            )
        cache[(str(mv.version), expected)] = raw
    card = ModelCard.from_json(raw, source=f"the card of {label}")
    tagged = (semantic_version(mv.tags), mv.tags.get(TAG + "sha256"))
    if (card.version, card.artifact_sha256) != tagged:
        raise IntegrityError(
            f"the card of {label} (v{card.version}, sha256 {card.artifact_sha256[:12]}…) disagrees with its tags "
            f"(v{tagged[0]}, sha256 {str(tagged[1])[:12]}…): the tags were edited. Restore them, or load another "
            "version."
        )
    return card


def verified_bytes(registry: MlflowRegistry, mv: Any, card: ModelCard) -> bytes:
    """The model file's bytes, downloaded and returned only if they match the card's size and sha256."""
    name = card.artifact
    if not isinstance(name, str) or Path(name).name != name or name.startswith("."):
        raise IntegrityError(
            f"v{card.version}'s card names artefact {clip(repr(name), 60)}, which is not a plain file name "
            "in the MLflow model folder; the card was tampered with."
        )
    with tempfile.TemporaryDirectory(prefix="persistlib-mlflow-") as tmp:
        download(registry, mv, name, Path(tmp))
        return artefacts.read_verified(
            Path(tmp), name, sha256=card.artifact_sha256, size=card.artifact_bytes, version=card.version
        )


def download(registry: MlflowRegistry, mv: Any, name: str, folder: Path) -> Path:
    """Download file ``name`` of model version ``mv`` into ``folder``; return its local path."""
    with registry._errors(f"download {name} of {registry.name} version {mv.version}"):
        uri = registry._client.get_model_version_download_uri(registry.name, mv.version)
        local = registry._mlflow.artifacts.download_artifacts(
            artifact_uri=f"{uri.rstrip('/')}/{name}", dst_path=str(folder), tracking_uri=registry.tracking_uri
        )
    return Path(local)
