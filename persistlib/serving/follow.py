"""Follow an alias: promote once in the registry, and every running server swaps to it.

A registry's alias (``production``) says which version *should* serve; a
running :class:`~persistlib.serving.ModelServer` serves what it loaded. MLflow
stops there: ``mlflow models serve`` cannot reload a model in place. An
:class:`AliasFollower` closes the gap. It reads the alias, every ``every``
seconds in a daemon thread or when told (:meth:`AliasFollower.check`, or ``POST
/admin/follow/check`` over HTTP), and when the alias has moved it hot-swaps the
server to the new version with :meth:`ModelServer.swap_snapshot`: zero dropped
requests, and a version that fails to load or verify is never served.

Following never endangers serving. A registry that cannot be reached, or a
version that fails its checks, leaves the current model serving; the follower
records the problem in :attr:`AliasFollower.last_error` and tries again, waiting
twice as long after each failure (at most ``max_backoff`` seconds).

The follower acts on *moves of the alias*, not on what the server serves: a
manual ``server.swap("1.0.0")`` holds until the alias moves again.
"""

from __future__ import annotations

import threading
from typing import Any

from .._checks import check_number
from ..errors import ArgumentTypeError, FollowError, InvalidArgumentError
from .server import ModelServer

__all__ = ["AliasFollower", "follow_alias", "follower_of", "DEFAULT_MAX_BACKOFF"]

#: The longest wait between two checks after repeated failures, in seconds.
DEFAULT_MAX_BACKOFF = 30.0

_FOLLOWERS: dict[int, AliasFollower] = {}  # id(server) -> its running follower (which keeps the server alive)
_FOLLOWERS_LOCK = threading.Lock()


def follow_alias(
    server: ModelServer, alias: str = "production", every: float = 1.0, *, max_backoff: float = DEFAULT_MAX_BACKOFF
) -> AliasFollower:
    """Make ``server`` follow ``alias``: check it every ``every`` seconds in a daemon thread, swap when it moves.

    Parameters
    ----------
    server : ModelServer
        The server to keep on the alias; one follower per server at a time.
    alias : str, default="production"
        An alias of ``server.registry`` (it must exist now).
    every : float, default=1.0
        Seconds between two checks (> 0).
    max_backoff : float, default=30.0
        After failures the wait doubles, up to this many seconds (never less than ``every``).

    Returns
    -------
    AliasFollower
        Running; call :meth:`~AliasFollower.stop` (or use it in a ``with`` block) to stop following.

    Examples
    --------
    >>> follower = pl.follow_alias(server, "production", every=0.5)   # doctest: +SKIP
    >>> registry.promote("2.0.0")        # within about 0.5 s, server.version == "2.0.0"  # doctest: +SKIP
    >>> follower.stop()                                                # doctest: +SKIP
    """
    return AliasFollower(server, alias, every=every, max_backoff=max_backoff).start()


def follower_of(server: ModelServer) -> AliasFollower | None:
    """The running follower of ``server``, or ``None`` (the HTTP endpoint finds it this way)."""
    with _FOLLOWERS_LOCK:
        return _FOLLOWERS.get(id(server))


def next_delay(delay: float, every: float, cap: float) -> float:
    """The wait before the next check after a failure: twice the last wait, at least ``every``, at most ``cap``."""
    return min(max(2.0 * delay, every), max(cap, every))


class AliasFollower:
    """Keeps one :class:`ModelServer` on the version an alias points to. Made by :func:`follow_alias`.

    Read-only state, for widgets and tests: :attr:`version` (the alias's version
    this follower last applied), :attr:`swaps`, :attr:`checks`, :attr:`errors`,
    :attr:`last_error` and :attr:`running`.
    """

    def __init__(
        self,
        server: ModelServer,
        alias: str = "production",
        *,
        every: float = 1.0,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
    ):
        if not isinstance(server, ModelServer):
            raise ArgumentTypeError(f"follow_alias() takes a ModelServer, got {type(server).__name__}.")
        if not isinstance(alias, str):
            raise ArgumentTypeError(f"alias must be a string such as 'production', got {type(alias).__name__}.")
        if not alias.strip():
            raise InvalidArgumentError(
                f"alias must name an alias of the registry, such as 'production'; got {alias!r}."
            )
        self.every = check_number(every, "every", low=0, low_open=True, what="a number of seconds > 0")
        self.max_backoff = check_number(max_backoff, "max_backoff", low=0, low_open=True)
        known = server.registry.aliases()
        if alias not in known:
            raise InvalidArgumentError(
                f"the registry has no alias {alias!r} to follow (aliases: {sorted(known) or 'none yet'}). "
                f"Promote a version to it first: registry.promote(version, alias={alias!r})."
            )
        self.server = server
        self.alias = alias
        self._version = server.version  # what the server serves now; the first check swaps if the alias differs
        self._swaps = self._checks = self._errors = 0
        self._last_error: str | None = None
        self._lock = threading.Lock()  # one check at a time: the poller's and any told check
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<AliasFollower {self.alias!r} -> v{self._version}, every {self.every:g}s, {state}>"

    def __enter__(self) -> AliasFollower:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def version(self) -> str:
        """The version of the alias this follower last swapped to (at first, the server's version)."""
        return self._version

    @property
    def last_error(self) -> str | None:
        """Why the last check failed (the server kept serving), or ``None`` after a good check."""
        return self._last_error

    @property
    def swaps(self) -> int:
        """How many times this follower moved the server to where the alias moved."""
        return self._swaps

    @property
    def checks(self) -> int:
        """How many checks have finished, polled or told, good or failed."""
        return self._checks

    @property
    def errors(self) -> int:
        """How many checks have failed."""
        return self._errors

    @property
    def running(self) -> bool:
        """Whether the polling thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> AliasFollower:
        """Start the polling thread (the first check runs at once). Returns ``self``."""
        with _FOLLOWERS_LOCK:
            other = _FOLLOWERS.get(id(self.server))
            if other is self:
                return self
            if other is not None:
                raise FollowError(
                    f"this server already follows {other.alias!r}; two followers would fight over it. "
                    "Stop that one first (follower.stop())."
                )
            if self._stop.is_set():
                raise FollowError("this follower was stopped; make a new one with follow_alias(server, alias).")
            _FOLLOWERS[id(self.server)] = self
            self._thread = threading.Thread(target=self._run, name=f"persistlib-follow-{self.alias}", daemon=True)
            self._thread.start()
        return self

    def check(self) -> str | None:
        """Read the alias once; if it moved, swap the server to it. Returns the new version, or ``None``.

        Safe to call while the thread polls: checks run one at a time.

        Raises
        ------
        FollowError
            If the alias cannot be read or its version cannot be loaded, verified
            or warmed up. The server keeps serving its model, :attr:`last_error`
            says why, and a running follower retries by itself.
        """
        with self._lock:
            try:
                target = self.server.registry.resolve(self.alias)
                if target != self._version:
                    self.server.swap_snapshot(target)  # the version read above, even if the alias moves again now
            except Exception as e:  # anything the registry raises (network, MLflow, ...) must not kill serving
                self._last_error = (
                    f"alias {self.alias!r} not followed ({type(e).__name__}: {e}); still serving "
                    f"v{self.server.version}. Fix the registry or promote a version that loads; "
                    "the follower retries by itself."
                )
                self._errors += 1
                self._checks += 1
                raise FollowError(self._last_error) from e
            moved = target if target != self._version else None
            if moved is not None:
                self._version = target
                self._swaps += 1
            self._last_error = None
            self._checks += 1  # last: a test waiting for a check sees all of its effects
            return moved

    def stop(self, timeout: float = 30.0) -> None:
        """Stop polling and wait for the thread (at most ``timeout`` s, e.g. for a swap in progress). Idempotent."""
        self._stop.set()
        with _FOLLOWERS_LOCK:
            if _FOLLOWERS.get(id(self.server)) is self:
                del _FOLLOWERS[id(self.server)]
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        delay = 0.0  # the first check at once
        while not self._stop.wait(delay):
            try:
                self.check()
            except FollowError:  # recorded in last_error; serving goes on
                delay = next_delay(delay, self.every, self.max_backoff)
            else:
                delay = self.every
