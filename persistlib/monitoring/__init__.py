"""Monitoring: watch the inputs for drift, and run the retrain loop that answers it.

This subpackage is layer 3 of persistlib. It sits above serving (the loop
swaps new versions into a running :class:`~persistlib.serving.ModelServer` and
reads its :class:`~persistlib.serving.AuditLog`) and the core (gate, registry),
and below the widgets, which draw it. It needs scipy (for the KS test and the
Wasserstein distance), so ``import persistlib`` does not import it: the
top-level names ``persistlib.DriftMonitor``, ``persistlib.RetrainLoop`` and
``persistlib.psi`` load it on first use.

Think of a travel guidebook. When the city changes you do not throw the 2019
edition away and you do not scribble over it: you publish a new edition and
keep the old one on the shelf. The loop does the same with models. Each cycle:

1. **Monitor**: has the world moved? (:class:`DriftMonitor`, :func:`psi`)
2. **Retrain** on recent data, with your own training function.
3. **Evaluate**: the new model and the one in production, on the same recent
   held-out data, through the gate.
4. **Serialise** the new model (v1.1.0, v1.2.0, ...).
5. **Version** it, with its card, and promote it.
6. **Hot-swap** it into the running server, with zero downtime.

Older editions stay in the registry, so an alarm can roll back in one step.

* :mod:`~persistlib.monitoring.drift`: :func:`psi`, :class:`DriftMonitor`,
  :func:`window_metrics` (performance on labelled windows, month by month).
* :mod:`~persistlib.monitoring.drift_report`: what a check says,
  :class:`DriftReport` and :class:`FeatureDrift`.
* :mod:`~persistlib.monitoring.retrain`: :class:`RetrainLoop`, the cycle.
* :mod:`~persistlib.monitoring.decisions`: what a cycle decided,
  :class:`CycleResult`, and its log (``read_log``).
"""

from __future__ import annotations

from .decisions import CycleResult
from .drift import DriftMonitor, psi, window_metrics
from .drift_report import DriftReport, FeatureDrift
from .retrain import RetrainLoop

__all__ = ["psi", "DriftMonitor", "DriftReport", "FeatureDrift", "window_metrics", "RetrainLoop", "CycleResult"]
