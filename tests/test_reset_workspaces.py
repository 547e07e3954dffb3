"""`python -m persistlib reset-workspaces`: empties every notebook's workspace, and nothing else."""

from __future__ import annotations

import os

from persistlib.__main__ import main


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_it_empties_every_workspace(tmp_path, capsys):
    root = tmp_path / "notebooks" / "workspace"
    for name in ("03_evaluation_gate", "control_room"):
        (root / name / "registry").mkdir(parents=True)
        (root / name / "registry" / "model_v1.0.0.pkl").write_bytes(b"x")
    (root / "stray.txt").write_text("x")
    outside = tmp_path / "keep.txt"
    outside.write_text("x")
    (root / "link").symlink_to(tmp_path)  # a link is removed, never followed
    assert main(["reset-workspaces", "--root", str(root)]) == 0
    assert root.is_dir() and list(root.iterdir()) == []
    assert outside.exists() and (tmp_path / "notebooks").is_dir()
    out = capsys.readouterr().out
    assert out.startswith("reset 4 workspaces in ") and "03_evaluation_gate, control_room, link, stray.txt" in out
    assert main(["reset-workspaces", "--root", str(root)]) == 0
    assert "reset 0 workspaces" in capsys.readouterr().out


def test_the_default_is_notebooks_workspace_under_the_current_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["reset-workspaces"]) == 0
    assert capsys.readouterr().out.startswith("nothing to reset: no folder 'notebooks/workspace' here")
    (tmp_path / "notebooks" / "workspace" / "01_why_persist").mkdir(parents=True)
    assert main(["reset-workspaces"]) == 0
    assert os.listdir(tmp_path / "notebooks" / "workspace") == []


def test_it_refuses_any_other_folder(tmp_path, capsys):
    precious = tmp_path / "notebooks"
    (precious / "00_start_here.ipynb").parent.mkdir(parents=True)
    (precious / "00_start_here.ipynb").write_text("{}")
    assert main(["reset-workspaces", "--root", str(precious)]) == 2
    assert "not a folder named 'workspace'" in one_error_line(capsys)
    assert (precious / "00_start_here.ipynb").exists()
    file = tmp_path / "workspace"
    file.write_text("x")
    assert main(["reset-workspaces", "--root", str(file)]) == 2
    assert "is not a folder" in one_error_line(capsys)
    real = tmp_path / "real"
    (real / "a").mkdir(parents=True)
    link = tmp_path / "other" / "workspace"
    link.parent.mkdir()
    link.symlink_to(real)
    assert main(["reset-workspaces", "--root", str(link)]) == 2
    one_error_line(capsys)
    assert (real / "a").exists()
