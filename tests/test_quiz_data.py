"""persistlib.quiz: quiz files are read, checked and answered without ipywidgets."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from persistlib._checks import is_plain_name
from persistlib.errors import PersistError, QuizError
from persistlib.quiz import (
    QUIZ_DIR,
    TOPICS,
    Option,
    Question,
    check_choices,
    grade,
    load_questions,
    parse_questions,
    quiz_path,
    score_by_topic,
)

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


# --------------------------------------------------------------------------- topics, programs and scores per topic


def _with(**extra):
    data = json.loads(json.dumps(QUESTIONS))
    data["questions"][0].update(extra)
    return data


def test_topic_and_code_are_optional_and_kept():
    one, two = parse_questions(_with(topic="gate", code="print('b')"))
    assert (one.topic, one.code) == ("gate", "print('b')")
    assert (two.topic, two.code) == (None, None)


@pytest.mark.parametrize(
    "extra, msg",
    [
        ({"topic": "gates"}, r"'topic' must be one of \[.*'gate'"),
        ({"topic": ""}, "'topic' must be one of"),
        ({"topic": 3}, "'topic' must be one of"),
        ({"code": "  "}, "'code' must be the program"),
        ({"code": ["print(1)"]}, "'code' must be the program"),
        ({"kind": "multiple", "code": "print(1)"}, "its kind must be 'single'"),
        ({"level": "easy"}, r"unknown key\(s\) \['level'\]; allowed keys are .*'code'.*'topic'"),
    ],
)
def test_topic_and_code_are_validated(extra, msg):
    with pytest.raises(QuizError, match=msg):
        parse_questions(_with(**extra), source="my quiz")


def test_every_topic_points_to_a_notebook_of_the_course():
    root = QUIZ_DIR.parents[1]
    for topic, (title, notebook) in TOPICS.items():
        assert title.strip() and is_plain_name(topic)
        assert (root / "notebooks" / f"{notebook}.ipynb").exists(), f"{topic} -> {notebook}"
        assert quiz_path(notebook).exists()
    assert len({nb for _, nb in TOPICS.values()}) == len(TOPICS)


def _topical() -> list[Question]:
    def single(qid, topic, correct=0):
        return Question(
            qid, "?", "single", (Option("a", correct == 0, "f"), Option("b", correct == 1, "f")), "e", topic
        )

    multi = Question(
        "m", "?", "multiple", tuple(Option(f"o{k}", k < 3, "f") for k in range(4)), "e", "security"
    )  # correct: 0, 1, 2
    return [single("g1", "gate"), single("g2", "gate", 1), multi, single("v1", "versioning"), single("x", None)]


def test_score_by_topic_adds_up_points_per_topic_in_course_order():
    scores = score_by_topic(_topical(), {"g1": 0, "g2": 0, "m": [0, 1], "x": 1})
    assert [s.topic for s in scores] == ["gate", "versioning", "security"]  # TOPICS order; "x" has no topic
    gate, versioning, security = scores
    assert (gate.points, gate.answered, gate.total) == (1.0, 2, 2)
    assert gate.fraction == 0.5 and gate.revisit and gate.notebook == "03_evaluation_gate"
    assert gate.advice == "revisit notebook 03_evaluation_gate"
    assert str(gate) == "✗ The evaluation gate: 1/2 (2 questions): revisit notebook 03_evaluation_gate"
    assert (versioning.answered, versioning.fraction, versioning.revisit) == (0, None, False)
    assert versioning.advice == "not answered yet" and str(versioning).startswith("– ")
    assert security.points == pytest.approx(2 / 3, abs=0.01) and security.revisit  # partial credit counts
    assert not score_by_topic(_topical(), {"m": [0, 1, 2]})[2].revisit


@pytest.mark.parametrize("pass_mark, revisit", [(0.5, False), (0.51, True), (0.0, False), (1.0, True)])
def test_the_pass_mark_decides_what_to_revisit(pass_mark, revisit):
    gate = score_by_topic(_topical(), {"g1": 0, "g2": 0}, pass_mark=pass_mark)[0]
    assert gate.revisit is revisit


def test_score_by_topic_accepts_grades_and_explains_bad_input():
    qs = _topical()
    assert score_by_topic(qs, {"m": grade(qs[2], [0, 1, 2])})[2].points == 1.0
    assert score_by_topic([q for q in qs if q.topic is None], {}) == []
    with pytest.raises(QuizError, match=r"unknown question id\(s\) \['nope'\]"):
        score_by_topic(qs, {"nope": 0})
    with pytest.raises(QuizError, match="exactly one"):
        score_by_topic(qs, {"g1": [0, 1]})
    for bad in (1.5, -0.1, "0.5", True):
        with pytest.raises(QuizError, match="pass_mark must be a number from 0 to 1"):
            score_by_topic(qs, {}, pass_mark=bad)
    with pytest.raises(QuizError, match="answers must map question ids"):
        score_by_topic(qs, [0, 1])


# --------------------------------------------------------------------------- the shipped course quiz (notebook 11)

LESSON_QUESTIONS = [
    "Why don't we simply retrain the model for every prediction request?",
    "What does the evaluation gate check before serialising?",
    "A model clears the minimum accuracy threshold of 0.88 with a score of 0.89, but the production baseline is 0.91. "
    "Should it be serialised?",
    "Why should metadata be versioned alongside the model file?",
    "Why is version control important for persisted models?",
]


def test_the_course_quiz_asks_the_lessons_five_questions_word_for_word_and_spans_the_course():
    questions = load_questions(quiz_path("11_check_your_understanding"))
    prompts = [q.prompt for q in questions]
    assert prompts[:5] == LESSON_QUESTIONS
    assert len(questions) >= 15  # the five, and at least ten more
    assert all(q.topic for q in questions), "every question of the course quiz names its topic"
    assert {q.topic for q in questions} == set(TOPICS)  # the whole course, 01 to 10
    assert sum(q.code is not None for q in questions) >= 3  # predict the output
    assert any(q.kind == "multiple" for q in questions)  # partial credit


def test_question_three_fails_on_the_baseline_not_the_threshold():
    q = load_questions(quiz_path("11_check_your_understanding"))[2]
    (right,) = q.correct
    assert q.options[right].text.startswith("No") and "baseline" in q.options[right].text
    assert all(not o.text.startswith("No") or "baseline" not in o.text for k, o in enumerate(q.options) if k != right)
    assert "0.89" in q.prompt and "0.88" in q.prompt and "0.91" in q.prompt


PROGRAMS = [
    pytest.param(q, id=f"{path.stem}:{q.id}")
    for path in sorted(QUIZ_DIR.glob("*.json"))
    for q in load_questions(path)
    if q.code is not None
]


@pytest.mark.parametrize("q", PROGRAMS)
def test_predict_the_output_programs_print_exactly_their_correct_option(q, tmp_path):
    """Each program runs in a fresh interpreter (in a scratch folder); what it prints is the correct option."""
    out = subprocess.run([sys.executable, "-c", q.code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (right,) = q.correct
    printed = out.stdout.strip()
    assert printed == q.options[right].text
    assert all(printed != o.text for k, o in enumerate(q.options) if k != right)


def test_there_are_programs_to_predict():
    assert len(PROGRAMS) >= 3
