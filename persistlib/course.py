"""Small helpers the notebooks share: a workspace folder and an environment check."""

from __future__ import annotations

import html
import json
import platform
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ._checks import is_plain_name
from ._display import mark
from ._files import atomic_write
from .errors import ArgumentTypeError, InvalidArgumentError

__all__ = [
    "workspace",
    "environment_check",
    "EnvironmentReport",
    "REQUIRED_PACKAGES",
    "slide_types",
    "set_slide_metadata",
    "write_slide_metadata",
]

#: What the course needs, pinned like requirements.txt: (distribution, exact version).
REQUIRED_PACKAGES: tuple[tuple[str, str], ...] = (
    ("jupyterlab", "4.6.6"),
    ("ipywidgets", "8.1.9"),
    ("voila", "0.5.13"),
    ("joblib", "1.6.0"),
    ("scikit-learn", "1.9.1"),
    ("scipy", "1.17.1"),
    ("numpy", "2.4.6"),
    ("pandas", "3.1.1"),
    ("matplotlib", "3.11.2"),
    ("skops", "0.16.0"),
    ("skl2onnx", "1.20.0"),
    ("onnxruntime", "1.31.1"),
    ("fastapi", "0.163.2"),
    ("uvicorn", "0.54.0"),
    ("httpx", "0.28.1"),
)


def workspace(name: str, *, root: str | Path = "workspace", fresh: bool = True) -> Path:
    """The folder a notebook may write to: ``workspace/<name>/`` (git-ignored).

    With ``fresh=True`` (the default) it is emptied first, so a notebook gives
    the same results every time you run it, with no cleanup by hand.
    """
    if not is_plain_name(name):
        raise InvalidArgumentError(f"workspace name must be a plain folder name like '01_why_persist', got {name!r}.")
    path = Path(root) / name
    if fresh and path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class EnvironmentReport:
    """Result of :func:`environment_check`: ``rows`` of (package, wanted, installed, ok)."""

    python: str
    rows: tuple[tuple[str, str, str | None, bool], ...]

    @property
    def ok(self) -> bool:
        return all(r[3] for r in self.rows)

    def __str__(self) -> str:
        lines = [f"Python {self.python}"]
        for pkg, want, got, ok in self.rows:
            got_s = got or "not installed"
            hint = "" if ok else f"   → pip install {pkg}=={want}"
            lines.append(f"{mark(ok)} {pkg:<13} {got_s:<14} (course pins {want}){hint}")
        lines.append("All set!" if self.ok else "Some packages differ: run  pip install -r requirements.txt")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        body = "".join(
            f"<tr><td>{mark(ok)}</td><td>{html.escape(p)}</td><td>{html.escape(g or 'missing')}</td>"
            f"<td>{html.escape(w)}</td></tr>"
            for p, w, g, ok in self.rows
        )
        return (
            f"<table><tr><th></th><th>package</th><th>installed</th><th>course pin</th></tr>{body}</table>"
            f"<p>{mark(self.ok)} {'All set!' if self.ok else 'Run <code>pip install -r requirements.txt</code>'}</p>"
        )


def environment_check(required: tuple[tuple[str, str], ...] = REQUIRED_PACKAGES) -> EnvironmentReport:
    """Compare installed package versions with the course's pins."""
    rows = []
    for pkg, want in required:
        try:
            got: str | None = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            got = None
        rows.append((pkg, want, got, got == want))
    return EnvironmentReport(python=platform.python_version(), rows=tuple(rows))


# --------------------------------------------------------------------------- slides (RISE)

#: Slide types an author chose by hand; :func:`set_slide_metadata` never overrides them.
MANUAL_SLIDE_TYPES = frozenset({"skip", "notes", "fragment"})


def slide_types(cells: list[dict]) -> list[str]:
    """The RISE slide type of each cell, by the course's rule.

    * the first cell, and a markdown cell whose first line is a ``# `` or ``## `` heading: ``"slide"``;
    * a ``### `` heading, or other markdown right after a code cell (the next step of a section,
      with its code and output): ``"subslide"``;
    * everything else (code, and markdown that follows markdown): ``"-"``, continuing the slide.
    """
    types = []
    for i, cell in enumerate(cells):
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        first = text.lstrip().split("\n", 1)[0]
        markdown = cell.get("cell_type") == "markdown"
        if i == 0 or (markdown and first.startswith(("# ", "## "))):
            types.append("slide")
        elif markdown and (first.startswith("### ") or cells[i - 1].get("cell_type") == "code"):
            types.append("subslide")
        else:
            types.append("-")
    return types


def set_slide_metadata(notebook: dict) -> int:
    """Set ``metadata.slideshow.slide_type`` on every cell of a notebook (its JSON, as a dict), in place.

    Only that key changes, and a type chosen by hand (``skip``, ``notes``, ``fragment``) is kept,
    so running it again changes nothing. Returns how many cells changed.
    """
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
        raise ArgumentTypeError("set_slide_metadata needs a notebook's JSON as a dict with a 'cells' list.")
    changed = 0
    for cell, wanted in zip(cells, slide_types(cells), strict=True):
        meta = cell.setdefault("metadata", {})
        show = meta.setdefault("slideshow", {})
        if show.get("slide_type") in MANUAL_SLIDE_TYPES or show.get("slide_type") == wanted:
            continue
        show["slide_type"] = wanted
        changed += 1
    return changed


def write_slide_metadata(path: str | Path) -> int:
    """Apply :func:`set_slide_metadata` to a ``.ipynb`` file; rewrite it only if a cell changed.

    The file is written as nbformat writes it (sorted keys, one-space indent, UTF-8, a final
    newline), so the only difference is the slide metadata. Returns how many cells changed.
    """
    path = Path(path)
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InvalidArgumentError(f"cannot read the notebook {str(path)!r} ({e}); pass a .ipynb file.") from e
    changed = set_slide_metadata(notebook)
    if changed:
        text = json.dumps(notebook, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
        atomic_write(path, text.encode("utf-8"))  # a notebook open in JupyterLab never sees half a file
    return changed
