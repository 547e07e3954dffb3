"""The hot-swap console: watch a model swap under live load.

:class:`HotSwapConsole` sends a steady stream of requests to a server (in the
same process, or over HTTP) from a background thread, counts answers and
errors, and charts which version answered each request. Press **Swap** (or
call ``console.swap_button.click()``) and the chart shows a clean step from
one version to the next, with zero errors. :func:`next_ref` picks what
**Swap** serves next. (The A/B test panel is :mod:`persistlib.widgets.ab_panel`.)

All numbers come from persistlib; the console only displays them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import ipywidgets as W

from .._checks import check_number
from .._display import mark
from ..errors import ArgumentTypeError, ConsoleWaitError, InvalidArgumentError, PersistError, SwapError
from ..serving import ModelServer
from ._version_chart import version_chart_png

__all__ = ["HotSwapConsole", "next_ref"]


def next_ref(current: str, refs: Sequence[str], resolve: Callable[[str], str] | None = None) -> str:
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


class HotSwapConsole(W.VBox):
    """A load generator, live counters, Swap/Rollback buttons and a versions-over-time chart.

    Parameters
    ----------
    target : ModelServer or str
        A server in this process, or the base URL of one started with
        :func:`persistlib.start_http` (e.g. ``"http://127.0.0.1:50123"``).
    rows : list of dict, optional
        The request body's rows. Default: one row of zeros with the server's
        features (in-process only; required for a URL).
    swap_to : str or list of str, optional
        What **Swap** serves next, in turn (versions or aliases); a press always
        moves to a version other than the one serving (see :func:`next_ref`).
        Default: every version in the server's registry.
    interval : float, default=0.002
        Seconds the load generator waits between requests.
    admin_token : str, optional
        With a URL: the token of its ``/admin`` endpoints. Default: the token of
        the server :func:`persistlib.start_http` started at that URL in this process.

    Attributes
    ----------
    requests_label, errors_label, version_label, status : Label
        Live text: ``"requests: 812"``, ``"errors: 0"``, ``"serving: v2.0.0"``,
        and what the last button press did.
    swap_button, rollback_button : Button
    chart : Image
        PNG of the version that answered each request over time (redrawn by
        :meth:`stop` and :meth:`refresh_chart`).
    timeline : list of (seconds, version or None)
        One entry per request; ``None`` marks an error.
    """

    def __init__(
        self,
        target: ModelServer | str,
        *,
        rows: list[dict] | None = None,
        swap_to: str | Sequence[str] | None = None,
        interval: float = 0.002,
        admin_token: str | None = None,
    ):
        if isinstance(target, ModelServer):
            self._server: ModelServer | None = target
            self._url: str | None = None
            rows = rows if rows is not None else [dict.fromkeys(target.features, 0.0)]
            refs = (
                list(swap_to)
                if isinstance(swap_to, (list, tuple))
                else ([swap_to] if swap_to else target.registry.versions())
            )
        elif isinstance(target, str) and target.startswith("http"):
            self._server, self._url = None, target.rstrip("/")
            if rows is None or not swap_to:
                raise InvalidArgumentError(
                    "with a URL, pass rows=[{feature: value, ...}] and swap_to=['<version>', ...]."
                )
            refs = list(swap_to) if isinstance(swap_to, (list, tuple)) else [swap_to]
            if admin_token is None:
                from ..serving.background import admin_token_for

                admin_token = admin_token_for(self._url)
        else:
            raise ArgumentTypeError(f"target must be a ModelServer or an http:// URL, got {target!r}.")
        if not isinstance(interval, (int, float)) or interval < 0:
            raise InvalidArgumentError(f"interval must be a number of seconds >= 0, got {interval!r}.")
        self.rows, self.interval = rows, float(interval)
        self._admin_headers = {"Authorization": f"Bearer {admin_token}"} if admin_token else {}
        self._refs: list[str] = [str(r) for r in refs]
        self._lock = threading.Lock()
        self._sent = threading.Condition(self._lock)  # notified after each request the load sends
        self._stop = threading.Event()
        self._ended = True  # no load loop is running: start() clears it, the loop sets it as it ends
        self._thread: threading.Thread | None = None
        self._t0 = time.monotonic()
        self.timeline: list[tuple[float, str | None]] = []
        self.swaps: list[tuple[float, str]] = []
        self.last_error: str | None = None

        self.requests_label = W.Label("requests: 0").add_class("persistlib-hotswap-requests")
        self.errors_label = W.Label("errors: 0").add_class("persistlib-hotswap-errors")
        self.version_label = W.Label(f"serving: v{self._current_version()}").add_class("persistlib-hotswap-version")
        self.status = W.Label("stopped").add_class("persistlib-hotswap-status")
        self.start_button = W.Button(
            description="Start load", icon="play", tooltip="Start a background client that sends requests"
        ).add_class("persistlib-hotswap-start")
        self.stop_button = W.Button(
            description="Stop load", icon="stop", tooltip="Stop the background client"
        ).add_class("persistlib-hotswap-stop")
        self.swap_button = W.Button(
            description="Swap", icon="exchange", button_style="primary", tooltip="Hot-swap to the next version"
        ).add_class("persistlib-hotswap-swap")
        self.rollback_button = W.Button(
            description="Rollback", icon="undo", tooltip="Return to the version served before the last swap"
        ).add_class("persistlib-hotswap-rollback")
        # Hidden until the first drawing: an empty Image shows a browser's broken-image icon.
        self.chart = W.Image(format="png", layout=W.Layout(display="none")).add_class("persistlib-hotswap-chart")
        for label in (self.requests_label, self.errors_label, self.version_label):
            label.layout.margin = "0 2em 0 0"  # the counters read apart, not run together
        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.swap_button.on_click(lambda _: self._admin("swap"))
        self.rollback_button.on_click(lambda _: self._admin("rollback"))
        super().__init__(
            [
                W.HTML("<b>Hot-swap console</b>: a background client sends requests while you swap models."),
                W.HBox([self.start_button, self.stop_button, self.swap_button, self.rollback_button]),
                W.HBox([self.requests_label, self.errors_label, self.version_label]),
                self.status,
                self.chart,
            ]
        )
        self.add_class("persistlib-hotswap")

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<HotSwapConsole: v{self._current_version()}, {state}, {self.errors} errors>"

    # ------------------------------------------------------------------ facts

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def requests(self) -> int:
        """Requests answered or failed so far."""
        return len(self.timeline)

    @property
    def errors(self) -> int:
        """Requests that failed (any exception or non-200 answer)."""
        return sum(1 for _, v in self.timeline if v is None)

    @property
    def versions_seen(self) -> list[str]:
        """Versions that answered, in the order they first appeared."""
        return list(dict.fromkeys(v for _, v in self.timeline if v is not None))

    @property
    def clean_step(self) -> bool:
        """Whether the load saw clean switches only: no errors, and no flip-flopping between versions.

        ``True`` when at least one request was answered, none failed, and the
        answering version changed at most once per swap or rollback pressed on
        this console (at least one change is allowed, for a swap made
        elsewhere, e.g. ``server.rollback()``). A swap that let the old model
        answer again after the new one had (``v1 v2 v1 v2``) is not clean.
        """
        with self._lock:
            versions = [v for _, v in self.timeline]
            presses = len(self.swaps)
        if not versions or None in versions:
            return False
        changes = sum(1 for a, b in zip(versions, versions[1:], strict=False) if a != b)
        return changes <= max(1, presses)

    # ------------------------------------------------------------------ control

    def start(self) -> None:
        """Start the background load generator (no-op if it runs already)."""
        if self.running:
            return
        self._stop.clear()
        self._ended = False
        self._thread = threading.Thread(target=self._load_loop, name="persistlib-hotswap-load", daemon=True)
        self._thread.start()
        self.status.value = "running: sending requests"

    def wait(self, requests: int = 1, *, timeout: float = 30.0) -> None:
        """Wait until the load has sent ``requests`` more requests (answered or failed); use it, not a sleep.

        A fixed ``time.sleep`` after :meth:`start` guesses how fast the machine
        is, and a busy one (a shared Binder) misses the guess. Raises
        :class:`~persistlib.errors.ConsoleWaitError` if the load is not running,
        stops, or has not sent them within ``timeout`` seconds.
        """
        requests = check_number(requests, "requests", low=1, integer=True)
        timeout = check_number(timeout, "timeout", low=0, low_open=True, high=threading.TIMEOUT_MAX)
        if not self.running:
            raise ConsoleWaitError("the load is not running: call start() before wait().")
        with self._sent:
            target = len(self.timeline) + requests
            self._sent.wait_for(lambda: len(self.timeline) >= target or self._stop.is_set() or self._ended, timeout)
            missing = target - len(self.timeline)
        if missing > 0:
            why = f"the load ended (last error: {self.last_error})" if self._ended else f"{timeout:g} s passed"
            why = "the load was stopped" if self._stop.is_set() else why
            raise ConsoleWaitError(f"waited for {requests} requests, {missing} still missing: {why}.")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the load generator, wait for it (up to ``timeout`` seconds), then update the counters and chart.

        If the load thread is still busy after ``timeout`` (e.g. a request to a
        hung server), :attr:`running` stays ``True``, :attr:`status` says so,
        and calling ``stop()`` again waits again.
        """
        if not hasattr(self, "_stop"):  # __init__ failed before the widget was built
            return
        self._stop.set()
        with self._sent:
            self._sent.notify_all()  # a wait() for requests that will not come returns now
        if self._thread is not None:
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self._thread = None
        self._update_labels()
        if self._thread is not None:
            self.status.value = (
                f"{mark(False)} stopping: the load thread is still busy after {timeout:g}s (a request may "
                "hang); call stop() again to wait longer."
            )
            return
        self.status.value = (
            f"stopped: {self.requests} requests, {mark(self.errors == 0)} {self.errors} errors, "
            f"versions {', '.join('v' + v for v in self.versions_seen) or '—'}"
        )
        self.refresh_chart()

    def close(self) -> None:
        """Stop the load and close the widget."""
        self.stop()
        super().close()

    def _next_ref(self) -> str:
        resolve = self._server.registry.resolve if self._server is not None else None
        return next_ref(self._current_version(), self._refs, resolve)

    def _admin(self, action: str) -> None:
        try:
            if self._server is not None:
                new = self._server.swap(self._next_ref()) if action == "swap" else self._server.rollback()
            else:
                import httpx

                body = {"ref": self._next_ref()} if action == "swap" else {}
                r = httpx.post(f"{self._url}/admin/{action}", json=body, headers=self._admin_headers, timeout=30)
                if r.status_code != 200:
                    raise SwapError(r.json().get("detail", r.text))
                new = r.json()["version"]
        except Exception as e:  # shown to the student; the old model keeps serving
            self.status.value = f"{mark(False)} {action} failed, still serving v{self._current_version()}: {e}"
            return
        with self._lock:
            self.swaps.append((time.monotonic() - self._t0, new))
        self.version_label.value = f"serving: v{new}"
        self.status.value = f"{mark(True)} {action}: now serving v{new}, errors so far {self.errors}"

    # ------------------------------------------------------------------ load

    def _load_loop(self) -> None:
        client = None
        if self._url is not None:
            import httpx

            client = httpx.Client(base_url=self._url, timeout=10)
        last_update = 0.0
        try:
            while not self._stop.is_set():
                try:
                    if client is None:
                        version: str | None = self._server.predict(self.rows).version  # type: ignore[union-attr]
                    else:
                        r = client.post("/predict", json={"rows": self.rows})
                        version = r.json()["version"] if r.status_code == 200 else None
                        if version is None:
                            self.last_error = f"HTTP {r.status_code}: {r.text[:200]}"
                except Exception as e:  # counted as an error, shown in last_error
                    version, self.last_error = None, repr(e)
                now = time.monotonic() - self._t0
                with self._sent:
                    self.timeline.append((now, version))
                    self._sent.notify_all()
                if now - last_update > 0.2:
                    try:
                        self._update_labels()
                    except Exception as e:  # e.g. a server that is down: the load goes on, counting errors
                        self.last_error = repr(e)
                    last_update = now
                if self.interval:
                    time.sleep(self.interval)
        finally:
            with self._sent:
                self._ended = True
                self._sent.notify_all()  # a wait() for requests that will not come returns now
            if client is not None:
                client.close()

    def _current_version(self) -> str:
        if self._server is not None:
            return self._server.version
        with self._lock:
            done = [v for _, v in self.timeline if v is not None]
            swapped = self.swaps[-1] if self.swaps else None
        if swapped and (not done or self.timeline[-1][0] <= swapped[0]):
            return swapped[1]
        if done:
            return done[-1]
        import httpx

        return httpx.get(f"{self._url}/version", timeout=10).json()["version"]

    def _update_labels(self) -> None:
        self.requests_label.value = f"requests: {self.requests}"
        self.errors_label.value = f"errors: {self.errors}"
        self.version_label.value = f"serving: v{self._current_version()}"

    def refresh_chart(self) -> None:
        """Redraw the versions-over-time chart into :attr:`chart` (before any request: how to fill it)."""
        with self._lock:
            timeline, swaps = list(self.timeline), list(self.swaps)
        self.chart.value = version_chart_png(timeline, swaps)
        self.chart.layout.display = None
