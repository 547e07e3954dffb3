"""How noisy is a test-set score? A bootstrap interval, to size a gate's ``tolerance``.

A score measured on 200 test rows could easily have come out a few points
higher or lower on another 200. A gate whose baseline check is stricter than
that noise rejects good models by chance (and passes bad ones by luck). The
percentile bootstrap estimates the noise from the test set itself: resample
its rows with replacement many times, recompute the score each time, and keep
the middle 95 %.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._checks import check_choice, check_number
from ._model_lock import one_model_call
from .errors import ArgumentTypeError, InvalidArgumentError

__all__ = ["bootstrap_metric", "BootstrapInterval"]


@dataclass(frozen=True)
class BootstrapInterval:
    """A metric's test-set value and the range it would plausibly take on another test set."""

    metric: str
    estimate: float
    low: float
    high: float
    confidence: float
    n_boot: int
    n_rows: int

    @property
    def width(self) -> float:
        """``high - low``: a natural scale for a gate's ``tolerance``."""
        return self.high - self.low

    def __str__(self) -> str:
        return (
            f"{self.metric} {self.estimate:.3f}, {self.confidence:.0%} interval "
            f"[{self.low:.3f}, {self.high:.3f}] (width {self.width:.3f}; "
            f"{self.n_boot} resamples of {self.n_rows} test rows)"
        )


def bootstrap_metric(
    model: Any,
    X: Any,
    y: Any,
    metric: str = "accuracy",
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    random_state: int | None = None,
) -> BootstrapInterval:
    """How noisy is a test-set score? A percentile bootstrap interval.

    The model predicts the test set once; then ``n_boot`` test sets of the same
    size are drawn from it with replacement and the metric is recomputed on
    each. The middle ``confidence`` share of those scores is the interval. A
    gate whose baseline check is stricter than this noise rejects good models
    by chance; that is what ``Gate(..., tolerance=...)`` is for.

    Parameters
    ----------
    model : fitted classifier
    X, y : test features and labels
    metric : {"accuracy", "precision", "recall", "f1"}, default="accuracy"
        precision, recall and f1 need binary labels (the positive class is the larger label).
    n_boot : int, default=1000
    confidence : float, default=0.95
    random_state : int, optional

    Returns
    -------
    BootstrapInterval
    """
    import numpy as np

    check_choice(metric, "metric", ("accuracy", "precision", "recall", "f1"))
    check_number(n_boot, "n_boot", low=10, integer=True, hint=" (1000 is typical)")
    check_number(confidence, "confidence", low=0, high=1, low_open=True, high_open=True, hint=" (e.g. 0.95)")
    if not hasattr(model, "predict"):
        raise ArgumentTypeError(f"bootstrap_metric() needs a fitted model with .predict(), got {type(model).__name__}.")
    y_true = np.asarray(y)
    if len(X) != len(y_true) or len(y_true) == 0:
        raise InvalidArgumentError(
            f"X has {len(X)} rows and y has {len(y_true)}; pass a non-empty test set with matching features and labels."
        )
    with one_model_call():  # one model call at a time in the process (persistlib._model_lock says why)
        y_pred = np.asarray(model.predict(X))
    classes = np.union1d(y_true, y_pred)
    if metric != "accuracy" and len(classes) > 2:
        raise InvalidArgumentError(
            f"{metric} needs binary labels, but there are {len(classes)} classes; use metric='accuracy'."
        )
    pos = classes.max()
    rng = np.random.default_rng(random_state)
    n, scores = len(y_true), np.empty(n_boot)
    for start in range(0, n_boot, 200):  # in chunks, so memory stays small for big test sets
        idx = rng.integers(0, n, size=(min(200, n_boot - start), n))
        scores[start : start + len(idx)] = _score_rows(y_true[idx], y_pred[idx], metric, pos)
    full = float(_score_rows(y_true[None, :], y_pred[None, :], metric, pos)[0])
    alpha = (1 - confidence) / 2
    low, high = np.quantile(scores, [alpha, 1 - alpha])
    return BootstrapInterval(metric, full, float(low), float(high), confidence, n_boot, n)


def _score_rows(t: Any, p: Any, metric: str, pos: Any) -> Any:
    """The metric for each row of 2-D arrays of true and predicted labels."""
    import numpy as np

    if metric == "accuracy":
        return (t == p).mean(axis=1)
    tp = ((t == pos) & (p == pos)).sum(axis=1)
    pred_pos, true_pos = (p == pos).sum(axis=1), (t == pos).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(pred_pos > 0, tp / np.maximum(pred_pos, 1), 0.0)
        recall = np.where(true_pos > 0, tp / np.maximum(true_pos, 1), 0.0)
        if metric == "precision":
            return precision
        if metric == "recall":
            return recall
        s = precision + recall
        return np.where(s > 0, 2 * precision * recall / np.where(s > 0, s, 1), 0.0)
