"""A small quiz widget: the questions that end every notebook.

Questions live in JSON files, ``persistlib/quizzes/<notebook-stem>.json``::

    {"questions": [
      {"id": "q1",
       "prompt": "Which file format can run code when loaded?",
       "kind": "single",                      # or "multiple"
       "options": [
         {"text": "pickle", "correct": true,  "feedback": "Yes: unpickling calls code."},
         {"text": "JSON",   "correct": false, "feedback": "No: JSON is only data."}],
       "explanation": "Never unpickle a file you do not trust."}]}

Answer by clicking (pick, then **Check**) or from Python::

    quiz = Quiz.from_notebook("03_evaluation_gate")
    quiz.answer(0, 1)          # question 0, option 1   -> True / False
    quiz.answer(1, [0, 2])     # a multiple-answer question
    quiz.score                 # (correct, answered)

Text between backticks in a prompt, option, feedback or explanation is shown as code.
"""
from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import ipywidgets as W

from ..errors import PersistError

__all__ = ["Quiz", "QuizError", "Question", "Option", "QUIZ_DIR"]

#: Where :meth:`Quiz.from_notebook` looks for ``<stem>.json``.
QUIZ_DIR = Path(__file__).resolve().parent.parent / "quizzes"

_KINDS = ("single", "multiple")
_Q_KEYS = {"id", "prompt", "kind", "options", "explanation"}
_O_KEYS = {"text", "correct", "feedback"}
_STEM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class QuizError(PersistError, ValueError):
    """A quiz file is malformed, or an answer does not fit its question."""


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
            raise QuizError(f"{source}: the top level must be {{\"questions\": [...]}}, "
                            f"got keys {sorted(data)}.")
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
            raise QuizError(f"{ow}: needs exactly the keys {sorted(_O_KEYS)} "
                            f"(missing {missing}, unknown {unknown}).")
        if not isinstance(o["text"], str) or not o["text"].strip():
            raise QuizError(f"{ow}: 'text' must be a non-empty string.")
        if not isinstance(o["correct"], bool):
            raise QuizError(f"{ow}: 'correct' must be true or false, got {o['correct']!r}.")
        if not isinstance(o["feedback"], str) or not o["feedback"].strip():
            raise QuizError(f"{ow}: 'feedback' must say why this answer is right or wrong.")
        options.append(Option(o["text"], o["correct"], o["feedback"]))
    n_correct = sum(o.correct for o in options)
    if q["kind"] == "single" and n_correct != 1:
        raise QuizError(f"{where}: a 'single' question needs exactly one correct option, found {n_correct}; "
                        "fix the options or use kind 'multiple'.")
    if q["kind"] == "multiple" and n_correct < 1:
        raise QuizError(f"{where}: a 'multiple' question needs at least one correct option.")
    return Question(q["id"], q["prompt"], q["kind"], tuple(options), q["explanation"])


def _rich(text: str) -> str:
    """Escape ``text`` for HTML and show `backticked` parts as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


# --------------------------------------------------------------------------- widget


class Quiz(W.VBox):
    """Single- and multiple-answer questions with feedback and a running score.

    Parameters
    ----------
    questions : list of dict or Question, or ``{"questions": [...]}``
        See the module docstring for the format.
    title : str, default="Check your understanding"

    Attributes
    ----------
    questions : list of Question
    choosers : list of widgets
        Per question: a ``RadioButtons`` (single) or a ``VBox`` of ``Checkbox`` (multiple).
    check_buttons, feedback : list of Button, list of HTML
        Per question: its **Check** button and the feedback shown after answering.
    score_label : ipywidgets.Label
        ``"Score: 2/3 correct (5 questions)"``.
    """

    def __init__(self, questions: Any, *, title: str = "Check your understanding",
                 source: str = "questions") -> None:
        self.questions: list[Question] = parse_questions(questions, source=source)
        self._results: dict[int, bool] = {}
        self.choosers: list[W.Widget] = []
        self.check_buttons: list[W.Button] = []
        self.feedback: list[W.HTML] = []
        boxes = [W.HTML(f"<h3>{html.escape(title)}</h3>")]
        for i, q in enumerate(self.questions):
            boxes.append(self._question_box(i, q))
        self.score_label = W.Label()
        self.score_label.add_class("persistlib-quiz-score")
        boxes.append(self.score_label)
        super().__init__(boxes)
        self.add_class("persistlib-quiz")
        self._update_score()

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> "Quiz":
        """Load questions from a JSON file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise QuizError(f"quiz file {str(path)!r} does not exist; check the path.") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise QuizError(f"quiz file {path.name} is not valid JSON ({e}); fix the syntax there.") from None
        return cls(data, source=f"quiz file {path.name}", **kwargs)

    @classmethod
    def from_notebook(cls, stem: str, **kwargs: Any) -> "Quiz":
        """The questions for a notebook: ``persistlib/quizzes/<stem>.json``."""
        if not isinstance(stem, str) or not _STEM_RE.match(stem):
            raise QuizError(f"notebook stem must be a plain name like '03_evaluation_gate', got {stem!r}.")
        stem = stem.removesuffix(".ipynb")
        path = QUIZ_DIR / f"{stem}.json"
        if not path.exists():
            known = sorted(p.stem for p in QUIZ_DIR.glob("*.json"))
            raise QuizError(f"no quiz for notebook {stem!r} (looked for {path.name} in persistlib/quizzes); "
                            f"quizzes exist for {known or 'no notebook yet'}.")
        return cls.from_file(path, **kwargs)

    # ------------------------------------------------------------------ answering

    def answer(self, question: int | str, choices: int | Sequence[int]) -> bool:
        """Answer a question (by index or id) with an option index or a list of them.

        Selects those options in the widget, shows the feedback and updates the
        score, exactly as picking them and pressing **Check** does.

        Returns
        -------
        bool
            Whether the answer is right: the chosen set equals the correct set.
        """
        i = self._index(question)
        q = self.questions[i]
        picked = self._check_choices(q, choices)
        self._select(i, picked)
        right = picked == q.correct
        self._results[i] = right
        self.feedback[i].value = self._feedback_html(q, picked, right)
        self._update_score()
        return right

    @property
    def score(self) -> tuple[int, int]:
        """``(correct, answered)``: each question counts once, by its latest answer."""
        return sum(self._results.values()), len(self._results)

    def reset(self) -> None:
        """Clear every answer, selection and feedback."""
        self._results.clear()
        for i in range(len(self.questions)):
            self._select(i, frozenset())
            self.feedback[i].value = ""
        self._update_score()

    def __repr__(self) -> str:
        correct, answered = self.score
        return f"<Quiz: {len(self.questions)} questions, {correct}/{answered} correct>"

    # ------------------------------------------------------------------ internals

    def _question_box(self, i: int, q: Question) -> W.VBox:
        hint = "pick one" if q.kind == "single" else "pick all that apply"
        prompt = W.HTML(f"<b>{i + 1}. {_rich(q.prompt)}</b> <i>({hint})</i>")
        if q.kind == "single":
            chooser: W.Widget = W.RadioButtons(options=[(o.text, k) for k, o in enumerate(q.options)],
                                               value=None, layout=W.Layout(width="auto"))
        else:
            chooser = W.VBox([W.Checkbox(value=False, description=o.text, indent=False,
                                         layout=W.Layout(width="auto")) for o in q.options])
        chooser.add_class("persistlib-quiz-choices")
        button = W.Button(description="Check", icon="check", tooltip="Check your answer")
        button.add_class("persistlib-quiz-check")
        button.on_click(lambda _b, i=i: self._on_check(i))
        fb = W.HTML("")
        fb.add_class("persistlib-quiz-feedback")
        self.choosers.append(chooser)
        self.check_buttons.append(button)
        self.feedback.append(fb)
        box = W.VBox([prompt, chooser, button, fb])
        box.add_class("persistlib-quiz-question")
        return box

    def _on_check(self, i: int) -> None:
        picked = self._selected(i)
        if not picked:
            self.feedback[i].value = "<p>Pick an answer first, then press <b>Check</b>.</p>"
            return
        self.answer(i, sorted(picked))

    def _selected(self, i: int) -> frozenset[int]:
        chooser = self.choosers[i]
        if isinstance(chooser, W.RadioButtons):
            return frozenset() if chooser.value is None else frozenset([chooser.value])
        return frozenset(k for k, cb in enumerate(chooser.children) if cb.value)

    def _select(self, i: int, picked: frozenset[int]) -> None:
        chooser = self.choosers[i]
        if isinstance(chooser, W.RadioButtons):
            chooser.value = next(iter(picked)) if picked else None
        else:
            for k, cb in enumerate(chooser.children):
                cb.value = k in picked

    def _index(self, question: int | str) -> int:
        if isinstance(question, str):
            for i, q in enumerate(self.questions):
                if q.id == question:
                    return i
            raise QuizError(f"no question with id {question!r}; ids are {[q.id for q in self.questions]}.")
        if isinstance(question, bool) or not isinstance(question, int) or not 0 <= question < len(self.questions):
            raise QuizError(f"question must be an index 0..{len(self.questions) - 1} or an id, got {question!r}.")
        return question

    def _check_choices(self, q: Question, choices: int | Sequence[int]) -> frozenset[int]:
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

    def _feedback_html(self, q: Question, picked: frozenset[int], right: bool) -> str:
        head = "✓ Correct!" if right else "✗ Not quite."
        lines = []
        for k in sorted(picked):
            o = q.options[k]
            lines.append(f"<li>{'✓' if o.correct else '✗'} <b>{_rich(o.text)}</b>: {_rich(o.feedback)}</li>")
        missed = sorted(q.correct - picked)
        if missed and q.kind == "multiple":
            lines.append("<li>You missed: " + ", ".join(f"<b>{_rich(q.options[k].text)}</b>" for k in missed)
                         + "</li>")
        return (f"<div><p><b>{head}</b></p><ul>{''.join(lines)}</ul>"
                f"<p><i>Why:</i> {_rich(q.explanation)}</p></div>")

    def _update_score(self) -> None:
        correct, answered = self.score
        self.score_label.value = f"Score: {correct}/{answered} correct ({len(self.questions)} questions)"
