"""Serve a model from a registry: load once, predict many times, swap with one assignment.

* **Load once, predict many times.** :class:`ModelServer` loads (and verifies) a model when it
  starts, then answers every request from memory.
* **Swap with one assignment.** Everything a request needs (the model, its card, its feature
  names) lives in one immutable *bundle*. A swap loads and verifies the new bundle while the old
  one keeps serving, makes sure it predicts (:mod:`.warm_up`), then replaces a single reference.
  Each request reads that reference once, so it runs entirely on the old model or entirely on the
  new one, and none is dropped. The previous bundle stays in memory: :meth:`~ModelServer.rollback` is instant.

A swap holds the swap lock; a prediction never takes it. While loading, a swap steps aside for
running requests: after each millisecond of loading it sleeps (up to 20 ms) until the last running
request has left, so requests do not queue for the GIL behind the unpickler (``benchmarks/serving.py``
measures it). Model calls run one at a time in the process (:mod:`persistlib._model_lock`).
A/B tests: :meth:`ModelServer.route`; HTTP: :func:`persistlib.serving.background.start_http`.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .. import artefacts
from .._checks import check_choice
from ..errors import (
    ArgumentTypeError,
    AuditUnavailableError,
    InvalidArgumentError,
    RollbackError,
    UnservableModelError,
)
from .ab import ABRouter
from .rows import as_labels, validate_rows
from .state import Prediction, ServerSnapshot, _Bundle, _infer, _snapshot, _State
from .warm_up import _Trial, smoke_prediction

if TYPE_CHECKING:  # pragma: no cover
    from ..card import ModelCard
    from .audit import AuditLog

__all__ = ["ModelServer", "Prediction", "ServerSnapshot", "AUDIT_POLICIES"]

#: What a server does with a prediction it cannot audit: refuse it, or serve it and report.
AUDIT_POLICIES = ("fail-closed", "best-effort")
#: A swap loads for this many seconds at a time, then waits while requests run, at most _STEP_ASIDE_MAX.
_LOAD_SLICE = 0.001
_STEP_ASIDE_MAX = 0.02
#: A swap on a server that had a request this recently waits this long at most for one to try the new model.
_TRIAL_WAIT = 0.1


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
    audit_policy : {"fail-closed", "best-effort"}, default="fail-closed"
        What happens to a prediction while the audit log reports a problem
        (``audit.problem``: a read-only or full disk, a stopped writer).
        ``"fail-closed"`` refuses it with :class:`AuditUnavailableError` (HTTP
        503): no answer leaves without its record, as a regulator expects.
        ``"best-effort"`` serves it and reports the problem on ``/health``.

    Examples
    --------
    >>> server = ModelServer(Registry("workspace/registry"))      # doctest: +SKIP
    >>> server.predict([{"tenure_months": 3, ...}]).labels        # doctest: +SKIP
    >>> server.swap("2.0.0"); server.rollback()                   # doctest: +SKIP
    """

    def __init__(
        self,
        registry: Any,
        alias: str = "production",
        *,
        audit: AuditLog | None = None,
        audit_policy: str = "fail-closed",
    ):
        for name in ("load", "resolve", "versions", "aliases"):
            if not callable(getattr(registry, name, None)):
                raise ArgumentTypeError(
                    f"registry must offer .{name}() like persistlib.Registry; {type(registry).__name__} does not."
                )
        self.registry = registry
        self.alias = alias
        self.audit = audit
        self.audit_policy = check_choice(audit_policy, "audit_policy", AUDIT_POLICIES)
        #: The token the HTTP admin endpoints require, set by ``start_http`` (``None`` until then).
        self.admin_token: str | None = None
        self._swap_lock = threading.Lock()
        self._running: set[int] = set()  # the threads inside predict(), for a swap to step aside for
        self._idle = threading.Event()  # set by the last request out while a load waits (_step_aside)
        self._load_waiting = False
        self._slice_started: float  # when the current slice of loading began (set by _load)
        self._last_arrival, self._trial = -float("inf"), None  # when the last request came; a swap's _Trial
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
    def card(self) -> ModelCard:
        """The card of the version being served."""
        return self._state.current.card

    @property
    def features(self) -> tuple[str, ...]:
        """The feature names every request row must contain."""
        return self._state.current.features

    @property
    def router(self) -> ABRouter | None:
        """The active :class:`ABRouter`, or ``None``."""
        return self._state.router

    def snapshot(self) -> ServerSnapshot:
        """Version, previous version, artefact sha256, training time and A/B split, read at ONE moment.

        Reading ``server.version`` and then ``server.card`` takes two looks at the
        server, and a swap in between would mix two models; this takes one.
        """
        return _snapshot(self._state)  # read the reference ONCE

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
        me = threading.get_ident()
        self._running.add(me)  # set.add and set.discard are atomic: no lock for this bookkeeping
        try:
            return self._predict(rows, user_id)
        finally:
            self._running.discard(me)
            if self._load_waiting and not self._running:
                self._idle.set()  # the last request out wakes a load that stepped aside for it

    def _predict(self, rows: Any, user_id: Any) -> Prediction:
        start = self._last_arrival = time.perf_counter()  # a swap asks how recent the last request is (_prove)
        if self.audit is not None and self.audit_policy == "fail-closed" and (problem := self.audit_problem()):
            raise AuditUnavailableError(
                f"not answered: it could not be audited ({problem}), and this server is fail-closed. Fix the audit "
                "log, or serve with audit_policy='best-effort' if unaudited answers are acceptable."
            )
        state = self._state  # read the reference ONCE: this request uses this bundle throughout
        trial = self._trial  # a swap's new model, if one waits for a request to try it
        request_id = f"req-{uuid.uuid4().hex[:16]}"
        bundle, arm, answer = state.current, None, None
        if state.router is not None:
            arm = state.router.assign(request_id if user_id is None else user_id)
            bundle = state.arms[arm]
        elif trial is not None and trial.claim():  # the first request to meet a swap's new model
            bundle, answer = trial.answer(bundle, rows)
        labels, proba = answer or _infer(bundle, validate_rows(rows, bundle.features))
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

    def audit_problem(self) -> str | None:
        """Why predictions cannot be audited right now, or ``None`` (also ``None`` without an audit log)."""
        if self.audit is None:
            return None
        return "the audit log is closed" if self.audit.closed else self.audit.problem

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

        The new model is loaded and verified (sha256, card, environment) while the old one keeps
        answering, then must predict: the next request tries it on a busy server, a smoke prediction
        on an idle one (:mod:`.warm_up`). One reference assignment then switches traffic; requests
        already running finish on the old model, which stays in memory for :meth:`rollback`.

        Parameters
        ----------
        ref : str, optional
            A version or alias; by default the server's alias, re-read (so
            ``registry.promote(v); server.swap()`` follows the promotion).
        """
        return self.swap_snapshot(ref).version

    def rollback(self) -> str:
        """Go back to the previous version at once (it is still in memory). Returns it."""
        return self.rollback_snapshot().version

    def swap_snapshot(self, ref: str | None = None) -> ServerSnapshot:
        """Swap like :meth:`swap`; return a snapshot of exactly the state this swap installed.

        Unlike :meth:`snapshot` after :meth:`swap`, it cannot see another thread's later swap.

        Parameters
        ----------
        ref : str, optional
            A version or alias; by default the server's alias, re-read.

        Returns
        -------
        ServerSnapshot
            ``version`` is the new version, ``previous_version`` the one it replaced.

        Raises
        ------
        PersistError
            If ``ref`` cannot be found, loaded, verified or warmed up; the old model keeps serving.
        """
        with self._swap_lock:  # one swap at a time; predictions never take this lock
            bundle = self._load(self.alias if ref is None else ref, warm_up=False)
            old = self._state
            if bundle.version == old.current.version:
                return _snapshot(old)
            new = replace(old, current=bundle, previous=old.current)
            self._prove(bundle, new)  # ends with the switch: self._state = new
            return _snapshot(new)

    def rollback_snapshot(self) -> ServerSnapshot:
        """Roll back like :meth:`rollback`; return a snapshot of exactly the state this rollback installed.

        Returns
        -------
        ServerSnapshot
            ``version`` is the version serving again, ``previous_version`` the one it replaced.

        Raises
        ------
        RollbackError
            If the server has not swapped yet, so there is no previous version.
        """
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

    def route(self, router: ABRouter | None) -> None:
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

    def _step_aside(self, *, now: bool = False) -> None:
        """Called between reads of a model being loaded: after each slice of loading, wait while requests run.

        It sleeps on an event that the last request out sets, so it neither polls nor takes the
        interpreter from a running request; it waits ``_STEP_ASIDE_MAX`` at most, so a stream of
        requests cannot hold a swap back for long.
        """
        if not now and time.perf_counter() - self._slice_started < _LOAD_SLICE:
            return
        if self._running:
            self._idle.clear()
            self._load_waiting = True
            if self._running:  # look again: the last request may have left before it could see the flag
                self._idle.wait(_STEP_ASIDE_MAX)
            self._load_waiting = False
        self._slice_started = time.perf_counter()

    def _load(self, ref: str, *, warm_up: bool = True) -> _Bundle:
        """Load, verify and (unless a swap does it later, in :meth:`_prove`) warm up ``ref``, stepping aside."""
        self._slice_started = time.perf_counter()
        with artefacts.yielding_to(self._step_aside):
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
        if warm_up:
            self._warm_up(bundle)
        return bundle

    def _prove(self, bundle: _Bundle, new: _State) -> None:
        """Make sure ``bundle`` predicts, then switch to ``new``: with the next request, or a smoke prediction.

        The next request tries it if one came in the last ``_TRIAL_WAIT`` s (waiting that long at most) and
        no A/B test sends requests to the arms (:mod:`.warm_up`)."""
        if new.router is None and time.perf_counter() - self._last_arrival < _TRIAL_WAIT:
            trial = self._trial = _Trial(bundle, lambda: setattr(self, "_state", new))
            trial.decided.wait(_TRIAL_WAIT)
            self._trial = None
            trial.close()  # waits for a request still trying the new model
            if trial.answered:
                return  # that request switched
            if trial.refusal is not None:
                raise UnservableModelError(f"v{bundle.version} was not swapped in: {trial.refusal}.")
        self._warm_up(bundle)
        self._state = new  # the switch

    def _warm_up(self, bundle: _Bundle) -> None:
        """A smoke prediction, in a pause between requests; a request arriving meanwhile waits for it."""
        self._step_aside(now=True)
        smoke_prediction(bundle)
