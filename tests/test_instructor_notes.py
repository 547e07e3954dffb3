"""The instructor notes cannot drift from the quizzes: their answer keys are the quiz files, rendered.

Each notebook's section in ``notebooks/INSTRUCTOR_NOTES.md`` holds its answer key between
``<!-- quiz-answers: <stem> -->`` and ``<!-- /quiz-answers -->``. This test renders the key from
``persistlib/quizzes/<stem>.json`` and compares. After changing a quiz, regenerate every key with

    python tests/test_instructor_notes.py

(it rewrites only the text between the markers, and adds a block for a new notebook).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from persistlib.quiz import load_questions, quiz_path
from persistlib.widgets.quiz import pick_hint

ROOT = Path(__file__).resolve().parents[1]
NOTES = ROOT / "notebooks" / "INSTRUCTOR_NOTES.md"
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
BLOCK = re.compile(r"(<!-- quiz-answers: (?P<stem>[\w-]+) -->\n)(?P<body>.*?)(<!-- /quiz-answers -->)", re.S)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def answer_key(stem: str) -> str:
    """The answer key of one notebook's quiz, as Markdown (what the notes must hold for it)."""
    lines = []
    for n, q in enumerate(load_questions(quiz_path(stem)), start=1):
        hint = pick_hint(q)  # from the question's kind, as the quiz widget shows it
        pick = f" *({hint})*" if hint else ""
        lines.append(f"{n}. {_one_line(q.prompt)}{pick}")
        if q.code:
            lines += ["", "   ```python", *(f"   {line}" for line in q.code.splitlines()), "   ```", ""]
        for o in q.options:
            if o.correct:
                lines.append(f"   - ✓ **{_one_line(o.text)}**")
        lines.append(f"   - Why: {_one_line(q.explanation)}")
    return "\n".join(lines) + "\n"


def update(text: str) -> str:
    """``text`` with every answer-key block re-rendered from its quiz file.

    A lesson without a block gets one: at the end of its ``## <stem>`` section, or in a new section at the end.
    """
    have = {m.group("stem") for m in BLOCK.finditer(text)}
    for nb in LESSONS:
        if nb.stem in have:
            continue
        block = f"* **Quiz answers:**\n\n<!-- quiz-answers: {nb.stem} -->\n<!-- /quiz-answers -->\n"
        heading = f"\n## {nb.stem}\n"
        if heading in text:
            start = text.index(heading) + len(heading)
            end = text.find("\n## ", start)
            end = len(text) if end < 0 else end + 1
            text = text[:end].rstrip("\n") + "\n\n" + block + ("\n" if end < len(text) else "") + text[end:]
        else:
            text = text.rstrip("\n") + f"\n\n## {nb.stem}\n\n{block}"
    return BLOCK.sub(lambda m: m.group(1) + answer_key(m.group("stem")) + m.group(4), text)


def test_every_lesson_has_a_section_and_an_answer_key():
    text = NOTES.read_text(encoding="utf-8")
    stems = [m.group("stem") for m in BLOCK.finditer(text)]
    missing = [nb.stem for nb in LESSONS if nb.stem not in stems]
    assert not missing, (
        f"INSTRUCTOR_NOTES.md has no answer key for {missing}; run: python tests/test_instructor_notes.py"
    )
    assert len(stems) == len(set(stems)), "an answer key appears twice"
    for stem in stems:
        assert quiz_path(stem).exists(), f"INSTRUCTOR_NOTES.md has an answer key for {stem}, which has no quiz"


@pytest.mark.parametrize("nb", LESSONS, ids=[p.stem for p in LESSONS])
def test_the_answer_keys_agree_with_the_quiz_files(nb):
    text = NOTES.read_text(encoding="utf-8")
    found = {m.group("stem"): m.group("body") for m in BLOCK.finditer(text)}
    if nb.stem not in found:
        pytest.fail(f"INSTRUCTOR_NOTES.md has no answer key for {nb.stem}; run: python tests/test_instructor_notes.py")
    assert found[nb.stem] == answer_key(nb.stem), (
        f"the answer key of {nb.stem} in INSTRUCTOR_NOTES.md differs from its quiz file; "
        "run: python tests/test_instructor_notes.py"
    )


def test_update_fills_and_adds_blocks():
    stem = LESSONS[0].stem
    text = f"# Notes\n\n## {stem}\n\n* **Teaching time:** 5 minutes.\n\n## other\n\ntext\n"
    out = update(text)
    assert out.index(f"## {stem}") < out.index(f"<!-- quiz-answers: {stem} -->") < out.index("## other")
    assert f"<!-- quiz-answers: {stem} -->\n{answer_key(stem)}<!-- /quiz-answers -->" in out
    assert "* **Teaching time:** 5 minutes.\n\n* **Quiz answers:**" in out and "\n## other\n\ntext\n\n## " in out
    for nb in LESSONS[1:]:  # new sections, after the existing ones
        assert out.index("## other") < out.index(f"\n## {nb.stem}\n\n* **Quiz answers:**")
    assert update(out) == out


def test_the_answer_key_names_every_correct_option_and_no_other():
    """The renderer itself: a key lists exactly the correct options, so a wrong key cannot pass."""
    for nb in LESSONS:
        key = answer_key(nb.stem)
        for q in load_questions(quiz_path(nb.stem)):
            for o in q.options:
                shown = f"✓ **{_one_line(o.text)}**" in key
                assert shown == o.correct, (nb.stem, q.id, o.text)


if __name__ == "__main__":
    old = NOTES.read_text(encoding="utf-8")
    new = update(old)
    if new != old:
        NOTES.write_text(new, encoding="utf-8")
    print(f"{NOTES.relative_to(ROOT)}: {'answer keys updated' if new != old else 'up to date'}")
    sys.exit(0)
