"""RISE slide metadata: the rule, idempotence, cell-metadata-only edits, and every lesson carries it."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from persistlib.__main__ import main
from persistlib.course import set_slide_metadata, slide_types, write_slide_metadata
from persistlib.errors import ArgumentTypeError, InvalidArgumentError

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def md(text: str, **meta) -> dict:
    return {"cell_type": "markdown", "metadata": dict(meta), "source": text}


def code(text: str = "x = 1") -> dict:
    return {"cell_type": "code", "metadata": {}, "source": [text], "outputs": [], "execution_count": None}


def notebook(*cells: dict) -> dict:
    return {"cells": list(cells), "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}


def types_of(nb: dict) -> list[str]:
    return [c["metadata"]["slideshow"]["slide_type"] for c in nb["cells"]]


def test_the_rule():
    cells = [
        md("intro without a heading"),  # the first cell always opens a slide
        md("# Title\ntext"),
        md("## Section"),
        md("text after markdown"),  # continues
        code(),
        md("text after code"),  # the next step: a sub-slide
        md("   ### A sub-heading"),
        code(),
        code(),
        md("#hashtag is not a heading"),  # after code: sub-slide, not a slide
        md(["## Heading ", "in a list source"]),
    ]
    assert slide_types(cells) == [
        "slide",
        "slide",
        "slide",
        "-",
        "-",
        "subslide",
        "subslide",
        "-",
        "-",
        "subslide",
        "slide",
    ]


def test_set_slide_metadata_is_idempotent_keeps_choices_and_touches_only_slideshow():
    nb = notebook(md("# T", tags=["keep"]), code(), md("after code", slideshow={"slide_type": "skip"}), code())
    before = copy.deepcopy(nb)
    assert set_slide_metadata(nb) == 3  # the "skip" chosen by hand is kept
    assert types_of(nb) == ["slide", "-", "skip", "-"]
    assert nb["cells"][0]["metadata"]["tags"] == ["keep"]
    for old, new in zip(before["cells"], nb["cells"], strict=True):
        new_meta = {k: v for k, v in new["metadata"].items() if k != "slideshow"}
        old_meta = {k: v for k, v in old["metadata"].items() if k != "slideshow"}
        assert new_meta == old_meta and {k: v for k, v in new.items() if k != "metadata"} == {
            k: v for k, v in old.items() if k != "metadata"
        }
    assert nb["metadata"] == before["metadata"]
    assert set_slide_metadata(nb) == 0
    nb["cells"][1]["metadata"]["slideshow"]["slide_type"] = "slide"  # a wrong automatic type is corrected
    assert set_slide_metadata(nb) == 1 and types_of(nb)[1] == "-"


def test_bad_notebooks_get_clear_errors(tmp_path):
    for bad in ({}, {"cells": "x"}, {"cells": [1]}, []):
        with pytest.raises(ArgumentTypeError, match="notebook's JSON"):
            set_slide_metadata(bad)
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    with pytest.raises(InvalidArgumentError, match="cannot read the notebook"):
        write_slide_metadata(broken)


def test_write_changes_only_the_slide_metadata_in_nbformats_own_format(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title ✓"), nbformat.v4.new_code_cell("print('é')")]
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    assert write_slide_metadata(path) == 2
    text = path.read_text(encoding="utf-8")
    expected = nbformat.read(path, as_version=4)  # what nbformat itself would write for the same content
    assert text == nbformat.writes(expected) + "\n"
    assert "✓" in text and "é" in text  # not escaped
    before = path.stat().st_mtime_ns
    assert write_slide_metadata(path) == 0 and path.stat().st_mtime_ns == before  # unchanged: not rewritten


def test_the_slides_command(tmp_path, capsys):
    path = tmp_path / "n.ipynb"
    path.write_text(json.dumps(notebook(md("# T"), code())))
    assert main(["slides", str(path)]) == 0
    assert main(["slides", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{path}: 2 cells updated", f"{path}: up to date"]
    assert main(["slides", str(tmp_path / "missing.ipynb")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "not a .ipynb file" in err


@pytest.mark.parametrize("nb", LESSONS, ids=[p.stem for p in LESSONS])
def test_every_lesson_has_slide_metadata(nb):
    """`python -m persistlib slides notebooks/[0-9]*.ipynb` sets it; the lessons then present as RISE slides."""
    cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
    missing = [i for i, c in enumerate(cells) if "slide_type" not in c.get("metadata", {}).get("slideshow", {})]
    assert not missing, f"{nb.name}: cells {missing} have no slide type; run python -m persistlib slides {nb}"
    assert cells[0]["metadata"]["slideshow"]["slide_type"] == "slide"
    assert set_slide_metadata(copy.deepcopy({"cells": cells})) == 0, f"{nb.name}: slide types out of date"


def test_the_control_room_has_slide_metadata_too():
    cells = json.loads((ROOT / "notebooks" / "control_room.ipynb").read_text(encoding="utf-8"))["cells"]
    assert set_slide_metadata({"cells": cells}) == 0
