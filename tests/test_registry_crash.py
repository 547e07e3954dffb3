"""Crash safety and concurrency, with real processes and a real SIGKILL."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import persistlib as pl

pytestmark = pytest.mark.skipif(os.name != "posix", reason="uses SIGKILL and fork-free subprocesses")

# A child process that saves one small model into ROOT. When HANG_AT_FSYNC=n, the n-th
# os.fsync call writes READY and then sleeps, so the parent can SIGKILL it mid-save.
CHILD = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from sklearn.tree import DecisionTreeClassifier
    import persistlib as pl

    root, ready, hang_at, loops = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    X, y = pl.make_churn(300, random_state=0)
    model = DecisionTreeClassifier(max_depth=4, random_state=0).fit(X, y)
    if hang_at:
        real_fsync, calls = os.fsync, [0]
        def fsync(fd):
            calls[0] += 1
            real_fsync(fd)
            if calls[0] == hang_at:
                ready.write_text("hanging")
                time.sleep(60)
        os.fsync = fsync
    reg = pl.Registry(root)
    for _ in range(loops):
        reg.save(model, dataset=X)
    print("saved", reg.versions())
""")


def _run_child(tmp_path: Path, root: Path, hang_at: int = 0, loops: int = 1) -> subprocess.Popen:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    ready = tmp_path / f"ready-{time.monotonic_ns()}"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(root), str(ready), str(hang_at), str(loops)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.ready = ready  # type: ignore[attr-defined]
    return proc


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"child exited early: {proc.communicate()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("child never reached the hang point")
        time.sleep(0.02)


def _assert_every_visible_version_loads(reg: pl.Registry) -> None:
    for v in reg.versions():
        model, card = reg.load(v)
        assert card.version == v and hasattr(model, "predict")


# fsync #1 is the artefact's temp file; #2 is the card's temp file, before the commit rename.
@pytest.mark.parametrize("hang_at, stage", [(1, "artefact written"), (2, "card written, not renamed")])
def test_sigkill_mid_save_leaves_no_visible_version(tmp_path, hang_at, stage):
    root = tmp_path / "reg"
    first = _run_child(tmp_path, root)
    assert first.wait(60) == 0, first.communicate()
    proc = _run_child(tmp_path, root, hang_at=hang_at)
    _wait_for(proc.ready, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    reg = pl.Registry(root, lock_timeout=5)
    assert reg.versions() == ["1.0.0"], f"after a kill ({stage}) only the complete version is visible"
    _assert_every_visible_version_loads(reg)
    # the killed process's lock died with it: the next save goes through and is complete
    again = _run_child(tmp_path, root)
    assert again.wait(60) == 0, again.communicate()
    assert reg.versions() == ["1.0.0", "1.1.0"]
    _assert_every_visible_version_loads(reg)


def test_sigkill_at_random_moments(tmp_path):
    """Kill a saving loop at arbitrary times; whatever is visible must always load."""
    root = tmp_path / "reg"
    for delay in (0.4, 0.7, 1.0, 1.3):
        proc = _run_child(tmp_path, root, loops=50)
        time.sleep(delay)
        proc.kill()
        proc.wait(10)
        _assert_every_visible_version_loads(pl.Registry(root))


def test_concurrent_processes_never_collide_or_lose_a_version(tmp_path):
    root = tmp_path / "reg"
    procs = [_run_child(tmp_path, root, loops=3) for _ in range(4)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    reg = pl.Registry(root)
    assert reg.versions() == [f"1.{i}.0" for i in range(12)]
    _assert_every_visible_version_loads(reg)
    shas = {c.artifact_sha256 for c in reg.cards()}
    assert len(shas) == 1  # the same model every time: each file is complete
