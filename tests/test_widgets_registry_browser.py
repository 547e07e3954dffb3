"""ModelCardView and RegistryBrowser: versions table, load, promote, rollback."""

from __future__ import annotations

import ipywidgets  # noqa: F401 -- a course requirement: missing is a failure, not a skip
import pytest

import persistlib as pl


@pytest.fixture()
def three_versions(registry, small_model, churn_split):
    X_train, X_test, _, y_test = churn_split
    metrics = pl.evaluate(small_model, X_test, y_test)
    for i in range(3):
        registry.save(small_model, metrics={**metrics, "accuracy": 0.80 + i / 100}, dataset=X_train)
    registry.promote("1.0.0")
    registry.promote("1.1.0")
    return registry


def test_card_view_is_the_passport(three_versions):
    view = pl.ModelCardView(three_versions, "1.2.0")
    assert view.html.value == three_versions.card("1.2.0")._repr_html_()
    assert repr(view) == "<ModelCardView: v1.2.0>"
    assert "persistlib-card-view" in view._dom_classes
    with pytest.raises(TypeError, match="ModelCard or a Registry"):
        pl.ModelCardView({"version": "1.0.0"})


def test_table_lists_versions_metrics_and_aliases(three_versions):
    b = pl.RegistryBrowser(three_versions)
    for v, acc in (("1.0.0", "0.800"), ("1.1.0", "0.810"), ("1.2.0", "0.820")):
        assert f"v{v}" in b.table.value and acc in b.table.value
    assert three_versions.card("1.0.0").trained_at in b.table.value
    assert b.table.value.count("◀ <b>production</b>") == 1
    assert b.version_select.value == "1.1.0"  # starts on production
    assert b.card_view.card.version == "1.1.0"
    assert repr(b) == "<RegistryBrowser: 3 versions, production=v1.1.0>"


def test_promote_then_rollback_moves_the_alias_visibly(three_versions):
    b = pl.RegistryBrowser(three_versions)
    b.version_select.value = "1.2.0"
    b.promote_button.click()
    assert three_versions.aliases()["production"] == "1.2.0"
    assert "now points to v1.2.0 (was v1.1.0)" in b.status.value
    row = [r for r in b.table.value.split("<tr") if "◀" in r][0]
    assert "v1.2.0" in row
    b.rollback_button.click()
    assert three_versions.aliases()["production"] == "1.1.0"
    assert "moved from v1.2.0 to v1.1.0" in b.status.value
    row = [r for r in b.table.value.split("<tr") if "◀" in r][0]
    assert "v1.1.0" in row and "v1.2.0" not in row
    assert "rollback production: v1.2.0 → v1.1.0" in b.history.value


def test_rollback_with_no_earlier_version_is_refused(registry, small_model):
    registry.promote(registry.save(small_model).version)
    b = pl.RegistryBrowser(registry)
    assert b.rollback() is None
    assert b.status.value.startswith("✗ Rollback refused") and "no earlier version" in b.status.value


def test_load_verifies_and_reports_tampering(three_versions, churn_split):
    _, X_test, _, _ = churn_split
    b = pl.RegistryBrowser(three_versions)
    model = b.load()
    assert b.loaded_card.version == "1.1.0" and "sha256 verified" in b.status.value
    assert (model.predict(X_test) == b.loaded_model.predict(X_test)).all()
    path = three_versions.root / three_versions.card("1.2.0").artifact
    path.write_bytes(path.read_bytes()[:-10])
    b.version_select.value = "1.2.0"
    b.load_button.click()
    assert b.status.value.startswith("✗ Could not load v1.2.0") and "does not match its card" in b.status.value


def test_empty_registry(registry):
    b = pl.RegistryBrowser(registry)
    assert "No versions yet" in b.table.value and b.load_button.disabled
    assert repr(b) == "<RegistryBrowser: 0 versions, no production yet>"
    with pytest.raises(TypeError, match="persistlib.Registry"):
        pl.RegistryBrowser("workspace/registry")


def test_a_refused_card_is_a_row_not_a_crash(tmp_path, small_model):
    """In a signed registry, one unsigned and one edited card: the browser still opens and says why."""
    import json

    key = "course-secret"
    unsigned = pl.Registry(tmp_path / "reg")
    unsigned.save(small_model, metrics={"accuracy": 0.80})  # 1.0.0: no signature
    signed = pl.Registry(tmp_path / "reg", signing_key=key)
    signed.save(small_model, metrics={"accuracy": 0.81})  # 1.1.0: good
    signed.save(small_model, metrics={"accuracy": 0.82})  # 1.2.0: edited below
    signed.promote("1.1.0")
    path = signed.root / "model_v1.2.0_meta.json"
    card = json.loads(path.read_text())
    card["metrics"]["accuracy"] = 0.99
    path.write_text(json.dumps(card))

    b = pl.RegistryBrowser(signed)
    rows = {r.split("</b>")[0].rsplit("v", 1)[-1]: r for r in b.table.value.split("<tr")[2:]}
    assert "✗ card model_v1.0.0_meta.json is unsigned" in rows["1.0.0"]
    assert "✗ card model_v1.2.0_meta.json has a wrong signature" in rows["1.2.0"]
    assert "persistlib-row-refused" in rows["1.2.0"] and "0.99" not in b.table.value
    assert "0.810" in rows["1.1.0"] and "✗" not in rows["1.1.0"]
    assert b.card_view.card.version == "1.1.0"  # production's passport

    b.version_select.value = "1.2.0"
    assert b.card_box.children == (b.card_error,)
    assert b.card_error.value.startswith("<p>✗ v1.2.0: card model_v1.2.0_meta.json has a wrong signature")
    b.load_button.click()
    assert b.status.value.startswith("✗ Could not load v1.2.0") and "wrong signature" in b.status.value
    assert b.loaded_model is None
    b.promote_button.click()
    assert b.status.value.startswith("✗ Could not promote v1.2.0") and "wrong signature" in b.status.value
    assert signed.aliases()["production"] == "1.1.0"
    b.version_select.value = "1.1.0"
    assert b.card_box.children == (b.card_view,) and b.card_view.card.version == "1.1.0"
