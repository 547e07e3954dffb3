"""Exercises that answer back: one hands-on exercise per notebook, checked in one call.

>>> import persistlib as pl
>>> pl.exercises.ids()[:2]
['01-why-persist', '02-pipeline-tour']
>>> print(pl.exercises.check("03-evaluation-gate", ...))  # doctest: +ELLIPSIS
✗ 03-evaluation-gate: not yet
...

``check(exercise_id, answer)`` re-measures or re-runs what it can (a file's size,
a function on fresh inputs, a registry folder's files) and returns a
:class:`Feedback`: what is right, what is wrong, and a hint, with ``.passed``
for code. ``solution(exercise_id)`` returns a worked solution as code, kept in
``persistlib/exercise_solutions/`` so that it is out of sight until asked for.
The checkers live in :mod:`persistlib.exercise_checks` (notebooks 01-05) and
:mod:`persistlib.exercise_checks_ops` (06-10); they import only the core.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

from ._display import mark, short
from .errors import ExerciseError

__all__ = ["Exercise", "Feedback", "check", "solution", "ids", "describe", "EXERCISES"]

SOLUTIONS = Path(__file__).with_name("exercise_solutions")


@dataclass(frozen=True)
class Exercise:
    """One exercise: where it is, what the answer looks like, and who checks it."""

    id: str
    notebook: str  #: the notebook's stem, e.g. "04_serialisation"
    task: str  #: one sentence
    expects: str  #: the shape of the answer, as a student would write it
    lesson: str  #: what a solved exercise shows (printed with the feedback once it passes)
    checker: str  #: "module:function" inside persistlib


@dataclass(frozen=True)
class Feedback:
    """What a checker found: ``right`` and ``wrong`` findings, and a ``hint`` for the first thing to fix."""

    exercise: str
    right: tuple[str, ...] = ()
    wrong: tuple[str, ...] = ()
    hint: str = ""
    lesson: str = ""

    @property
    def passed(self) -> bool:
        """Solved: at least one finding is right and none is wrong."""
        return bool(self.right) and not self.wrong

    def _lines(self) -> list[tuple[str, str]]:
        lines = [(mark(True), r) for r in self.right] + [(mark(False), w) for w in self.wrong]
        if self.passed and self.lesson:
            lines.append(("why it matters:", self.lesson))
        elif not self.passed and self.hint:
            lines.append(("hint:", self.hint))
        return lines

    def __str__(self) -> str:
        head = f"{mark(self.passed)} {self.exercise}: {'solved' if self.passed else 'not yet'}"
        return "\n".join([head, *(f"  {tag} {text}" for tag, text in self._lines())])

    __repr__ = __str__

    def _repr_html_(self) -> str:
        state = "passed" if self.passed else "not-yet"
        head = f"{mark(self.passed)} {self.exercise}: {'solved' if self.passed else 'not yet'}"
        items = "".join(f"<li>{html.escape(tag)} {html.escape(text)}</li>" for tag, text in self._lines())
        return (
            f'<div class="pl-exercise-feedback pl-exercise-{state}" role="status">'
            f"<strong>{html.escape(head)}</strong><ul>{items}</ul></div>"
        )


def _ex(nb: str, slug: str, task: str, expects: str, lesson: str, checker: str) -> Exercise:
    return Exercise(f"{nb[:2]}-{slug}", nb, task, expects, lesson, checker)


_CORE, _OPS = "exercise_checks", "exercise_checks_ops"
EXERCISES: dict[str, Exercise] = {
    e.id: e
    for e in (
        _ex(
            "01_why_persist",
            "why-persist",
            "Train a forest of 20 trees, save it, and time its training and its load.",
            'a dict {"file": the saved path, "train_s": training seconds, "load_s": load seconds}',
            "A smaller model trains faster but also loads faster: loading once still beats retraining by far.",
            f"{_CORE}:check_01",
        ),
        _ex(
            "02_pipeline_tour",
            "pipeline-tour",
            "Run the pipeline with a scaled logistic regression and decide which model you would ship.",
            'a dict {"explorer": your PipelineExplorer, "ship": "logistic regression" or "forest"}',
            "The simpler model passes the same gate and answers faster: try the simple one first, let the gate decide.",
            f"{_CORE}:check_02",
        ),
        _ex(
            "03_evaluation_gate",
            "evaluation-gate",
            "Build the gate that lets 0.89 pass against a 0.91 baseline with the smallest tolerance.",
            "a pl.Gate with an accuracy threshold of 0.88, a baseline of 0.91 and a tolerance",
            "Tolerance relaxes only the baseline, never a threshold; every 0.01 of it lets real drops through too.",
            f"{_CORE}:check_03",
        ),
        _ex(
            "04_serialisation",
            "compression",
            "Measure the bytes of `model` saved as pickle, joblib without compression, and joblib compress=3.",
            'a dict {"model": model, "pickle": bytes, "joblib-0": bytes, "joblib-3": bytes}',
            "pickle and joblib-0 write the same arrays; compression is what shrinks the file.",
            f"{_CORE}:check_04",
        ),
        _ex(
            "05_versioning_and_model_cards",
            "production-history",
            "Write production_at(history, n): the production version after the first n alias moves.",
            "a function production_at(history, n) returning a version string, or None",
            "The append-only history answers 'what was live when?' long after the aliases moved on.",
            f"{_CORE}:check_05",
        ),
        _ex(
            "06_loading_and_compatibility",
            "onnx-export",
            "Re-export the old pipeline to ONNX, and try the same with the custom-function pipeline.",
            'a dict {"onnx_file": path, "model": the pipeline you exported, "custom_error": the error you caught}',
            "ONNX records maths, not Python objects: no scikit-learn version to mismatch, but no custom code either.",
            f"{_OPS}:check_06",
        ),
        _ex(
            "07_pickle_security_and_formats",
            "skops-swap",
            "Swap a skops artefact for the forest's, fix the card's hash as an attacker would, and load it.",
            'a dict {"registry": folder, "version": the pipeline\'s version, "error": the error load raised}',
            "A matching hash proves the bytes are the described ones, not that they are safe; the type review does.",
            f"{_OPS}:check_07",
        ),
        _ex(
            "08_serving",
            "fair-gate",
            "Write fair_gate(candidate, registry, X_test, y_test): gate a candidate against production's score.",
            "a function fair_gate(candidate, registry, X_test, y_test) returning a GateReport",
            "A fair gate scores the candidate and production on the same exam; a card's old score is another exam.",
            f"{_OPS}:check_08",
        ),
        _ex(
            "09_rollback_drill",
            "latency-alarm",
            "Write alarm_with_latency(audit, live, baseline, max_p99_ratio=3.0): compare()'s reasons plus a p99 one.",
            "a function alarm_with_latency(audit, live, baseline, *, max_p99_ratio=3.0) returning a list of reasons",
            "An alarm is a list of plain reasons built from the audit trail: easy to extend, easy to read at 3 a.m.",
            f"{_OPS}:check_09",
        ),
        _ex(
            "10_retrain_loop",
            "cooldown",
            "Predict, then run the twelve months again with cooldown=0 in a fresh registry, and compare.",
            'a dict {"prediction": "fewer", "same" or "more", "cooldown_0": its registry folder, '
            '"cooldown_1": the notebook\'s registry folder}',
            "A cooldown trades a little freshness for time to watch each new model live before the next one.",
            f"{_OPS}:check_10",
        ),
    )
}


def ids() -> list[str]:
    """Every exercise id, in notebook order."""
    return list(EXERCISES)


def _get(exercise_id: Any) -> Exercise:
    if not isinstance(exercise_id, str) or exercise_id not in EXERCISES:
        raise ExerciseError(f"no exercise {short(exercise_id)}; the exercises are: {', '.join(EXERCISES)}.")
    return EXERCISES[exercise_id]


def describe(exercise_id: str) -> str:
    """The task and the shape of the answer, in two lines."""
    ex = _get(exercise_id)
    return f"{ex.id} ({ex.notebook}): {ex.task}\nanswer: {ex.expects}"


def check(exercise_id: str, answer: Any) -> Feedback:
    """Check ``answer`` to exercise ``exercise_id``.

    ``...`` or ``None`` (the placeholder in each notebook) gives a "not yet"
    feedback that says what shape the answer takes.

    Raises
    ------
    ExerciseError
        If the id is unknown, or the answer has a type the checker cannot use
        (the message says which shape it expects).
    """
    ex = _get(exercise_id)
    if answer is None or answer is Ellipsis:
        return Feedback(
            ex.id,
            wrong=("no answer yet: replace the ... after `answer =` with your answer",),
            hint=f"{ex.task} Give {ex.expects}.",
        )
    module, _, name = ex.checker.partition(":")
    checker = getattr(import_module(f".{module}", __package__), name)
    right, wrong, hint = checker(answer)
    return Feedback(ex.id, tuple(right), tuple(wrong), hint, ex.lesson)


def solution(exercise_id: str) -> str:
    """A worked solution as code: ``print`` it to read it, or paste it into the exercise's cell to run it."""
    ex = _get(exercise_id)
    return (SOLUTIONS / f"{ex.id}.py.txt").read_text(encoding="utf-8")
