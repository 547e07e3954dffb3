"""Has the world moved since the model learned it? Input drift, measured per feature.

A model is trained on yesterday's customers and asked about today's. When the
inputs move (shorter tenures, higher prices), its accuracy usually follows, but
the labels that would show it arrive weeks later. The inputs arrive at once, so
we watch them. :class:`DriftMonitor` compares each window of new rows with a
*reference* (the data the production model was trained on), feature by feature.

Two measures, because each fails alone:

* **PSI** (Population Stability Index, :func:`psi`) compares the share of rows
  in each reference decile. Its rule of thumb (< 0.1 stable, 0.1-0.2 watch,
  >= 0.2 act) measures *how much* moved, and hardly depends on the window
  size, which makes it a good alarm.
* **The Kolmogorov-Smirnov test** (``scipy.stats.ks_2samp``) catches a change
  of shape that deciles hide, but its p-value answers "is there *any*
  difference?". With 100,000 rows a shift of 0.02 standard deviations is
  "significant" and means nothing. So KS only counts together with an *effect
  size* (Wasserstein distance in reference standard deviations) that is not
  trivial: KS alone never decides. And twelve features tested at 1% each would
  flag about one window in nine that did not move at all, so ``ks_alpha`` is
  shared among the features (Bonferroni): it bounds the share of undrifted
  windows that KS flags, however many features there are.

Tiny windows flap: 30 rows can look like anything. A window with fewer than
``min_samples`` rows is never judged drifted; its report says "insufficient data".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .._checks import check_number
from .._display import clip
from ..errors import ArgumentTypeError, InvalidArgumentError
from ..gate import evaluate
from .drift_report import STATUSES, DriftReport, FeatureDrift

__all__ = ["psi", "FeatureDrift", "DriftReport", "DriftMonitor", "window_metrics", "STATUSES", "EPSILON"]

#: The share given to an empty bin, so that ``ln(c / r)`` stays finite.
EPSILON = 1e-4

_KS_EXACT_MAX = 10_000  # reference rows x window rows up to which the KS p-value is computed exactly


# --------------------------------------------------------------------------- PSI


def psi(reference: Any, current: Any, *, bins: int = 10) -> float:
    """Population Stability Index of one feature: how far ``current`` moved from ``reference``.

    The bins are the reference's quantiles (deciles by default), so each holds
    about the same share of the reference; the outer bins reach to -inf and
    +inf. A feature with at most ``bins`` distinct values (a contract type, a
    yes/no flag) gets one bin per value instead, plus one for values the
    reference never had, so a category that appears from nowhere counts too.
    An empty bin gets a share of :data:`EPSILON`. Then
    ``PSI = sum((c - r) * ln(c / r))`` over the bins, with ``r`` and ``c`` the
    reference's and the current data's shares.

    Parameters
    ----------
    reference, current : array-like of numbers
        One feature's values (a list, an array or a pandas Series), finite.
    bins : int, default=10
        How many quantile bins to cut the reference into (at least 2).

    Returns
    -------
    float
        0 for identical distributions. Rule of thumb: below 0.1 stable,
        0.1-0.2 worth watching, 0.2 and above a real shift. For a normal
        feature whose mean moves by 0.3, 0.4, 0.5 and 0.6 standard deviations,
        PSI is about 0.09, 0.16, 0.24 and 0.34.

    Raises
    ------
    InvalidArgumentError
        If either input is empty, not one-dimensional or holds NaN or infinity.
    ArgumentTypeError
        If either input is not numeric.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> round(psi(rng.normal(size=20_000), rng.normal(0.6, 1, size=20_000)), 1)
    0.3
    """
    bins = check_number(bins, "bins", low=2, integer=True, what="an integer >= 2")
    ref = _values(reference, "reference")
    return _binner(ref, bins)(_values(current, "current"))


def _values(data: Any, name: str) -> np.ndarray:
    """``data`` as a 1-D float array with at least one value, all finite."""
    try:
        values = np.asarray(data, dtype=float)
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"{name} must hold numbers, got {clip(repr(data), 60)}.") from None
    if values.ndim != 1:
        raise InvalidArgumentError(f"{name} must be one feature (1-D), got shape {values.shape}; pass one column.")
    if values.size == 0:
        raise InvalidArgumentError(f"{name} is empty; PSI needs at least one value on each side.")
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        raise InvalidArgumentError(f"{name} holds {bad} NaN or infinite value(s); drop or impute them first.")
    return values


def _binner(reference: np.ndarray, bins: int) -> Callable[[np.ndarray], float]:
    """Bin the reference once; return ``current -> PSI`` (the monitor reuses it for every window)."""
    distinct = np.unique(reference)
    if len(distinct) <= bins:  # one bin per value, plus one for values the reference never had

        def index(x: np.ndarray) -> np.ndarray:
            pos = np.minimum(np.searchsorted(distinct, x), len(distinct) - 1)
            return np.where(distinct[pos] == x, pos, len(distinct))

        n_bins = len(distinct) + 1
    else:  # quantile bins; ties make some edges equal, and np.unique merges them
        inner = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1))[1:-1])

        def index(x: np.ndarray) -> np.ndarray:
            return np.searchsorted(inner, x, side="right")

        n_bins = len(inner) + 1

    def shares(x: np.ndarray) -> np.ndarray:
        counts = np.bincount(index(x), minlength=n_bins)
        return np.where(counts == 0, EPSILON, counts / len(x))

    r = shares(reference)

    def score(current: np.ndarray) -> float:
        c = shares(current)
        return float(np.sum((c - r) * np.log(c / r)))

    return score


# --------------------------------------------------------------------------- the monitor


class DriftMonitor:
    """Compare windows of new rows with a reference, feature by feature.

    A feature is drifted when its PSI reaches ``psi_threshold``, or when the
    KS test says the distributions differ (p < ``ks_alpha`` divided by the
    number of features) *and* the effect is not trivial (effect size >=
    ``min_effect``). A window drifts when any feature does. A window smaller
    than ``min_samples`` is never judged.

    Parameters
    ----------
    reference_X : pandas.DataFrame
        The normal: usually the production model's training data. Numeric
        columns, no NaN, at least ``min_samples`` rows. Every column is monitored.
    psi_threshold : float, default=0.2
        The PSI at which a feature counts as drifted (0.2: "a real shift").
    min_samples : int, default=200
        The smallest window that is judged at all.
    ks_alpha : float, default=0.01
        KS significance level for the whole window: each feature's test uses
        ``ks_alpha / n_features`` (:attr:`feature_alpha`), so an undrifted
        window is flagged by KS at most this often.
    min_effect : float, default=0.1
        The smallest effect size (in reference standard deviations) that lets
        a significant KS test count. Raise it if large windows alarm on shifts
        too small to matter.
    bins : int, default=10
        Quantile bins for PSI.

    Examples
    --------
    >>> from persistlib import make_churn
    >>> monitor = DriftMonitor(make_churn(2000, random_state=0)[0])
    >>> monitor.check(make_churn(1000, drift=1.0, random_state=1)[0]).drifted
    True
    """

    def __init__(
        self,
        reference_X: Any,
        *,
        psi_threshold: float = 0.2,
        min_samples: int = 200,
        ks_alpha: float = 0.01,
        min_effect: float = 0.1,
        bins: int = 10,
    ):
        self.psi_threshold = check_number(psi_threshold, "psi_threshold", low=0, low_open=True)
        self.min_samples = check_number(min_samples, "min_samples", low=1, integer=True, what="a positive integer")
        self.ks_alpha = check_number(ks_alpha, "ks_alpha", low=0, high=1, low_open=True, high_open=True)
        self.min_effect = check_number(min_effect, "min_effect", low=0)
        self.bins = check_number(bins, "bins", low=2, integer=True, what="an integer >= 2")
        self.set_reference(reference_X)

    def __repr__(self) -> str:
        return (
            f"DriftMonitor({len(self._reference):,} reference rows x {len(self.features)} features, "
            f"psi_threshold={self.psi_threshold:g}, min_samples={self.min_samples})"
        )

    @property
    def reference(self) -> pd.DataFrame:
        """The reference rows (a copy: changing it does not change the monitor)."""
        return self._reference.copy()

    @property
    def features(self) -> tuple[str, ...]:
        """The monitored columns, in the reference's order."""
        return tuple(self._columns)

    @property
    def feature_alpha(self) -> float:
        """The KS significance level each feature is tested at: ``ks_alpha / len(features)``."""
        return self.ks_alpha / len(self._columns)

    def set_reference(self, X: Any) -> None:
        """Make ``X`` the new normal, e.g. the data a newly promoted model was trained on.

        Raises
        ------
        ArgumentTypeError
            If ``X`` is not a DataFrame.
        InvalidArgumentError
            If it has no columns, a non-numeric column, NaN or infinity, or
            fewer than ``min_samples`` rows.
        """
        if not isinstance(X, pd.DataFrame) or X.shape[1] == 0:
            raise ArgumentTypeError(
                f"reference_X must be a pandas DataFrame with at least one column, got {type(X).__name__}; "
                "wrap an array with pandas.DataFrame(X, columns=[...])."
            )
        if len(X) < self.min_samples:
            raise InvalidArgumentError(
                f"reference_X has {len(X):,} rows, fewer than min_samples={self.min_samples:,}; a reference must be "
                "at least as large as the windows it judges. Pass more rows, or lower min_samples."
            )
        values = _numeric_columns(X, list(X.columns), "reference_X")
        self._reference = X.copy()
        self._columns = list(X.columns)
        self._ref = values
        self._std = {c: float(np.std(v)) for c, v in values.items()}
        self._psi = {c: _binner(v, self.bins) for c, v in values.items()}

    def check(self, X: Any) -> DriftReport:
        """Judge one window of rows against the reference.

        Parameters
        ----------
        X : pandas.DataFrame
            The window. It must have every reference column (others are ignored).

        Returns
        -------
        DriftReport
            Status "insufficient data" (and no feature rows) if ``X`` has fewer
            than ``min_samples`` rows, whatever its values.

        Raises
        ------
        ArgumentTypeError
            If ``X`` is not a DataFrame.
        InvalidArgumentError
            If a reference column is missing, or holds non-numbers, NaN or infinity.
        """
        if not isinstance(X, pd.DataFrame):
            raise ArgumentTypeError(
                f"check() needs a pandas DataFrame with the reference's columns, got {type(X).__name__}."
            )
        missing = [c for c in self._columns if c not in X.columns]
        if missing:
            raise InvalidArgumentError(
                f"the window lacks the reference column(s) {missing}; pass rows with every monitored feature "
                f"({list(self._columns)})."
            )
        values = _numeric_columns(X, self._columns, "the window")
        n = len(X)
        if n < self.min_samples:
            return DriftReport(n, "insufficient data", (), self.psi_threshold, self.min_samples)
        rows = tuple(self._feature(c, values[c]) for c in self._columns)
        status = "drift" if any(f.drifted for f in rows) else "no drift"
        return DriftReport(n, status, rows, self.psi_threshold, self.min_samples)

    def _feature(self, name: Any, current: np.ndarray) -> FeatureDrift:
        ref = self._ref[name]
        score = self._psi[name](current)
        # scipy's exact p-value is slow for large samples, and can fail (with a warning) when they differ a
        # lot; the asymptotic one agrees with it to two digits from a few hundred rows on.
        ks = stats.ks_2samp(ref, current, method="exact" if len(ref) * len(current) <= _KS_EXACT_MAX else "asymp")
        std = self._std[name]
        effect = float(stats.wasserstein_distance(ref, current)) / std if std > 0 else 0.0
        reasons = []
        if score >= self.psi_threshold:
            reasons.append(f"PSI {score:.2f} >= {self.psi_threshold:g}")
        alpha = self.feature_alpha
        if ks.pvalue < alpha and effect >= self.min_effect:
            reasons.append(f"KS p={ks.pvalue:.1e} < {alpha:.2g} with effect {effect:.2f} SD >= {self.min_effect:g}")
        return FeatureDrift(
            feature=str(name),
            psi=score,
            ks_statistic=float(ks.statistic),
            ks_pvalue=float(ks.pvalue),
            effect_size=effect,
            drifted=bool(reasons),
            reason="; ".join(reasons),
        )


def _numeric_columns(X: pd.DataFrame, columns: list[Any], what: str) -> dict[Any, np.ndarray]:
    """Each column as a float array, or an error naming the non-numeric or non-finite columns."""
    out, not_numbers, not_finite = {}, [], []
    for c in columns:
        col = X[c]
        if not pd.api.types.is_numeric_dtype(col):
            not_numbers.append(c)
            continue
        values = col.to_numpy(dtype=float, na_value=np.nan)
        if not np.isfinite(values).all():
            not_finite.append(c)
        out[c] = values
    if not_numbers:
        raise InvalidArgumentError(
            f"{what}: column(s) {not_numbers} are not numeric; encode categories as numbers (as make_churn does) "
            "or leave those columns out of the reference."
        )
    if not_finite:
        raise InvalidArgumentError(f"{what}: column(s) {not_finite} hold NaN or infinity; drop or impute them first.")
    return out


# --------------------------------------------------------------------------- performance


def window_metrics(model: Any, windows: Iterable[tuple[Any, Any, Any]]) -> pd.DataFrame:
    """Score a model on labelled windows (e.g. month by month): the gate's metrics over time.

    Drift in the inputs is an early warning; the labels, once they arrive, say
    whether the model actually got worse. One row per window shows when.

    Parameters
    ----------
    model : fitted classifier
        Usually the model in production.
    windows : iterable of (label, X, y)
        ``label`` names the window (``"2026-03"``); ``X`` and ``y`` are its rows
        and true labels.

    Returns
    -------
    pandas.DataFrame
        Columns ``label``, ``rows`` and :func:`persistlib.evaluate`'s metrics
        (``accuracy``, ``precision``, ``recall``, ``f1``, and ``roc_auc`` for a
        model with ``predict_proba``), one row per window, in order.

    Raises
    ------
    ArgumentTypeError
        If a window is not a ``(label, X, y)`` triple, or ``model`` cannot predict.
    InvalidArgumentError
        If a window is empty or its ``X`` and ``y`` differ in length.
    """
    if isinstance(windows, str | bytes) or not isinstance(windows, Iterable):
        raise ArgumentTypeError(f"windows must be a sequence of (label, X, y) triples, got {type(windows).__name__}.")
    rows = []
    for i, window in enumerate(windows):
        if not isinstance(window, tuple | list) or len(window) != 3:
            raise ArgumentTypeError(f"windows[{i}] must be a (label, X, y) triple, got {clip(repr(window), 60)}.")
        label, X, y = window
        rows.append({"label": label, "rows": len(X), **evaluate(model, X, y)})
    columns = ["label", "rows", "accuracy", "precision", "recall", "f1"]
    return pd.DataFrame(rows, columns=columns + (["roc_auc"] if any("roc_auc" in r for r in rows) else []))
