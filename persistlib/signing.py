"""Signed cards: HMAC-SHA256 over the card, so an edited card is refused.

A sha256 in the card catches an artefact that changed. It cannot catch someone
who changes the artefact *and* rewrites the sha256 in the card to match. A
signature can: it is computed with a secret key, over the whole card, and
without the key nobody can compute a valid one for edited content.

The key comes from ``Registry(signing_key=...)`` or, when that is omitted, from
the ``PERSISTLIB_SIGNING_KEY`` environment variable.

A signed registry stays signed: its first signed save writes ``registry.json``
(``{"signing": "hmac-sha256"}``), and opening that folder without a key is then
refused, instead of quietly reading its cards as if nobody had signed them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path

from ._files import atomic_write, read_regular
from .card import ModelCard
from .errors import ArgumentTypeError, IntegrityError, InvalidArgumentError, RegistryFileError

__all__ = [
    "SIGNING_KEY_ENV",
    "SETTINGS_FILE",
    "SCHEME",
    "signing_key",
    "key_for",
    "sign",
    "verify",
    "required",
    "record_required",
]

#: Environment variable read for a signing key when ``Registry(signing_key=None)``.
SIGNING_KEY_ENV = "PERSISTLIB_SIGNING_KEY"
#: The registry's settings file, which records that its cards must be signed.
SETTINGS_FILE = "registry.json"
#: The signature scheme recorded there.
SCHEME = "hmac-sha256"


def signing_key(value: str | bytes | None) -> bytes | None:
    """The key to sign with: ``value``, else the environment variable, else ``None`` (unsigned)."""
    key = value if value is not None else os.environ.get(SIGNING_KEY_ENV)
    if key is not None and not isinstance(key, str | bytes):
        raise ArgumentTypeError(f"signing_key must be str or bytes, got {type(key).__name__}.")
    if key is not None and len(key) == 0:
        where = "signing_key" if value is not None else f"the environment variable {SIGNING_KEY_ENV}"
        raise InvalidArgumentError(
            f"{where} is empty; set a long random secret, or unset it to disable signing "
            "(an empty key would sign nothing)."
        )
    return key.encode() if isinstance(key, str) else key


def key_for(root: Path, value: str | bytes | None) -> bytes | None:
    """The key for the registry at ``root`` (see :func:`signing_key`), refusing to go without one it requires.

    Raises
    ------
    IntegrityError
        If ``registry.json`` says the cards must be signed and there is no key.
    """
    must_sign = required(root)  # also checks that registry.json is intact
    key = signing_key(value)
    if key is None and must_sign:
        raise IntegrityError(
            f"the registry {root} requires signed cards ({SETTINGS_FILE} says so), but no signing key was given. "
            f"Pass signing_key=..., or set {SIGNING_KEY_ENV}; a signed registry is never read unsigned."
        )
    return key


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


def required(root: Path) -> bool:
    """Whether the registry at ``root`` records that its cards must be signed.

    Raises
    ------
    RegistryFileError
        If ``registry.json`` is damaged or names a scheme this persistlib does not know.
    """
    path = Path(root) / SETTINGS_FILE
    try:
        raw = read_regular(path, max_bytes=4096, what=f"{SETTINGS_FILE} in {root}")
    except FileNotFoundError:
        return False
    try:
        settings = json.loads(raw.decode("utf-8")) if len(raw) <= 4096 else None
    except (UnicodeDecodeError, RecursionError, ValueError):
        settings = None
    if not isinstance(settings, dict) or settings.get("signing") not in (SCHEME, None):
        raise RegistryFileError(
            f"{SETTINGS_FILE} in {root} is damaged or from a newer persistlib (expected "
            f'{{"signing": "{SCHEME}"}}). Restore it; if the registry was signed, keep the file, since '
            "deleting it lets unsigned cards in."
        )
    return settings.get("signing") == SCHEME


def record_required(root: Path) -> None:
    """Record in ``registry.json`` that the registry's cards must be signed (once; later calls do nothing)."""
    if not required(root):
        atomic_write(Path(root) / SETTINGS_FILE, json.dumps({"signing": SCHEME}, indent=2).encode())
