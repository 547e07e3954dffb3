"""Notebooks 11 and 12 keep their promises: 11 runs the quiz's own programs, 12's cheat sheet names real calls."""

from __future__ import annotations

import json
import re
from pathlib import Path

import persistlib as pl
from persistlib.quiz import load_questions, quiz_path

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _cells(stem: str) -> list[dict]:
    return json.loads((NOTEBOOKS / f"{stem}.ipynb").read_text())["cells"]


def _text(cell: dict) -> str:
    return "".join(cell["source"])


def _printed(cell: dict) -> str:
    return "".join("".join(o.get("text", "")) for o in cell.get("outputs", []) if o["output_type"] == "stream")


def test_notebook_11_runs_the_quizs_own_programs_with_their_outputs_folded_away():
    """The cell a student runs after answering is the question's program, and it printed the correct option."""
    code = {_text(c): c for c in _cells("11_check_your_understanding") if c["cell_type"] == "code"}
    programs = [q for q in load_questions(quiz_path("11_check_your_understanding")) if q.code]
    assert len(programs) >= 3
    for q in programs:
        assert q.code in code, f"no cell runs the program of {q.id!r}"
        cell = code[q.code]
        assert cell["metadata"].get("jupyter", {}).get("outputs_hidden") is True, f"{q.id}: its output gives it away"
        (right,) = q.correct
        assert _printed(cell).strip() == q.options[right].text


def _section(cells: list[dict], heading: str) -> str:
    starts = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and _text(c).startswith(heading)]
    assert len(starts) == 1, f"one cell must open {heading!r}"
    return _text(cells[starts[0]])


def test_the_cheat_sheet_names_only_calls_that_exist():
    sheet = _section(_cells("12_summary"), "## Cheat sheet")
    legend = dict(re.findall(r"`(\w+)` (?:is )?an? `pl\.(\w+)`", sheet))
    assert set(legend) == {"registry", "gate", "server", "audit", "monitor", "loop"}, legend
    rows = [line for line in sheet.splitlines() if line.startswith("| ") and "`" in line]
    assert len(rows) >= 10
    names = []
    for row in rows:
        calls = row.split("|")[2]  # the "calls" column
        spans = re.findall(r"`([^`]+)`", calls)
        assert spans, row
        for span in spans:
            for dotted in re.findall(r"\bpl\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)", span):
                target = pl
                for part in dotted.split("."):
                    assert hasattr(target, part), f"pl.{dotted} does not exist ({row[:40]}...)"
                    target = getattr(target, part)
                names.append(f"pl.{dotted}")
            for obj, method in re.findall(r"(?<![.\w])(\w+)\.(\w+)\(", span):
                assert obj in legend or obj == "pl", f"{obj}.{method}: say in the legend what {obj!r} is"
                if obj in legend:
                    cls = getattr(pl, legend[obj])
                    assert callable(getattr(cls, method, None)), f"{obj}.{method}: pl.{legend[obj]} has no {method}"
                    names.append(f"{obj}.{method}")
    for must in (
        "registry.save",
        "registry.load",
        "registry.rollback",
        "server.swap",
        "server.rollback",
        "loop.run_cycle",
    ):
        assert must in names
    assert len(set(names)) >= 25


def test_the_lifecycle_is_one_readable_cell_printing_one_line_per_stage():
    cells = _cells("12_summary")
    stages = ["train", "gate", "save", "version", "load", "serve", "drift", "retrain", "swap", "rollback"]
    (cell,) = [c for c in cells if c["cell_type"] == "code" and "pl.RetrainLoop(" in _text(c)]
    assert len(_text(cell).splitlines()) <= 45
    lines = _printed(cell).splitlines()
    assert [line[:4].strip() for line in lines] == [f"{n}." for n in range(1, 11)]
    assert [line.split()[1] for line in lines] == stages
