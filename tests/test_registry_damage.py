"""Damaged state and hostile files in a registry folder: a clear PersistError, and nothing else is lost.

Every case here damages one file the way a crash, a careless operator or an
attacker would, then checks three things: the error is a PersistError subclass
that names the file and how to repair it, every version still loads by number,
and nothing outside the registry folder is read.
"""

from __future__ import annotations

import errno
import json
import os
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.tree import DecisionTreeClassifier

import persistlib as pl
from persistlib import errors

ALIASES = "aliases.json"
HISTORY = "history.jsonl"


@pytest.fixture(scope="module")
def tree():
    X, y = pl.make_churn(300, random_state=1)
    return DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)


@pytest.fixture()
def reg(tmp_path, tree):
    """Two versions, production promoted twice (1.0.0 then 1.1.0)."""
    r = pl.Registry(tmp_path / "reg")
    for _ in range(2):
        r.promote(r.save(tree).version)
    return r


def still_loads(r: pl.Registry) -> None:
    for v in ("1.0.0", "1.1.0"):
        assert r.load(v)[1].version == v


# --------------------------------------------------------------------------- 1. damaged state files


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "not valid JSON"),
        (b'{"production": ["1.0.0", "1.1', "not valid JSON"),
        (b'{"production": ["1.0.0\xff"]}', "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply|not valid JSON"),
        (b'["1.0.0"]', "not an object"),
        (b'{"production": "1.0.0"}', "must hold a list of versions"),
        (b'{"production": [1]}', "must hold a list of versions"),
        (b'{"production": ["1.0.0\\u0000"]}', "must hold a list of versions"),
        (b'{"production": ["' + b"9" * 5000 + b'.0.0"]}', "must hold a list of versions"),
        (b'{"production": ["../../etc/passwd"]}', "must hold a list of versions"),
        (b'{"prod\\nuction": ["1.0.0"]}', "not a valid alias name"),
    ],
    ids=["empty", "truncated", "not-utf8", "deep", "list", "string", "int", "nul", "long", "path", "newline"],
)
def test_a_damaged_aliases_file_is_named_with_its_repair(reg, content, words):
    (reg.root / ALIASES).write_bytes(content)
    for call in (reg.aliases, lambda: reg.load("production"), lambda: reg.promote("1.0.0"), reg.rollback):
        with pytest.raises(errors.RegistryFileError, match=words) as info:
            call()
        assert "aliases.json" in str(info.value) and "delete it and promote again" in str(info.value)
    still_loads(reg)
    with pytest.raises(pl.VersionNotFoundError, match="aliases.json is damaged"):
        reg.load("2.0.0")  # the not-found message survives the damaged file


def test_a_torn_history_line_is_reported_and_the_next_move_is_not_lost(reg):
    path = reg.root / HISTORY
    path.write_bytes(path.read_bytes() + b'{"at": "2026-11-27T00:00:00+00:00", "alias": "produ')  # crash mid-write
    with pytest.raises(errors.RegistryFileError, match=r"history.jsonl.*line 3 is incomplete.*Delete that line"):
        reg.history()
    reg.rollback()  # appending works, and must start on a fresh line
    lines = path.read_bytes().split(b"\n")
    assert json.loads(lines[3])["action"] == "rollback"  # the new entry is whole, not glued to the torn one
    lines.pop(2)  # the repair the message asks for
    path.write_bytes(b"\n".join(lines))
    assert [h["action"] for h in reg.history()] == ["promote", "promote", "rollback"]


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("dependencies", {"numpy": 2}, "'dependencies' must be an object of name -> version string"),
        ("artifact", "", "'artifact' must be a string"),
        ("metrics", {"accuracy": "high"}, "'metrics' must be an object of name -> number"),
        ("artifact_bytes", -1, "'artifact_bytes' must be a whole number"),
        ("artifact_sha256", "abc", "'artifact_sha256' must be 64 lowercase hex digits"),
        ("format", "pickle", "'format' must be 'joblib' or 'skops'"),
        ("trusted_types", [1], "'trusted_types' must be a list of type names"),
        ("version", None, "'version' must be a string"),
    ],
)
def test_a_card_with_wrong_types_is_a_card_error(reg, field, value, words):
    path = reg.root / "model_v1.0.0_meta.json"
    card = json.loads(path.read_text())
    card[field] = value
    path.write_text(json.dumps(card))
    with pytest.raises(errors.CardError, match=words) as info:
        reg.load("1.0.0")
    assert "model_v1.0.0_meta.json" in str(info.value) and "restore it" in str(info.value)
    assert reg.load("1.1.0")[1].version == "1.1.0"


def test_a_card_missing_a_field_or_not_utf8_is_a_card_error(reg):
    path = reg.root / "model_v1.0.0_meta.json"
    card = json.loads(path.read_text())
    del card["artifact_sha256"]
    path.write_text(json.dumps(card))
    with pytest.raises(errors.CardError, match=r"missing required field\(s\) \['artifact_sha256'\]"):
        reg.card("1.0.0")
    path.write_bytes(b"\xff\xfe" + b"x" * 10)
    with pytest.raises(errors.CardError, match="not valid JSON"):
        reg.card("1.0.0")
    assert reg.load("1.1.0")[1].version == "1.1.0"


def test_a_card_whose_format_does_not_match_its_file_is_refused(tmp_path, tree):
    r = pl.Registry(tmp_path / "reg")
    r.save(tree)
    path = r.root / "model_v1.0.0_meta.json"
    card = json.loads(path.read_text())
    card["format"] = "skops"  # the file is a joblib pickle
    path.write_text(json.dumps(card))
    with pytest.raises(pl.IntegrityError, match=r"model_v1.0.0.skops"):
        r.load("1.0.0")


# --------------------------------------------------------------------------- 2. names validated exactly


def test_a_trailing_newline_is_not_part_of_an_alias(reg):
    with pytest.raises(errors.InvalidArgumentError, match="is not allowed"):
        reg.promote("1.0.0", "production\n")
    assert reg.aliases() == {"production": "1.1.0"}


def test_stray_card_like_files_are_skipped_with_a_warning(reg):
    for name in ("model_v01.0.0_meta.json", "model_v1.0.0_meta.json\n", "model_v9.9_meta.json"):
        (reg.root / name).write_text("{}")
    with pytest.warns(errors.RegistryWarning, match="looks like a card") as caught:
        assert reg.versions() == ["1.0.0", "1.1.0"]
    assert len(caught) == 3
    if "MUTANT_UNDER_TEST" not in os.environ:  # mutmut's trampolines add stack frames of their own
        assert {w.filename for w in caught} == {__file__}, "the warning points at the caller's line, not persistlib's"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per name, not on every call
        assert reg.versions() == ["1.0.0", "1.1.0"]
    assert reg.save(DecisionTreeClassifier().fit([[0], [1]], [0, 1])).version == "1.2.0"


def test_an_alias_pointing_outside_the_registry_is_never_followed(reg, tmp_path):
    outside = tmp_path / "secret_meta.json"
    outside.write_text("{}")
    (reg.root / ALIASES).write_text(json.dumps({"production": ["../secret"]}))
    with pytest.raises(errors.RegistryFileError):
        reg.load("production")


# --------------------------------------------------------------------------- 3. only regular files


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
@pytest.mark.timeout(20)
def test_a_fifo_artefact_or_card_is_refused_without_hanging(reg):
    artefact = reg.root / "model_v1.0.0.pkl"
    artefact.unlink()
    os.mkfifo(artefact)  # opening it for reading would block forever
    with pytest.raises(pl.IntegrityError, match="not a regular file"):
        reg.load("1.0.0")
    card = reg.root / "model_v1.1.0_meta.json"
    card.unlink()
    os.mkfifo(card)
    with pytest.raises(pl.IntegrityError, match="not a regular file"):
        reg.card("1.1.0")


@pytest.mark.timeout(20)
def test_symlinks_to_devices_folders_or_files_are_refused(reg, tmp_path):
    artefact = reg.root / "model_v1.0.0.pkl"
    for target in ("/dev/zero", str(tmp_path), str(reg.root / "model_v1.1.0.pkl")):
        artefact.unlink()
        artefact.symlink_to(target)
        with pytest.raises(pl.IntegrityError, match="symbolic link"):
            reg.load("1.0.0")


def test_an_artefact_folder_or_a_grown_file_is_refused(reg):
    artefact = reg.root / "model_v1.0.0.pkl"
    data = artefact.read_bytes()
    artefact.write_bytes(data + b"\0" * (50 << 20))  # appended to: read no further than the card's size + 1
    with pytest.raises(pl.IntegrityError, match="does not match its card"):
        reg.load("1.0.0")
    artefact.unlink()
    artefact.mkdir()
    with pytest.raises(pl.IntegrityError, match="folder|not a regular file"):
        reg.load("1.0.0")


# --------------------------------------------------------------------------- 4. promote checks first


def test_promote_refuses_a_version_that_cannot_load(reg):
    artefact = reg.root / "model_v1.0.0.pkl"
    artefact.write_bytes(artefact.read_bytes()[:-10])
    with pytest.raises(pl.IntegrityError, match="does not match its card"):
        reg.promote("1.0.0", "staging")
    assert "staging" not in reg.aliases()
    with pytest.raises(pl.RollbackError, match="cannot roll 'production' back to v1.0.0"):
        reg.rollback()  # production would go back to the broken 1.0.0
    assert reg.aliases() == {"production": "1.1.0"}


# --------------------------------------------------------------------------- 5. a signed registry stays signed


def test_a_signed_registry_refuses_to_open_without_its_key(tmp_path, tree, monkeypatch):
    monkeypatch.delenv("PERSISTLIB_SIGNING_KEY", raising=False)
    signed = pl.Registry(tmp_path / "reg", signing_key="s3cret")
    signed.save(tree)
    assert json.loads((signed.root / "registry.json").read_text()) == {"signing": "hmac-sha256"}
    with pytest.raises(pl.IntegrityError, match="requires signed cards.*PERSISTLIB_SIGNING_KEY"):
        pl.Registry(signed.root)
    monkeypatch.setenv("PERSISTLIB_SIGNING_KEY", "s3cret")
    assert pl.Registry(signed.root).load("1.0.0")[1].version == "1.0.0"
    (signed.root / "registry.json").write_text('{"signing": "rot13"}')
    with pytest.raises(errors.RegistryFileError, match="registry.json"):
        pl.Registry(signed.root)


def test_an_empty_key_in_the_environment_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PERSISTLIB_SIGNING_KEY", "")
    with pytest.raises(errors.InvalidArgumentError, match="PERSISTLIB_SIGNING_KEY is empty"):
        pl.Registry(tmp_path / "reg")


# --------------------------------------------------------------------------- 6. the disk says no


@pytest.mark.parametrize(("code", "words"), [(errno.ENOSPC, "the disk is full"), (errno.EACCES, "permission denied")])
def test_disk_full_or_no_permission_during_a_save_is_a_storage_error(reg, tree, monkeypatch, code, words):
    import persistlib._files as files

    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(files.os, "fsync", refuse)
    with pytest.raises(errors.StorageError, match=f"could not save a new version in .*: {words}"):
        reg.save(tree)
    monkeypatch.undo()
    assert reg.versions() == ["1.0.0", "1.1.0"]
    assert not [p for p in reg.root.iterdir() if p.name.startswith(".tmp-")]


def test_a_failed_card_write_reports_its_own_cause_even_if_the_artefact_is_already_gone(reg, tree, monkeypatch):
    """The card write fails (disk full) after someone tidying the folder removed the new artefact."""
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if str(dst).endswith("model_v1.2.0_meta.json"):
            (reg.root / "model_v1.2.0.pkl").unlink()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(errors.StorageError, match="could not save a new version in .*: the disk is full"):
        reg.save(tree)
    monkeypatch.undo()
    assert reg.versions() == ["1.0.0", "1.1.0"]
    assert not [p for p in reg.root.iterdir() if p.name.startswith((".tmp-", "model_v1.2.0"))]


# --------------------------------------------------------------------------- any bytes at all


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=st.sampled_from([ALIASES, HISTORY, "model_v1.0.0_meta.json", "registry.json"]), data=st.binary())
def test_arbitrary_bytes_in_a_state_file_give_only_persist_errors(reg, target, data):
    """Whatever the bytes, every call either works or raises a PersistError, and 1.1.0 still loads."""
    path = reg.root / target
    saved = path.read_bytes() if path.exists() else None
    path.write_bytes(data)
    try:
        for call in (
            reg.versions,
            reg.aliases,
            reg.history,
            lambda: reg.load("production"),
            lambda: reg.card("1.0.0"),
            lambda: pl.Registry(reg.root),
        ):
            try:
                call()
            except pl.PersistError:
                pass
        assert reg.load("1.1.0")[1].version == "1.1.0"
    finally:
        if saved is None:
            path.unlink()
        else:
            path.write_bytes(saved)
