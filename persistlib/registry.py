"""A model registry that is just a folder you can open and read.

Every version is a *versioned pair*::

    model_v1.2.0.pkl          the model (joblib, compress=3 by default)
    model_v1.2.0_meta.json    its card: metrics, data hash, artefact hash, versions

plus ``aliases.json`` and ``history.jsonl`` (which version each alias such as
``production`` points to, and every move it made: :mod:`persistlib.aliases`).

Two safety rules:

* **Crash-safe.** Files are written to a temporary name, flushed to disk
  (``fsync``) and renamed into place. The card is written last: a version
  exists only once its card does, so a crash mid-save leaves nothing visible.
* **Verified before unpickling.** :meth:`Registry.load` checks the artefact's
  sha256 (and, with a signing key, the card's HMAC signature) *before* any
  byte is unpickled. Unpickling runs code; only verified bytes get that far.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from . import artefacts, signing
from ._checks import check_number
from ._display import clip
from ._files import atomic_write, file_lock, read_regular, sha256_file, storage_errors, temp_path
from .aliases import ALIASES_FILE, check_alias, read_history, read_stacks, record_move
from .card import ModelCard, card_file_name, describe_dataset, new_card
from .errors import (
    ArgumentTypeError,
    CardError,
    IntegrityError,
    InvalidArgumentError,
    PersistError,
    RegistryWarning,
    RollbackError,
    UntrustedTypeError,
    VersionExistsError,
    VersionNotFoundError,
    warn_caller,
)
from .gate import GateReport, require_pass, validate_scores
from .versions import BUMPS, bump_version, is_version, normalise_version, parse_version

__all__ = ["Registry"]


_CARD_RE = re.compile(r"model_v(\d+\.\d+\.\d+)_meta\.json")
_MAX_CARD_BYTES = 1 << 20  # a card is a few kilobytes; anything near a megabyte is not a card


# --------------------------------------------------------------------------- registry


class Registry:
    """Versioned, verified model storage in a plain folder.

    Parameters
    ----------
    root : str or os.PathLike
        The folder. It is created if missing.
    format : {"joblib", "skops"}, default="joblib"
        Default artefact format for :meth:`save`. ``"skops"`` is the secure
        format: loading it runs no pickle and only rebuilds reviewed types.
    signing_key : str or bytes, optional
        Sign every card with HMAC-SHA256, and refuse any card that is unsigned
        or wrongly signed. Defaults to the ``PERSISTLIB_SIGNING_KEY``
        environment variable, if set.
    lock_timeout : float, default=60
        Seconds to wait for another process's save to finish.

    Examples
    --------
    >>> reg = Registry("workspace/registry")                  # doctest: +SKIP
    >>> card = reg.save(model, metrics=evaluate(model, X, y))  # doctest: +SKIP
    >>> reg.promote(card.version)                              # doctest: +SKIP
    >>> model, card = reg.load("production")                   # doctest: +SKIP
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        format: str = "joblib",
        signing_key: str | bytes | None = None,
        lock_timeout: float = 60.0,
    ):
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise InvalidArgumentError(f"registry root {str(self.root)!r} is a file; pass a folder path.")
        with storage_errors(f"create the registry folder {self.root}"):
            self.root.mkdir(parents=True, exist_ok=True)
        self.format = artefacts.check_format(format)
        self._key = signing.key_for(self.root, signing_key)
        self.lock_timeout = check_number(lock_timeout, "lock_timeout", low=0)
        self._warned: set[str] = set()

    def __repr__(self) -> str:
        return f"Registry({str(self.root)!r}, format={self.format!r}{', signed' if self._key else ''})"

    @property
    def signed(self) -> bool:
        """Whether this registry signs and verifies cards."""
        return self._key is not None

    # ------------------------------------------------------------------ reading

    def versions(self) -> list[str]:
        """All committed versions, in ascending semantic-version order.

        A file that looks like a card but whose name is not a valid version
        (``model_v01.0.0_meta.json``, a name with a newline) is skipped with a
        :class:`~persistlib.errors.RegistryWarning`: it never breaks loading
        the other versions, and never changes the next version number.
        """
        found = []
        with storage_errors(f"list the registry folder {self.root}"):
            names = [p.name for p in self.root.iterdir()]
        for name in names:
            m = _CARD_RE.fullmatch(name)
            if m and is_version(m[1]) and normalise_version(m[1]) == m[1]:
                found.append(m[1])
            elif name.startswith("model_v") and "_meta.json" in name:
                self._warn_stray(name)
        return sorted(found, key=parse_version)

    def aliases(self) -> dict[str, str]:
        """Each alias and the version it points to now."""
        return {a: stack[-1] for a, stack in read_stacks(self.root).items() if stack}

    def resolve(self, ref: str) -> str:
        """Turn a version (``"1.2.0"``), an alias (``"production"``) or ``"latest"`` into a version."""
        if not isinstance(ref, str) or not ref.strip():
            raise ArgumentTypeError(f"ref must be a version like '1.2.0' or an alias like 'production', got {ref!r}.")
        versions = self.versions()
        if is_version(ref):
            v = normalise_version(ref)
            if v in versions:
                return v
        elif ref == "latest" and versions:
            return versions[-1]
        elif ref in (aliases := self.aliases()):
            return aliases[ref]
        try:
            known = self.aliases() or "none yet"
        except PersistError:
            known = f"unreadable ({ALIASES_FILE} is damaged)"
        raise VersionNotFoundError(
            f"no version or alias {clip(repr(ref), 80)} in {self.root}. Versions: {versions or 'none yet'}; "
            f"aliases: {known}. Save a model first, or promote one to the alias."
        )

    def card(self, ref: str = "production") -> ModelCard:
        """Read and check a version's card, without loading the model."""
        version = self.resolve(ref)
        path = self.root / card_file_name(version)
        try:
            text = read_regular(path, max_bytes=_MAX_CARD_BYTES, what=f"card {path.name}")
        except FileNotFoundError:
            raise VersionNotFoundError(f"v{version}'s card {path.name} vanished; was it deleted?") from None
        if len(text) > _MAX_CARD_BYTES:
            raise CardError(
                f"card {path.name} is larger than {_MAX_CARD_BYTES:,} bytes, so it is not a card; restore the original."
            )
        card = ModelCard.from_json(text, source=f"card {path.name}")
        if card.version != version:
            raise CardError(
                f"card {path.name} says version {card.version!r}; the file was renamed or "
                "edited. Restore the original card."
            )
        expected = f"model_v{version}{artefacts.FORMATS.get(card.format, '')}"
        if card.artifact != expected:
            raise IntegrityError(
                f"card {path.name} names artefact {clip(repr(card.artifact), 60)} in format {card.format!r}, but "
                f"v{version}'s {card.format} artefact is {expected!r}. The card was edited; restore the original."
            )
        signing.verify(card, self._key, path.name)
        return card

    def cards(self) -> list[ModelCard]:
        """The card of every version, oldest first."""
        return [self.card(v) for v in self.versions()]

    def load(
        self, ref: str = "production", *, allow_version_mismatch: bool = False, allow_pickle: bool | None = None
    ) -> tuple[Any, ModelCard]:
        """Load a model and its card, verified.

        In order, before any byte is unpickled: the card is parsed (and its
        signature checked, if the registry has a key); the artefact's sha256
        must match the card; the recorded package versions must be compatible
        with the running ones.

        Parameters
        ----------
        ref : str, default="production"
            A version or an alias.
        allow_version_mismatch : bool, default=False
            Load even if scikit-learn's major/minor or numpy's major version
            differs from the recorded one (with a warning). Predictions may be
            wrong; prefer installing the recorded versions.
        allow_pickle : bool, optional
            Whether pickle-based (``joblib``) artefacts may be loaded. Defaults to
            True, except in a registry opened with ``format="skops"``: there only
            skops files load unless you pass ``allow_pickle=True``, so a pickle
            slipped into the folder is never unpickled.

        Raises
        ------
        VersionNotFoundError, CardError, IntegrityError, CompatibilityError, UntrustedTypeError, ArtefactLoadError
        """
        card = self.card(ref)
        if allow_pickle is None:
            allow_pickle = self.format != "skops"
        if card.format != "skops" and not allow_pickle:
            raise UntrustedTypeError(
                f"v{card.version} is a pickle-based ({card.format}) artefact, and this registry loads only "
                "skops files (format='skops'). Re-save the model with format='skops', or pass "
                "allow_pickle=True if you trust whoever wrote this folder."
            )
        data = self._verified_bytes(card)
        card.check_environment(allow_version_mismatch=allow_version_mismatch)
        model = artefacts.loads(
            data, format=card.format, trusted_types=card.trusted_types, label=f"v{card.version}: {card.artifact}"
        )
        return model, card

    def history(self) -> list[dict[str, Any]]:
        """Every alias move, oldest first: ``{"at", "alias", "action", "from", "to"}``."""
        return read_history(self.root)

    # ------------------------------------------------------------------ writing

    def save(
        self,
        model: Any,
        *,
        metrics: Mapping[str, float] | None = None,
        dataset: Any = None,
        version: str | None = None,
        bump: str = "minor",
        gate_report: GateReport | Mapping[str, Any] | None = None,
        compress: int | tuple[str, int] = 3,
        format: str | None = None,
        trusted_types: list[str] | None = None,
        notes: str = "",
    ) -> ModelCard:
        """Save a model as a new version and return its card.

        Parameters
        ----------
        model : fitted estimator
        metrics : dict, optional
            Scores to record (e.g. from :func:`persistlib.evaluate`). Taken from
            ``gate_report`` when omitted.
        dataset : DataFrame, ndarray or path, optional
            The training data; its fingerprint (sha256, rows) goes in the card.
        version : str, optional
            Explicit ``"MAJOR.MINOR.PATCH"``. By default the first save is
            ``1.0.0`` and later saves bump the highest version by ``bump``.
        bump : {"major", "minor", "patch"}, default="minor"
        gate_report : GateReport, optional
            If given and failed, :class:`GateRejected` is raised and nothing is
            written. A passed report is stored in the card.
        compress : int 0-9 or (method, level), default=3
            joblib compression, e.g. ``3`` or ``("lz4", 3)``; for skops, a
            zip deflate level (0 = stored).
        format : {"joblib", "skops"}, optional
            Defaults to the registry's format.
        trusted_types : list of str, optional
            skops only: the types you reviewed. Saving fails if the model holds
            any other type. By default every type in the file is recorded as
            reviewed by you, the saver.
        notes : str
            Free text for the card.

        Raises
        ------
        GateRejected, VersionExistsError, InvalidVersionError, ValueError, TypeError
        """
        if model is None:
            raise ArgumentTypeError("save() got model=None; pass a fitted estimator.")
        fmt = artefacts.check_format(format or self.format)
        if bump not in BUMPS:
            raise InvalidArgumentError(f"bump must be 'major', 'minor' or 'patch', got {bump!r}.")
        requested = normalise_version(version) if version is not None else None
        artefacts.check_compress(compress)
        gate_report = require_pass(gate_report)  # GateRejected before anything is written
        if metrics is None and gate_report is not None:
            metrics = {r.metric: r.value for r in gate_report.rows}
        metrics = validate_scores(metrics or {}, "metrics")
        dataset = describe_dataset(dataset)  # fingerprint the data before taking the lock

        # 1. Write the artefact under a temporary name, outside the lock.
        tmp = temp_path(self.root / f"model{artefacts.FORMATS[fmt]}")
        try:
            with storage_errors(f"save a new version in {self.root}"):
                reviewed = artefacts.dump(model, tmp, format=fmt, compress=compress, trusted_types=trusted_types)
                digest, size = sha256_file(tmp)
                # 2. Under the lock: pick the version, rename into place, commit the card.
                with self._lock():
                    existing = self.versions()
                    if requested is not None:
                        new = requested
                        if new in existing:
                            raise VersionExistsError(
                                f"v{new} already exists in {self.root}; nothing was overwritten. "
                                f"Pick another version or omit version= to bump from {existing[-1]}."
                            )
                    else:
                        new = bump_version(existing[-1], bump) if existing else "1.0.0"
                    artefact = self.root / f"model_v{new}{artefacts.FORMATS[fmt]}"
                    card = new_card(
                        model,
                        version=new,
                        artifact=artefact.name,
                        sha256=digest,
                        size=size,
                        format=fmt,
                        dataset=dataset,
                        metrics=metrics,
                        gate=gate_report,
                        trusted_types=reviewed,
                        notes=notes,
                    )
                    if self._key:
                        signing.record_required(self.root)  # from now on, opening it without the key is refused
                        card.signature = signing.sign(card, self._key)
                    os.replace(tmp, artefact)
                    try:
                        atomic_write(self.root / card_file_name(new), card.to_json().encode("utf-8"))  # commit point
                    except BaseException:
                        artefact.unlink(missing_ok=True)
                        raise
                return card
        finally:
            tmp.unlink(missing_ok=True)

    def promote(self, ref: str, alias: str = "production") -> str:
        """Point ``alias`` at a version (recorded in the history). Returns the version."""
        check_alias(alias)
        with self._lock():
            version = self.resolve(ref)
            self._verified_bytes(self.card(version))  # an alias never points at a version that cannot load
            stacks = read_stacks(self.root)
            stack = stacks.setdefault(alias, [])
            previous = stack[-1] if stack else None
            if previous == version:
                return version
            stack.append(version)
            record_move(self.root, stacks, alias, "promote", previous, version)
        return version

    def rollback(self, alias: str = "production") -> str:
        """Return ``alias`` to the version it held before its last promotion. Returns that version."""
        check_alias(alias)
        with self._lock():
            stacks = read_stacks(self.root)
            stack = stacks.get(alias, [])
            if len(stack) < 2:
                raise RollbackError(
                    f"alias {alias!r} has no earlier version to roll back to "
                    f"(it has held {stack or 'nothing'}). Promote a version explicitly instead."
                )
            try:  # an alias never points at a version that cannot load
                self._verified_bytes(self.card(stack[-2]))
            except PersistError as e:
                raise RollbackError(
                    f"cannot roll {alias!r} back to v{stack[-2]}: {e} Promote a version that loads instead."
                ) from None
            bad = stack.pop()
            record_move(self.root, stacks, alias, "rollback", bad, stack[-1])
        return stack[-1]

    # ------------------------------------------------------------------ internals

    def _verified_bytes(self, card: ModelCard) -> bytes:
        """The artefact's bytes, read only if they are a regular file of the card's size and sha256."""
        return artefacts.read_verified(
            self.root, card.artifact, sha256=card.artifact_sha256, size=card.artifact_bytes, version=card.version
        )

    def _warn_stray(self, name: str) -> None:
        if name not in self._warned:
            self._warned.add(name)
            message = f"skipping {name!r} in {self.root}: it looks like a card, but its name is not "
            warn_caller(message + "model_v<MAJOR>.<MINOR>.<PATCH>_meta.json. Rename or remove it.", RegistryWarning)

    def _lock(self) -> AbstractContextManager[None]:
        """The registry's file lock: one saver or alias mover at a time, across processes."""
        return file_lock(self.root / ".registry.lock", timeout=self.lock_timeout, what=f"the registry {self.root}")
