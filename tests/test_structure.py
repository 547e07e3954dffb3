"""The shape of persistlib, enforced: layers, no import cycles, small modules, one home per idea.

The layers, bottom up (README, "How persistlib is built"):

1. core        persistlib/*.py           data, gate, card, artefacts, registry, errors, ...
2. serving     persistlib/serving/       server, A/B routing, HTTP, audit
3. monitoring  persistlib/monitoring/    drift and the retrain loop
4. back ends   persistlib/backends/      optional registries (MLflow)
5. widgets     persistlib/widgets/       what the notebooks display

A module may import from its own layer and the layers below, never above, and
no chain of imports may lead back to where it started. The checks parse the
source (``ast``), so they see every import, including those inside functions.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "persistlib"
LAYERS = {"serving": 2, "monitoring": 3, "backends": 4, "widgets": 5}
MAX_LINES = 400
LONG_REASON = "# Longer than 400 lines:"  # a module over the limit says why, on a line starting with this


def layer_of(module: str) -> int:
    """``persistlib.registry`` -> 1, ``persistlib.serving.http`` -> 2, ``persistlib.__main__`` -> 99."""
    parts = module.split(".")
    if parts[1:] == ["__main__"]:
        return 99  # the command line sits on top of everything
    if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS):
        return LAYERS.get(parts[1], 1)
    return 1


def module_name(root: Path, path: Path) -> str:
    """``<root>/persistlib/serving/http.py`` -> ``persistlib.serving.http``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(root: Path, path: Path, known: set[str]) -> tuple[set[str], set[str]]:
    """(runtime imports, type-checking-only imports) of persistlib modules by the file at ``path``."""
    name = module_name(root, path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            typing_only.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    runtime, typed = set(), set()
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            targets = [prefix] + [f"{prefix}.{a.name}" for a in node.names if f"{prefix}.{a.name}" in known]
        for t in targets:
            while t and t not in known:  # persistlib.serving.server.ModelServer -> persistlib.serving.server
                t = t.rpartition(".")[0]
            if t and t != name and t.startswith("persistlib"):
                (typed if id(node) in typing_only else runtime).add(t)
    return runtime, typed


def import_graph(root: Path = ROOT) -> dict[str, tuple[set[str], set[str]]]:
    """Each persistlib module under ``root`` -> (runtime imports, type-only imports) of persistlib modules."""
    files = sorted((root / "persistlib").rglob("*.py"))
    known = {module_name(root, p) for p in files}
    return {module_name(root, p): imports_of(root, p, known) for p in files}


def upward_imports(graph: dict[str, tuple[set[str], set[str]]]) -> list[str]:
    """Imports (type-only ones included) that reach a higher layer. The package facade may only import the core."""
    bad = []
    for mod, (runtime, typed) in graph.items():
        ceiling = 1 if mod == "persistlib" else layer_of(mod)
        bad += [
            f"{mod} (layer {layer_of(mod)}) imports {t} (layer {layer_of(t)})"
            for t in sorted(runtime | typed)
            if layer_of(t) > ceiling
        ]
    return bad


def find_cycle(graph: dict[str, tuple[set[str], set[str]]]) -> list[str] | None:
    """One import cycle among runtime imports (packages import their own submodules: those edges are skipped)."""
    edges = {m: {t for t in runtime if not t.startswith(m + ".")} for m, (runtime, _) in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for t in sorted(edges.get(m, ())):
            if state.get(t) == 1:
                return stack[stack.index(t) :] + [t]
            if t not in state and (found := visit(t)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(edges):
        if m not in state and (found := visit(m)):
            return found
    return None


# --------------------------------------------------------------------------- the rules, on persistlib


def test_no_module_imports_from_a_higher_layer():
    assert upward_imports(import_graph()) == []


def test_there_are_no_import_cycles():
    assert find_cycle(import_graph()) is None


def test_every_module_reads_in_one_sitting():
    too_long = []
    for path in sorted(PKG.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) > MAX_LINES and not any(line.startswith(LONG_REASON) for line in lines):
            too_long.append(f"{path.relative_to(ROOT)}: {len(lines)} lines")
    assert not too_long, f"split these, or state why on a line starting with {LONG_REASON!r}: {too_long}"


def test_every_exception_class_lives_in_errors_py():
    elsewhere = []
    for path in sorted(PKG.rglob("*.py")):
        if path.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
                if any(b.endswith(("Error", "Exception", "Warning", "Rejected")) for b in bases):
                    elsewhere.append(f"{path.relative_to(ROOT)}:{node.lineno} class {node.name}")
    assert not elsewhere, "move these to persistlib/errors.py:\n" + "\n".join(elsewhere)


def test_persist_error_is_never_raised_bare():
    """A subclass says what kind of problem it is, and lets a caller catch just that kind."""
    bare = []
    for path in sorted(PKG.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                if getattr(node.exc.func, "id", None) == "PersistError":
                    bare.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not bare, f"raise a PersistError subclass from errors.py instead: {bare}"


def test_every_warning_goes_through_warn_caller():
    """``errors.warn_caller`` locates a warning at the user's line; a bare ``warnings.warn`` guesses a depth."""
    bare = []
    for path in sorted(PKG.rglob("*.py")):
        if path.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "warn":
                if getattr(node.func.value, "id", None) == "warnings":
                    bare.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not bare, f"warn through persistlib.errors.warn_caller instead: {bare}"


def test_status_marks_come_from_one_helper():
    """✓ and ✗ are written by ``persistlib._display.mark`` only (docstrings may show them)."""
    offenders = []
    for path in sorted(PKG.rglob("*.py")):
        if path.name == "_display.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(n.body[0].value)
            for n in ast.walk(tree)
            if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and n.body
            and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                if "✓" in node.value or "✗" in node.value:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, f"use persistlib._display.mark(ok): {offenders}"


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]], ids=["check", "format"])
def test_ruff_is_clean(command):
    done = subprocess.run([sys.executable, "-m", "ruff", *command], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, f"ruff {' '.join(command)}:\n{done.stdout}{done.stderr}"


# --------------------------------------------------------------------------- the checkers themselves


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_checkers_catch_an_upward_import_and_a_cycle(tmp_path):
    """The rules above can fail: a core module importing a widget, and a three-module circle."""
    _write(
        tmp_path,
        {
            "persistlib/__init__.py": "from .card import X\n",
            "persistlib/card.py": "X = 1\n",
            "persistlib/registry.py": "def f():\n    from .widgets.panel import P\n",
            "persistlib/widgets/__init__.py": "",
            "persistlib/widgets/panel.py": "from ..registry import f\nP = 1\n",
            "persistlib/serving/__init__.py": "",
            "persistlib/serving/a.py": "from . import b\n",
            "persistlib/serving/b.py": "from .c import x\n",
            "persistlib/serving/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import y\n"
            "from .a import z\nx = 1\n",
        },
    )
    graph = import_graph(tmp_path)
    assert upward_imports(graph) == ["persistlib.registry (layer 1) imports persistlib.widgets.panel (layer 5)"]
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1]
    assert set(cycle) in (
        {"persistlib.serving.a", "persistlib.serving.b", "persistlib.serving.c"},
        {"persistlib.registry", "persistlib.widgets.panel"},
    )
