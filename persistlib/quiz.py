"""Quiz questions: the data behind the quiz that ends every notebook (no widgets needed).

Questions live in JSON files, ``persistlib/quizzes/<notebook-stem>.json``::

    {"questions": [
      {"id": "q1",
       "prompt": "Which file format can run code when loaded?",
       "kind": "single",                      # or "multiple"
       "options": [
         {"text": "pickle", "correct": true,  "feedback": "Yes: unpickling calls code."},
         {"text": "JSON",   "correct": false, "feedback": "No: JSON is only data."}],
       "explanation": "Never unpickle a file you do not trust."}]}

This module reads and checks them (:func:`load_questions`, :func:`parse_questions`)
and checks answers (:func:`check_choices`). The widget that shows them is
:class:`persistlib.widgets.quiz.Quiz`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._checks import is_plain_name
from .errors import QuizError

__all__ = [
    "Question",
    "Option",
    "QUIZ_DIR",
    "parse_questions",
    "load_questions",
    "quiz_path",
    "check_choices",
    "grade",
    "Grade",
]

#: Where :func:`quiz_path` looks for ``<stem>.json``.
QUIZ_DIR = Path(__file__).resolve().parent / "quizzes"

_KINDS = ("single", "multiple")
_Q_KEYS = {"id", "prompt", "kind", "options", "explanation"}
_O_KEYS = {"text", "correct", "feedback"}


@dataclass(frozen=True)
class Option:
    """One possible answer, with the feedback shown when it is picked."""

    text: str
    correct: bool
    feedback: str


@dataclass(frozen=True)
class Question:
    """One question: ``kind`` is ``"single"`` (one right option) or ``"multiple"``."""

    id: str
    prompt: str
    kind: str
    options: tuple[Option, ...]
    explanation: str

    @property
    def correct(self) -> frozenset[int]:
        """Indices of the correct options."""
        return frozenset(i for i, o in enumerate(self.options) if o.correct)


# --------------------------------------------------------------------------- parsing


def parse_questions(data: Any, *, source: str = "questions") -> list[Question]:
    """Check quiz data (the JSON object, or its ``questions`` list) and build :class:`Question` s.

    Raises
    ------
    QuizError
        Naming ``source`` and the question, if anything is missing or wrong.
    """
    if isinstance(data, Mapping):
        if set(data) - {"questions"} or "questions" not in data:
            raise QuizError(f'{source}: the top level must be {{"questions": [...]}}, got keys {sorted(data)}.')
        data = data["questions"]
    if isinstance(data, (str, bytes)) or not isinstance(data, Sequence) or not data:
        raise QuizError(f"{source}: 'questions' must be a non-empty list of question objects.")
    out: list[Question] = []
    seen: set[str] = set()
    for n, q in enumerate(data):
        out.append(_parse_question(q, n, source))
        if out[-1].id in seen:
            raise QuizError(f"{source}: question {n} reuses the id {out[-1].id!r}; give every question its own id.")
        seen.add(out[-1].id)
    return out


def _parse_question(q: Any, n: int, source: str) -> Question:
    if isinstance(q, Question):
        return q
    where = f"{source}, question {n}"
    if not isinstance(q, Mapping):
        raise QuizError(f"{where}: must be an object with keys {sorted(_Q_KEYS)}, got {type(q).__name__}.")
    if isinstance(q.get("id"), str) and q["id"].strip():
        where = f"{source}, question {n} ({q['id']!r})"
    missing, unknown = sorted(_Q_KEYS - set(q)), sorted(set(q) - _Q_KEYS)
    if missing:
        raise QuizError(f"{where}: missing key(s) {missing}.")
    if unknown:
        raise QuizError(f"{where}: unknown key(s) {unknown}; allowed keys are {sorted(_Q_KEYS)}.")
    for key in ("id", "prompt", "explanation"):
        if not isinstance(q[key], str) or not q[key].strip():
            raise QuizError(f"{where}: {key!r} must be a non-empty string, got {q[key]!r}.")
    if q["kind"] not in _KINDS:
        raise QuizError(f"{where}: 'kind' must be 'single' or 'multiple', got {q['kind']!r}.")
    opts = q["options"]
    if isinstance(opts, (str, bytes)) or not isinstance(opts, Sequence) or len(opts) < 2:
        raise QuizError(f"{where}: 'options' must be a list of at least two options.")
    options = []
    for k, o in enumerate(opts):
        ow = f"{where}, option {k}"
        if not isinstance(o, Mapping):
            raise QuizError(f"{ow}: must be an object with keys {sorted(_O_KEYS)}.")
        missing, unknown = sorted(_O_KEYS - set(o)), sorted(set(o) - _O_KEYS)
        if missing or unknown:
            raise QuizError(f"{ow}: needs exactly the keys {sorted(_O_KEYS)} (missing {missing}, unknown {unknown}).")
        if not isinstance(o["text"], str) or not o["text"].strip():
            raise QuizError(f"{ow}: 'text' must be a non-empty string.")
        if not isinstance(o["correct"], bool):
            raise QuizError(f"{ow}: 'correct' must be true or false, got {o['correct']!r}.")
        if not isinstance(o["feedback"], str) or not o["feedback"].strip():
            raise QuizError(f"{ow}: 'feedback' must say why this answer is right or wrong.")
        options.append(Option(o["text"], o["correct"], o["feedback"]))
    n_correct = sum(o.correct for o in options)
    if q["kind"] == "single" and n_correct != 1:
        raise QuizError(
            f"{where}: a 'single' question needs exactly one correct option, found {n_correct}; "
            "fix the options or use kind 'multiple'."
        )
    if q["kind"] == "multiple" and n_correct < 1:
        raise QuizError(f"{where}: a 'multiple' question needs at least one correct option.")
    return Question(q["id"], q["prompt"], q["kind"], tuple(options), q["explanation"])


# --------------------------------------------------------------------------- files and answers


def load_questions(path: str | Path) -> list[Question]:
    """Read and check a quiz JSON file.

    Raises
    ------
    QuizError
        If the file is missing, is not JSON, or its questions are malformed.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise QuizError(f"quiz file {str(path)!r} does not exist; check the path.") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise QuizError(f"quiz file {path.name} is not valid JSON ({e}); fix the syntax there.") from None
    return parse_questions(data, source=f"quiz file {path.name}")


def quiz_path(stem: str) -> Path:
    """The quiz file for a notebook: ``QUIZ_DIR / "<stem>.json"``, which must exist."""
    if not is_plain_name(stem):
        raise QuizError(f"notebook stem must be a plain name like '03_evaluation_gate', got {stem!r}.")
    stem = stem.removesuffix(".ipynb")
    path = QUIZ_DIR / f"{stem}.json"
    if not path.exists():
        known = sorted(p.stem for p in QUIZ_DIR.glob("*.json"))
        raise QuizError(
            f"no quiz for notebook {stem!r} (looked for {path.name} in persistlib/quizzes); "
            f"quizzes exist for {known or 'no notebook yet'}."
        )
    return path


def check_choices(q: Question, choices: int | Sequence[int]) -> frozenset[int]:
    """Check an answer to ``q`` (an option index or a list of them); return the picked indices.

    Raises
    ------
    QuizError
        If an index is out of range, nothing is picked, or a single-answer question gets several.
    """
    items = [choices] if isinstance(choices, int) else choices
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence | set | frozenset):
        raise QuizError(f"question {q.id!r}: choices must be an option index or a list of them, got {choices!r}.")
    n = len(q.options)
    bad = [c for c in items if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < n]
    if bad:
        raise QuizError(f"question {q.id!r} has options 0..{n - 1}; {bad} is not one of them.")
    picked = frozenset(items)
    if not picked:
        raise QuizError(f"question {q.id!r}: pick at least one option.")
    if q.kind == "single" and len(picked) != 1:
        raise QuizError(f"question {q.id!r} takes exactly one option, got {sorted(picked)}.")
    return picked


@dataclass(frozen=True)
class Grade:
    """How good an answer is: ``credit`` from 0 to 1, and which options were right, wrong or missed.

    A single-answer question scores 1 or 0. A multiple-answer question gives
    partial credit: each correct option picked earns a share, each wrong one
    picked takes a share away (never below 0), so picking everything earns
    nothing.
    """

    credit: float
    picked: frozenset[int]
    correct: frozenset[int]

    @property
    def right(self) -> bool:
        """Whether the answer is exactly right."""
        return self.picked == self.correct

    @property
    def hits(self) -> frozenset[int]:
        """Correct options the student picked."""
        return self.picked & self.correct

    @property
    def wrong(self) -> frozenset[int]:
        """Options picked that are not correct."""
        return self.picked - self.correct

    @property
    def missed(self) -> frozenset[int]:
        """Correct options the student did not pick."""
        return self.correct - self.picked


def grade(q: Question, choices: int | Sequence[int]) -> Grade:
    """Grade an answer to ``q``: see :class:`Grade` for the partial-credit rule.

    Raises
    ------
    QuizError
        If the choices do not fit the question (see :func:`check_choices`).
    """
    picked = check_choices(q, choices)
    correct = q.correct
    if q.kind == "single":
        credit = 1.0 if picked == correct else 0.0
    else:
        credit = max(0.0, (len(picked & correct) - len(picked - correct)) / len(correct))
    return Grade(credit, picked, correct)
