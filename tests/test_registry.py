import hashlib
import json
import os
import pickle
from pathlib import Path

import joblib
import pytest
from hypothesis import given
from hypothesis import strategies as st

import persistlib as pl
from persistlib import errors
from persistlib.versions import is_version


def test_first_save_is_1_0_0_and_writes_the_versioned_pair(registry, small_model, churn_split):
    X_train = churn_split[0]
    card = registry.save(small_model, metrics={"accuracy": 0.9}, dataset=X_train)
    assert card.version == "1.0.0"
    files = sorted(p.name for p in registry.root.iterdir() if not p.name.startswith("."))
    assert files == ["model_v1.0.0.pkl", "model_v1.0.0_meta.json"]
    pkl = registry.root / "model_v1.0.0.pkl"
    assert card.artifact_sha256 == hashlib.sha256(pkl.read_bytes()).hexdigest()
    assert card.artifact_bytes == pkl.stat().st_size
    assert card.dataset_sha256 == pl.fingerprint(X_train)["sha256"] and card.dataset_rows == len(X_train)
    assert card.hyperparams["n_estimators"] == 10 and card.algorithm == "RandomForestClassifier"
    on_disk = pl.ModelCard.from_json((registry.root / "model_v1.0.0_meta.json").read_text())
    assert on_disk == card
    # a plain joblib file: any student can open it without persistlib
    assert type(joblib.load(pkl)).__name__ == "RandomForestClassifier"


def test_bumps_from_the_highest_version(registry, small_model):
    assert registry.save(small_model).version == "1.0.0"
    assert registry.save(small_model).version == "1.1.0"
    assert registry.save(small_model, bump="patch").version == "1.1.1"
    assert registry.save(small_model, version="v3.0.0").version == "3.0.0"
    assert registry.save(small_model, version="2.5.0").version == "2.5.0"
    assert registry.save(small_model, bump="major").version == "4.0.0"
    assert registry.versions() == ["1.0.0", "1.1.0", "1.1.1", "2.5.0", "3.0.0", "4.0.0"]


def test_existing_version_is_an_error_and_nothing_is_overwritten(registry, small_model):
    registry.save(small_model, version="1.0.0")
    before = {p.name: p.read_bytes() for p in registry.root.iterdir() if p.is_file()}
    with pytest.raises(errors.VersionExistsError, match="1.0.0 already exists"):
        registry.save(small_model, version="1.0.0", compress=0)
    after = {p.name: p.read_bytes() for p in registry.root.iterdir() if p.is_file()}
    assert after == before


@pytest.mark.parametrize("bad", ["1.0", "1.0.0.0", "01.0.0", "1.a.0", "", "latest", "-1.0.0", "1.0.0-rc1"])
def test_malformed_versions_are_rejected(registry, small_model, bad):
    with pytest.raises(pl.InvalidVersionError, match="MAJOR.MINOR.PATCH"):
        registry.save(small_model, version=bad)
    assert registry.versions() == []


def test_failing_gate_writes_nothing(registry, small_model):
    report = pl.Gate({"accuracy": 0.99}).check({"accuracy": 0.5})
    with pytest.raises(pl.GateRejected, match="accuracy 0.500 is below the threshold 0.990") as info:
        registry.save(small_model, gate_report=report)
    assert info.value.report is report
    assert [p.name for p in registry.root.iterdir() if p.name != ".registry.lock"] == []


def test_passing_gate_is_stored_and_supplies_metrics(registry, small_model):
    report = pl.Gate({"accuracy": 0.5}).check({"accuracy": 0.8})
    card = registry.save(small_model, gate_report=report)
    assert card.metrics == {"accuracy": 0.8} and card.gate["passed"] is True
    assert pl.GateReport.from_dict(registry.card("1.0.0").gate) == report


def test_load_by_version_alias_and_latest(registry, small_model, churn_split):
    X_test = churn_split[1]
    registry.save(small_model)
    registry.save(small_model, compress=0)
    registry.promote("1.0.0")
    model, card = registry.load()
    assert card.version == "1.0.0"
    assert (model.predict(X_test) == small_model.predict(X_test)).all()
    assert registry.load("latest")[1].version == "1.1.0"
    assert registry.load("v1.1.0")[1].version == "1.1.0"


def test_unknown_ref_lists_what_exists(registry, small_model):
    with pytest.raises(LookupError, match="none yet"):
        registry.load()
    registry.save(small_model)
    with pytest.raises(pl.VersionNotFoundError, match=r"Versions: \['1.0.0'\]") as info:
        registry.load("9.9.9")
    assert isinstance(info.value, LookupError) and isinstance(info.value, pl.PersistError)
    with pytest.raises(pl.VersionNotFoundError, match="'staging'"):
        registry.load("staging")
    with pytest.raises(TypeError, match="ref must be"):
        registry.load(3)


def test_tampered_artefact_is_refused_before_unpickling(registry, small_model, tmp_path):
    registry.save(small_model)
    marker = tmp_path / "pwned.txt"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (registry.root / "model_v1.0.0.pkl").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(pl.IntegrityError, match=r"v1.0.0: model_v1.0.0.pkl does not match its card"):
        registry.load("1.0.0")
    assert not marker.exists()


@pytest.mark.parametrize("swap_after", ["read", "hash"])
def test_only_the_bytes_that_were_hashed_are_unpickled(
    registry, small_model, churn_split, tmp_path, monkeypatch, swap_after
):
    """An attacker swaps the file between the check and the use: the swapped file is never unpickled.

    The swap happens right after the artefact is read (or right after its bytes are hashed).
    A load that reads the file again to unpickle it would run the marker payload.
    """
    from persistlib import artefacts

    registry.save(small_model)
    artefact = registry.root / "model_v1.0.0.pkl"
    marker = tmp_path / "pwned.txt"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    swapped = []

    def swap_file_on_disk():
        artefact.write_bytes(pickle.dumps(Evil()))
        swapped.append(True)

    if swap_after == "read":
        real_read = artefacts.read_regular

        def read_then_swap(*args, **kwargs):
            data = real_read(*args, **kwargs)
            swap_file_on_disk()
            return data

        monkeypatch.setattr(artefacts, "read_regular", read_then_swap)
    else:

        class HashThenSwap:
            def __getattr__(self, name):
                return getattr(hashlib, name)

            @staticmethod
            def sha256(*args, **kwargs):
                digest = hashlib.sha256(*args, **kwargs)
                swap_file_on_disk()
                return digest

        monkeypatch.setattr(artefacts, "hashlib", HashThenSwap())

    model, card = registry.load("1.0.0")
    assert swapped == [True], "the file was swapped exactly once, after the check"
    assert not marker.exists(), "the swapped file was unpickled"
    assert type(model).__name__ == "RandomForestClassifier"
    X_test = churn_split[1]
    assert (model.predict(X_test) == small_model.predict(X_test)).all()
    assert artefact.read_bytes() == pickle.dumps(Evil())  # the swap really happened on disk


def test_truncated_and_missing_artefacts(registry, small_model):
    registry.save(small_model)
    pkl = registry.root / "model_v1.0.0.pkl"
    pkl.write_bytes(pkl.read_bytes()[: pkl.stat().st_size // 2])
    with pytest.raises(pl.IntegrityError, match="changed, truncated or swapped"):
        registry.load("1.0.0")
    pkl.unlink()
    with pytest.raises(pl.IntegrityError, match="v1.0.0: artefact model_v1.0.0.pkl is missing"):
        registry.load("1.0.0")


def test_card_pointing_outside_the_registry_is_refused(registry, small_model):
    registry.save(small_model)
    meta = registry.root / "model_v1.0.0_meta.json"
    data = json.loads(meta.read_text())
    data["artifact"] = "../elsewhere.pkl"
    meta.write_text(json.dumps(data))
    with pytest.raises(pl.IntegrityError, match=r"names artefact '\.\./elsewhere\.pkl'.*The card was edited"):
        registry.load("1.0.0")


def test_corrupt_or_renamed_card(registry, small_model):
    registry.save(small_model)
    meta = registry.root / "model_v1.0.0_meta.json"
    good = meta.read_text()
    meta.write_text(good[:40])
    with pytest.raises(errors.CardError, match="model_v1.0.0_meta.json is not valid JSON"):
        registry.load("1.0.0")
    meta.write_text(good.replace('"version": "1.0.0"', '"version": "2.0.0"'))
    with pytest.raises(errors.CardError, match="renamed or edited"):
        registry.card("1.0.0")


def _edit_card(registry, version, **changes):
    meta = registry.root / f"model_v{version}_meta.json"
    data = json.loads(meta.read_text())
    for key, value in changes.items():
        data["dependencies"][key] = value
    meta.write_text(json.dumps(data))


def test_incompatible_environment_is_refused_before_unpickling(registry, small_model):
    registry.save(small_model)
    _edit_card(registry, "1.0.0", **{"scikit-learn": "0.24.2"})
    with pytest.raises(pl.CompatibilityError, match="saved with 0.24.2") as info:
        registry.load("1.0.0")
    assert "pip install scikit-learn==0.24.2" in str(info.value)
    with pytest.warns(pl.CompatibilityWarning):
        model, _ = registry.load("1.0.0", allow_version_mismatch=True)
    assert hasattr(model, "predict")


def test_patch_difference_only_warns(registry, small_model):
    import sklearn

    major, minor, patch = sklearn.__version__.split(".")[:3]
    registry.save(small_model)
    _edit_card(registry, "1.0.0", **{"scikit-learn": f"{major}.{minor}.{int(patch) + 7}"})
    with pytest.warns(pl.CompatibilityWarning, match="usually harmless"):
        registry.load("1.0.0")


def test_promote_rollback_and_history(registry, small_model):
    for _ in range(3):
        registry.save(small_model)
    assert registry.promote("1.0.0") == "1.0.0"
    registry.promote("1.1.0")
    registry.promote("1.2.0")
    registry.promote("1.2.0")  # no-op, not a history entry
    assert registry.aliases() == {"production": "1.2.0"}
    assert registry.rollback() == "1.1.0"
    assert registry.aliases()["production"] == "1.1.0"
    assert registry.load()[1].version == "1.1.0"
    registry.promote("1.0.0", alias="staging")
    assert registry.aliases() == {"production": "1.1.0", "staging": "1.0.0"}
    moves = [(h["alias"], h["action"], h["from"], h["to"]) for h in registry.history()]
    assert moves == [
        ("production", "promote", None, "1.0.0"),
        ("production", "promote", "1.0.0", "1.1.0"),
        ("production", "promote", "1.1.0", "1.2.0"),
        ("production", "rollback", "1.2.0", "1.1.0"),
        ("staging", "promote", None, "1.0.0"),
    ]
    assert all(h["at"].endswith("+00:00") for h in registry.history())
    assert registry.rollback() == "1.0.0"
    with pytest.raises(pl.RollbackError, match="no earlier version"):
        registry.rollback()


def test_promote_errors(registry, small_model):
    registry.save(small_model)
    with pytest.raises(pl.VersionNotFoundError):
        registry.promote("2.0.0")
    for bad in ["", "latest", "1.0.0", "prod uction", "../x"]:
        with pytest.raises(ValueError, match="alias"):
            registry.promote("1.0.0", alias=bad)


def test_a_new_registry_object_sees_the_same_state(registry, small_model):
    registry.save(small_model)
    registry.promote("1.0.0")
    again = pl.Registry(registry.root)
    assert again.versions() == ["1.0.0"] and again.aliases() == {"production": "1.0.0"}


def test_compression_and_bad_arguments(registry, small_model, tmp_path):
    small = registry.save(small_model, compress=9)
    big = registry.save(small_model, compress=0)
    lz4 = registry.save(small_model, compress=("lz4", 3))
    assert small.artifact_bytes < lz4.artifact_bytes < big.artifact_bytes
    assert registry.load(lz4.version)[0].n_estimators == 10
    with pytest.raises(ValueError, match="compress must be"):
        registry.save(small_model, compress=12)
    with pytest.raises(ValueError, match="bump must be"):
        registry.save(small_model, bump="huge")
    with pytest.raises(ValueError, match="format must be one of"):
        registry.save(small_model, format="pickle")
    with pytest.raises(TypeError, match="model=None"):
        registry.save(None)
    with pytest.raises(TypeError, match="GateReport"):
        registry.save(small_model, gate_report="passed")
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(errors.InvalidArgumentError, match="is a file"):
        pl.Registry(afile)


def test_orphan_artefact_without_card_is_invisible(registry, small_model):
    """A crash after the artefact's rename but before the card leaves no version."""
    (registry.root / "model_v1.0.0.pkl").write_bytes(b"half a model")
    (registry.root / ".tmp-deadbeef.pkl").write_bytes(b"half a temp")
    assert registry.versions() == []
    card = registry.save(small_model)
    assert card.version == "1.0.0" and registry.load("1.0.0")[1] == card


def test_skops_format_round_trip(tmp_path, small_model, churn_split):
    reg = pl.Registry(tmp_path / "r", format="skops")
    card = reg.save(small_model)
    assert card.artifact == "model_v1.0.0.skops" and "sklearn.tree._tree.Tree" in card.trusted_types
    model, _ = reg.load("1.0.0")
    X_test = churn_split[1]
    assert (model.predict(X_test) == small_model.predict(X_test)).all()


def test_signed_registry_refuses_unsigned_cards(tmp_path, small_model):
    plain = pl.Registry(tmp_path / "r")
    plain.save(small_model)
    signed = pl.Registry(tmp_path / "r", signing_key="s3cret")
    with pytest.raises(pl.IntegrityError, match="unsigned"):
        signed.load("1.0.0")
    card = signed.save(small_model)
    assert card.signature and signed.load(card.version)[1] == card
    with pytest.raises(pl.IntegrityError, match="wrong signature"):
        pl.Registry(tmp_path / "r", signing_key="other").load(card.version)


# ------------------------------------------------------------------ property tests

versions = st.tuples(st.integers(0, 50), st.integers(0, 50), st.integers(0, 50))


@given(versions)
def test_parse_is_the_inverse_of_format(v):
    text = "{}.{}.{}".format(*v)
    assert pl.parse_version(text) == v and pl.parse_version("v" + text) == v


@given(versions, st.sampled_from(["major", "minor", "patch"]))
def test_bump_always_increases_and_resets_lower_parts(v, part):
    text = "{}.{}.{}".format(*v)
    new = pl.parse_version(pl.bump_version(text, part))
    assert new > v
    idx = ["major", "minor", "patch"].index(part)
    assert new[idx] == v[idx] + 1 and new[:idx] == v[:idx] and all(x == 0 for x in new[idx + 1 :])


@given(st.text(max_size=12))
def test_parse_accepts_only_semver(text):
    if is_version(text):
        assert len(pl.parse_version(text)) == 3
    else:
        with pytest.raises(pl.InvalidVersionError):
            pl.parse_version(text)


@given(st.lists(versions, min_size=1, max_size=8, unique=True))
def test_versions_are_listed_in_semver_order(tmp_path_factory, vs):
    root = tmp_path_factory.mktemp("order")
    for v in vs:  # cards only: ordering does not need the artefacts
        (root / "model_v{}.{}.{}_meta.json".format(*v)).write_text("{}")
    listed = pl.Registry(root).versions()
    assert [pl.parse_version(x) for x in listed] == sorted(vs)


def test_a_held_lock_times_out_with_a_clear_error(tmp_path, small_model):
    from filelock import FileLock

    reg = pl.Registry(tmp_path / "r", lock_timeout=0.2)
    with FileLock(str(reg.root / ".registry.lock")):
        with pytest.raises(errors.LockTimeoutError, match="another process is saving"):
            reg.save(small_model)
    assert reg.versions() == [] and not list(reg.root.glob(".tmp-*"))
    assert reg.save(small_model).version == "1.0.0"


def test_a_skops_registry_refuses_pickles_unless_allowed(tmp_path, small_model):
    pl.Registry(tmp_path / "r").save(small_model)  # someone drops a joblib version in
    secure = pl.Registry(tmp_path / "r", format="skops")
    with pytest.raises(pl.UntrustedTypeError, match="pickle-based.*allow_pickle=True"):
        secure.load("1.0.0")
    assert secure.load("1.0.0", allow_pickle=True)[1].format == "joblib"
    card = secure.save(small_model)
    assert secure.load(card.version)[1].format == "skops"
    with pytest.raises(pl.UntrustedTypeError, match="pickle-based"):
        pl.Registry(tmp_path / "r").load("1.0.0", allow_pickle=False)


def test_repr_names_the_folder_the_format_and_signing(tmp_path):
    assert repr(pl.Registry(tmp_path / "a")) == f"Registry({str(tmp_path / 'a')!r}, format='joblib')"
    signed = pl.Registry(tmp_path / "b", format="skops", signing_key="k" * 32)
    assert repr(signed) == f"Registry({str(tmp_path / 'b')!r}, format='skops', signed)"


def test_a_stray_card_like_file_is_named_in_a_warning_that_says_what_to_do(registry):
    (registry.root / "model_v1.0_meta.json").write_text("{}")
    with pytest.warns(errors.RegistryWarning) as caught:
        assert registry.versions() == []
    assert [str(w.message) for w in caught] == [
        f"skipping 'model_v1.0_meta.json' in {registry.root}: it looks like a card, but its name is not "
        "model_v<MAJOR>.<MINOR>.<PATCH>_meta.json. Rename or remove it."
    ]


# --------------------------------------------------------------------------- what each call promises


def test_a_new_registry_creates_its_folder_with_parents_and_waits_60_s_for_a_lock(tmp_path):
    reg = pl.Registry(tmp_path / "a" / "b" / "registry")
    assert reg.root.is_dir() and reg.versions() == []
    assert reg.lock_timeout == 60


def test_a_registry_folder_that_cannot_be_created_or_listed_is_a_storage_error(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(errors.StorageError, match="^could not create the registry folder .*afile/registry: "):
        pl.Registry(tmp_path / "afile" / "registry")
    reg = pl.Registry(tmp_path / "gone")
    reg.root.rmdir()
    with pytest.raises(errors.StorageError, match=f"^could not list the registry folder {tmp_path / 'gone'}: "):
        reg.versions()


@pytest.mark.parametrize("bad", [-1, float("nan"), "60"])
def test_a_bad_lock_timeout_is_named(tmp_path, bad):
    with pytest.raises(errors.PersistError, match="^lock_timeout"):
        pl.Registry(tmp_path / "r", lock_timeout=bad)


def test_a_lock_timeout_names_the_registry(tmp_path, small_model):
    from filelock import FileLock

    reg = pl.Registry(tmp_path / "r", lock_timeout=0)
    with FileLock(str(reg.root / ".registry.lock")):
        with pytest.raises(errors.LockTimeoutError, match=f"for the lock on the registry {reg.root};"):
            reg.promote("1.0.0")


def test_saved_artefacts_are_not_mistaken_for_stray_cards(registry, small_model, recwarn):
    registry.save(small_model)
    registry.save(small_model, format="skops")
    (registry.root / "notes_meta.json").write_text("{}")  # not named like a card at all
    assert registry.versions() == ["1.0.0", "1.1.0"]
    assert not [w for w in recwarn if issubclass(w.category, errors.RegistryWarning)]


def test_a_stray_card_warning_points_at_the_callers_line(registry):
    (registry.root / "model_v1.0_meta.json").write_text("{}")
    with pytest.warns(errors.RegistryWarning) as caught:
        registry.versions()
    [warning] = caught
    assert Path(warning.filename).parent.name != "persistlib"  # not persistlib's own line
    if "MUTANT_UNDER_TEST" not in os.environ:  # mutmut's trampolines add frames between the test and versions()
        assert warning.filename == __file__


def test_latest_is_the_highest_of_several_versions(registry, small_model):
    for _ in range(3):
        registry.save(small_model, compress=0)
    assert registry.resolve("latest") == "1.2.0"
    assert registry.card("latest").version == "1.2.0"


def test_an_unknown_ref_lists_the_aliases_or_says_there_are_none(registry, small_model):
    registry.save(small_model)
    with pytest.raises(pl.VersionNotFoundError, match=r"aliases: none yet\. Save a model first"):
        registry.resolve("staging")
    registry.promote("1.0.0")
    with pytest.raises(pl.VersionNotFoundError, match=r"aliases: \{'production': '1\.0\.0'\}\. Save"):
        registry.resolve("staging")


def test_card_and_cards_read_production_by_default_and_every_version(registry, small_model):
    registry.save(small_model, notes="first")
    registry.save(small_model, notes="second")
    registry.promote("1.0.0")
    assert registry.card().notes == "first"
    assert [(c.version, c.notes) for c in registry.cards()] == [("1.0.0", "first"), ("1.1.0", "second")]


def test_a_symlinked_card_is_named_in_the_error(registry, small_model):
    registry.save(small_model)
    card = registry.root / "model_v1.0.0_meta.json"
    real = registry.root.parent / "elsewhere.json"
    card.rename(real)
    card.symlink_to(real)
    with pytest.raises(errors.IntegrityError, match=r"^card model_v1\.0\.0_meta\.json is a symbolic link"):
        registry.card("1.0.0")


def test_a_card_of_exactly_one_mebibyte_is_read_and_one_byte_more_is_refused(registry, small_model):
    registry.save(small_model)
    card = registry.root / "model_v1.0.0_meta.json"
    text = card.read_bytes()
    card.write_bytes(text + b" " * ((1 << 20) - len(text)))  # JSON may end in blanks
    assert registry.card("1.0.0").version == "1.0.0"
    card.write_bytes(text + b" " * ((1 << 20) + 1 - len(text)))
    with pytest.raises(errors.CardError, match=r"larger than 1,048,576 bytes, so it is not a card"):
        registry.card("1.0.0")


def test_a_wrong_signature_names_the_card_file(tmp_path, small_model):
    reg = pl.Registry(tmp_path / "r", signing_key="k" * 32)
    reg.save(small_model)
    from persistlib import demos

    demos.edit_card(reg.root, "1.0.0", notes="edited")
    with pytest.raises(errors.IntegrityError, match=r"^card model_v1\.0\.0_meta\.json has a wrong signature"):
        reg.card("1.0.0")


def test_save_defaults_to_compress_3_and_empty_notes(registry, small_model):
    default = registry.save(small_model)
    three = registry.save(small_model, compress=3)
    four = registry.save(small_model, compress=4)
    assert default.artifact_sha256 == three.artifact_sha256 != four.artifact_sha256
    assert default.notes == "" and registry.card("1.0.0").notes == ""
    assert registry.save(small_model, notes="retrained on May data").notes == "retrained on May data"
    assert registry.card("1.3.0").notes == "retrained on May data"


def test_bad_metrics_are_named_as_metrics(registry, small_model):
    with pytest.raises(errors.ArgumentTypeError, match=r"^metrics\['accuracy'\] must be a number"):
        registry.save(small_model, metrics={"accuracy": "high"})
    with pytest.raises(errors.ArgumentTypeError, match=r"^metrics must be a dict"):
        registry.save(small_model, metrics=[0.9])
    assert registry.versions() == []


def test_rolling_back_an_alias_that_never_existed_is_a_rollback_error(registry, small_model):
    registry.save(small_model)
    with pytest.raises(pl.RollbackError, match=r"alias 'staging' has no earlier version .* held nothing\)"):
        registry.rollback("staging")


def test_a_truncated_artefact_is_named_by_size_and_a_card_without_a_size_still_loads(registry, small_model):
    card = registry.save(small_model)
    artefact = registry.root / card.artifact
    data = artefact.read_bytes()
    artefact.write_bytes(data[:-10])
    with pytest.raises(errors.IntegrityError, match=rf"\({len(data) - 10:,} bytes ≠ recorded {len(data):,}\)"):
        registry.load("1.0.0")
    artefact.write_bytes(data)
    from persistlib import demos

    demos.edit_card(registry.root, "1.0.0", artifact_bytes=None)  # cards from before sizes were recorded
    assert registry.load("1.0.0")[1].artifact_bytes is None
