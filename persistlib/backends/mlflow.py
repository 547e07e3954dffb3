"""``MlflowRegistry``: the course's registry contract, kept in MLflow's model registry.

The same calls as :class:`~persistlib.Registry` (``save``, ``load``,
``versions``, ``aliases``, ``resolve``, ``card``, ``promote``, ``rollback``,
``history``), so a :class:`~persistlib.serving.ModelServer`, an
:func:`~persistlib.serving.follow_alias` follower or a ``RetrainLoop`` works
on either. What goes where in MLflow:

=====================  ===================================================================
persistlib             MLflow
=====================  ===================================================================
a version (``1.2.0``)  a model version (numbered 1, 2, 3...) tagged ``persistlib.version``
the artefact           ``model.skops`` in the MLflow model folder (``MLmodel`` beside it)
the card               ``persistlib_card.json`` in that folder, its key fields and its
                       sha256 as model-version tags
metrics, data          the run's metrics and params; the data set's sha256 as the run's input
an alias               an alias (``models:/churn@production``), not a deprecated stage
the history            registered-model tags ``persistlib.history.<time>`` (MLflow has none)
=====================  ===================================================================

Security is kept. Models are written with MLflow's skops format and the
reviewed types recorded; pickle only with ``allow_pickle=True``. MLflow checks no
content hash when it loads, so :meth:`MlflowRegistry.load` downloads the files,
checks the card's sha256 against the tag in the database and the model's bytes
against the card, and only then rebuilds the model *from those bytes*.
MLflow writes nothing into the working folder: every store gets an explicit
artifact location (see :func:`~persistlib.backends._mlflow_store.check_tracking_uri`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import artefacts
from .._checks import is_plain_name
from .._display import clip
from ..aliases import check_alias
from ..card import ModelCard
from ..errors import (
    ArgumentTypeError,
    InvalidArgumentError,
    PersistError,
    RegistryWarning,
    RollbackError,
    UntrustedTypeError,
    VersionNotFoundError,
    warn_caller,
)
from ..gate import GateReport
from ..versions import is_version, normalise_version, parse_version
from . import _mlflow_files, _mlflow_save
from ._mlflow_schema import prepare_sqlite_store
from ._mlflow_store import (
    TAG,
    check_tracking_uri,
    history_tag,
    import_mlflow,
    mlflow_errors,
    read_history,
    replay,
    semantic_version,
)

__all__ = ["MlflowRegistry"]


class MlflowRegistry:
    """Versioned, verified model storage in an MLflow tracking store or server.

    Parameters
    ----------
    tracking_uri : str
        ``"sqlite:////abs/path/mlflow.db"`` (one machine, no server),
        ``"http://127.0.0.1:5000"`` (a tracking server; see
        :func:`~persistlib.backends.tracking_server.start_tracking_server`), or a
        team's ``"postgresql://..."`` with ``artifact_location``.
    name : str, default="churn"
        The registered model's name (letters, digits, ``_.-``); also the experiment's.
    artifact_location : str, optional
        Where the model files go. Default: ``<the SQLite file's folder>/artifacts``,
        or the server's own store. Never ``./mlruns``.
    format : {"skops", "joblib"}, default="skops"
        ``"joblib"`` saves a pickle and needs ``allow_pickle=True``.
    allow_pickle : bool, default=False
        Opt in to saving and loading pickle-based versions. Unpickling runs code:
        only for a registry where you trust everyone who can write.

    Notes
    -----
    Every call is a round trip to the store. Against a server that is down,
    MLflow's client retries with a growing wait before it gives up (a
    :class:`~persistlib.errors.BackendError`); ``MLFLOW_HTTP_REQUEST_MAX_RETRIES``
    and ``MLFLOW_HTTP_REQUEST_TIMEOUT`` shorten that, e.g. for a server following an alias.

    Examples
    --------
    >>> reg = MlflowRegistry("sqlite:////tmp/store/mlflow.db", "churn")   # doctest: +SKIP
    >>> card = reg.save(model, metrics=metrics, dataset=X_train)          # doctest: +SKIP
    >>> reg.promote(card.version)              # models:/churn@production   # doctest: +SKIP
    >>> model, card = reg.load("production")   # sha256 checked first       # doctest: +SKIP
    """

    def __init__(
        self,
        tracking_uri: str,
        name: str = "churn",
        *,
        artifact_location: str | None = None,
        format: str = "skops",
        allow_pickle: bool = False,
    ):
        if not is_plain_name(name) or len(name) > 200:
            raise InvalidArgumentError(
                f"name must be a plain model name (letters, digits, '_', '.', '-'), such as 'churn'; got {name!r}."
            )
        self.tracking_uri, self.artifact_location = check_tracking_uri(tracking_uri, artifact_location)
        self.name = name
        self.format = artefacts.check_format(format)
        if not isinstance(allow_pickle, bool):
            raise ArgumentTypeError(f"allow_pickle must be True or False, got {allow_pickle!r}.")
        self.allow_pickle = allow_pickle
        if self.format == "joblib" and not allow_pickle:
            raise UntrustedTypeError(
                "format='joblib' saves pickles, which run code when loaded; MlflowRegistry uses skops unless "
                "you opt in with allow_pickle=True (only if you trust everyone who can write this registry)."
            )
        self._mlflow = import_mlflow()
        prepare_sqlite_store(self.tracking_uri, self._mlflow.__version__)  # a new store: seconds faster
        self._client = self._mlflow.MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        self._warned: set[str] = set()
        self._cards: dict[tuple[str, str], bytes] = {}  # (MLflow version, card sha256) -> verified card bytes

    @classmethod
    def in_folder(cls, folder: str | Path, name: str = "churn", **kwargs: Any) -> MlflowRegistry:
        """A registry in a SQLite file ``<folder>/mlflow.db`` with its artefacts in ``<folder>/artifacts``."""
        folder = Path(folder).absolute()
        folder.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{folder / 'mlflow.db'}", name, **kwargs)

    def __repr__(self) -> str:
        return f"MlflowRegistry({self.tracking_uri!r}, {self.name!r})"

    @property
    def client(self) -> Any:
        """The ``mlflow.MlflowClient`` on this store, for MLflow's own calls (aliases, runs, the UI's data)."""
        return self._client

    # ------------------------------------------------------------------ reading

    def versions(self) -> list[str]:
        """Every version saved by persistlib, in ascending semantic-version order."""
        return sorted(self._index(), key=parse_version)

    def aliases(self) -> dict[str, str]:
        """Each alias and the version it points to now (read from MLflow's aliases)."""
        return self._aliases(self._index())

    def resolve(self, ref: str) -> str:
        """Turn a version (``"1.2.0"``), an alias (``"production"``) or ``"latest"`` into a version."""
        if not isinstance(ref, str) or not ref.strip():
            raise ArgumentTypeError(f"ref must be a version like '1.2.0' or an alias like 'production', got {ref!r}.")
        index = self._index()
        versions = sorted(index, key=parse_version)
        if is_version(ref) and normalise_version(ref) in index:
            return normalise_version(ref)
        if ref == "latest" and versions:
            return versions[-1]
        aliases = self._aliases(index)
        if not is_version(ref) and ref in aliases:
            return aliases[ref]
        raise VersionNotFoundError(
            f"no version or alias {clip(repr(ref), 80)} in MLflow model {self.name!r} at {self.tracking_uri}. "
            f"Versions: {versions or 'none yet'}; aliases: {aliases or 'none yet'}. "
            "Save a model first, or promote one to the alias."
        )

    def card(self, ref: str = "production") -> ModelCard:
        """Read and check a version's card (its sha256 against the database's tag), without loading the model."""
        return self._card(self._index()[self.resolve(ref)])

    def cards(self) -> list[ModelCard]:
        """The card of every version, oldest first."""
        index = self._index()
        return [self._card(index[v]) for v in sorted(index, key=parse_version)]

    def load(
        self, ref: str = "production", *, allow_version_mismatch: bool = False, allow_pickle: bool | None = None
    ) -> tuple[Any, ModelCard]:
        """Load a model and its card, verified, like :meth:`persistlib.Registry.load`.

        In order, before any byte becomes a model: the card file's sha256 must
        match the ``persistlib.card_sha256`` tag in MLflow's database; the
        model file's size and sha256 must match the card; the recorded package
        versions must be compatible. The model is then rebuilt from the very
        bytes that were hashed (skops with the reviewed types), not re-read.

        Raises
        ------
        VersionNotFoundError, IntegrityError, CompatibilityError, UntrustedTypeError, ArtefactLoadError, BackendError
        """
        mv = self._index()[self.resolve(ref)]
        card = self._card(mv)
        allowed = self.allow_pickle if allow_pickle is None else allow_pickle
        if card.format != "skops" and not allowed:
            raise UntrustedTypeError(
                f"v{card.version} is a pickle-based ({card.format}) artefact, and this MlflowRegistry loads only "
                "skops files. Re-save the model in the skops format, or pass allow_pickle=True if you trust "
                "whoever can write to this MLflow store."
            )
        data = self._verified_bytes(mv, card)
        card.check_environment(allow_version_mismatch=allow_version_mismatch)
        model = artefacts.loads(
            data, format=card.format, trusted_types=card.trusted_types, label=f"v{card.version}: {card.artifact}"
        )
        return model, card

    def history(self) -> list[dict[str, Any]]:
        """Every alias move made through persistlib, oldest first: ``{"at", "alias", "action", "from", "to"}``."""
        model = self._registered_model()
        return [] if model is None else read_history(model.tags, self.name)

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
        format: str | None = None,
        trusted_types: list[str] | None = None,
        notes: str = "",
    ) -> ModelCard:
        """Save a model as a new MLflow model version and return its card.

        One run logs the metrics, the hyperparameters (as params) and the data
        set's fingerprint (as the run's input); the model folder (``MLmodel``,
        the skops file, the card) is logged as the run's model; the version is
        registered with the card's tags in one call, the commit point. The
        arguments are those of :meth:`persistlib.Registry.save` (without
        ``compress``: MLflow's skops writer picks its own).

        Raises
        ------
        GateRejected, VersionExistsError, InvalidVersionError, UntrustedTypeError, BackendError
        """
        return _mlflow_save.save(
            self,
            model,
            metrics=metrics,
            dataset=dataset,
            version=version,
            bump=bump,
            gate_report=gate_report,
            format=format,
            trusted_types=trusted_types,
            notes=notes,
        )

    def promote(self, ref: str, alias: str = "production") -> str:
        """Point ``alias`` at a version (an MLflow alias, and a history tag). Returns the version.

        The version's files are downloaded and verified first: an alias never
        points at a version that cannot load.
        """
        check_alias(alias)
        version = self.resolve(ref)
        mv = self._index()[version]
        self._verified_bytes(mv, self._card(mv))
        previous = self.aliases().get(alias)
        if previous != version:
            self._move(alias, "promote", previous, version, mv.version)
        return version

    def rollback(self, alias: str = "production") -> str:
        """Return ``alias`` to the version it held before its last promotion. Returns that version.

        Raises
        ------
        RollbackError
            If the alias has no earlier version, if it was moved outside
            persistlib since (in MLflow's UI), or if the earlier version no longer loads.
        """
        check_alias(alias)
        stack = replay(self.history()).get(alias, [])
        if len(stack) < 2:
            raise RollbackError(
                f"alias {alias!r} has no earlier version to roll back to "
                f"(it has held {stack or 'nothing'}). Promote a version explicitly instead."
            )
        now = self.aliases().get(alias)
        if now != stack[-1]:
            raise RollbackError(
                f"alias {alias!r} points to {now}, but persistlib last moved it to {stack[-1]}: it was moved "
                "outside persistlib (in MLflow's UI?), so its history is not this registry's. Promote explicitly."
            )
        target = stack[-2]
        try:
            mv = self._index()[target]
            self._verified_bytes(mv, self._card(mv))
        except (PersistError, KeyError) as e:
            raise RollbackError(
                f"cannot roll {alias!r} back to v{target}: {e} Promote a version that loads instead."
            ) from None
        self._move(alias, "rollback", now, target, mv.version)
        return target

    # ------------------------------------------------------------------ internals

    def _errors(self, action: str) -> Any:
        return mlflow_errors(action, self.tracking_uri)

    def _registered_model(self) -> Any:
        """MLflow's registered model (aliases and tags), or ``None`` before the first save."""
        try:
            with self._errors(f"read registered model {self.name!r}"):
                return self._client.get_registered_model(self.name)
        except VersionNotFoundError:
            return None

    def _aliases(self, index: dict[str, Any]) -> dict[str, str]:
        """Each MLflow alias of a version saved by persistlib -> that version."""
        model = self._registered_model()
        if model is None:
            return {}
        by_number = {str(mv.version): v for v, mv in index.items()}
        return {a: by_number[str(n)] for a, n in sorted(model.aliases.items()) if str(n) in by_number}

    def _index(self) -> dict[str, Any]:
        """Each persistlib version -> its MLflow model version (the lowest-numbered one, if a race made two)."""
        with self._errors(f"list the versions of model {self.name!r}"):
            found = self._client.search_model_versions(f"name='{self.name}'")
        index: dict[str, Any] = {}
        for mv in sorted(found, key=lambda m: int(m.version)):
            version = semantic_version(mv.tags)
            if version is None:
                self._warn_stray(mv.version)
            else:
                index.setdefault(version, mv)
        return index

    def _card(self, mv: Any) -> ModelCard:
        return _mlflow_files.verified_card(self, mv, self._cards)

    def _verified_bytes(self, mv: Any, card: ModelCard) -> bytes:
        return _mlflow_files.verified_bytes(self, mv, card)

    def _move(self, alias: str, action: str, old: str | None, new: str, number: str) -> None:
        """Move an MLflow alias, then record the move as a history tag."""
        key, value = history_tag(alias, action, old, new)
        with self._errors(f"{action} alias {alias!r} of {self.name} to version {number}"):
            self._client.set_registered_model_alias(self.name, alias, number)
            self._client.set_registered_model_tag(self.name, key, value)

    def _warn_stray(self, number: str) -> None:
        if number not in self._warned:
            self._warned.add(number)
            warn_caller(
                f"skipping {self.name} version {number}: it has no {TAG}version tag, so it was not saved by "
                "persistlib (its card and hashes are missing). Save the model through MlflowRegistry.",
                RegistryWarning,
            )
