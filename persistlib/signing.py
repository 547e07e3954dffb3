"""Signed cards: HMAC-SHA256 over the card, so an edited card is refused.

A sha256 in the card catches an artefact that changed. It cannot catch someone
who changes the artefact *and* rewrites the sha256 in the card to match. A
signature can: it is computed with a secret key, over the whole card, and
without the key nobody can compute a valid one for edited content.

The key comes from ``Registry(signing_key=...)`` or, when that is omitted, from
the ``PERSISTLIB_SIGNING_KEY`` environment variable.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from .card import ModelCard
from .errors import ArgumentTypeError, IntegrityError, InvalidArgumentError

__all__ = ["SIGNING_KEY_ENV", "signing_key", "sign", "verify"]

#: Environment variable read for a signing key when ``Registry(signing_key=None)``.
SIGNING_KEY_ENV = "PERSISTLIB_SIGNING_KEY"


def signing_key(value: str | bytes | None) -> bytes | None:
    """The key to sign with: ``value``, else the environment variable, else ``None`` (unsigned)."""
    key = value if value is not None else os.environ.get(SIGNING_KEY_ENV) or None
    if key is not None and not isinstance(key, str | bytes):
        raise ArgumentTypeError(f"signing_key must be str or bytes, got {type(key).__name__}.")
    if key is not None and len(key) == 0:
        raise InvalidArgumentError("signing_key is empty; pass a long random secret, or None to disable signing.")
    return key.encode() if isinstance(key, str) else key


def sign(card: ModelCard, key: bytes) -> str:
    """The card's signature: HMAC-SHA256 of its canonical JSON (without the signature), in hex."""
    return hmac.new(key, card.signing_payload(), hashlib.sha256).hexdigest()


def verify(card: ModelCard, key: bytes | None, name: str) -> None:
    """Refuse ``card`` (named ``name`` in messages) unless it is signed with ``key``; no-op without a key."""
    if key is None:
        return
    if not card.signature:
        raise IntegrityError(
            f"card {name} is unsigned, but this registry requires signed cards. "
            "Re-save the model with the signing key, or open the registry without one."
        )
    if not hmac.compare_digest(sign(card, key).encode(), str(card.signature).encode()):
        raise IntegrityError(
            f"card {name} has a wrong signature: it was edited, or signed with "
            "another key. Do not load it; restore the original card."
        )
