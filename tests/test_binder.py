"""Binder builds what we think it builds.

* ``binder/overrides.json`` (JupyterLab defaults) and ``binder/jupyter_server_config.json`` (kernel
  culling) are valid, name real settings, and ``postBuild`` installs them where JupyterLab and the
  server read them (run for real into a throw-away prefix).
* ``jupyter-repo2docker --no-build --debug .`` (no Docker needed) prints the Dockerfile Binder would
  build: ``binder/requirements.txt`` is installed before the repository is copied (so editing a
  notebook reuses the cached install), and postBuild runs after it.
* Opt-in (slow: a full install): a fresh Python 3.12 virtual environment built exactly from
  ``binder/`` imports persistlib and runs ``00_start_here``::

      PERSISTLIB_BINDER_VENV=1 python -m pytest tests/test_binder.py -n 0 -k venv
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"


# --------------------------------------------------------------------------- the two settings files


def test_overrides_name_real_jupyterlab_settings_with_valid_values():
    import jsonschema
    from jupyterlab.commands import get_app_dir

    overrides = json.loads((BINDER / "overrides.json").read_text())
    notification = overrides["@jupyterlab/apputils-extension:notification"]
    assert notification["fetchNews"] == "false" and notification["checkForUpdates"] is False  # the news pop-up
    schemas = Path(get_app_dir()) / "schemas"
    for plugin, settings in overrides.items():
        package, _, name = plugin.partition(":")
        schema_file = schemas / package / f"{name}.json"
        assert schema_file.is_file(), f"{plugin}: no such JupyterLab plugin (no {schema_file})"
        schema = json.loads(schema_file.read_text())
        for key, value in settings.items():
            assert key in schema["properties"], f"{plugin} has no setting {key!r}"
            jsonschema.validate(value, schema["properties"][key])


def test_server_config_culls_idle_kernels_with_real_traits():
    from jupyter_server.services.kernels.kernelmanager import MappingKernelManager

    config = json.loads((BINDER / "jupyter_server_config.json").read_text())
    assert set(config) == {"MappingKernelManager"}
    cull = config["MappingKernelManager"]
    traits = MappingKernelManager.class_traits(config=True)
    assert set(cull) <= set(traits), f"not settings of MappingKernelManager: {set(cull) - set(traits)}"
    assert cull["cull_idle_timeout"] > 0 and cull["cull_interval"] > 0
    assert cull["cull_connected"] is True  # a student's open tab keeps a connection; idle kernels go anyway
    assert cull.get("cull_busy", False) is False  # a running cell is never cut off


def test_postbuild_installs_both_files_where_jupyter_reads_them(tmp_path):
    """Run binder/postBuild for real, into a throw-away prefix (a venv seeing this Python's packages)."""
    prefix = tmp_path / "env"
    venv.create(prefix, system_site_packages=True, with_pip=False)
    # JupyterLab's app folder of that environment: without it, get_app_dir() falls back to the folder of the
    # Python running the tests, and postBuild would write this machine's own JupyterLab settings.
    (prefix / "share" / "jupyter" / "lab").mkdir(parents=True)
    fake_bin = tmp_path / "bin"  # `pip install --no-deps .` is recorded, not run
    fake_bin.mkdir()
    (fake_bin / "pip").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "pip.log"}\n')
    (fake_bin / "pip").chmod(0o755)
    repo = tmp_path / "repo"
    shutil.copytree(BINDER, repo / "binder")
    env = {**os.environ, "PATH": f"{fake_bin}:{prefix / 'bin'}:{os.environ['PATH']}"}
    env.pop("JUPYTERLAB_DIR", None)
    done = subprocess.run(["bash", "binder/postBuild"], cwd=repo, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "pip.log").read_text().split("\n")[0] == "install --no-deps ."

    # What JupyterLab and the server of that environment read:
    probe = """
import json
from jupyterlab.labapp import LabApp
from jupyterlab_server.settings_utils import _get_overrides
from jupyter_server.serverapp import ServerApp
overrides, error = _get_overrides(LabApp().app_settings_dir)
server = ServerApp()
server.load_config_file()
print(json.dumps({"overrides": overrides, "error": str(error), "cull": server.config.MappingKernelManager}))
"""
    seen = subprocess.run(
        [str(prefix / "bin" / "python"), "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert seen.returncode == 0, seen.stderr
    got = json.loads(seen.stdout.strip().splitlines()[-1])
    assert got["error"] == ""
    assert (prefix / "share" / "jupyter" / "lab" / "settings" / "overrides.json").is_file()
    assert got["overrides"] == json.loads((BINDER / "overrides.json").read_text())
    assert got["cull"] == json.loads((BINDER / "jupyter_server_config.json").read_text())["MappingKernelManager"]

    # a second run (a rebuild) and a file that was there before: merged, not clobbered
    target = prefix / "etc" / "jupyter" / "jupyter_server_config.json"
    target.write_text(json.dumps({"ServerApp": {"shutdown_no_activity_timeout": 3600}}))
    assert subprocess.run(["bash", "binder/postBuild"], cwd=repo, env=env, capture_output=True).returncode == 0
    merged = json.loads(target.read_text())
    assert (
        merged["ServerApp"] == {"shutdown_no_activity_timeout": 3600} and merged["MappingKernelManager"] == got["cull"]
    )


# --------------------------------------------------------------------------- repo2docker, without Docker


def test_repo2docker_installs_requirements_before_copying_the_repo_and_runs_postbuild(tmp_path):
    exe = shutil.which("jupyter-repo2docker")
    assert exe, "jupyter-repo2docker is missing: pip install -r requirements-dev.txt"
    # from an empty folder: repo2docker also reads a repo2docker_config.py from where it runs
    done = subprocess.run(
        [exe, "--no-build", "--debug", str(ROOT)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout + done.stderr
    lines = [line.strip() for line in out.splitlines()]

    def where(text: str) -> int:
        found = [i for i, line in enumerate(lines) if text in line]
        assert found, f"{text!r} is not in the Dockerfile repo2docker made:\n{out[-3000:]}"
        return found[0]

    assert "python=3.12" in out  # binder/runtime.txt
    copy_requirements = where("src/binder/requirements.txt ${REPO_DIR}/binder/requirements.txt")
    install = where('pip install --no-cache-dir -r "binder/requirements.txt"')
    copy_repo = where("COPY --chown=0:0 src/ ${REPO_DIR}/")
    postbuild = where("RUN ./binder/postBuild")
    assert copy_requirements < install < copy_repo < postbuild


# --------------------------------------------------------------------------- a real 3.12 environment (opt-in)


def _python312() -> str | None:
    """A working Python 3.12 (a pyenv shim on PATH may point at no installed version: each is tried)."""
    candidates = [os.environ.get("PERSISTLIB_PYTHON312"), shutil.which("python3.12")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")), reverse=True)
    for exe in filter(None, candidates):
        probe = [exe, "-c", "import sys; sys.exit(sys.version_info[:2] != (3, 12))"]
        if subprocess.run(probe, capture_output=True).returncode == 0:
            return exe
    return None


@pytest.mark.slow
@pytest.mark.timeout(3600)  # a full install: longer than the suite's 600 s per test
def test_a_fresh_312_venv_built_from_binder_runs_00_start_here(tmp_path):
    if not os.environ.get("PERSISTLIB_BINDER_VENV"):
        pytest.skip(
            "opt-in, a full install (measured on 2 busy cores: 18 minutes cold, 11 with a warm pip cache): "
            "PERSISTLIB_BINDER_VENV=1 python -m pytest tests/test_binder.py -n 0 -k venv"
        )
    python = _python312()
    if python is None:
        pytest.skip("no python3.12 here (Binder's version); set PERSISTLIB_PYTHON312=/path/to/python3.12")
    repo = tmp_path / "repo"
    shutil.copytree(
        ROOT,
        repo,
        ignore=shutil.ignore_patterns(".git", "workspace", "test-artifacts", "__pycache__", "*.egg-info", ".ci"),
    )
    env_dir = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(env_dir)], check=True)
    env = {**os.environ, "PATH": f"{env_dir / 'bin'}:{os.environ['PATH']}"}
    for var in ("PYTHONPATH", "JUPYTERLAB_DIR", "VIRTUAL_ENV"):
        env.pop(var, None)

    def run(*cmd: str, cwd: Path = repo) -> str:
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=3600)
        assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    # exactly what Binder does: the requirements (the pip cache makes a second run faster), then postBuild
    run("pip", "install", "-q", "-r", "binder/requirements.txt")
    run("bash", "binder/postBuild")
    # from outside the checkout, or Python would import the source folder instead of what postBuild installed
    where = run(
        "python", "-c", "import sys, persistlib; print(sys.version_info[:2], persistlib.__file__)", cwd=tmp_path
    )
    assert where.startswith("(3, 12)") and str(env_dir) in where  # the installed copy, not this checkout
    run(
        "jupyter",
        "nbconvert",
        "--to",
        "notebook",
        "--execute",
        "--output",
        str(tmp_path / "00_out.ipynb"),
        "00_start_here.ipynb",
        cwd=repo / "notebooks",
    )
    out = json.loads((tmp_path / "00_out.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for c in out["cells"] for o in c.get("outputs", []))
    assert "Python 3.12" in printed and "All set!" in printed and "✗" not in printed  # every pin installed
