"""Quiz questions: the data behind the quiz that ends every notebook (no widgets needed).

Questions live in JSON files, ``persistlib/quizzes/<notebook-stem>.json``::

    {"questions": [
      {"id": "q1",
       "prompt": "Which file format can run code when loaded?",
       "kind": "single",                      # or "multiple"
       "options": [
         {"text": "pickle", "correct": true,  "feedback": "Yes: unpickling calls code."},
         {"text": "JSON",   "correct": false, "feedback": "No: JSON is only data."}],
       "explanation": "Never unpickle a file you do not trust.",
       "topic": "security",                   # optional: one of TOPICS
       "code": "print(1 + 1)"}]}               # optional: a "predict the output" program

Two keys are optional. ``topic`` names what the question is about, one of
:data:`TOPICS` (each topic is taught by one notebook), so that
:func:`score_by_topic` can tell a student which notebook to revisit. ``code``
makes a "predict the output" question: a short program the student reads, and
the correct option is exactly what it prints (a test runs every such program
and compares). Such a question must be ``"single"``.

This module reads and checks them (:func:`load_questions`, :func:`parse_questions`),
checks and grades answers (:func:`check_choices`, :func:`grade`) and adds up a
score per topic (:func:`score_by_topic`). The widget that shows them is
:class:`persistlib.widgets.quiz.Quiz`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._checks import is_plain_name
from ._display import mark
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
    "TOPICS",
    "TopicScore",
    "score_by_topic",
]

#: Where :func:`quiz_path` looks for ``<stem>.json``.
QUIZ_DIR = Path(__file__).resolve().parent / "quizzes"

_KINDS = ("single", "multiple")
_Q_KEYS = {"id", "prompt", "kind", "options", "explanation"}
_Q_OPTIONAL = {"topic", "code"}
_O_KEYS = {"text", "correct", "feedback"}

#: The course's topics: name -> (title, the notebook that teaches it). A question's optional
#: ``topic`` must be one of these names; :func:`score_by_topic` points back to the notebook.
TOPICS: dict[str, tuple[str, str]] = {
    "why-persist": ("Why persist a model", "01_why_persist"),
    "pipeline": ("The pipeline's stages", "02_pipeline_tour"),
    "gate": ("The evaluation gate", "03_evaluation_gate"),
    "serialisation": ("Serialisation and compression", "04_serialisation"),
    "versioning": ("Versions and model cards", "05_versioning_and_model_cards"),
    "loading": ("Loading and compatibility", "06_loading_and_compatibility"),
    "security": ("Pickle security and formats", "07_pickle_security_and_formats"),
    "serving": ("Serving, hot-swap, A/B tests and audit", "08_serving"),
    "rollback": ("Rollback", "09_rollback_drill"),
    "retraining": ("Drift and the retrain loop", "10_retrain_loop"),
}


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
    topic: str | None = None
    code: str | None = None

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
    missing, unknown = sorted(_Q_KEYS - set(q)), sorted(set(q) - _Q_KEYS - _Q_OPTIONAL)
    if missing:
        raise QuizError(f"{where}: missing key(s) {missing}.")
    if unknown:
        raise QuizError(f"{where}: unknown key(s) {unknown}; allowed keys are {sorted(_Q_KEYS | _Q_OPTIONAL)}.")
    topic, code = q.get("topic"), q.get("code")
    if topic is not None and topic not in TOPICS:
        raise QuizError(f"{where}: 'topic' must be one of {sorted(TOPICS)}, got {topic!r}; or leave it out.")
    if code is not None and (not isinstance(code, str) or not code.strip()):
        raise QuizError(f"{where}: 'code' must be the program the student reads (a non-empty string), or left out.")
    if code is not None and q["kind"] != "single":
        raise QuizError(f"{where}: a question with 'code' asks what it prints, so its kind must be 'single'.")
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
    return Question(q["id"], q["prompt"], q["kind"], tuple(options), q["explanation"], topic, code)


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


# --------------------------------------------------------------------------- scores per topic


@dataclass(frozen=True)
class TopicScore:
    """A student's score on one topic: ``points`` earned on ``answered`` of its ``total`` questions.

    ``revisit`` is true once some of its questions are answered and the share of points
    earned is below the pass mark given to :func:`score_by_topic`; ``notebook`` says where to.
    """

    topic: str
    title: str
    notebook: str
    points: float
    answered: int
    total: int
    revisit: bool

    @property
    def fraction(self) -> float | None:
        """Points per answered question (0 to 1), or ``None`` before any is answered."""
        return self.points / self.answered if self.answered else None

    @property
    def advice(self) -> str:
        """``"not answered yet"``, ``"fine"`` or ``"revisit notebook 03_evaluation_gate"``."""
        if not self.answered:
            return "not answered yet"
        return f"revisit notebook {self.notebook}" if self.revisit else "fine"

    def __str__(self) -> str:
        head = "–" if not self.answered else mark(not self.revisit)
        return f"{head} {self.title}: {self.points:g}/{self.answered} ({self.total} questions): {self.advice}"


def score_by_topic(
    questions: Sequence[Question], answers: Mapping[str, Any], *, pass_mark: float = 0.75
) -> list[TopicScore]:
    """Add up a student's answers per topic, in the course's order, so they know what to revisit.

    Parameters
    ----------
    questions : list of Question
        Questions without a ``topic`` are left out of the per-topic scores.
    answers : mapping of question id to choices or Grade
        The student's answers: an option index or a list of them (graded here,
        with :func:`grade`), or a :class:`Grade` already made. Unanswered
        questions are simply absent.
    pass_mark : float, default=0.75
        A topic whose points per answered question fall below this is marked to revisit.

    Returns
    -------
    list of TopicScore
        One per topic that has questions, in the order of :data:`TOPICS`.

    Raises
    ------
    QuizError
        For an answer to an unknown question id, a bad answer, or a pass mark outside 0..1.
    """
    if isinstance(pass_mark, bool) or not isinstance(pass_mark, int | float) or not 0 <= pass_mark <= 1:
        raise QuizError(f"pass_mark must be a number from 0 to 1 (e.g. 0.75), got {pass_mark!r}.")
    if not isinstance(answers, Mapping):
        raise QuizError(f"answers must map question ids to choices, e.g. {{'q1': 2}}, got {type(answers).__name__}.")
    by_id = {q.id: q for q in questions}
    unknown = sorted(str(k) for k in answers if k not in by_id)
    if unknown:
        raise QuizError(f"answers name unknown question id(s) {unknown}; ids are {list(by_id)}.")
    points: dict[str, float] = {}
    answered: dict[str, int] = {}
    total: dict[str, int] = {}
    for q in questions:
        if q.topic is None:
            continue
        total[q.topic] = total.get(q.topic, 0) + 1
        if q.id in answers:
            given = answers[q.id]
            credit = given.credit if isinstance(given, Grade) else grade(q, given).credit
            points[q.topic] = points.get(q.topic, 0.0) + credit
            answered[q.topic] = answered.get(q.topic, 0) + 1
    out = []
    for topic, (title, notebook) in TOPICS.items():
        if topic not in total:
            continue
        got, n = round(points.get(topic, 0.0), 2), answered.get(topic, 0)
        out.append(TopicScore(topic, title, notebook, got, n, total[topic], n > 0 and got / n < pass_mark))
    return out
