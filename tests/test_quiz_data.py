"""persistlib.quiz: quiz files are read, checked and answered without ipywidgets."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from persistlib.errors import PersistError, QuizError
from persistlib.quiz import QUIZ_DIR, Option, Question, check_choices, grade, load_questions, parse_questions, quiz_path

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


def test_importing_the_quiz_core_loads_no_widgets():
    code = (
        "import sys, persistlib.quiz as q\n"
        "qs = q.load_questions(q.quiz_path('03_evaluation_gate'))\n"
        "print(len(qs) >= 3, [m for m in ('ipywidgets', 'matplotlib') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True []"


def test_parse_builds_questions_with_their_correct_options():
    one, two = parse_questions(QUESTIONS)
    assert isinstance(one, Question) and one.options[1].feedback == "yes b"
    assert one.correct == {1} and two.correct == {0, 2}
    assert parse_questions([one, two]) == [one, two]  # already-built questions pass through


def test_errors_name_the_source_and_are_persist_errors():
    with pytest.raises(QuizError, match=r"my quiz, question 1 \('two'\): 'kind' must be") as info:
        data = json.loads(json.dumps(QUESTIONS))
        data["questions"][1]["kind"] = "many"
        parse_questions(data, source="my quiz")
    assert isinstance(info.value, PersistError)
    with pytest.raises(QuizError, match="non-empty list"):
        parse_questions({"questions": []})


def test_load_questions_from_files(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(QUESTIONS))
    assert [q.id for q in load_questions(good)] == ["one", "two"]
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(QuizError, match="bad.json is not valid JSON"):
        load_questions(tmp_path / "bad.json")
    with pytest.raises(QuizError, match="does not exist"):
        load_questions(tmp_path / "missing.json")


def test_quiz_path_finds_shipped_quizzes_only():
    assert quiz_path("03_evaluation_gate") == QUIZ_DIR / "03_evaluation_gate.json"
    assert quiz_path("03_evaluation_gate.ipynb") == QUIZ_DIR / "03_evaluation_gate.json"
    with pytest.raises(QuizError, match="no quiz for notebook 'nope'"):
        quiz_path("nope")
    with pytest.raises(QuizError, match="plain name"):
        quiz_path("../etc/passwd")


@pytest.mark.parametrize("choices, picked", [(1, {1}), ([1], {1})])
def test_check_choices_accepts_an_index_or_a_list(choices, picked):
    assert check_choices(parse_questions(QUESTIONS)[0], choices) == picked


@pytest.mark.parametrize(
    "q, choices, msg",
    [(0, 2, "options 0..1"), (0, [0, 1], "exactly one"), (1, [], "at least one"), (1, "0", "option index")],
)
def test_check_choices_explains_bad_answers(q, choices, msg):
    with pytest.raises(QuizError, match=msg):
        check_choices(parse_questions(QUESTIONS)[q], choices)


# --------------------------------------------------------------------------- grading


def _multiple(n_options: int, correct: set[int]) -> Question:
    options = tuple(Option(f"o{k}", k in correct, "why") for k in range(n_options))
    return Question("m", "Pick all that apply.", "multiple", options, "because")


@pytest.mark.parametrize(
    ("picked", "credit"),
    [
        ([0, 1, 2], 1.0),  # exactly right
        ([0, 1], 2 / 3),  # one missed
        ([0], 1 / 3),
        ([0, 3], 0.0),  # one right, one wrong: they cancel out
        ([0, 1, 3], 1 / 3),
        ([0, 1, 2, 3], 2 / 3),  # a superset loses a share for the wrong pick
        ([3], 0.0),  # never below zero
    ],
)
def test_multiple_answer_questions_give_partial_credit(picked, credit):
    g = grade(_multiple(4, {0, 1, 2}), picked)
    assert g.credit == pytest.approx(credit)
    assert g.right is (credit == 1.0)
    assert g.hits | g.missed == {0, 1, 2} and g.wrong <= {3}


def test_single_answer_questions_score_all_or_nothing():
    q = Question("s", "Pick one.", "single", (Option("a", False, "no"), Option("b", True, "yes")), "b")
    assert grade(q, 1).credit == 1.0 and grade(q, 0).credit == 0.0
    with pytest.raises(QuizError, match="exactly one"):
        grade(q, [0, 1])
