"""Loading safely: integrity, signatures, skops, versions, and custom code.

"Refused before unpickling" is proved, not assumed: the swapped-in artefact is
a pickle whose unpickling writes a marker file, and each test asserts that the
marker does not exist after the refusal. ``test_payload_is_live`` shows the
same payload does write the marker when it is loaded, so those checks can fail.
"""

from __future__ import annotations

import hashlib
import hmac
import warnings

import joblib
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import InconsistentVersionWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import persistlib as pl
from persistlib import demos, errors


@pytest.fixture(scope="module")
def lr_model(churn_split):
    X_train, _, y_train, _ = churn_split
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X_train, y_train)


@pytest.fixture()
def evil(tmp_path, lr_model):
    """(path of a payload pickle that returns lr_model, path of the marker it writes)."""
    marker = tmp_path / "marker.txt"
    return demos.make_malicious_pickle(tmp_path / "evil.pkl", marker, model=lr_model), marker


def test_payload_is_live(evil, lr_model, churn_split):
    path, marker = evil
    loaded = joblib.load(path)
    assert marker.exists(), "unpickling the payload should have written the marker"
    X_test = churn_split[1]
    assert (loaded.predict(X_test) == lr_model.predict(X_test)).all()  # and the model still works


def test_unsigned_registry_is_fooled_when_both_files_are_rewritten(tmp_path, evil, lr_model):
    """The threat a signature exists for: sha256 alone cannot stop someone who edits the card too."""
    path, marker = evil
    reg = pl.Registry(tmp_path / "reg")
    reg.save(lr_model)
    demos.replace_artifact(reg.root, "1.0.0", path)
    demos.edit_card(reg.root, "1.0.0", match_artifact=True)
    reg.load("1.0.0")
    assert marker.exists()


def test_tampered_artifact_refused_before_unpickling(tmp_path, evil, lr_model):
    path, marker = evil
    reg = pl.Registry(tmp_path / "reg")
    reg.save(lr_model)
    demos.replace_artifact(reg.root, "1.0.0", path)
    with pytest.raises(pl.IntegrityError, match="does not match its card"):
        reg.load("1.0.0")
    assert not marker.exists()


def test_truncated_artifact_refused(tmp_path, lr_model):
    reg = pl.Registry(tmp_path / "reg")
    card = reg.save(lr_model)
    art = reg.root / card.artifact
    art.write_bytes(art.read_bytes()[:100])
    with pytest.raises(pl.IntegrityError, match="NOT unpickled"):
        reg.load("1.0.0")


def test_tampered_card_refused_by_signed_registry(tmp_path, evil, lr_model):
    path, marker = evil
    reg = pl.Registry(tmp_path / "reg", signing_key="s3cret-key")
    reg.save(lr_model)
    demos.replace_artifact(reg.root, "1.0.0", path)
    demos.edit_card(reg.root, "1.0.0", match_artifact=True)  # the attacker fixes the hash, keeps the old signature
    with pytest.raises(pl.IntegrityError, match="wrong signature"):
        reg.load("1.0.0")
    assert not marker.exists()


def test_card_signed_with_wrong_key_refused(tmp_path, evil, lr_model):
    path, marker = evil
    reg = pl.Registry(tmp_path / "reg", signing_key="the-real-key")
    reg.save(lr_model)
    demos.replace_artifact(reg.root, "1.0.0", path)
    demos.edit_card(reg.root, "1.0.0", match_artifact=True, signature=None)
    # The attacker signs the forged card with a key of their own.
    forged = pl.ModelCard.from_json((reg.root / "model_v1.0.0_meta.json").read_text())
    sig = hmac.new(b"attacker-key", forged.signing_payload(), hashlib.sha256).hexdigest()
    demos.edit_card(reg.root, "1.0.0", signature=sig)
    with pytest.raises(pl.IntegrityError, match="wrong signature"):
        reg.load("1.0.0")
    assert not marker.exists()
    # ... while a registry opened with the attacker's key would accept it: the key is the secret.
    pl.Registry(reg.root, signing_key="attacker-key").load("1.0.0")
    assert marker.exists()


def test_unsigned_card_refused_by_signed_registry(tmp_path, evil, lr_model):
    path, marker = evil
    reg = pl.Registry(tmp_path / "reg", signing_key="s3cret-key")
    reg.save(lr_model)
    demos.replace_artifact(reg.root, "1.0.0", path)
    demos.edit_card(reg.root, "1.0.0", match_artifact=True, signature=None)
    with pytest.raises(pl.IntegrityError, match="unsigned"):
        reg.load("1.0.0")
    assert not marker.exists()


def test_signing_key_from_environment(tmp_path, lr_model, monkeypatch):
    monkeypatch.setenv("PERSISTLIB_SIGNING_KEY", "from-env")
    reg = pl.Registry(tmp_path / "reg")
    assert reg.signed
    card = reg.save(lr_model)
    assert card.signature and len(card.signature) == 64
    reg.load("1.0.0")
    monkeypatch.setenv("PERSISTLIB_SIGNING_KEY", "another")
    with pytest.raises(pl.IntegrityError, match="wrong signature"):
        pl.Registry(tmp_path / "reg").load("1.0.0")


# --------------------------------------------------------------------------- skops


def test_skops_round_trip(tmp_path, small_model, churn_split):
    X_test = churn_split[1]
    reg = pl.Registry(tmp_path / "reg", format="skops")
    card = reg.save(small_model, trusted_types=["sklearn.tree._tree.Tree"])
    assert card.artifact == "model_v1.0.0.skops" and card.format == "skops"
    assert card.trusted_types == ["sklearn.tree._tree.Tree"]
    loaded, card2 = reg.load("1.0.0")
    assert type(loaded) is RandomForestClassifier
    assert (loaded.predict_proba(X_test) == small_model.predict_proba(X_test)).all()
    assert card2.trusted_types == card.trusted_types


def test_skops_per_save_format(tmp_path, lr_model):
    reg = pl.Registry(tmp_path / "reg")  # joblib by default
    assert reg.save(lr_model).artifact.endswith(".pkl")
    card = reg.save(lr_model, format="skops")
    assert card.artifact.endswith(".skops")
    assert isinstance(reg.load(card.version)[0], type(lr_model))


def test_skops_unreviewed_type_refused_at_save(tmp_path, small_model):
    reg = pl.Registry(tmp_path / "reg", format="skops")
    with pytest.raises(pl.UntrustedTypeError, match=r"sklearn\.tree\._tree\.Tree"):
        reg.save(small_model, trusted_types=[])
    assert reg.versions() == []


def test_skops_unreviewed_type_refused_at_load(tmp_path, small_model, lr_model):
    """A forest swapped in for a reviewed pipeline: its Tree type was never reviewed."""
    reg = pl.Registry(tmp_path / "reg", format="skops")
    card = reg.save(lr_model, trusted_types=[])
    assert card.trusted_types == []
    other = pl.Registry(tmp_path / "other", format="skops")
    forest = other.save(small_model)
    demos.replace_artifact(reg.root, "1.0.0", other.root / forest.artifact)
    demos.edit_card(reg.root, "1.0.0", match_artifact=True)
    label = r"^v1\.0\.0: model_v1\.0\.0\.skops holds type\(s\) "
    with pytest.raises(pl.UntrustedTypeError, match=label + r"\['sklearn\.tree\._tree\.Tree'\]"):
        reg.load("1.0.0")


def test_skops_untrusted_types_helper(small_model, lr_model):
    assert demos.skops_untrusted_types(small_model) == ["sklearn.tree._tree.Tree"]
    assert demos.skops_untrusted_types(lr_model) == []


# --------------------------------------------------------------------------- versions


def test_version_mismatch_pickle_raises_inconsistent_version_warning(tmp_path, lr_model):
    path = demos.make_version_mismatch_pickle(lr_model, tmp_path / "old.pkl", fake_version="1.0.2")
    with pytest.warns(InconsistentVersionWarning) as record:
        joblib.load(path)
    found = [w.message for w in record if issubclass(w.category, InconsistentVersionWarning)]
    assert {m.estimator_name for m in found} == {"Pipeline", "StandardScaler", "LogisticRegression"}
    assert {m.original_sklearn_version for m in found} == {"1.0.2"}
    import sklearn

    assert {m.current_sklearn_version for m in found} == {sklearn.__version__}
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        with pytest.raises(InconsistentVersionWarning):
            joblib.load(path)


def test_normal_pickle_does_not_warn(tmp_path, lr_model):
    joblib.dump(lr_model, tmp_path / "now.pkl")
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        joblib.load(tmp_path / "now.pkl")


def test_version_mismatch_pickle_rejects_installed_version(tmp_path, lr_model):
    import sklearn

    with pytest.raises(ValueError, match="installed scikit-learn version"):
        demos.make_version_mismatch_pickle(lr_model, tmp_path / "x.pkl", fake_version=sklearn.__version__)


def test_card_turns_version_mismatch_into_compatibility_error(tmp_path, lr_model):
    reg = pl.Registry(tmp_path / "reg")
    reg.save(lr_model)
    demos.replace_artifact(reg.root, "1.0.0", demos.make_version_mismatch_pickle(lr_model, tmp_path / "old.pkl"))
    demos.edit_card(reg.root, "1.0.0", match_artifact=True, dependencies={"scikit-learn": "1.0.2"})
    with pytest.raises(pl.CompatibilityError, match=r"scikit-learn: saved with 1\.0\.2"):
        reg.load("1.0.0")
    with pytest.warns(pl.CompatibilityWarning), pytest.warns(InconsistentVersionWarning):
        model, _ = reg.load("1.0.0", allow_version_mismatch=True)
    assert hasattr(model, "predict")


def test_edit_card_unknown_field(tmp_path, lr_model):
    reg = pl.Registry(tmp_path / "reg")
    reg.save(lr_model)
    with pytest.raises(errors.InvalidArgumentError, match="no field 'colour'"):
        demos.edit_card(reg.root, "1.0.0", colour="red")


# --------------------------------------------------------------------------- custom code


@pytest.mark.slow
def test_main_function_breaks_loading_elsewhere_and_module_fixes_it(tmp_path):
    broken = demos.save_with_main_function(tmp_path / "main.pkl", importable=False)
    result = demos.load_in_fresh_python(broken)
    assert not result.ok
    assert "AttributeError" in result.message and "log1p_charges" in result.message
    fixed = demos.save_with_main_function(tmp_path / "module.pkl", importable=True)
    result = demos.load_in_fresh_python(fixed)
    assert result.ok and result.message == "Pipeline"


# --------------------------------------------------------------------------- reading and choosing


def test_pickle_imports_lists_the_payload_without_running_it(evil, tmp_path, lr_model):
    path, marker = evil
    names = demos.pickle_imports(path)
    assert "pathlib.Path.write_text" in names and "_operator.getitem" in names
    assert "sklearn.pipeline.Pipeline" in names
    assert not marker.exists()
    import pickle

    clean = tmp_path / "clean.pkl"
    clean.write_bytes(pickle.dumps(lr_model, protocol=5))
    assert "pathlib.Path.write_text" not in demos.pickle_imports(clean)


@pytest.mark.parametrize(
    "answers, expected",
    [
        (dict(need_python_object=False, untrusted_source=True), "onnx"),
        (dict(need_python_object=False, untrusted_source=False, custom_functions=True), "joblib"),
        (dict(need_python_object=True, untrusted_source=True, need_mmap=True), "skops"),
        (dict(need_python_object=True, untrusted_source=False, need_mmap=True), "joblib"),
        (dict(need_python_object=True, untrusted_source=False), "joblib"),
    ],
)
def test_recommend_format_follows_the_questions_in_order(answers, expected):
    fmt, reason = demos.recommend_format(**answers)
    assert fmt == expected and reason


def test_non_ascii_hash_or_signature_is_an_integrity_error(tmp_path, lr_model):
    """hmac.compare_digest raises TypeError on non-ASCII str; a forged card must still be refused cleanly."""
    reg = pl.Registry(tmp_path / "reg", signing_key="k")
    reg.save(lr_model)
    demos.edit_card(reg.root, "1.0.0", signature="é" * 64)
    with pytest.raises(pl.IntegrityError, match="wrong signature"):
        reg.load("1.0.0")
    plain = pl.Registry(tmp_path / "plain")
    plain.save(lr_model)
    demos.edit_card(plain.root, "1.0.0", artifact_sha256="é" * 64)
    with pytest.raises(errors.CardError, match="artifact_sha256' must be 64 lowercase hex digits"):
        plain.load("1.0.0")  # refused as a damaged card, before any artefact byte is read
