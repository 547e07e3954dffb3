"""Crash safety and concurrency, with real processes and a real SIGKILL."""

import hashlib
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

# A child process that saves one small model into ROOT.
CHILD = textwrap.dedent("""
    import sys
    from sklearn.tree import DecisionTreeClassifier
    import persistlib as pl

    root, loops = sys.argv[1], int(sys.argv[2])
    X, y = pl.make_churn(300, random_state=0)
    model = DecisionTreeClassifier(max_depth=4, random_state=0).fit(X, y)
    reg = pl.Registry(root)
    for _ in range(loops):
        reg.save(model, dataset=X)
    print("saved", reg.versions())
""")


def _run_child(tmp_path: Path, root: Path, loops: int = 1) -> subprocess.Popen:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    return subprocess.Popen(
        [sys.executable, str(script), str(root), str(loops)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _assert_every_visible_version_loads(reg: pl.Registry) -> None:
    for v in reg.versions():
        model, card = reg.load(v)
        assert card.version == v and hasattr(model, "predict")


# --------------------------------------------------------------------------- kills at fixed points

# A child that saves MODEL into ROOT and stops dead at one named point of the save: it
# writes the points it passed to REACHED (atomically) and sleeps until the parent kills it.
# The points are found by what is touched, not by counting calls: an fsync names the file
# it flushes (the artefact's temporary file, the card's temporary file, or the folder),
# a rename names its target (the artefact's final name or the card's).
STOPPING_CHILD = textwrap.dedent("""
    import os, stat, sys, time
    from pathlib import Path
    import persistlib as pl

    root, reached_file, stop_at = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    real_fsync, real_replace = os.fsync, os.replace
    reached = []

    def checkpoint(point):
        reached.append(point)
        if point == stop_at:
            tmp = reached_file.with_suffix(".tmp")
            tmp.write_text("\\n".join(reached))
            real_replace(tmp, reached_file)
            time.sleep(600)  # the parent kills us here

    def kind(name):
        return "card" if os.fspath(name).endswith("_meta.json") else "artefact"

    def fsync(fd):
        st = os.fstat(fd)
        what = "folder" if stat.S_ISDIR(st.st_mode) else next(
            (kind(e.name) for e in os.scandir(root) if e.inode() == st.st_ino), "other file"
        )
        if what != "folder":
            checkpoint(what + " written")  # its bytes are written, not yet flushed to disk
        real_fsync(fd)
        checkpoint(what + " synced")

    def replace(src, dst, *args, **kwargs):
        real_replace(src, dst, *args, **kwargs)
        checkpoint(kind(dst) + " renamed")

    os.fsync, os.replace = fsync, replace
    pl.Registry(root).save({"weights": bytes(range(256)) * 400})
    print("finished the save without reaching", stop_at, "; passed:", reached)
""")

MODEL = {"weights": bytes(range(256)) * 400}

# Every point a save passes, in order, and whether the new version is committed (its card
# renamed into place) once the child stands there.
POINTS = [
    ("artefact written", False),
    ("artefact synced", False),
    ("artefact renamed", False),  # the gap: the artefact is in place, its card is not
    ("card written", False),
    ("card synced", False),
    ("card renamed", True),  # the commit point
    ("folder synced", True),  # the rename is on disk; the save has not returned yet
]


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until the child stands at its stop point (it wrote ``path``); fail if it exits or never gets there."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"child exited before its stop point: {proc.communicate()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("child never reached its stop point")
        time.sleep(0.01)


@pytest.mark.parametrize("point, committed", POINTS, ids=[p for p, _ in POINTS])
def test_a_kill_at_each_point_of_a_save_leaves_only_complete_versions(tmp_path, point, committed):
    root = tmp_path / "reg"
    reg = pl.Registry(root, lock_timeout=5)
    reg.save(MODEL)
    script, reached_file = tmp_path / "child.py", tmp_path / "reached"
    script.write_text(STOPPING_CHILD)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(root), str(reached_file), point],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(reached_file, proc)
    finally:
        proc.kill()
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    reached = reached_file.read_text().splitlines()
    expected_path = [p for p, _ in POINTS[: [p for p, _ in POINTS].index(point) + 1]]
    assert reached == expected_path, "the child stopped mid-save, at this point, having passed the earlier ones"

    # What the kill left on disk proves where it landed.
    names = {p.name for p in root.iterdir()}
    artefact_in_place = "model_v1.1.0.pkl" in names
    card_in_place = "model_v1.1.0_meta.json" in names
    temporary = sorted(n for n in names if n.startswith(".tmp-"))
    assert card_in_place is committed
    assert artefact_in_place is (point not in ("artefact written", "artefact synced"))
    if point in ("artefact written", "artefact synced", "card written", "card synced"):
        assert temporary, f"the kill at {point!r} left the temporary file it was writing"

    after = pl.Registry(root, lock_timeout=5)
    assert after.versions() == (["1.0.0", "1.1.0"] if committed else ["1.0.0"])
    for v in after.versions():
        model, card = after.load(v)
        assert card.version == v and model == MODEL

    # The killed process's lock died with it: the next save goes through and is complete.
    following = "1.2.0" if committed else "1.1.0"
    assert after.save(MODEL).version == following
    assert after.versions()[-1] == following and after.load(following)[0] == MODEL


def test_the_card_is_renamed_into_place_only_after_the_complete_artefact(registry, small_model, monkeypatch):
    """The card is the commit point: when it appears, its artefact is already there, whole."""
    real_replace = os.replace
    commits = []

    def replace(src, dst, *args, **kwargs):
        name = Path(dst).name
        if name.endswith("_meta.json"):
            card = pl.ModelCard.from_json(Path(src).read_text())
            artefact = registry.root / card.artifact
            assert artefact.is_file(), f"{name} is committed before its artefact {card.artifact} is in place"
            assert hashlib.sha256(artefact.read_bytes()).hexdigest() == card.artifact_sha256  # and whole
            commits.append(name)
        real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    registry.save(small_model)
    registry.save(small_model)
    assert commits == ["model_v1.0.0_meta.json", "model_v1.1.0_meta.json"]


def test_concurrent_processes_never_collide_or_lose_a_version(tmp_path):
    root = tmp_path / "reg"
    procs = [_run_child(tmp_path, root, loops=4) for _ in range(3)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    reg = pl.Registry(root)
    assert reg.versions() == [f"1.{i}.0" for i in range(12)]
    _assert_every_visible_version_loads(reg)
    shas = {c.artifact_sha256 for c in reg.cards()}
    assert len(shas) == 1  # the same model every time: each file is complete
