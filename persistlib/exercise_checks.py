"""The checkers of notebooks 01-05's exercises (used by :mod:`persistlib.exercises`).

Each ``check_NN(answer)`` returns ``(right, wrong, hint)``: findings in words and
one hint for the first thing to fix. A checker re-measures or re-runs what it
can rather than trusting a number: it loads the saved file, retrains a copy,
runs the student's function on fresh inputs. A wrong *type* of answer raises
:class:`~persistlib.errors.ExerciseError` saying which shape is expected; a
student's function that raises is reported as a finding, never re-raised.
"""

from __future__ import annotations

import io
import pickle
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ._display import human_bytes, human_seconds, short
from .errors import ExerciseError

__all__ = ["Marks", "need", "need_keys", "call", "check_01", "check_02", "check_03", "check_04", "check_05"]


class Marks:
    """Collects a checker's findings; the hint of the first failed check wins."""

    def __init__(self) -> None:
        self.right: list[str] = []
        self.wrong: list[str] = []
        self.hint = ""

    def ok(self, passed: bool, right: str, wrong: str, hint: str = "") -> bool:
        (self.right if passed else self.wrong).append(right if passed else wrong)
        if not passed and hint and not self.hint:
            self.hint = hint
        return passed

    def fail(self, wrong: str, hint: str = "") -> tuple[list[str], list[str], str]:
        self.ok(False, "", wrong, hint)
        return self.result()

    def result(self) -> tuple[list[str], list[str], str]:
        return self.right, self.wrong, self.hint


def need(answer: Any, kind: type | tuple[type, ...], shape: str) -> None:
    """Raise a clear :class:`ExerciseError` unless ``answer`` is a ``kind``."""
    if isinstance(answer, bool) or not isinstance(answer, kind):  # True is never an answer here
        raise ExerciseError(
            f"expected {shape}, got {type(answer).__name__} {short(answer)}. Check the exercise's text."
        )


def need_keys(answer: Any, keys: tuple[str, ...], shape: str) -> list[str]:
    """The keys ``answer`` (which must be a dict) lacks."""
    need(answer, Mapping, shape)
    return [k for k in keys if k not in answer]


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[bool, Any]:
    """``(True, result)``, or ``(False, "it raised X: message")`` if the student's function raised."""
    try:
        return True, fn(*args, **kwargs)
    except Exception as e:  # a student's code may raise anything: report it
        return False, f"it raised {type(e).__name__}: {short(str(e), 120)}"


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExerciseError(f"{name} must be a number, got {type(value).__name__} {short(value)}.")
    return float(value)


def _best_of(n: int, action: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - t0)
    return best


# --------------------------------------------------------------------------- 01: a smaller forest


def check_01(answer: Any) -> tuple[list[str], list[str], str]:
    import joblib
    from sklearn.base import clone

    from .data import make_churn

    shape = 'a dict {"file": path, "train_s": seconds, "load_s": seconds}'
    m = Marks()
    missing = need_keys(answer, ("file", "train_s", "load_s"), shape)
    if missing:
        return m.fail(f"the answer lacks {missing}", f"give {shape}")
    need(answer["file"], str | Path, "a file path for 'file'")
    train_s, load_s = _number(answer["train_s"], "train_s"), _number(answer["load_s"], "load_s")
    path = Path(answer["file"])
    if not path.is_file():
        return m.fail(
            f"there is no file at {path.name!r}", "save the small forest: joblib.dump(small, path, compress=3)"
        )
    loaded, model = call(joblib.load, path)  # the student's own file, written in this session
    if not loaded:
        return m.fail(f"{path.name} does not load with joblib.load: {model}", "save it with joblib.dump(small, path)")
    trees = getattr(model, "n_estimators", None)
    if not m.ok(
        type(model).__name__ == "RandomForestClassifier" and trees == 20 and hasattr(model, "estimators_"),
        "the file holds a trained forest of 20 trees",
        f"the file holds a {type(model).__name__}" + (f" of {trees} trees" if trees else ""),
        "train RandomForestClassifier(n_estimators=20, ...) and save that one",
    ):
        return m.result()
    if not m.ok(
        train_s > 0 and load_s > 0,
        "both times are positive",
        "a time of 0 or less was not measured",
        "time with perf_counter",
    ):
        return m.result()
    rows = int(model.estimators_[0].tree_.n_node_samples[0])  # the training set's size
    X, y = make_churn(rows, random_state=0)
    my_train = _best_of(1, lambda: clone(model).fit(X, y))
    my_load = _best_of(3, lambda: joblib.load(path))
    for name, theirs, mine in (("training", train_s, my_train), ("load", load_s, my_load)):
        close = mine / 10 <= theirs <= mine * 10
        unit = " (milliseconds? give seconds)" if theirs > mine * 100 else ""
        m.ok(
            close,
            f"your {name} time {human_seconds(theirs)} agrees with a re-measurement ({human_seconds(mine)})",
            f"your {name} time {theirs:g} s is far from a re-measurement ({human_seconds(mine)}){unit}",
            "measure with time.perf_counter() around the one call, in seconds",
        )
    m.ok(
        train_s > load_s,
        f"retraining for 1,000 requests would take about {1000 * train_s / load_s:,.0f}× longer than loading once",
        "your training time is shorter than your load time: are the two swapped?",
        "train_s times the training, load_s times joblib.load",
    )
    return m.result()


# --------------------------------------------------------------------------- 02: a simpler model


def check_02(answer: Any) -> tuple[list[str], list[str], str]:
    from .gate import evaluate

    shape = 'a dict {"explorer": your PipelineExplorer, "ship": "logistic regression" or "forest"}'
    m = Marks()
    missing = need_keys(answer, ("explorer", "ship"), shape)
    if missing:
        return m.fail(f"the answer lacks {missing}", f"give {shape}")
    ex = answer["explorer"]
    if not all(hasattr(ex, a) for a in ("loaded", "X_test", "y_test", "metrics", "report")):
        raise ExerciseError(f"'explorer' must be a pl.PipelineExplorer, got {type(ex).__name__} {short(ex)}.")
    model = ex.loaded
    if model is None:
        return m.fail("the Load stage has not run", "run the stages Train, Evaluate and Load: lr.run('Load')")
    steps = [type(s).__name__ for s in getattr(model, "named_steps", {}).values()]
    if not m.ok(
        steps[-1:] == ["LogisticRegression"] and "StandardScaler" in steps,
        "the loaded model is a scaled logistic regression",
        f"the loaded model is {steps or type(model).__name__}, not a scaler + logistic regression",
        "pass model=make_pipeline(StandardScaler(), LogisticRegression()) and a separate folder",
    ):
        return m.result()
    if ex.metrics is None or ex.report is None:
        return m.fail("the Evaluate stage has not run", "run lr.run('Evaluate') before Load")
    again = evaluate(model, ex.X_test, ex.y_test)["accuracy"]
    m.ok(
        abs(again - ex.metrics["accuracy"]) < 1e-9,
        f"the loaded model scores the evaluated accuracy ({again:.3f}) on the held-out customers",
        "the loaded model is not the one that was evaluated",
        "run Train, Evaluate and Load in order on the same explorer",
    )
    m.ok(ex.report.passed, "it passes the same gate as the forest", "its gate report says FAIL", "print(lr.report)")
    m.ok(
        str(answer["ship"]).strip().lower() in ("logistic regression", "logreg", "lr"),
        "ship the logistic regression: it passes the gate and answers far faster",
        f"you would ship {short(answer['ship'])}; compare gate, accuracy and latency again",
        "the logistic regression passes the same gate, and a scaler plus a dozen weights beat 100 trees on speed",
    )
    return m.result()


# --------------------------------------------------------------------------- 03: tolerance


def check_03(answer: Any) -> tuple[list[str], list[str], str]:
    from .gate import Gate

    need(answer, Gate, "a pl.Gate, e.g. pl.Gate({'accuracy': 0.88}, baseline={'accuracy': 0.91}, tolerance=...)")
    m = Marks()
    m.ok(
        answer.thresholds.get("accuracy") == 0.88,
        "the accuracy threshold is 0.88",
        f"the accuracy threshold is {answer.thresholds.get('accuracy')}, not 0.88",
        "keep the lesson's threshold: {'accuracy': 0.88}",
    )
    m.ok(
        (answer.baseline or {}).get("accuracy") == 0.91,
        "the baseline is production's 0.91",
        f"the baseline is {(answer.baseline or {}).get('accuracy')}, not 0.91",
        "baseline={'accuracy': 0.91}",
    )
    if m.wrong:
        return m.result()

    def verdict(accuracy: float) -> bool | str:
        ok, report = call(answer.check, {"accuracy": accuracy})
        return report.passed if ok else report

    probes = {0.89: True, 0.95: True, 0.885: False, 0.87: False}
    for accuracy, expected in probes.items():
        got = verdict(accuracy)
        if isinstance(got, str):
            return m.fail(f"checking {{'accuracy': {accuracy}}}: {got}", "gate accuracy only: no other metric")
        m.ok(
            got == expected,
            f"{accuracy} {'passes' if expected else 'fails'}",
            f"{accuracy} {'fails' if expected else 'passes'}, it should {'pass' if expected else 'fail'}",
            "0.89 must pass against 0.91 minus the tolerance, and nothing lower: tolerance 0.02"
            if accuracy != 0.87
            else "tolerance relaxes the baseline only; the 0.88 threshold still holds",
        )
    m.ok(
        abs(answer.tolerance - 0.02) < 1e-9,
        "0.02 is the smallest tolerance that lets 0.89 through",
        f"a tolerance of {answer.tolerance:g} is not the smallest that lets 0.89 through",
        "0.91 - 0.89 = 0.02",
    )
    return m.result()


# --------------------------------------------------------------------------- 04: sizes


def check_04(answer: Any) -> tuple[list[str], list[str], str]:
    import joblib

    methods = ("pickle", "joblib-0", "joblib-3")
    shape = 'a dict {"model": model, "pickle": bytes, "joblib-0": bytes, "joblib-3": bytes}'
    m = Marks()
    missing = need_keys(answer, ("model", *methods), shape)
    if missing:
        return m.fail(f"the answer lacks {missing}", f"give {shape}, sizes from measure(...).bytes")
    theirs = {k: _number(answer[k], k) for k in methods}
    model = answer["model"]
    if not hasattr(model, "predict"):
        raise ExerciseError(f"'model' must be the fitted model you measured, got {type(model).__name__}.")
    ok, raw = call(pickle.dumps, model, protocol=5)
    if not ok:
        return m.fail(f"'model' cannot be pickled: {raw}", "give the fitted model you measured")
    mine = {"pickle": len(raw)}
    for level in (0, 3):
        buffer = io.BytesIO()
        joblib.dump(model, buffer, compress=level)
        mine[f"joblib-{level}"] = buffer.getbuffer().nbytes
    for k in methods:
        m.ok(
            abs(theirs[k] - mine[k]) <= 0.02 * mine[k],
            f"{k}: {human_bytes(int(theirs[k]))}, as re-measured",
            f"{k}: {theirs[k]:g} is not the file's size in bytes (re-measured: {human_bytes(mine[k])})"
            + (" (KiB or MiB? give bytes)" if theirs[k] < mine[k] / 500 else ""),
            "use measure(model, method, folder).bytes, in bytes",
        )
    if not m.wrong:
        m.ok(True, f"compress=3 makes the file {mine['joblib-0'] / mine['joblib-3']:.1f}× smaller", "")
    return m.result()


# --------------------------------------------------------------------------- 05: what was live when


def production_at_reference(history: list[Mapping[str, Any]], n: int) -> str | None:
    """The production version after the first ``n`` alias moves (``None`` before any)."""
    version = None
    for event in history[:n]:
        if event["alias"] == "production":
            version = event["to"]
    return version


def _event(alias: str, action: str, old: str | None, new: str) -> dict[str, Any]:
    return {"at": "2026-11-27T00:00:00+00:00", "alias": alias, "action": action, "from": old, "to": new}


def _fresh_histories() -> list[tuple[str, list[dict[str, Any]]]]:
    """Histories the student has not seen, each with what it tests."""
    return [
        (
            "staging moves in between and a rollback",
            [
                _event("production", "promote", None, "1.0.0"),
                _event("staging", "promote", None, "1.1.0"),
                _event("production", "promote", "1.0.0", "1.1.0"),
                _event("staging", "promote", "1.1.0", "2.0.0"),
                _event("production", "rollback", "1.1.0", "1.0.0"),
            ],
        ),
        (
            "a staging move first",
            [_event("staging", "promote", None, "0.1.0"), _event("production", "promote", None, "0.2.0")],
        ),
        ("an empty history (n=0)", []),
    ]


def check_05(answer: Any) -> tuple[list[str], list[str], str]:
    need(answer, Callable, "your function production_at(history, n) itself (no parentheses)")
    m = Marks()
    for what, history in _fresh_histories():
        bad = []
        for n in range(len(history) + 1):
            ok, got = call(answer, [dict(e) for e in history], n)
            if not ok:
                return m.fail(f"production_at(history, {n}) on a fresh history: {got}", "loop over history[:n]")
            expected = production_at_reference(history, n)
            if got != expected:
                moves = " → ".join(f"{e['alias']}:{e['to']}" for e in history[:n]) or "no moves"
                bad.append(f"after {moves}: you say {short(got)}, production was {expected}")
        m.ok(
            not bad,
            f"right on a fresh history with {what}",
            f"fresh cases wrong on a history with {what}: {bad[0] if bad else ''}",
            "only moves of the 'production' alias count; before any, the answer is None; a rollback's 'to' counts too",
        )
    return m.result()
