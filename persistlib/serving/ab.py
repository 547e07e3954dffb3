"""A/B testing: split traffic between versions, stickily, and decide with confidence intervals.

* **Split traffic, stickily.** :class:`ABRouter` sends each user to an arm
  (a version) by a stable hash of the user id: the same user always gets the
  same arm, run after run, with no table of assignments to store.
* **Decide only when the data say so.** Each arm's accuracy comes with a 95 %
  Wilson interval (:func:`wilson_interval`); :meth:`ABRouter.decide` names a
  winner only when the leader's interval lies above every other arm's, and
  returns a :class:`Decision`.

The router knows nothing about models: the server asks it for an arm, tells it
which arm answered (:meth:`ABRouter.record`) and passes on the true labels
once known (:meth:`ABRouter.record_outcome`).
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._checks import check_number
from ..errors import InvalidArgumentError
from .rows import as_labels

if TYPE_CHECKING:  # pragma: no cover
    from .state import Prediction

__all__ = ["ABRouter", "Decision", "wilson_interval"]


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
        self.max_pending = check_number(max_pending, "max_pending", integer=True, low=1, what="a positive integer")
        self.salt = str(salt)
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
            check_number(w, f"weight for {arm!r}", low=0)  # "... must be a finite number >= 0, got ..."
        total = float(sum(weights.values()))
        if total <= 0:
            raise InvalidArgumentError("at least one weight must be positive.")
        self._weights = {a: float(w) / total for a, w in weights.items()}
        edges, acc = [], 0.0
        for a, w in self._weights.items():
            if w > 0:  # a zero-weight arm gets no slice, not even the last one's float-rounding leftovers
                acc += w
                edges.append((acc, a))
        self._edges = edges
        for a in self._weights:
            self._requests.setdefault(a, 0)
            self._outcomes.setdefault(a, [0, 0])

    def bucket(self, user_id: Any) -> float:
        """The user's stable position in [0, 1) (1.0 only by float rounding, for about one user in 2**54)."""
        digest = hashlib.sha256(f"{self.salt}:{user_id}".encode("utf-8", "surrogatepass")).digest()  # any JSON string
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
        if prediction.arm not in self._weights:
            raise InvalidArgumentError(
                f"{prediction.request_id} was answered by arm {prediction.arm!r}, which is not one of this "
                f"router's arms {self.arms}; record() takes predictions this router routed."
            )
        with self._lock:
            self._served[prediction.request_id] = (prediction.arm, prediction.labels)
            while len(self._served) > self.max_pending:
                self._served.popitem(last=False)  # forget the oldest request still waiting
                self.expired += 1
            self._requests[prediction.arm] += 1

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
            One true label per row of the request (see :func:`~persistlib.serving.as_labels`).

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
            correct = sum(int(p == t) for p, t in zip(labels, truth, strict=True))  # same length: checked above
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

    def decide(self) -> Decision:
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
