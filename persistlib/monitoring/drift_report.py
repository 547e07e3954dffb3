"""What a drift check says: one row per feature, and a verdict for the window.

:class:`DriftReport` is what :meth:`~persistlib.monitoring.drift.DriftMonitor.check`
returns, and what the retrain loop records. It is plain, frozen data, kept apart
from the statistics that produce it so that a log, a notebook table and a
dashboard can all read it the same way: ``report.drifted``, ``report.reasons``,
``report.to_frame()``, ``str(report)`` (a one-line verdict with a mark, never
colour alone) and the HTML table a notebook shows.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import pandas as pd

from .._display import mark

__all__ = ["FeatureDrift", "DriftReport", "STATUSES"]

#: The states a :class:`DriftReport` can be in.
STATUSES = ("no drift", "drift", "insufficient data")

_COLUMNS = ("feature", "psi", "ks_statistic", "ks_pvalue", "effect_size", "drifted", "reason")


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's row in a :class:`DriftReport`.

    Attributes
    ----------
    feature : str
    psi : float
        Population Stability Index against the reference (:func:`~persistlib.monitoring.drift.psi`).
    ks_statistic, ks_pvalue : float
        Two-sample Kolmogorov-Smirnov statistic and p-value.
    effect_size : float
        Wasserstein distance divided by the reference's standard deviation
        (0 when the reference is constant): how far the values moved, in SDs.
    drifted : bool
    reason : str
        Why it counts as drifted (``""`` when it does not), e.g. ``"PSI 0.31 >= 0.2"``.
    """

    feature: str
    psi: float
    ks_statistic: float
    ks_pvalue: float
    effect_size: float
    drifted: bool
    reason: str


@dataclass(frozen=True)
class DriftReport:
    """The verdict of :meth:`~persistlib.monitoring.drift.DriftMonitor.check` on one window of rows.

    Attributes
    ----------
    n_samples : int
        Rows in the window.
    status : {"no drift", "drift", "insufficient data"}
    features : tuple of FeatureDrift
        One per monitored feature; empty for "insufficient data" (nothing was judged).
    psi_threshold : float
    min_samples : int
    """

    n_samples: int
    status: str
    features: tuple[FeatureDrift, ...]
    psi_threshold: float
    min_samples: int

    @property
    def drifted(self) -> bool:
        """Whether the window counts as drifted (``status == "drift"``)."""
        return self.status == "drift"

    @property
    def reasons(self) -> tuple[str, ...]:
        """``"feature: reason"`` per drifted feature; for too few rows, one reason saying how many are needed."""
        if self.status == "insufficient data":
            return (
                f"only {self.n_samples:,} rows; at least {self.min_samples:,} are needed to judge drift, "
                "so this window is not judged",
            )
        return tuple(f"{f.feature}: {f.reason}" for f in self.features if f.drifted)

    @property
    def max_psi(self) -> float:
        """The highest PSI of any feature (0.0 when no feature was checked)."""
        return max((f.psi for f in self.features), default=0.0)

    def to_frame(self) -> pd.DataFrame:
        """One row per feature: feature, psi, ks_statistic, ks_pvalue, effect_size, drifted, reason."""
        return pd.DataFrame([[getattr(f, c) for c in _COLUMNS] for f in self.features], columns=list(_COLUMNS))

    def __str__(self) -> str:
        if self.status == "insufficient data":
            return f"– not judged: {self.reasons[0]}"
        if not self.drifted:
            top = max(self.features, key=lambda f: f.psi)
            return f"{mark(True)} no drift in {self.n_samples:,} rows (highest PSI {top.psi:.3f}: {top.feature})"
        reasons = self.reasons
        more = f" (+{len(reasons) - 3} more)" if len(reasons) > 3 else ""
        return f"{mark(False)} drift in {self.n_samples:,} rows: " + "; ".join(reasons[:3]) + more

    def __repr__(self) -> str:
        return f"<DriftReport {self.status}: {self.n_samples} rows, max PSI {self.max_psi:.3f}>"

    def _repr_html_(self) -> str:
        head = (
            "<tr><th>feature</th><th>PSI</th><th>KS statistic</th><th>KS p-value</th>"
            "<th>effect (SD)</th><th>drifted?</th><th>reason</th></tr>"
        )
        body = "".join(
            f"<tr><td>{html.escape(f.feature)}</td><td>{f.psi:.3f}</td><td>{f.ks_statistic:.3f}</td>"
            f"<td>{f.ks_pvalue:.2g}</td><td>{f.effect_size:.3f}</td>"
            f"<td>{mark(not f.drifted)} {'drift' if f.drifted else 'stable'}</td><td>{html.escape(f.reason)}</td></tr>"
            for f in self.features
        )
        table = f"<table>{head}{body}</table>" if self.features else ""
        return f'<div class="persistlib-drift-report"><b>{html.escape(str(self))}</b>{table}</div>'
