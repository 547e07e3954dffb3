"""The immutable pieces a :class:`~persistlib.serving.ModelServer` is made of, and what it answers.

A server's whole state is one :class:`_State` (the bundle serving now, the one
before it, an A/B router and its arms), replaced in a single assignment by a
swap. A :class:`_Bundle` holds everything one request needs, the model, its
card and its feature names, and never changes. Because a request reads the
state once and then uses only that bundle, it can never see half a swap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .._model_lock import one_model_call
from ..errors import InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    from ..card import ModelCard
    from .ab import ABRouter

__all__ = ["Prediction", "ServerSnapshot"]


@dataclass(frozen=True)
class Prediction:
    """One answer from :meth:`ModelServer.predict`.

    ``labels`` has one entry per row; ``probabilities`` one list per row (or
    ``None`` if the model has no ``predict_proba``); ``version`` names the model
    that answered; ``request_id`` identifies the request in the audit log;
    ``arm`` is the A/B arm when a router chose the version.
    """

    labels: list
    probabilities: list[list[float]] | None
    version: str
    request_id: str
    arm: str | None = None
    latency_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON body ``POST /predict`` returns."""
        return {
            "labels": self.labels,
            "probabilities": self.probabilities,
            "version": self.version,
            "request_id": self.request_id,
            "arm": self.arm,
        }


@dataclass(frozen=True)
class ServerSnapshot:
    """What a :class:`ModelServer` serves, read in one go (see :meth:`ModelServer.snapshot`).

    All fields come from the same moment, so a concurrent swap cannot mix the
    version of one model with the sha256 of another.
    """

    version: str
    previous_version: str | None
    artifact_sha256: str
    trained_at: str
    algorithm: str
    features: tuple[str, ...]
    ab: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field, in order (``features`` as a list)."""
        return {**asdict(self), "features": list(self.features)}


@dataclass(frozen=True)
class _Bundle:
    """Everything one request needs. Immutable: a swap replaces it, never edits it."""

    model: Any
    card: ModelCard
    features: tuple[str, ...]
    classes: tuple | None

    @property
    def version(self) -> str:
        return self.card.version


@dataclass(frozen=True)
class _State:
    """What the server serves right now. Replaced as a whole, in one assignment."""

    current: _Bundle
    previous: _Bundle | None = None
    router: ABRouter | None = None
    arms: Mapping[str, _Bundle] = field(default_factory=dict)


def _snapshot(state: _State) -> ServerSnapshot:
    card = state.current.card
    return ServerSnapshot(
        version=card.version,
        previous_version=state.previous.version if state.previous else None,
        artifact_sha256=card.artifact_sha256,
        trained_at=str(card.trained_at),
        algorithm=str(card.algorithm),
        features=state.current.features,
        ab=state.router.weights if state.router is not None else None,
    )


def _infer(bundle: _Bundle, X: Any) -> tuple[list, list[list[float]] | None]:
    """Labels and probabilities with ONE pass over the model where possible.

    Whatever the model raises on these rows becomes an :class:`InvalidInputError`
    with its message (HTTP 422): a request must never crash the server.
    """
    model = bundle.model
    try:
        with one_model_call():  # scikit-learn's ensembles are not safe to call from two threads at once
            if bundle.classes is not None and hasattr(model, "predict_proba"):
                proba = model.predict_proba(X)
                labels = np.asarray(bundle.classes)[proba.argmax(axis=1)]
                return labels.tolist(), proba.tolist()
            return np.asarray(model.predict(X)).tolist(), None
    except Exception as e:  # the model's own checks (sklearn raises ValueError, TypeError, ...)
        raise InvalidInputError(f"v{bundle.version} could not predict these rows: {type(e).__name__}: {e}") from None
