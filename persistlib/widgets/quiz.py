"""The quiz widget that ends every notebook.

The questions, their JSON format and all checking live in :mod:`persistlib.quiz`
(no widgets needed); this module only shows them. Answer by clicking (pick,
then **Check**) or from Python::

    quiz = Quiz.from_notebook("03_evaluation_gate")
    quiz.answer(0, 1)          # question 0, option 1   -> True / False
    quiz.answer(1, [0, 2])     # a multiple-answer question
    quiz.score                 # (correct, answered)
    quiz.topic_scores          # per topic: points, answered, "revisit notebook NN"

Text between backticks in a prompt, option, feedback or explanation is shown as code;
a "predict the output" question shows its program under the prompt. Every control
has a visible label or a description, and every state is told in words and
✓/✗ marks, never by colour alone.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ipywidgets as W

from .._display import mark
from ..errors import QuizError
from ..quiz import Grade, Question, TopicScore, grade, load_questions, parse_questions, quiz_path, score_by_topic

__all__ = ["Quiz", "pick_hint"]


def _rich(text: str) -> str:
    """Escape ``text`` for HTML and show `backticked` parts as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def pick_hint(q: Question) -> str:
    """How many options to pick ("pick one" or "pick all that apply"), or "" if the prompt already says so."""
    hint = "pick one" if q.kind == "single" else "pick all that apply"
    return "" if hint in " ".join(q.prompt.lower().split()) else hint


# --------------------------------------------------------------------------- widget


class Quiz(W.VBox):
    """Single- and multiple-answer questions with feedback and a running score.

    Parameters
    ----------
    questions : list of dict or Question, or ``{"questions": [...]}``
        See :mod:`persistlib.quiz` for the format.
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
    topics_html : ipywidgets.HTML
        The score per topic, and which notebook to revisit (shown only when the
        questions have topics; see :func:`persistlib.quiz.score_by_topic`).
    """

    def __init__(self, questions: Any, *, title: str = "Check your understanding", source: str = "questions") -> None:
        self.questions: list[Question] = parse_questions(questions, source=source)
        self._grades: dict[int, Grade] = {}  # question index -> grade of its latest answer
        self.choosers: list[W.Widget] = []
        self.check_buttons: list[W.Button] = []
        self.feedback: list[W.HTML] = []
        boxes = [W.HTML(f"<h3>{html.escape(title)}</h3>")]
        for i, q in enumerate(self.questions):
            boxes.append(self._question_box(i, q))
        self.score_label = W.Label()
        self.score_label.add_class("persistlib-quiz-score")
        boxes.append(self.score_label)
        self.topics_html = W.HTML()
        self.topics_html.add_class("persistlib-quiz-topics")
        if any(q.topic for q in self.questions):
            boxes.append(self.topics_html)
        super().__init__(boxes)
        self.add_class("persistlib-quiz")
        self._update_score()

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> Quiz:
        """Load questions from a JSON file (see :func:`persistlib.quiz.load_questions`)."""
        return cls(load_questions(path), **kwargs)

    @classmethod
    def from_notebook(cls, stem: str, **kwargs: Any) -> Quiz:
        """The questions for a notebook: ``persistlib/quizzes/<stem>.json``."""
        return cls.from_file(quiz_path(stem), **kwargs)

    # ------------------------------------------------------------------ answering

    def answer(self, question: int | str, choices: int | Sequence[int]) -> bool:
        """Answer a question (by index or id) with an option index or a list of them.

        Selects those options in the widget, shows the feedback and updates the
        score, exactly as picking them and pressing **Check** does.

        A multiple-answer question earns partial credit (see
        :func:`persistlib.quiz.grade`), and its feedback names the right choices.

        Returns
        -------
        bool
            Whether the answer is exactly right: the chosen set equals the correct set.
        """
        i = self._index(question)
        q = self.questions[i]
        result = grade(q, choices)
        self._select(i, result.picked)
        self._grades[i] = result
        self.feedback[i].value = self._feedback_html(q, result)
        self._update_score()
        return result.right

    def feedback_text(self, question: int | str) -> str:
        """The feedback shown under a question (by index or id), as plain text: one line per part.

        Empty until the question is answered. Read it from Python: ``print(quiz.feedback_text(0))``.
        """
        value = self.feedback[self._index(question)].value
        lines = re.sub(r"<[^>]+>", "", re.sub(r"</(p|li)>", "\n", value)).splitlines()
        return "\n".join(html.unescape(line).strip() for line in lines if line.strip())

    @property
    def score(self) -> tuple[float, int]:
        """``(points, answered)``: each question counts once, by its latest answer; partial credit counts."""
        return round(sum(g.credit for g in self._grades.values()), 2), len(self._grades)

    @property
    def topic_scores(self) -> list[TopicScore]:
        """The score per topic, in the course's order (see :func:`persistlib.quiz.score_by_topic`)."""
        return score_by_topic(self.questions, {self.questions[i].id: g for i, g in self._grades.items()})

    @property
    def revisit(self) -> list[str]:
        """The notebooks to revisit, from :attr:`topic_scores` (empty while nothing is answered wrong)."""
        return [t.notebook for t in self.topic_scores if t.revisit]

    def reset(self) -> None:
        """Clear every answer, selection and feedback."""
        self._grades.clear()
        for i in range(len(self.questions)):
            self._select(i, frozenset())
            self.feedback[i].value = ""
        self._update_score()

    def __repr__(self) -> str:
        correct, answered = self.score
        n = len(self.questions)
        return f"<Quiz: {n} question{'s' if n != 1 else ''}, {correct:g}/{answered} correct>"

    # ------------------------------------------------------------------ internals

    def _question_box(self, i: int, q: Question) -> W.VBox:
        hint = pick_hint(q)
        code = f"<pre><code>{html.escape(q.code)}</code></pre>" if q.code else ""
        prompt = W.HTML(f"<b>{i + 1}. {_rich(q.prompt)}</b>{f' <i>({hint})</i>' if hint else ''}{code}")
        if q.kind == "single":
            chooser: W.Widget = W.RadioButtons(
                options=[(o.text, k) for k, o in enumerate(q.options)],
                value=None,
                description=f"Answer {i + 1}:",
                tooltip=f"Your answer to question {i + 1} (pick one)",
                style={"description_width": "initial"},
                layout=W.Layout(width="auto"),
            )
        else:
            chooser = W.VBox(
                [
                    W.Checkbox(
                        value=False,
                        description=o.text,
                        tooltip=f"Question {i + 1}, option {k + 1}",
                        indent=False,
                        layout=W.Layout(width="auto"),
                    )
                    for k, o in enumerate(q.options)
                ]
            )
        chooser.add_class("persistlib-quiz-choices")
        button = W.Button(description="Check", icon="check", tooltip=f"Check your answer to question {i + 1}")
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

    def _feedback_html(self, q: Question, result: Grade) -> str:
        if result.right:
            head = f"{mark(True)} Correct!"
        elif result.credit > 0:
            head = (
                f"Partly right ({result.credit:.2g} of 1 point): {len(result.hits)} of {len(result.correct)} right "
                f"choices, {len(result.wrong)} wrong."
            )
        else:
            head = f"{mark(False)} Not quite."
        lines = []
        for k in sorted(result.picked):
            o = q.options[k]
            lines.append(f"<li>{mark(o.correct)} <b>{_rich(o.text)}</b>: {_rich(o.feedback)}</li>")
        if result.missed:
            lines.append(f"<li>You missed: {self._names(q, result.missed)}</li>")
        if q.kind == "multiple" and not result.right:
            lines.append(f"<li>The right choices: {self._names(q, result.correct)}.</li>")
        return f"<div><p><b>{head}</b></p><ul>{''.join(lines)}</ul><p><i>Why:</i> {_rich(q.explanation)}</p></div>"

    @staticmethod
    def _names(q: Question, options: frozenset[int]) -> str:
        return ", ".join(f"<b>{_rich(q.options[k].text)}</b>" for k in sorted(options))

    def _update_score(self) -> None:
        correct, answered = self.score
        self.score_label.value = f"Score: {correct:g}/{answered} correct ({len(self.questions)} questions)"
        scores = self.topic_scores
        if not scores:
            return
        rows = "".join(
            f"<tr><td>{html.escape(t.title)}</td><td>{t.points:g}/{t.answered}</td><td>{t.answered} of {t.total}</td>"
            f"<td>{'–' if not t.answered else mark(not t.revisit)} {html.escape(t.advice)}</td></tr>"
            for t in scores
        )
        revisit = self.revisit
        head = (
            "Revisit: " + ", ".join(f"notebook {html.escape(nb)}" for nb in revisit)
            if revisit
            else "Nothing to revisit so far."
            if answered
            else "Answer the questions to see your score per topic."
        )
        self.topics_html.value = (
            f"<p><b>Your score by topic.</b> {head}</p>"
            f"<table><tr><th>topic</th><th>score</th><th>answered</th><th>advice</th></tr>{rows}</table>"
        )
