"""The retrain loop: drift detected -> retrain -> gate -> version -> hot-swap, with every decision on record.

Each part exists on its own: :class:`~persistlib.monitoring.drift.DriftMonitor`
watches the inputs, :class:`~persistlib.gate.Gate` judges a model,
:class:`~persistlib.registry.Registry` versions it, and
:class:`~persistlib.serving.ModelServer` swaps it in without downtime.
:class:`RetrainLoop` wires them into one cycle, and holds the rules that make
the cycle safe to leave running:

* **Champion and challenger on the same data.** The candidate and the model in
  production are both scored on the *same* recent held-out window, and the
  candidate must beat production there (within the gate's tolerance). The
  production card's numbers were measured on last year's data; comparing with
  them compares apples with last year's apples.
* **A failing gate changes nothing.** Nothing is saved; production keeps serving.
  A crash between saving and serving changes nothing either: the new version
  stays in the registry, unpromoted, and production keeps serving.
* **A cooldown stops flapping.** After a promotion, drift does not trigger
  another retrain for ``cooldown`` cycles: the new model gets time to show
  what it does.
* **An alarm rolls back.** If the audit log shows the new version behaving
  worse live than the old one did, :meth:`RetrainLoop.check_alarm` returns the
  alias and the server to the old version.
* **Every cycle is on record.** Its decision and reasons go to a JSONL log,
  flushed to disk (:mod:`~persistlib.monitoring.decisions`), so a post-mortem
  can read what the loop did and why. Older versions stay in the registry,
  ready for a rollback.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._checks import check_number
from .._files import append_line, storage_errors
from ..aliases import check_alias
from ..card import utc_now
from ..errors import ArgumentTypeError, InvalidArgumentError, RetrainError
from ..gate import DEFAULT_THRESHOLDS, Gate, evaluate
from .decisions import DECISIONS, LOG_FILE, CycleResult, read_log
from .drift import DriftMonitor

__all__ = ["RetrainLoop", "CycleResult", "DECISIONS", "LOG_FILE"]

_ALARM_OPTIONS = ("max_rate_shift", "max_accuracy_drop")


@dataclass(frozen=True)
class _Promotion:
    """What the loop needs to remember about its last promotion (for the cooldown and the alarm)."""

    cycle: int
    window: str
    new: str
    old: str
    reference: Any  # the monitor's reference before the promotion, restored by a rollback


class RetrainLoop:
    """Monitor -> retrain -> evaluate -> save -> promote -> hot-swap, one cycle per call.

    Parameters
    ----------
    registry : Registry
        Where versions are saved and the alias is moved.
    server : ModelServer
        The running server, serving ``alias``; a promotion is swapped into it.
    train : callable
        ``train(X, y) -> fitted model``: your training recipe, run on each
        drifted window.
    monitor : DriftMonitor
        Judges each recent window. After a promotion its reference becomes the
        window the new model learned from.
    thresholds : mapping of str to float, default=DEFAULT_THRESHOLDS
        The gate's minimum scores. The gate's baseline is production's score
        on the same holdout, measured each cycle.
    tolerance : float, default=0.0
        How far below production a candidate may score and still pass.
    alias : str, default="production"
    cooldown : int, default=1
        Cycles after a promotion during which drift does not trigger another
        retrain (0: none).
    log_path : str or os.PathLike, optional
        The JSONL decision log; by default ``retrain_log.jsonl`` in the registry folder.
    audit : AuditLog, optional
        The live record that :meth:`check_alarm` reads.
    alarm : mapping, optional
        Options for :meth:`AuditLog.compare`: ``max_rate_shift``, ``max_accuracy_drop``.

    Examples
    --------
    >>> loop = RetrainLoop(registry, server, train, monitor=DriftMonitor(X_train))  # doctest: +SKIP
    >>> print(loop.run_cycle(X_month, y_month, X_check, y_check, label="2026-03"))  # doctest: +SKIP
    ✓ cycle 1 (2026-03): promoted v1.1.0, serving v1.1.0: v1.1.0 matched or beat v1.0.0 on the same holdout ...
    """

    def __init__(
        self,
        registry: Any,
        server: Any,
        train: Callable[[Any, Any], Any],
        *,
        monitor: DriftMonitor,
        thresholds: Mapping[str, float] = DEFAULT_THRESHOLDS,
        tolerance: float = 0.0,
        alias: str = "production",
        cooldown: int = 1,
        log_path: str | os.PathLike | None = None,
        audit: Any = None,
        alarm: Mapping[str, float] | None = None,
    ):
        _require(registry, "registry", ("save", "promote", "rollback", "load", "aliases"), "persistlib.Registry")
        _require(server, "server", ("swap", "rollback"), "persistlib.ModelServer")
        if not callable(train):
            raise ArgumentTypeError(f"train must be a function (X, y) -> fitted model, got {type(train).__name__}.")
        if not isinstance(monitor, DriftMonitor):
            raise ArgumentTypeError(f"monitor must be a DriftMonitor(reference_X), got {type(monitor).__name__}.")
        self.alias = check_alias(alias)
        if getattr(server, "alias", alias) != alias:
            raise InvalidArgumentError(
                f"the server serves {server.alias!r} but the loop promotes {alias!r}; start the server with "
                f"ModelServer(registry, {alias!r}), or pass alias={server.alias!r}."
            )
        gate = Gate(thresholds, tolerance=tolerance)  # checks both before any cycle runs
        self.thresholds, self.tolerance = gate.thresholds, gate.tolerance
        self.cooldown = check_number(cooldown, "cooldown", low=0, integer=True, what="an integer >= 0 (cycles)")
        self.alarm = _alarm_options(alarm, audit)
        if audit is not None:
            _require(audit, "audit", ("compare", "flush"), "persistlib.AuditLog")
        self.registry, self.server, self.train, self.monitor, self.audit = registry, server, train, monitor, audit
        if log_path is None:
            if getattr(registry, "root", None) is None:
                raise InvalidArgumentError("this registry has no .root folder for the decision log; pass log_path=.")
            log_path = Path(registry.root) / LOG_FILE
        self.log_path = Path(log_path)
        if self.log_path.is_dir():
            raise InvalidArgumentError(f"log_path {str(self.log_path)!r} is a folder; pass a file path.")
        with storage_errors(f"create the folder for the decision log {self.log_path}"):
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._history: list[CycleResult] = []
        self._cycles = 0
        self._promotion: _Promotion | None = None  # the last one (cooldown)
        self._watching: _Promotion | None = None  # the one the alarm watches, until rolled back
        self._production: tuple[str, Any] | None = None  # (version, model): versions never change

    def __repr__(self) -> str:
        return (
            f"<RetrainLoop {self.alias!r}: {self._cycles} cycle(s), serving v{self.server.version}, "
            f"cooldown {self.cooldown}>"
        )

    @property
    def history(self) -> list[CycleResult]:
        """The cycles this loop ran (rollbacks included), oldest first. :meth:`read_log` has earlier runs too."""
        return list(self._history)

    # ------------------------------------------------------------------ one cycle

    def run_cycle(
        self, X_recent: Any, y_recent: Any, X_holdout: Any, y_holdout: Any, *, label: str = ""
    ) -> CycleResult:
        """Run one cycle on a recent window; return (and log) its decision.

        1. The monitor checks ``X_recent``. No drift, or too few rows: stop.
        2. Within ``cooldown`` cycles of the last promotion: stop.
        3. ``train(X_recent, y_recent)`` makes a candidate.
        4. Candidate and production are scored on the same ``X_holdout, y_holdout``;
           the gate needs the thresholds, and production's score as the baseline.
        5. Failed: stop; nothing is saved.
        6. Passed: save the candidate (with its card), promote it, swap it into
           the server; its training window becomes the monitor's reference.

        Production's score on the holdout is recorded in every cycle, so the
        log shows its performance window by window.

        Parameters
        ----------
        X_recent, y_recent : DataFrame and labels
            The recent window: checked for drift, and trained on.
        X_holdout, y_holdout : DataFrame and labels
            Recent rows *not* in the training window, to judge both models.
        label : str, optional
            Names the window in the result and the log (``"2026-03"``).

        Raises
        ------
        RetrainError
            If promoting or swapping failed after the candidate was saved.
            Production is left as it was, and nothing is recorded.
        ArgumentTypeError, InvalidArgumentError
            For bad data, or if ``train`` does not return a fitted model.
            Exceptions raised by ``train`` itself propagate unchanged.
        """
        if not isinstance(label, str):
            raise ArgumentTypeError(f"label must be a string naming the window, e.g. '2026-03', got {label!r}.")
        _check_pair(X_recent, y_recent, "X_recent", "y_recent")
        _check_pair(X_holdout, y_holdout, "X_holdout", "y_holdout")
        n = self._cycles + 1
        drift = self.monitor.check(X_recent)
        serving = self.server.version
        production_metrics = evaluate(self._production_model(serving), X_holdout, y_holdout)
        record = {"cycle": n, "window": label, "drift": drift, "production_metrics": production_metrics}
        if not drift.drifted:
            reasons = drift.reasons or (
                f"no feature drifted (highest PSI {drift.max_psi:.3f} < {drift.psi_threshold:g}; "
                "no KS difference with a non-trivial effect)",
            )
            return self._record(decision=drift.status, reasons=reasons, **record)
        last = self._promotion
        if last is not None and n - last.cycle <= self.cooldown:
            why = (
                f"cooldown: v{last.new} was promoted in cycle {last.cycle}; drift does not trigger "
                f"a retrain before cycle {last.cycle + self.cooldown + 1}"
            )
            return self._record(decision="cooldown", reasons=(why, *drift.reasons), **record)

        candidate = self.train(X_recent, y_recent)
        if not hasattr(candidate, "predict"):
            raise ArgumentTypeError(
                f"train() must return a fitted model with .predict(); it returned {type(candidate).__name__}. "
                "Return the estimator after calling .fit(X, y) on it."
            )
        candidate_metrics = evaluate(candidate, X_holdout, y_holdout)
        baseline = {m: production_metrics[m] for m in self.thresholds if m in production_metrics}
        report = Gate(self.thresholds, baseline=baseline, tolerance=self.tolerance).check(candidate_metrics)
        record.update(candidate_metrics=candidate_metrics, gate=report.to_dict())
        if not report.passed:
            return self._record(decision="gate failed", reasons=tuple(report.failures()), **record)

        card = self.registry.save(
            candidate,
            metrics=candidate_metrics,
            dataset=X_recent,
            gate_report=report,
            notes=f"retrained by RetrainLoop, cycle {n}: {label}",
        )
        self._serve(card.version, serving, n)
        promotion = _Promotion(n, label, card.version, serving, self.monitor.reference)
        self.monitor.set_reference(X_recent)
        self._promotion = self._watching = promotion
        scores = ", ".join(f"{m} {candidate_metrics[m]:.3f} vs {production_metrics[m]:.3f}" for m in baseline)
        within = f" within tolerance {self.tolerance:g}" if self.tolerance else ""
        why = f"v{card.version} matched or beat v{serving} on the same holdout{within} ({scores})"
        return self._record(
            decision="promoted", reasons=(why, *drift.reasons), candidate_version=card.version, **record
        )

    def _production_model(self, version: str) -> Any:
        """The serving version's model, loaded (and verified) from the registry once per version."""
        if self._production is None or self._production[0] != version:
            model, _ = self.registry.load(version)
            self._production = (version, model)
        return self._production[1]

    def _serve(self, new: str, old: str, n: int) -> None:
        """Promote ``new`` and swap it in; on any failure, leave the alias and the server on ``old``."""
        try:
            self.registry.promote(new, self.alias)
            self.server.swap(new)
        except Exception as error:
            undone = ""
            try:
                if self.registry.aliases().get(self.alias) == new:
                    self.registry.rollback(self.alias)
                    undone = f" {self.alias!r} was moved back to v{old}."
            except Exception as second:
                raise RetrainError(
                    f"cycle {n}: saved v{new}, but serving it failed ({error}), and moving {self.alias!r} back to "
                    f"v{old} failed too ({second}). The server still serves v{self.server.version}; check "
                    f"registry.aliases() and run registry.promote('{old}', '{self.alias}').",
                    saved_version=new,
                    production_version=self.server.version,
                ) from error
            raise RetrainError(
                f"cycle {n}: saved v{new} but could not serve it ({error}).{undone} Production still serves "
                f"v{self.server.version}; v{new} stays in the registry, unpromoted. Fix the cause and run the "
                "cycle again (it saves a new version), or promote it by hand.",
                saved_version=new,
                production_version=self.server.version,
            ) from error

    # ------------------------------------------------------------------ the alarm

    def check_alarm(self, *, since: Any = None) -> CycleResult | None:
        """Roll back the last promotion if the audit log shows it doing worse live than its predecessor.

        Compares the new version's live behaviour with the previous one's
        (:meth:`AuditLog.compare` with this loop's ``alarm`` options, after a
        flush). If the alarm fires, the alias and the server return to the old
        version, the monitor to its old reference, and a "rolled back" cycle is
        recorded with the alarm's reasons.

        Parameters
        ----------
        since : str or datetime, optional
            Compare only predictions made since then (default: the whole log).

        Returns
        -------
        CycleResult or None
            ``None`` when there is no audit log, no promotion to watch, or the
            alarm did not fire (call again when more outcomes are in).

        Raises
        ------
        AuditError
            If the log cannot answer, e.g. a version has no prediction yet.
        RetrainError
            If production moved since the loop promoted (someone else promoted
            or swapped): the loop does not overrule them.
        """
        watched = self._watching
        if self.audit is None or watched is None:
            return None
        self.audit.flush()
        comparison = self.audit.compare(watched.new, watched.old, since=since, **self.alarm)
        if not comparison.fired:
            return None
        alias_now, serving = self.registry.aliases().get(self.alias), self.server.version
        if alias_now != watched.new or serving != watched.new:
            raise RetrainError(
                f"the alarm fired for v{watched.new} ({'; '.join(comparison.reasons)}), but production moved since the "
                f"loop promoted it ({self.alias!r} -> v{alias_now}, server on v{serving}); roll back by hand.",
                production_version=serving,
            )
        back = self.registry.rollback(self.alias)
        if self.server.previous_version == back:
            self.server.rollback()
        else:
            self.server.swap(back)
        self.monitor.set_reference(watched.reference)
        self._watching = None
        return self._record(
            cycle=watched.cycle, window=watched.window, decision="rolled back", reasons=comparison.reasons, drift=None
        )

    # ------------------------------------------------------------------ the record

    def _record(self, *, cycle: int, decision: str, reasons: tuple[str, ...], **fields: Any) -> CycleResult:
        result = CycleResult(
            cycle=cycle,
            at=utc_now(),
            decision=decision,
            reasons=tuple(reasons),
            production_version=self.server.version,
            **fields,
        )
        self._cycles = max(self._cycles, cycle)
        self._history.append(result)
        with storage_errors(f"append cycle {cycle} to the decision log {self.log_path}"):
            append_line(self.log_path, json.dumps(result.to_dict()))
        return result

    @staticmethod
    def read_log(path: str | os.PathLike) -> list[dict[str, Any]]:
        """Read a decision log back, oldest first (see :func:`persistlib.monitoring.decisions.read_log`)."""
        return read_log(path)


def _require(obj: Any, name: str, methods: tuple[str, ...], like: str) -> None:
    missing = [m for m in methods if not callable(getattr(obj, m, None))]
    if missing:
        raise ArgumentTypeError(f"{name} must be a {like} (with .{'(), .'.join(methods)}()); got {type(obj).__name__}.")


def _check_pair(X: Any, y: Any, x_name: str, y_name: str) -> None:
    try:
        n_x, n_y = len(X), len(y)
    except TypeError:
        raise ArgumentTypeError(f"{x_name} and {y_name} must be rows and labels (a DataFrame and a Series).") from None
    if n_x != n_y:
        raise InvalidArgumentError(f"{x_name} has {n_x} rows but {y_name} has {n_y}; pass matching rows and labels.")


def _alarm_options(alarm: Mapping[str, float] | None, audit: Any) -> dict[str, float]:
    if alarm is None:
        return {}
    if not isinstance(alarm, Mapping):
        raise ArgumentTypeError(f"alarm must be a dict such as {{'max_accuracy_drop': 0.05}}, got {alarm!r}.")
    if audit is None:
        raise InvalidArgumentError("alarm= needs audit=AuditLog(...): the alarm reads live behaviour from the log.")
    unknown = sorted(set(alarm) - set(_ALARM_OPTIONS))
    if unknown:
        raise InvalidArgumentError(f"alarm has unknown option(s) {unknown}; use {list(_ALARM_OPTIONS)}.")
    return {k: check_number(v, f"alarm[{k!r}]", low=0, high=1) for k, v in alarm.items()}
