"""A model registry that is just a folder you can open and read.

Every version is a *versioned pair*::

    model_v1.2.0.pkl          the model (joblib, compress=3 by default)
    model_v1.2.0_meta.json    its card: metrics, data hash, artefact hash, versions

plus ``aliases.json`` (which version each alias such as ``production`` points
to, with the versions it held before) and ``history.jsonl`` (every alias move,
timestamped, one JSON object per line).

Two safety rules:

* **Crash-safe.** Files are written to a temporary name, flushed to disk
  (``fsync``) and renamed into place. The card is written last: a version
  exists only once its card does, so a crash mid-save leaves nothing visible.
* **Verified before unpickling.** :meth:`Registry.load` checks the artefact's
  sha256 (and, with a signing key, the card's HMAC signature) *before* any
  byte is unpickled. Unpickling runs code; only verified bytes get that far.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import re
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

from .card import ModelCard, environment_versions, utc_now
from .errors import (
    ArgumentTypeError,
    CardError,
    GateRejected,
    IntegrityError,
    InvalidArgumentError,
    InvalidVersionError,
    LockTimeoutError,
    RollbackError,
    UntrustedTypeError,
    VersionExistsError,
    VersionNotFoundError,
)
from .gate import GateReport

__all__ = ["Registry", "parse_version", "bump_version", "FORMATS", "SIGNING_KEY_ENV"]

#: Environment variable read for a signing key when ``Registry(signing_key=None)``.
SIGNING_KEY_ENV = "PERSISTLIB_SIGNING_KEY"
#: Artefact formats and their file extensions.
FORMATS = {"joblib": ".pkl", "skops": ".skops"}

_VERSION_RE = re.compile(r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
_CARD_RE = re.compile(r"^model_v(\d+\.\d+\.\d+)_meta\.json$")
_ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_JOBLIB_METHODS = ("zlib", "gzip", "bz2", "lzma", "xz", "lz4")


# --------------------------------------------------------------------------- versions


def parse_version(version: str) -> tuple[int, int, int]:
    """``"1.2.3"`` (or ``"v1.2.3"``) -> ``(1, 2, 3)``.

    Raises
    ------
    InvalidVersionError
        If ``version`` is not ``MAJOR.MINOR.PATCH`` with non-negative integers.
    """
    if not isinstance(version, str):
        raise InvalidVersionError(f"a version must be a string like '1.2.0', got {version!r}.")
    m = _VERSION_RE.match(version.strip())
    if not m:
        raise InvalidVersionError(f"{version!r} is not a semantic version; write MAJOR.MINOR.PATCH, e.g. '1.2.0'.")
    return int(m[1]), int(m[2]), int(m[3])


def bump_version(version: str, part: str = "minor") -> str:
    """The next version: ``bump_version("1.2.3", "minor") == "1.3.0"``."""
    major, minor, patch = parse_version(version)
    if part == "major":
        return f"{major + 1}.0.0"
    if part == "minor":
        return f"{major}.{minor + 1}.0"
    if part == "patch":
        return f"{major}.{minor}.{patch + 1}"
    raise InvalidArgumentError(f"bump must be 'major', 'minor' or 'patch', got {part!r}.")


def _norm(version: str) -> str:
    return "{}.{}.{}".format(*parse_version(version))


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
        self.root.mkdir(parents=True, exist_ok=True)
        self.format = _check_format(format)
        key = signing_key if signing_key is not None else os.environ.get(SIGNING_KEY_ENV) or None
        if key is not None and not isinstance(key, (str, bytes)):
            raise ArgumentTypeError(f"signing_key must be str or bytes, got {type(key).__name__}.")
        if key is not None and len(key) == 0:
            raise InvalidArgumentError("signing_key is empty; pass a long random secret, or None to disable signing.")
        self._key: bytes | None = key.encode() if isinstance(key, str) else key
        self.lock_timeout = float(lock_timeout)

    def __repr__(self) -> str:
        signed = ", signed" if self._key else ""
        return f"Registry({str(self.root)!r}, format={self.format!r}{signed})"

    @property
    def signed(self) -> bool:
        """Whether this registry signs and verifies cards."""
        return self._key is not None

    # ------------------------------------------------------------------ reading

    def versions(self) -> list[str]:
        """All committed versions, in ascending semantic-version order."""
        found = [m[1] for p in self.root.iterdir() if (m := _CARD_RE.match(p.name))]
        return sorted(found, key=parse_version)

    def aliases(self) -> dict[str, str]:
        """Each alias and the version it points to now."""
        return {a: stack[-1] for a, stack in self._read_aliases().items() if stack}

    def resolve(self, ref: str) -> str:
        """Turn a version (``"1.2.0"``), an alias (``"production"``) or ``"latest"`` into a version."""
        if not isinstance(ref, str) or not ref.strip():
            raise ArgumentTypeError(f"ref must be a version like '1.2.0' or an alias like 'production', got {ref!r}.")
        versions = self.versions()
        if _VERSION_RE.match(ref.strip()):
            v = _norm(ref)
            if v in versions:
                return v
        elif ref == "latest" and versions:
            return versions[-1]
        elif ref in (aliases := self.aliases()):
            return aliases[ref]
        raise VersionNotFoundError(
            f"no version or alias {ref!r} in {self.root}. Versions: {versions or 'none yet'}; "
            f"aliases: {self.aliases() or 'none yet'}. Save a model first, or promote one to the alias."
        )

    def card(self, ref: str = "production") -> ModelCard:
        """Read and check a version's card, without loading the model."""
        version = self.resolve(ref)
        path = self._card_path(version)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise VersionNotFoundError(f"v{version}'s card {path.name} vanished; was it deleted?") from None
        card = ModelCard.from_json(text, source=f"card {path.name}")
        if card.version != version:
            raise CardError(
                f"card {path.name} says version {card.version!r}; the file was renamed or "
                "edited. Restore the original card."
            )
        self._verify_signature(card, path.name)
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
        VersionNotFoundError, CardError, IntegrityError, CompatibilityError, UntrustedTypeError
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
        if card.format == "skops":
            return _load_skops(data, card), card
        import joblib

        return joblib.load(io.BytesIO(data)), card

    def history(self) -> list[dict[str, Any]]:
        """Every alias move, oldest first: ``{"at", "alias", "action", "from", "to"}``."""
        path = self.root / "history.jsonl"
        if not path.exists():
            return []
        out = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    raise CardError(f"history.jsonl line {n} is not JSON; fix or delete that line.") from None
        return out

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
        fmt = _check_format(format or self.format)
        if bump not in ("major", "minor", "patch"):
            raise InvalidArgumentError(f"bump must be 'major', 'minor' or 'patch', got {bump!r}.")
        requested = _norm(version) if version is not None else None
        _check_compress(compress)
        if isinstance(gate_report, Mapping):
            gate_report = GateReport.from_dict(gate_report)
        if gate_report is not None and not isinstance(gate_report, GateReport):
            raise ArgumentTypeError("gate_report must be a GateReport from Gate(...).check(metrics).")
        if gate_report is not None and not gate_report.passed:
            raise GateRejected(
                "the model failed its gate, so it was not saved: "
                + "; ".join(gate_report.failures())
                + ". Improve the model, or change the gate deliberately.",
                gate_report,
            )
        if metrics is None and gate_report is not None:
            metrics = {r.metric: r.value for r in gate_report.rows}
        metrics = {str(k): float(v) for k, v in (metrics or {}).items()}
        ds_name, ds = _describe_dataset(dataset)

        # 1. Write the artefact under a temporary name, outside the lock.
        tmp = self.root / f".tmp-{uuid.uuid4().hex}{FORMATS[fmt]}"
        try:
            reviewed = _dump(model, tmp, fmt, compress, trusted_types)
            digest, size = _sha256_file(tmp)
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
                artefact = self.root / f"model_v{new}{FORMATS[fmt]}"
                card = ModelCard(
                    version=new,
                    trained_at=utc_now(),
                    algorithm=_algorithm(model),
                    artifact=artefact.name,
                    artifact_sha256=digest,
                    artifact_bytes=size,
                    format=fmt,
                    dataset=ds_name,
                    dataset_sha256=ds["sha256"] if ds else None,
                    dataset_rows=ds["rows"] if ds else None,
                    hyperparams=_hyperparams(model),
                    metrics=metrics,
                    dependencies=environment_versions(),
                    gate=gate_report.to_dict() if gate_report is not None else None,
                    trusted_types=reviewed,
                    notes=notes,
                )
                if self._key:
                    card.signature = self._sign(card)
                os.replace(tmp, artefact)
                try:
                    _atomic_write(self._card_path(new), card.to_json().encode("utf-8"))  # commit point
                except BaseException:
                    artefact.unlink(missing_ok=True)
                    raise
            return card
        finally:
            tmp.unlink(missing_ok=True)

    def promote(self, ref: str, alias: str = "production") -> str:
        """Point ``alias`` at a version (recorded in the history). Returns the version."""
        _check_alias(alias)
        with self._lock():
            version = self.resolve(ref)
            self.card(version)  # refuse to promote a broken or unsigned card
            stacks = self._read_aliases()
            stack = stacks.setdefault(alias, [])
            previous = stack[-1] if stack else None
            if previous == version:
                return version
            stack.append(version)
            self._write_aliases(stacks)
            self._log(alias, "promote", previous, version)
        return version

    def rollback(self, alias: str = "production") -> str:
        """Return ``alias`` to the version it held before its last promotion. Returns that version."""
        _check_alias(alias)
        with self._lock():
            stacks = self._read_aliases()
            stack = stacks.get(alias, [])
            if len(stack) < 2:
                raise RollbackError(
                    f"alias {alias!r} has no earlier version to roll back to "
                    f"(it has held {stack or 'nothing'}). Promote a version explicitly instead."
                )
            bad = stack.pop()
            self._write_aliases(stacks)
            self._log(alias, "rollback", bad, stack[-1])
        return stack[-1]

    # ------------------------------------------------------------------ internals

    def _card_path(self, version: str) -> Path:
        return self.root / f"model_v{version}_meta.json"

    def _verified_bytes(self, card: ModelCard) -> bytes:
        name = card.artifact
        if Path(name).name != name or name.startswith("."):
            raise IntegrityError(
                f"v{card.version}'s card names artefact {name!r}, which is not a plain "
                "file name in the registry; the card was tampered with."
            )
        path = self.root / name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise IntegrityError(
                f"v{card.version}: artefact {name} is missing from {self.root}. "
                "Restore it from a backup, or load another version."
            ) from None
        actual = hashlib.sha256(data).hexdigest()
        if not hmac.compare_digest(actual.encode(), card.artifact_sha256.encode()):
            raise IntegrityError(
                f"v{card.version}: {name} does not match its card (sha256 {actual[:12]}… ≠ recorded "
                f"{card.artifact_sha256[:12]}…). The file was changed, truncated or swapped; it was NOT "
                "unpickled. Restore the original file, or load another version."
            )
        return data

    def _sign(self, card: ModelCard) -> str:
        assert self._key is not None
        return hmac.new(self._key, card.signing_payload(), hashlib.sha256).hexdigest()

    def _verify_signature(self, card: ModelCard, name: str) -> None:
        if self._key is None:
            return
        if not card.signature:
            raise IntegrityError(
                f"card {name} is unsigned, but this registry requires signed cards. "
                "Re-save the model with the signing key, or open the registry without one."
            )
        if not hmac.compare_digest(self._sign(card).encode(), str(card.signature).encode()):
            raise IntegrityError(
                f"card {name} has a wrong signature: it was edited, or signed with "
                "another key. Do not load it; restore the original card."
            )

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Hold the registry's file lock (one saver or alias mover at a time, across processes)."""
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.root / ".registry.lock"), timeout=self.lock_timeout)
        try:
            lock.acquire()
        except Timeout:
            raise LockTimeoutError(
                f"waited {self.lock_timeout:g}s for the lock on {self.root}; another process is "
                "saving. Try again, or raise lock_timeout."
            ) from None
        try:
            yield
        finally:
            lock.release()

    def _read_aliases(self) -> dict[str, list[str]]:
        path = self.root / "aliases.json"
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            raise CardError(
                f"{path} is not valid JSON; fix it by hand (it maps alias -> list of "
                "versions, newest last) or delete it and promote again."
            ) from None
        if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
            raise CardError(f"{path} must map each alias to a list of versions, newest last.")
        return data

    def _write_aliases(self, stacks: dict[str, list[str]]) -> None:
        _atomic_write(self.root / "aliases.json", json.dumps(stacks, indent=2, sort_keys=True).encode())

    def _log(self, alias: str, action: str, old: str | None, new: str) -> None:
        entry = {"at": utc_now(), "alias": alias, "action": action, "from": old, "to": new}
        with open(self.root / "history.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def __iter__(self) -> Iterator[str]:
        return iter(self.versions())

    def __len__(self) -> int:
        return len(self.versions())


# --------------------------------------------------------------------------- helpers


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise InvalidArgumentError(f"format must be one of {sorted(FORMATS)}, got {fmt!r}.")
    return fmt


def _check_alias(alias: str) -> None:
    if not isinstance(alias, str) or not _ALIAS_RE.match(alias) or alias == "latest":
        raise InvalidArgumentError(
            f"alias {alias!r} is not allowed: use a short name that starts with a letter "
            "(letters, digits, '-', '_'), such as 'production' or 'staging'."
        )


def _check_compress(compress: Any) -> None:
    ok = (isinstance(compress, int) and not isinstance(compress, bool) and 0 <= compress <= 9) or (
        isinstance(compress, tuple)
        and len(compress) == 2
        and compress[0] in _JOBLIB_METHODS
        and isinstance(compress[1], int)
        and 0 <= compress[1] <= 9
    )
    if not ok:
        raise InvalidArgumentError(
            f"compress must be an int 0-9 or a (method, level) pair with method in "
            f"{_JOBLIB_METHODS}, e.g. 3 or ('lz4', 3); got {compress!r}."
        )


def _dump(model: Any, path: Path, fmt: str, compress: Any, trusted_types: list[str] | None) -> list[str] | None:
    """Write ``model`` to ``path`` and fsync it. Returns the reviewed types (skops)."""
    if fmt == "skops":
        import zipfile

        import skops.io as sio

        level = compress[1] if isinstance(compress, tuple) else compress
        with open(path, "wb") as f:
            sio.dump(
                model, f, compression=zipfile.ZIP_DEFLATED if level else zipfile.ZIP_STORED, compresslevel=level or None
            )
            f.flush()
            os.fsync(f.fileno())
        found = sorted(sio.get_untrusted_types(file=path))
        if trusted_types is not None:
            unreviewed = sorted(set(found) - set(trusted_types))
            if unreviewed:
                raise UntrustedTypeError(
                    f"the model holds types you did not list in trusted_types: "
                    f"{unreviewed}. Review them and add them, or change the model."
                )
        return found
    import joblib

    with open(path, "wb") as f:
        joblib.dump(model, f, compress=compress)
        f.flush()
        os.fsync(f.fileno())
    return None


def _load_skops(data: bytes, card: ModelCard) -> Any:
    import skops.io as sio

    found = sio.get_untrusted_types(data=data)
    reviewed = set(card.trusted_types or [])
    unreviewed = sorted(set(found) - reviewed)
    if unreviewed:
        raise UntrustedTypeError(
            f"v{card.version}: {card.artifact} holds type(s) {unreviewed} that were not reviewed when it "
            "was saved; refusing to load them. If you trust them, inspect the file with "
            "skops.io.get_untrusted_types and re-save with trusted_types=[...]."
        )
    return sio.loads(data, trusted=sorted(reviewed & set(found)))


def _sha256_file(path: Path) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the new one, never half."""
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":  # Windows cannot open a folder for fsync
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _describe_dataset(dataset: Any) -> tuple[str | None, dict[str, Any] | None]:
    if dataset is None:
        return None, None
    from .data import fingerprint

    fp = fingerprint(dataset)
    if fp["kind"] == "file":
        return Path(dataset).name, fp
    shape = getattr(dataset, "shape", (fp["rows"],))
    cols = f" × {shape[1]} columns" if len(shape) > 1 else ""
    return f"{type(dataset).__name__}: {fp['rows']} rows{cols}", fp


def _algorithm(model: Any) -> str:
    steps = getattr(model, "steps", None)
    if isinstance(steps, list) and steps:
        return "Pipeline(" + " → ".join(type(s[1]).__name__ for s in steps) + ")"
    return type(model).__name__


def _hyperparams(model: Any) -> dict[str, Any]:
    get = getattr(model, "get_params", None)
    if get is None:
        return {}
    out = {}
    for k, v in sorted(get(deep=False).items()):
        if v is None or isinstance(v, (bool, str)):
            out[k] = v
        elif isinstance(v, (int, float)):
            out[k] = v
        elif getattr(v, "ndim", None) == 0 and hasattr(v, "item"):  # a numpy scalar
            out[k] = v.item()
        else:
            out[k] = repr(v)[:200]
    return out
