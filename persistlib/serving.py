"""Serve a model from a registry: predict, hot-swap, roll back, A/B test.

Three ideas, each small:

* **Load once, predict many times.** :class:`ModelServer` loads (and verifies)
  a model when it starts, then answers every request from memory.
* **Swap with one assignment.** Everything a request needs (the model, its
  card, its feature names) lives in one immutable *bundle*. A swap loads,
  verifies and warms up the new bundle while the old one keeps serving, then
  replaces a single reference. Each request reads that reference exactly once,
  so it runs entirely on the old model or entirely on the new one, never on a
  mix, and none is dropped. The previous bundle stays in memory, so
  :meth:`ModelServer.rollback` is instant.
* **Split traffic, stickily.** :class:`ABRouter` sends each user to an arm
  (a version) by a stable hash of the user id: the same user always gets the
  same arm, run after run, with no table of assignments to store.

Only swaps take a lock; predictions never wait for one.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from .errors import ArgumentTypeError, InvalidArgumentError, PersistError, RollbackError

if TYPE_CHECKING:  # pragma: no cover
    from .audit import AuditLog
    from .card import ModelCard

__all__ = [
    "ModelServer",
    "Prediction",
    "ABRouter",
    "Decision",
    "ServerSnapshot",
    "InvalidInputError",
    "UnservableModelError",
    "validate_rows",
    "wilson_interval",
    "as_labels",
    "next_ref",
]


class InvalidInputError(PersistError, ValueError):
    """A prediction request whose rows are not what the model needs."""


class UnservableModelError(PersistError):
    """A saved model that the server cannot serve as it is (a problem of the model, not of a request)."""


# --------------------------------------------------------------------------- labels


def as_labels(y_true: Any) -> list:
    """Turn one label, or a list/tuple/ndarray/Series of labels, into a list of plain Python scalars.

    Parameters
    ----------
    y_true : label or sequence of labels
        A single label (``1``, ``np.int64(0)``, ``"yes"``), or a one-dimensional
        list, tuple, ``numpy.ndarray`` or ``pandas.Series`` of them.

    Returns
    -------
    list
        Plain ``int``/``float``/``str``/``bool`` values, one per label, ready for
        JSON and for ``==`` against a :class:`Prediction`'s ``labels``.

    Raises
    ------
    ArgumentTypeError
        If ``y_true`` is ``None``, a mapping, a table (a DataFrame or a 2-D array)
        or holds something that is not a single label.
    InvalidArgumentError
        If it holds no label at all.
    """
    if y_true is None:
        raise ArgumentTypeError("y_true is None; pass the true label(s), e.g. 1 or y_test.iloc[:2].")
    if isinstance(y_true, (str, bytes, bool, int, float, np.generic)):
        values: list = [y_true]
    elif isinstance(y_true, (list, tuple)):
        values = list(y_true)
    elif hasattr(y_true, "to_numpy") or isinstance(y_true, np.ndarray):
        arr = np.asarray(y_true.to_numpy() if hasattr(y_true, "to_numpy") else y_true)
        if arr.ndim == 0:
            values = [arr.item()]
        elif arr.ndim == 1:
            values = list(arr)
        else:
            raise ArgumentTypeError(
                f"y_true must be one-dimensional (one label per row), got shape {arr.shape}; "
                "pass a column such as y_test.iloc[:2], not a table."
            )
    else:
        raise ArgumentTypeError(
            f"y_true must be a label or a list/tuple/ndarray/Series of labels, got {type(y_true).__name__}."
        )
    if not values:
        raise InvalidArgumentError("y_true holds no label; pass one true label per predicted row.")
    out = []
    for v in values:
        v = v.item() if isinstance(v, np.generic) else v
        if not isinstance(v, (str, bytes, bool, int, float)):
            raise ArgumentTypeError(f"each true label must be a single value like 0, 1 or 'yes', got {_short(v)}.")
        out.append(v)
    return out


def next_ref(current: str, refs: Sequence[str], resolve: "Callable[[str], str] | None" = None) -> str:
    """The ref a "Swap" button should serve next: the one after ``current`` in ``refs``, never ``current``.

    ``refs`` is walked as a cycle starting just after the ref that resolves to
    ``current`` (or from the start if none does), and the first ref that
    resolves to another version is returned. So pressing Swap always changes
    the model, and repeated presses visit every other version in turn.

    Parameters
    ----------
    current : str
        The version being served now.
    refs : sequence of str
        Versions or aliases to cycle through.
    resolve : callable, optional
        Turns a ref into a version (e.g. ``registry.resolve``). A ref it cannot
        resolve is kept as it is, so the swap itself reports the problem.
        Default: refs are versions already.

    Raises
    ------
    InvalidArgumentError
        If ``refs`` is empty or every ref is the version already serving.
    """
    refs = [refs] if isinstance(refs, str) else list(refs)
    if not refs:
        raise InvalidArgumentError("there is no version to swap to; pass swap_to=['<version>', ...].")

    def version_of(ref: str) -> str:
        if resolve is None:
            return ref
        try:
            return resolve(ref)
        except PersistError:
            return ref

    versions = [version_of(r) for r in refs]
    start = versions.index(current) + 1 if current in versions else 0
    for i in range(len(refs)):
        k = (start + i) % len(refs)
        if versions[k] != current:
            return refs[k]
    raise InvalidArgumentError(
        f"every ref in {refs} is v{current}, the version already serving; add another version to swap_to."
    )


# --------------------------------------------------------------------------- input validation


def validate_rows(rows: Any, features: Sequence[str]) -> "Any":
    """Check request rows and turn them into a DataFrame with the model's columns, in order.

    Parameters
    ----------
    rows : list of dict, dict or pandas.DataFrame
        Each row maps every feature name to a number. A single dict is one row.
    features : sequence of str
        The model's feature names (``model.feature_names_in_``).

    Returns
    -------
    pandas.DataFrame
        One row per input row, columns exactly ``features``, dtype float.

    Raises
    ------
    InvalidInputError
        With a message naming the first problem found: not a list, an empty
        list, a row that is not an object, missing or unknown features, or a
        value that is not a finite number.
    """
    import pandas as pd

    feats = list(features)
    if isinstance(rows, pd.DataFrame):
        _check_columns(list(map(str, rows.columns)), feats, "the DataFrame")
        if len(rows) == 0:
            raise InvalidInputError("the DataFrame has no rows; send at least one row.")
        frame = rows if list(rows.columns) == feats else rows[feats]
        try:
            values = frame.to_numpy(dtype=float)
        except (TypeError, ValueError):
            raise InvalidInputError("the DataFrame holds non-numeric values; every feature must be a number.") from None
        if not np.isfinite(values).all():
            raise InvalidInputError("the DataFrame holds NaN or infinite values; send finite numbers.")
        return frame
    if isinstance(rows, Mapping):
        rows = [rows]
    if not isinstance(rows, list):
        raise InvalidInputError(
            f"'rows' must be a list of objects like [{{{feats[0]!r}: ...}}], got {type(rows).__name__}."
        )
    if not rows:
        raise InvalidInputError("'rows' is empty; send at least one row.")
    data = np.empty((len(rows), len(feats)), dtype=float)
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise InvalidInputError(
                f"row {i} must be an object mapping feature names to numbers, got {type(row).__name__}."
            )
        if len(row) != len(feats) or any(f not in row for f in feats):
            _check_columns(list(map(str, row)), feats, f"row {i}")
        for j, f in enumerate(feats):
            v = row[f]
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise InvalidInputError(
                    f"row {i}, feature {f!r}: {_short(v)} is not a number; "
                    "send numbers only (categories are integer codes)."
                )
            try:
                data[i, j] = v
            except OverflowError:
                data[i, j] = math.inf
            if not math.isfinite(data[i, j]):
                raise InvalidInputError(f"row {i}, feature {f!r}: {_short(v)} is not a finite number.")
    return pd.DataFrame(data, columns=feats)


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def _check_columns(got: list[str], want: list[str], where: str) -> None:
    missing = [f for f in want if f not in got]
    unknown = [f for f in got if f not in want]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing feature(s) {missing}")
        if unknown:
            parts.append(f"unknown feature(s) {unknown}")
        raise InvalidInputError(f"{where} has {' and '.join(parts)}; the model expects exactly {want}.")


# --------------------------------------------------------------------------- results


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
        """A JSON-ready dict (``features`` as a list)."""
        return {
            "version": self.version,
            "previous_version": self.previous_version,
            "artifact_sha256": self.artifact_sha256,
            "trained_at": self.trained_at,
            "algorithm": self.algorithm,
            "features": list(self.features),
            "ab": self.ab,
        }


@dataclass(frozen=True)
class _Bundle:
    """Everything one request needs. Immutable: a swap replaces it, never edits it."""

    model: Any
    card: "ModelCard"
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
    router: "ABRouter | None" = None
    arms: Mapping[str, _Bundle] = field(default_factory=dict)


# --------------------------------------------------------------------------- server


class ModelServer:
    """Serve the model an alias points to, and replace it without downtime.

    Parameters
    ----------
    registry : Registry or any object with ``load(ref) -> (model, card)``,
        ``resolve(ref)``, ``versions()`` and ``aliases()``.
    alias : str, default="production"
        The version or alias to serve at start-up (and for ``swap()`` with no ref).
    audit : AuditLog, optional
        If given, every prediction is recorded in it, exactly once.

    Examples
    --------
    >>> server = ModelServer(Registry("workspace/registry"))      # doctest: +SKIP
    >>> server.predict([{"tenure_months": 3, ...}]).labels        # doctest: +SKIP
    >>> server.swap("2.0.0"); server.rollback()                   # doctest: +SKIP
    """

    def __init__(self, registry: Any, alias: str = "production", *, audit: "AuditLog | None" = None):
        for name in ("load", "resolve", "versions", "aliases"):
            if not callable(getattr(registry, name, None)):
                raise ArgumentTypeError(
                    f"registry must offer .{name}() like persistlib.Registry; {type(registry).__name__} does not."
                )
        self.registry = registry
        self.alias = alias
        self.audit = audit
        self._swap_lock = threading.Lock()
        self._http_urls: list[str] = []
        self._state = _State(current=self._load(alias))

    def __repr__(self) -> str:
        routed = f", A/B {self._state.router.weights}" if self._state.router else ""
        return f"<ModelServer: v{self.version}{routed}>"

    # ------------------------------------------------------------------ reading

    @property
    def version(self) -> str:
        """The version being served (outside any A/B test)."""
        return self._state.current.version

    @property
    def previous_version(self) -> str | None:
        """The version :meth:`rollback` would return to, kept warm in memory."""
        prev = self._state.previous
        return prev.version if prev else None

    @property
    def card(self) -> "ModelCard":
        """The card of the version being served."""
        return self._state.current.card

    @property
    def features(self) -> tuple[str, ...]:
        """The feature names every request row must contain."""
        return self._state.current.features

    @property
    def router(self) -> "ABRouter | None":
        """The active :class:`ABRouter`, or ``None``."""
        return self._state.router

    def snapshot(self) -> ServerSnapshot:
        """Version, previous version, artefact sha256, training time and A/B split, read at ONE moment.

        Reading ``server.version`` and then ``server.card`` takes two looks at the
        server, and a swap in between would mix two models; this takes one.
        """
        return _snapshot(self._state)  # read the reference ONCE

    # ------------------------------------------------------------------ HTTP

    def start_http(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve this server over HTTP from a background thread; return the base URL.

        Same as ``persistlib.start_http(self, host=host, port=port)``; needs
        fastapi and uvicorn. ``port=0`` picks a free port.
        """
        from .http import start_http

        url = start_http(self, host=host, port=port)
        self._http_urls.append(url)
        return url

    def stop_http(self) -> list[str]:
        """Stop the HTTP servers this server started with :meth:`start_http`. Returns their URLs."""
        from .http import running_servers, stop_http

        running = set(running_servers())
        stopped = [u for u in self._http_urls if u in running]
        for url in stopped:
            stop_http(url)
        self._http_urls.clear()
        return stopped

    # ------------------------------------------------------------------ predicting

    def predict(self, rows: Any, *, user_id: Any = None) -> Prediction:
        """Predict for one or more rows.

        Parameters
        ----------
        rows : list of dict, dict or DataFrame
            Each row maps every feature name to a number (see :func:`validate_rows`).
        user_id : str or int, optional
            Who asked. With an A/B router active it picks the arm (stickily);
            it is also recorded in the audit log.

        Raises
        ------
        InvalidInputError
            If the rows are malformed; the server keeps serving.
        """
        start = time.perf_counter()
        state = self._state  # read the reference ONCE: this request uses this bundle throughout
        request_id = f"req-{uuid.uuid4().hex[:16]}"
        bundle, arm = state.current, None
        if state.router is not None:
            arm = state.router.assign(request_id if user_id is None else user_id)
            bundle = state.arms[arm]
        X = validate_rows(rows, bundle.features)
        labels, proba = _infer(bundle, X)
        latency_ms = (time.perf_counter() - start) * 1000.0
        pred = Prediction(
            labels=labels,
            probabilities=proba,
            version=bundle.version,
            request_id=request_id,
            arm=arm,
            latency_ms=latency_ms,
        )
        if state.router is not None:
            state.router.record(pred)
        if self.audit is not None:
            self.audit.record(pred, user_id=user_id, artifact_sha256=bundle.card.artifact_sha256)
        return pred

    def record_outcome(self, request_id: str, y_true: Any) -> bool | None:
        """Report the true label(s) of a request, once known, to the A/B router and the audit log.

        Parameters
        ----------
        request_id : str
            ``Prediction.request_id`` of an earlier :meth:`predict`.
        y_true : label or list/tuple/ndarray/Series of labels
            One true label per predicted row (see :func:`as_labels`).

        Returns
        -------
        bool or None
            Whether the A/B arm answered correctly, if the active router routed
            this request; ``None`` otherwise (the audit log still gets the outcome).

        Raises
        ------
        InvalidArgumentError
            If the server has neither a router nor an audit log, or the router
            routed the request but the number of labels differs from its rows.
        """
        truth = as_labels(y_true)
        router = self._state.router
        if router is None and self.audit is None:
            raise InvalidArgumentError(
                "this server has no A/B router and no audit log, so an outcome has "
                "nowhere to go; pass audit=AuditLog(...) or call route(ABRouter(...))."
            )
        correct = None
        if router is not None and (self.audit is None or router.is_pending(request_id)):
            correct = router.record_outcome(request_id, truth)  # checks the label count first
        if self.audit is not None:
            self.audit.record_outcome(request_id, truth)
        return correct

    # ------------------------------------------------------------------ swapping

    def swap(self, ref: str | None = None) -> str:
        """Serve another version, without dropping a request. Returns the new version.

        The new model is loaded, verified (sha256, card, environment) and warmed
        up with a smoke prediction while the old one keeps answering. Then one
        reference assignment switches traffic. Requests already running finish
        on the old model, which stays in memory for :meth:`rollback`.

        Parameters
        ----------
        ref : str, optional
            A version or alias; by default the server's alias, re-read (so
            ``registry.promote(v); server.swap()`` follows the promotion).
        """
        return self._swap(ref).version

    def rollback(self) -> str:
        """Go back to the previous version at once (it is still in memory). Returns it."""
        return self._rollback().version

    def _swap(self, ref: str | None = None) -> ServerSnapshot:
        """:meth:`swap`, returning a snapshot of exactly the state it installed (for the HTTP answer)."""
        with self._swap_lock:  # one swap at a time; predictions never take this lock
            bundle = self._load(self.alias if ref is None else ref)
            old = self._state
            if bundle.version == old.current.version:
                return _snapshot(old)
            new = replace(old, current=bundle, previous=old.current)
            self._state = new  # the switch
            return _snapshot(new)

    def _rollback(self) -> ServerSnapshot:
        """:meth:`rollback`, returning a snapshot of exactly the state it installed."""
        with self._swap_lock:
            old = self._state
            if old.previous is None:
                raise RollbackError(
                    "this server has not swapped yet, so there is no previous version "
                    "to roll back to. Use swap(ref) to serve a specific version."
                )
            new = replace(old, current=old.previous, previous=old.current)
            self._state = new
            return _snapshot(new)

    def route(self, router: "ABRouter | None") -> None:
        """Start an A/B test with ``router`` (loading each arm's version), or stop it with ``None``."""
        with self._swap_lock:
            if router is None:
                self._state = replace(self._state, router=None, arms={})
                return
            if not isinstance(router, ABRouter):
                raise ArgumentTypeError(f"route() takes an ABRouter or None, got {type(router).__name__}.")
            cached = {b.version: b for b in (self._state.current, self._state.previous) if b}
            arms = {}
            for arm in router.arms:
                version = self.registry.resolve(arm)
                arms[arm] = cached.get(version) or self._load(arm)
            self._state = replace(self._state, router=router, arms=arms)

    # ------------------------------------------------------------------ internals

    def _load(self, ref: str) -> _Bundle:
        model, card = self.registry.load(ref)
        names = getattr(model, "feature_names_in_", None)
        if names is None:
            raise UnservableModelError(
                f"the saved model v{card.version} has no feature_names_in_, so the server cannot check "
                "request rows by feature name. Refit it on a pandas DataFrame (as make_churn returns) "
                "and save it as a new version."
            )
        classes = getattr(model, "classes_", None)
        bundle = _Bundle(
            model=model,
            card=card,
            features=tuple(map(str, names)),
            classes=tuple(classes.tolist()) if classes is not None else None,
        )
        # Warm-up: a smoke prediction, before any user sees this model.
        labels, _ = _infer(bundle, validate_rows([dict.fromkeys(bundle.features, 0.0)], bundle.features))
        if len(labels) != 1:
            raise PersistError(
                f"v{card.version} failed its warm-up prediction: 1 row in, {len(labels)} labels out. Not swapped in."
            )
        return bundle


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
    """Labels and probabilities with ONE pass over the model where possible."""
    model = bundle.model
    if bundle.classes is not None and hasattr(model, "predict_proba"):
        proba = model.predict_proba(X)
        labels = np.asarray(bundle.classes)[proba.argmax(axis=1)]
        return labels.tolist(), proba.tolist()
    return np.asarray(model.predict(X)).tolist(), None


# --------------------------------------------------------------------------- A/B testing


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval for a proportion (95 % by default); ``(0, 1)`` when ``n == 0``."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


class ABRouter:
    """Split traffic between versions by weight, sticky per user.

    Each user id is hashed (sha256, with ``salt``) to a number in [0, 1); the
    weights cut [0, 1) into one slice per arm. The same user and salt always
    land in the same arm, in every process and every run. (Python's built-in
    ``hash()`` is salted per process, so it would not be reproducible.)

    Parameters
    ----------
    weights : mapping of str to float
        Arm (a version or alias in the server's registry) to weight, e.g.
        ``{"1.9.0": 0.5, "2.0.0": 0.5}``. Weights are normalised to sum to 1.
    salt : str, default="persistlib-ab"
        Change it to reshuffle users for a new experiment.
    max_pending : int, default=100_000
        How many routed requests still waiting for their outcome the router
        remembers. Beyond that the oldest are forgotten (counted in
        :attr:`expired`), so memory stays bounded when outcomes never arrive.
    """

    def __init__(self, weights: Mapping[str, float], *, salt: str = "persistlib-ab", max_pending: int = 100_000):
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            raise InvalidArgumentError(f"max_pending must be a positive integer, got {max_pending!r}.")
        self.salt = str(salt)
        self.max_pending = max_pending
        self.expired = 0
        self._lock = threading.Lock()
        self._served: OrderedDict[str, tuple[str, list]] = OrderedDict()  # request_id -> (arm, labels)
        self._requests: dict[str, int] = {}
        self._outcomes: dict[str, list[int]] = {}  # arm -> [correct, total]
        self.set_weights(weights)

    def __repr__(self) -> str:
        return f"ABRouter({self.weights})"

    @property
    def arms(self) -> list[str]:
        return list(self._weights)

    @property
    def weights(self) -> dict[str, float]:
        """Each arm's share of traffic (summing to 1)."""
        return dict(self._weights)

    def set_weights(self, weights: Mapping[str, float]) -> None:
        """Change the split. Arms keep their metrics; some users may move arm."""
        if not isinstance(weights, Mapping) or not weights:
            raise InvalidArgumentError(
                "weights must be a non-empty dict of arm to weight, e.g. {'1.9.0': 0.5, '2.0.0': 0.5}."
            )
        if hasattr(self, "_weights") and set(weights) != set(self._weights):
            raise InvalidArgumentError(
                f"set_weights() must keep the same arms {self.arms}; start a new ABRouter to test other versions."
            )
        for arm, w in weights.items():
            if not isinstance(arm, str) or not arm:
                raise InvalidArgumentError(f"arm names must be version strings like '2.0.0', got {arm!r}.")
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
                raise InvalidArgumentError(f"weight for {arm!r} must be a finite number >= 0, got {w!r}.")
        total = float(sum(weights.values()))
        if total <= 0:
            raise InvalidArgumentError("at least one weight must be positive.")
        self._weights = {a: float(w) / total for a, w in weights.items()}
        edges, acc = [], 0.0
        for a, w in self._weights.items():
            acc += w
            edges.append((acc, a))
        self._edges = edges
        for a in self._weights:
            self._requests.setdefault(a, 0)
            self._outcomes.setdefault(a, [0, 0])

    def bucket(self, user_id: Any) -> float:
        """The user's stable position in [0, 1)."""
        digest = hashlib.sha256(f"{self.salt}:{user_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2.0**64

    def assign(self, user_id: Any) -> str:
        """The arm this user gets (always the same for the same user, salt and weights)."""
        if user_id is None:
            raise InvalidArgumentError("assign() needs a user id; pass user_id=... to predict().")
        b = self.bucket(user_id)
        for edge, arm in self._edges:
            if b < edge:
                return arm
        return self._edges[-1][1]  # b rounds up to 1.0 only by float error

    def record(self, prediction: Prediction) -> None:
        """Remember which arm answered a request (the server calls this)."""
        if prediction.arm is None:
            return
        with self._lock:
            self._served[prediction.request_id] = (prediction.arm, prediction.labels)
            while len(self._served) > self.max_pending:
                self._served.popitem(last=False)  # forget the oldest request still waiting
                self.expired += 1
            self._requests[prediction.arm] = self._requests.get(prediction.arm, 0) + 1

    @property
    def pending(self) -> int:
        """Routed requests whose outcome has not been recorded yet (at most ``max_pending``)."""
        with self._lock:
            return len(self._served)

    def is_pending(self, request_id: str) -> bool:
        """Whether this router routed ``request_id`` and still waits for its outcome."""
        with self._lock:
            return request_id in self._served

    def record_outcome(self, request_id: str, y_true: Any) -> bool:
        """Report the true label(s) of a request once known. Returns whether the arm was right.

        Parameters
        ----------
        request_id : str
            ``Prediction.request_id`` of a request this router routed.
        y_true : label or list/tuple/ndarray/Series of labels
            One true label per row of the request (see :func:`as_labels`).

        Raises
        ------
        InvalidArgumentError
            If ``request_id`` is not waiting for an outcome here (never routed
            by this router, already recorded, or expired), or the number of
            labels differs from the request's rows.
        """
        truth = as_labels(y_true)
        with self._lock:
            if request_id not in self._served:
                raise InvalidArgumentError(
                    f"{request_id!r} is not waiting for an outcome in this router: it was not routed while "
                    "this router was active, its outcome was already recorded, or it expired (the router "
                    f"keeps the latest max_pending={self.max_pending} requests; {self.expired} expired so "
                    "far). Pass the request_id of a recent Prediction made with user_id=..., or raise "
                    "max_pending."
                )
            arm, labels = self._served[request_id]
            if len(truth) != len(labels):
                raise InvalidArgumentError(
                    f"{request_id} had {len(labels)} row(s) but got {len(truth)} true label(s); pass one label per row."
                )
            del self._served[request_id]
            correct = sum(int(p == t) for p, t in zip(labels, truth))
            self._outcomes[arm][0] += correct
            self._outcomes[arm][1] += len(truth)
            return correct == len(truth)

    def metrics(self) -> dict[str, dict[str, Any]]:
        """Per arm: ``weight``, ``requests``, ``outcomes``, ``accuracy`` and its 95 % Wilson ``ci``."""
        with self._lock:
            out = {}
            for arm in self._weights:
                correct, n = self._outcomes[arm]
                out[arm] = {
                    "weight": self._weights[arm],
                    "requests": self._requests[arm],
                    "outcomes": n,
                    "accuracy": correct / n if n else None,
                    "ci": wilson_interval(correct, n),
                }
            return out

    def decide(self) -> "Decision":
        """The verdict: a winner only when the leader's interval lies above every other arm's.

        Returns
        -------
        Decision
            ``winner`` is the winning arm or ``None``; ``str(decision)`` is a plain-language sentence.
        """
        m = self.metrics()
        ready = {a: r for a, r in m.items() if r["outcomes"]}
        if len(ready) < 2:
            return Decision(None, "no decision yet: not every arm has outcomes")
        best = max(ready, key=lambda a: ready[a]["accuracy"])
        others = [a for a in ready if a != best]
        if all(ready[best]["ci"][0] > ready[a]["ci"][1] for a in others):
            return Decision(best, f"{best} wins: its accuracy interval lies above every other arm's")
        return Decision(None, f"no decision yet: the intervals overlap (leader {best}); collect more outcomes")


@dataclass(frozen=True)
class Decision:
    """What :meth:`ABRouter.decide` concluded: the ``winner`` arm (or ``None``) and a sentence saying why."""

    winner: str | None
    text: str

    @property
    def decided(self) -> bool:
        """Whether an arm won."""
        return self.winner is not None

    def __str__(self) -> str:
        return self.text
