"""Quiz: parsing, answering from Python and by clicking, and clear errors for bad files."""

from __future__ import annotations

import json

import ipywidgets  # a course requirement: missing is a failure, not a skip
import pytest

import persistlib as pl
from persistlib.errors import PersistError, QuizError
from persistlib.quiz import QUIZ_DIR
from persistlib.widgets.quiz import Quiz, pick_hint

QUESTIONS = {
    "questions": [
        {
            "id": "one",
            "prompt": "Pick `b`.",
            "kind": "single",
            "explanation": "b is right.",
            "options": [
                {"text": "a", "correct": False, "feedback": "not a"},
                {"text": "b", "correct": True, "feedback": "yes b"},
                {"text": "c", "correct": False, "feedback": "not c"},
            ],
        },
        {
            "id": "two",
            "prompt": "Pick x and z.",
            "kind": "multiple",
            "explanation": "x and z.",
            "options": [
                {"text": "x", "correct": True, "feedback": "x is in"},
                {"text": "y", "correct": False, "feedback": "y is out"},
                {"text": "z", "correct": True, "feedback": "z is in"},
            ],
        },
    ]
}


def test_answer_from_python_updates_feedback_and_score():
    quiz = Quiz(QUESTIONS)
    assert quiz.score == (0, 0)
    assert quiz.answer(0, 1) is True
    assert "✓ Correct!" in quiz.feedback[0].value and "yes b" in quiz.feedback[0].value
    assert "b is right." in quiz.feedback[0].value
    assert quiz.choosers[0].value == 1
    assert quiz.answer("two", [0]) is False  # z missed: half the credit
    fb = quiz.feedback[1].value
    assert "Partly right (0.5 of 1 point): 1 of 2 right choices, 0 wrong." in fb
    assert "You missed: <b>z</b>" in fb and "The right choices: <b>x</b>, <b>z</b>." in fb
    assert quiz.score == (1.5, 2)
    assert quiz.score_label.value == "Score: 1.5/2 correct (2 questions)"
    assert repr(quiz) == "<Quiz: 2 questions, 1.5/2 correct>"
    assert quiz.answer("two", [0, 1]) is False  # one right, one wrong: they cancel out
    assert "✗ Not quite." in quiz.feedback[1].value and "The right choices" in quiz.feedback[1].value
    assert quiz.score == (1, 2)


def test_latest_answer_replaces_earlier_one():
    quiz = Quiz(QUESTIONS)
    assert quiz.answer(1, [0, 1, 2]) is False  # a superset is wrong
    assert quiz.answer(1, [2, 0]) is True
    assert quiz.score == (1, 1)
    assert [cb.value for cb in quiz.choosers[1].children] == [True, False, True]
    quiz.reset()
    assert quiz.score == (0, 0) and quiz.feedback[1].value == ""


def test_clicking_check_reads_the_widgets():
    quiz = Quiz(QUESTIONS)
    quiz.check_buttons[0].click()  # nothing picked yet
    assert "Pick an answer first" in quiz.feedback[0].value and quiz.score == (0, 0)
    quiz.choosers[0].value = 2
    quiz.check_buttons[0].click()
    assert quiz.score == (0, 1) and "not c" in quiz.feedback[0].value
    for cb, v in zip(quiz.choosers[1].children, (True, False, True), strict=True):
        cb.value = v
    quiz.check_buttons[1].click()
    assert quiz.score == (1, 2)


def test_css_classes_for_browser_tests():
    quiz = Quiz(QUESTIONS)
    assert "persistlib-quiz" in quiz._dom_classes
    assert "persistlib-quiz-score" in quiz.score_label._dom_classes
    assert all("persistlib-quiz-check" in b._dom_classes for b in quiz.check_buttons)


def test_backticks_become_code_and_text_is_escaped():
    data = json.loads(json.dumps(QUESTIONS))
    data["questions"][0]["options"][0]["text"] = "<script>"
    quiz = Quiz(data)
    quiz.answer(0, 0)
    assert "&lt;script&gt;" in quiz.feedback[0].value and "<script>" not in quiz.feedback[0].value
    assert "<code>b</code>" in quiz.children[1].children[0].value


@pytest.mark.parametrize(
    "choices, msg", [(3, "options 0..2"), ([0, 1], "exactly one"), ([], "at least one"), ("1", "option index")]
)
def test_bad_answers_are_explained(choices, msg):
    with pytest.raises(QuizError, match=msg):
        Quiz(QUESTIONS).answer(0, choices)


def test_unknown_question():
    with pytest.raises(QuizError, match="ids are"):
        Quiz(QUESTIONS).answer("nope", 0)
    with pytest.raises(QuizError, match="index 0..1"):
        Quiz(QUESTIONS).answer(5, 0)


def _broken(edit):
    data = json.loads(json.dumps(QUESTIONS))
    edit(data["questions"])
    return data


@pytest.mark.parametrize(
    "edit, msg",
    [
        (lambda qs: qs[0].pop("explanation"), r"question 0 \('one'\): missing key\(s\) \['explanation'\]"),
        (lambda qs: qs[1].update(kind="many"), r"question 1 \('two'\): 'kind' must be"),
        (lambda qs: qs[0]["options"][0].update(correct=True), "exactly one correct option, found 2"),
        (lambda qs: qs[1]["options"][0].update(correct="yes"), "option 0: 'correct' must be true or false"),
        (lambda qs: qs[0]["options"][1].pop("feedback"), r"option 1: needs exactly the keys"),
        (lambda qs: qs[1].update(id="one"), "reuses the id 'one'"),
        (lambda qs: qs[0].update(options=[qs[0]["options"][0]]), "at least two options"),
        (lambda qs: qs[0].update(hint="x"), r"unknown key\(s\) \['hint'\]"),
    ],
)
def test_malformed_questions_name_file_and_question(tmp_path, edit, msg):
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(_broken(edit)))
    with pytest.raises(QuizError, match=msg) as info:
        Quiz.from_file(path)
    assert "quiz file broken.json" in str(info.value)
    assert isinstance(info.value, PersistError)


def test_bad_json_and_missing_files(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(QuizError, match="bad.json is not valid JSON"):
        Quiz.from_file(tmp_path / "bad.json")
    with pytest.raises(QuizError, match="does not exist"):
        Quiz.from_file(tmp_path / "missing.json")
    with pytest.raises(QuizError, match="no quiz for notebook 'no_such_notebook'"):
        Quiz.from_notebook("no_such_notebook")
    with pytest.raises(QuizError, match="plain name"):
        Quiz.from_notebook("../etc/passwd")


@pytest.mark.parametrize("path", sorted(QUIZ_DIR.glob("*.json")), ids=lambda p: p.stem)
def test_every_shipped_quiz_is_valid_and_answerable(path):
    quiz = pl.Quiz.from_notebook(path.stem)
    assert len(quiz.questions) >= 3
    for i, q in enumerate(quiz.questions):
        assert quiz.answer(i, sorted(q.correct)) is True
        wrong = [k for k in range(len(q.options)) if k not in q.correct]
        assert wrong, f"{path.name}: question {q.id!r} has no wrong option to learn from"
        assert quiz.answer(i, wrong[:1] if q.kind == "single" else wrong) is False
    assert quiz.score == (0, len(quiz.questions))


def test_the_widget_scores_with_the_core_grade():
    import persistlib.quiz as core
    import persistlib.widgets.quiz as widget

    assert widget.grade is core.grade and widget.QuizError is core.QuizError


# --------------------------------------------------------------------------- topics, programs, accessibility


def _topical():
    data = json.loads(json.dumps(QUESTIONS))
    data["questions"][0]["topic"] = "gate"
    data["questions"][1]["topic"] = "security"
    data["questions"].append(
        {
            "id": "three",
            "topic": "gate",
            "prompt": "What does it print?",
            "kind": "single",
            "code": "print(1 < 2 and '<ok>')",
            "explanation": "and returns its last operand.",
            "options": [
                {"text": "True", "correct": False, "feedback": "no"},
                {"text": "<ok>", "correct": True, "feedback": "yes"},
            ],
        }
    )
    return data


def test_the_score_per_topic_says_what_to_revisit():
    quiz = Quiz(_topical())
    assert quiz.topics_html in quiz.children and "persistlib-quiz-topics" in quiz.topics_html._dom_classes
    assert "Answer the questions to see your score per topic." in quiz.topics_html.value
    assert quiz.revisit == []
    quiz.answer("one", 1)
    assert "Nothing to revisit so far." in quiz.topics_html.value
    quiz.answer("three", 0)  # wrong: gate is now 1/2
    quiz.answer("two", [0, 2])
    gate, security = quiz.topic_scores
    assert (gate.topic, gate.points, gate.answered, gate.total, gate.revisit) == ("gate", 1.0, 2, 2, True)
    assert (security.points, security.revisit) == (1.0, False)
    assert quiz.revisit == ["03_evaluation_gate"]
    value = quiz.topics_html.value
    assert "Revisit: notebook 03_evaluation_gate" in value
    assert (
        "<td>The evaluation gate</td><td>1/2</td><td>2 of 2</td><td>✗ revisit notebook 03_evaluation_gate</td>" in value
    )
    assert "<td>Pickle security and formats</td><td>1/1</td><td>1 of 1</td><td>✓ fine</td>" in value
    quiz.answer("three", 1)
    assert quiz.revisit == [] and "Nothing to revisit so far." in quiz.topics_html.value
    quiz.reset()
    assert "Answer the questions" in quiz.topics_html.value and "– not answered yet" in quiz.topics_html.value


def test_clicking_updates_the_score_per_topic():
    quiz = Quiz(_topical())
    quiz.choosers[2].value = 0
    quiz.check_buttons[2].click()
    assert quiz.revisit == ["03_evaluation_gate"] and "✗ revisit" in quiz.topics_html.value


def test_questions_without_topics_show_no_topic_table():
    quiz = Quiz(QUESTIONS)
    assert quiz.topics_html not in quiz.children and quiz.topic_scores == [] and quiz.revisit == []


def test_a_program_to_predict_is_shown_escaped_under_its_prompt():
    quiz = Quiz(_topical())
    prompt = quiz.children[3].children[0].value
    assert "<pre><code>print(1 &lt; 2 and &#x27;&lt;ok&gt;&#x27;)</code></pre>" in prompt


def test_every_control_has_a_label_and_state_is_never_colour_alone():
    quiz = Quiz(_topical())
    for i, chooser in enumerate(quiz.choosers):
        if isinstance(chooser, ipywidgets.RadioButtons):
            assert chooser.description == f"Answer {i + 1}:" and chooser.tooltip
        else:
            assert all(cb.description and cb.tooltip for cb in chooser.children)
    for i, button in enumerate(quiz.check_buttons):
        assert button.description == "Check" and button.tooltip == f"Check your answer to question {i + 1}"
    quiz.answer(0, 1)
    quiz.answer(1, [0])
    quiz.answer(2, 0)
    assert "✓ Correct!" in quiz.feedback[0].value  # a mark and a word, not a green colour
    assert "Partly right" in quiz.feedback[1].value and "✗ Not quite." in quiz.feedback[2].value
    html_out = quiz.feedback[1].value + quiz.feedback[2].value + quiz.topics_html.value
    assert "color" not in html_out and "style=" not in html_out


def test_the_pick_hint_comes_from_the_kind_and_is_never_doubled():
    data = json.loads(json.dumps(QUESTIONS))
    data["questions"][0]["prompt"] = "What happens when the file is unpickled?"
    data["questions"][1]["prompt"] = "Which are true? (Pick all  that apply.)"
    quiz = Quiz(data)
    single = quiz.children[1].children[0].value
    multiple = quiz.children[2].children[0].value
    assert single.endswith("unpickled?</b> <i>(pick one)</i>")  # "unpickled" is not a hint
    assert multiple.endswith("(Pick all  that apply.)</b>") and multiple.lower().count("pick all that apply") == 0
    questions = pl.quiz.parse_questions(data)
    assert [pick_hint(q) for q in questions] == ["pick one", ""]


def test_feedback_text_is_the_feedback_without_markup():
    quiz = Quiz(_topical())
    assert quiz.feedback_text("one") == ""
    quiz.answer("three", 0)
    assert quiz.feedback_text(2) == "✗ Not quite.\n✗ True: no\nYou missed: <ok>\nWhy: and returns its last operand."
    quiz.answer("two", [0])
    assert quiz.feedback_text("two").splitlines() == [
        "Partly right (0.5 of 1 point): 1 of 2 right choices, 0 wrong.",
        "✓ x: x is in",
        "You missed: z",
        "The right choices: x, z.",
        "Why: x and z.",
    ]
    with pytest.raises(QuizError, match="no question with id 'four'"):
        quiz.feedback_text("four")
