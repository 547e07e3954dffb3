"""The project's promises about itself: pins, Binder, layering, notebooks."""

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The lessons are the numbered notebooks; the control room is an instructor's dashboard, not a lesson
# (no quiz, no number), but it is saved from a clean run and clicks nothing, like every notebook.
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
DASHBOARDS = [ROOT / "notebooks" / "control_room.ipynb"]


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        name, sep, version = line.partition("==")
        assert sep, f"{path.name}: {line!r} is not an exact pin (name==version)"
        pins[name.strip().lower()] = version.strip()
    return pins


def test_requirements_and_binder_pin_the_same_versions():
    main, binder = _pins(ROOT / "requirements.txt"), _pins(ROOT / "binder" / "requirements.txt")
    assert main == binder
    for must in ("jupyterlab", "ipywidgets", "joblib", "scikit-learn", "matplotlib", "nbval", "skops"):
        assert must in main


def test_binder_files_follow_the_caching_rules():
    binder = ROOT / "binder"
    assert (binder / "runtime.txt").read_text().strip() == "python-3.12"
    reqs = (binder / "requirements.txt").read_text().splitlines()
    assert not [line for line in reqs if line.strip().startswith(("-e", "-r"))]
    post = (binder / "postBuild").read_text().splitlines()
    body = [line for line in post if line.strip() and not line.startswith("#")]
    assert body[0] == "set -e" and "pip install --no-deps ." in body


def test_requirements_install_persistlib_itself():
    assert "-e ." in (ROOT / "requirements.txt").read_text().splitlines()


def test_installed_versions_match_the_pins():
    from importlib import metadata

    wrong = {
        n: (v, metadata.version(n)) for n, v in _pins(ROOT / "requirements.txt").items() if metadata.version(n) != v
    }
    assert not wrong, f"installed versions differ from requirements.txt: {wrong}"


def _run(code: str, **env) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={**os.environ, **env}, cwd=ROOT
    )


def test_import_persistlib_loads_no_optional_stack():
    code = (
        "import sys, persistlib\n"
        "heavy = ['ipywidgets', 'matplotlib', 'fastapi', 'uvicorn', 'httpx', 'onnxruntime', 'skl2onnx',"
        " 'skops', 'sklearn', 'mlflow', 'scipy']\n"
        "print([m for m in heavy if m in sys.modules])"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_broken_optional_dependency_does_not_break_the_core(tmp_path):
    for name in ("ipywidgets", "fastapi", "onnxruntime"):
        pkg = tmp_path / name
        pkg.mkdir()
        (pkg / "__init__.py").write_text("raise ImportError('deliberately broken for the test')\n")
    code = (
        "import persistlib as pl\n"
        "from sklearn.tree import DecisionTreeClassifier\n"
        "X, y = pl.make_churn(200, random_state=0)\n"
        f"reg = pl.Registry(r'{tmp_path / 'reg'}')\n"
        "card = reg.save(DecisionTreeClassifier().fit(X, y), metrics={'accuracy': 1.0})\n"
        "print(reg.load(card.version)[1].version)"
    )
    out = _run(code, PYTHONPATH=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1.0.0"


def test_lazy_names_resolve_to_their_modules():
    import persistlib

    for name, module in persistlib._LAZY.items():
        path = ROOT / "persistlib" / (module.replace(".", "/") + ".py")
        pkg = ROOT / "persistlib" / module / "__init__.py"
        assert path.exists() or pkg.exists(), f"persistlib.{name} points at missing module {module}"
        target = importlib.import_module(f"persistlib.{module}")
        assert getattr(persistlib, name) is getattr(target, name), f"persistlib.{name} is not {module}.{name}"
    with pytest.raises(AttributeError):
        persistlib.no_such_name  # noqa: B018


def test_every_error_derives_from_persist_error():
    import persistlib.errors as errors

    for name in errors.__all__:
        cls = getattr(errors, name)
        if name.endswith("Warning"):
            assert issubclass(cls, UserWarning)
        else:
            assert issubclass(cls, errors.PersistError), name


@pytest.mark.parametrize("nb", NOTEBOOKS + DASHBOARDS, ids=[p.stem for p in NOTEBOOKS + DASHBOARDS])
def test_notebooks_are_saved_from_one_clean_run_and_never_touch_sys_path(nb):
    cells = json.loads(nb.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    counts = [c.get("execution_count") for c in code]
    assert counts == list(range(1, len(code) + 1)), f"{nb.name}: re-run top to bottom and save"
    source = "\n".join("".join(c["source"]) for c in code)
    assert "sys.path" not in source
    assert "import persistlib" in source
    if "workspace" in source:  # notebooks that write, write under their own workspace
        assert f'workspace("{nb.stem}")' in source


def test_workspace_is_git_ignored():
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "notebooks/workspace/" in ignored


def test_readme_has_the_two_commands_and_every_notebook():
    readme = (ROOT / "README.md").read_text()
    assert "pip install -r requirements.txt" in readme and "jupyter lab" in readme
    assert "pip install -r requirements-dev.txt && python -m pytest" in readme
    assert "mybinder.org" in readme and "urlpath=lab/tree/notebooks/00_start_here.ipynb" in readme
    for nb in NOTEBOOKS:
        assert f"notebooks/{nb.name}" in readme, f"README's notebook table lacks {nb.name}"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -q -r requirements-dev.txt && python3 -m pytest" in ci


def test_course_pins_match_requirements():
    from persistlib.course import REQUIRED_PACKAGES

    pins = _pins(ROOT / "requirements.txt")
    for name, version in REQUIRED_PACKAGES:
        assert pins[name] == version, f"course.REQUIRED_PACKAGES says {name}=={version}"


def test_workspace_helper(tmp_path):
    import persistlib as pl

    ws = pl.workspace("01_demo", root=tmp_path)
    (ws / "file.txt").write_text("x")
    assert pl.workspace("01_demo", root=tmp_path, fresh=False).joinpath("file.txt").exists()
    assert list(pl.workspace("01_demo", root=tmp_path).iterdir()) == []
    for bad in ["", "..", "a/b", "/etc"]:
        with pytest.raises(ValueError, match="plain folder name"):
            pl.workspace(bad, root=tmp_path)


def test_environment_check_reports_each_package():
    import persistlib as pl

    report = pl.environment_check((("joblib", "0.0.1"), ("no-such-package-xyz", "1.0")))
    assert not report.ok
    text = str(report)
    assert "✗ joblib" in text and "pip install joblib==0.0.1" in text and "not installed" in text
    assert pl.environment_check((("joblib", __import__("joblib").__version__),)).ok


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_ends_with_its_own_quiz(nb):
    import persistlib as pl

    cells = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
    assert f'pl.Quiz.from_notebook("{nb.stem}")' in "".join(cells[-1]["source"])
    quiz = pl.Quiz.from_notebook(nb.stem)
    assert len(quiz.questions) >= 3
    assert '"quizzes/*.json"' in (ROOT / "pyproject.toml").read_text()  # shipped in the wheel too


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_ends_with_key_points_an_exercise_and_the_quiz(nb):
    """The last three sections, each opening in its own cell: Key points, then the exercise, then the quiz."""
    cells = json.loads(nb.read_text())["cells"]
    sections = []  # (heading, index of the cell that opens it)
    for i, c in enumerate(cells):
        if c["cell_type"] == "markdown":
            for line in "".join(c["source"]).splitlines():
                if line.startswith("## "):
                    sections.append((line[3:].strip(), i))
    last = [h for h, _ in sections[-3:]]
    assert len(last) == 3, f"{nb.name}: too few sections"
    assert last[0] == "Key points", f"{nb.name}: the third-last section is {last[0]!r}, not 'Key points'"
    assert last[1].startswith("Exercise"), f"{nb.name}: the second-last section is {last[1]!r}, not an exercise"
    assert last[2] == "Quiz", f"{nb.name}: the last section is {last[2]!r}, not 'Quiz'"
    starts = [i for _, i in sections[-3:]]
    assert len(set(starts)) == 3, f"{nb.name}: Key points, Exercise and Quiz must each open in their own cell"
    exercise = cells[starts[1] : starts[2]]
    assert any(c["cell_type"] == "code" for c in exercise), f"{nb.name}: the exercise has no cell to work in"
    hidden = ("<summary>Solution</summary>", "pl.exercises.solution(")  # a collapsed block, or a loadable file
    assert any(h in "".join(c["source"]) for c in exercise for h in hidden), f"{nb.name}: no hidden solution"
    code_after_quiz = [c for c in cells[starts[2] :] if c["cell_type"] == "code"]
    assert len(code_after_quiz) == 1 and code_after_quiz[0] is cells[-1], f"{nb.name}: the quiz cell must end it"


EXERCISE_NOTEBOOKS = [nb for nb in NOTEBOOKS if 1 <= int(nb.name[:2]) <= 10]


@pytest.mark.parametrize("nb", EXERCISE_NOTEBOOKS, ids=[p.stem for p in EXERCISE_NOTEBOOKS])
def test_notebooks_01_to_10_have_an_exercise_that_answers_back(nb):
    """An exercise, a way to check it (pl.exercises.check, its feedback saved), and a solution out of plain view."""
    import persistlib as pl

    cells = json.loads(nb.read_text())["cells"]
    heads = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and "\n## " in "\n" + "".join(c["source"])]
    exercise = cells[heads[-2] : heads[-1]]  # the section before the quiz (the test above checks the order)
    (ex_id,) = [i for i in pl.exercises.ids() if i.startswith(nb.name[:2] + "-")]
    assert pl.exercises.EXERCISES[ex_id].notebook == nb.stem
    checks = [
        c
        for c in exercise
        if c["cell_type"] == "code" and f'pl.exercises.check("{ex_id}", answer)' in "".join(c["source"])
    ]
    assert len(checks) == 1, f"{nb.name}: no cell calls pl.exercises.check({ex_id!r}, answer)"
    shown = "".join("".join(o.get("data", {}).get("text/plain", "")) for o in checks[0]["outputs"])
    assert f"{ex_id}: not yet" in shown and "hint:" in shown, f"{nb.name}: save the placeholder's feedback"
    text = "\n".join("".join(c["source"]) for c in exercise if c["cell_type"] == "markdown")
    assert f'pl.exercises.solution("{ex_id}")' in text, f"{nb.name}: tell the student how to load the solution"
    everything = "\n".join("".join(c["source"]) for c in cells)
    solution = pl.exercises.solution(ex_id)
    answer_lines = [line for line in solution.splitlines() if line.startswith("answer = ")]
    assert answer_lines and not any(line in everything for line in answer_lines), f"{nb.name}: solution in plain view"
    assert "<summary>Solution</summary>" not in everything, f"{nb.name}: the solution now lives in a file"


@pytest.mark.parametrize("nb", NOTEBOOKS + DASHBOARDS, ids=[p.stem for p in NOTEBOOKS + DASHBOARDS])
def test_notebooks_do_not_click_the_students_widgets(nb):
    """A cell that clicks a button leaves a Voila dashboard in its after-demo state; tests click instead."""
    code = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
    clicks = [i for i, c in enumerate(code) if ".click()" in "".join(c["source"])]
    assert not clicks, f"{nb.name}: code cells {clicks} click a widget; call the library and show the result"


def test_only_numbered_notebooks_are_lessons_and_the_rest_are_known():
    every = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert every == sorted(NOTEBOOKS + DASHBOARDS), "a notebook that is neither a numbered lesson nor a dashboard"


def test_notebook_numbers_are_contiguous_and_each_has_its_quiz():
    numbers = [int(nb.name[:2]) for nb in NOTEBOOKS]
    assert numbers == list(range(len(NOTEBOOKS))), f"renumber the notebooks 00, 01, ...: {numbers}"
    quizzes = sorted(p.stem for p in (ROOT / "persistlib" / "quizzes").glob("*.json"))
    assert quizzes == [nb.stem for nb in NOTEBOOKS], "one quiz file per notebook, named like it"


def test_quiz_answers_are_not_always_in_the_same_place():
    """Students learn "the first option is right" fast; vary where the correct answers sit."""
    first_correct = []
    for path in sorted((ROOT / "persistlib" / "quizzes").glob("*.json")):
        for q in json.loads(path.read_text())["questions"]:
            first_correct.append(q["options"][0]["correct"])
    assert 0.2 < sum(first_correct) / len(first_correct) < 0.7


def test_readme_example_runs(tmp_path, monkeypatch):
    """The 'persistlib in one screen' example is copied by readers: it must work as printed."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## persistlib in one screen", 1)[1]
    code = section.split("```python", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["card"].version == "1.0.0"
    assert namespace["registry"].aliases() == {"production": "1.0.0"}
    assert (tmp_path / "my_registry" / "model_v1.0.0_meta.json").exists()


def test_persistlib_raises_only_persist_errors():
    """`except pl.PersistError` must catch everything persistlib raises on bad input.

    The one exception is AttributeError, which Python's attribute protocol requires
    (module ``__getattr__``, an optional method that ``hasattr`` should see as missing).
    """
    import ast
    import builtins

    builtin_errors = {
        n
        for n in dir(builtins)
        if isinstance(getattr(builtins, n), type) and issubclass(getattr(builtins, n), BaseException)
    } - {"AttributeError"}
    offenders = []
    for path in sorted((ROOT / "persistlib").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                func = node.exc.func
                if isinstance(func, ast.Name) and func.id in builtin_errors:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} raises {func.id}")
    assert not offenders, "raise a PersistError subclass instead:\n" + "\n".join(offenders)


def test_warn_caller_points_at_the_first_line_outside_persistlib():
    from persistlib import errors

    def from_inside_persistlib():  # a frame of persistlib's own, as far as warn_caller can tell
        errors.warn_caller("hello", UserWarning)

    code = from_inside_persistlib.__code__.replace(co_filename=errors.__file__)
    inside = type(from_inside_persistlib)(code, globals(), None, None, from_inside_persistlib.__closure__)
    with pytest.warns(UserWarning, match="hello") as caught:
        line = sys._getframe().f_lineno + 1
        inside()
    assert (caught[0].filename, caught[0].lineno) == (__file__, line)
