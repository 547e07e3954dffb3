import json
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

import persistlib as pl
from persistlib import errors
from persistlib.card import utc_now
from persistlib.environment import check_compatibility, environment_versions


def make_card(**over):
    base = dict(
        version="1.2.0",
        trained_at="2026-11-26T10:00:00+00:00",
        algorithm="RandomForestClassifier",
        artifact="model_v1.2.0.pkl",
        artifact_sha256="ab" * 32,
        metrics={"accuracy": 0.91},
        dependencies={"python": "3.11.7", "scikit-learn": "1.9.1", "numpy": "2.4.6"},
    )
    base.update(over)
    return pl.ModelCard(**base)


def test_defaults_record_the_environment_and_utc_time():
    card = pl.ModelCard(
        version="1.0.0",
        trained_at=utc_now(),
        algorithm="X",
        artifact="model_v1.0.0.pkl",
        artifact_sha256="0" * 64,
    )
    assert card.dependencies == environment_versions()
    assert {"python", "scikit-learn", "numpy", "joblib"} <= set(card.dependencies)
    assert card.trained_at.endswith("+00:00") and card.format == "joblib"


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)


@given(
    version=st.tuples(*[st.integers(0, 999)] * 3).map(lambda t: "{}.{}.{}".format(*t)),
    metrics=st.dictionaries(
        st.text(min_size=1, max_size=12), st.floats(allow_nan=False, allow_infinity=False), max_size=5
    ),
    hyper=st.dictionaries(st.text(min_size=1, max_size=12), json_scalars, max_size=6),
    notes=st.text(max_size=50),
    rows=st.one_of(st.none(), st.integers(0, 10**9)),
)
def test_json_round_trip(version, metrics, hyper, notes, rows):
    card = make_card(version=version, metrics=metrics, hyperparams=hyper, notes=notes, dataset_rows=rows)
    assert pl.ModelCard.from_json(card.to_json()) == card


@pytest.mark.parametrize(
    "text, match",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        (json.dumps({"version": "1.0.0"}), "missing required field"),
        (None, "unknown field"),
        (None, "must be a string"),
        (None, "must be an object"),
    ],
)
def test_corrupt_cards_are_clear_errors(text, match):
    good = json.loads(make_card().to_json())
    if match == "unknown field":
        good["surprise"] = 1
        text = json.dumps(good)
    elif match == "must be a string":
        good["version"] = 3
        text = json.dumps(good)
    elif match == "must be an object":
        good["metrics"] = [0.9]
        text = json.dumps(good)
    with pytest.raises(errors.CardError, match=match) as info:
        pl.ModelCard.from_json(text, source="card model_v1.0.0_meta.json")
    assert "model_v1.0.0_meta.json" in str(info.value) or match != "not valid JSON"


def test_html_passport_and_str_show_the_essentials():
    card = make_card(gate={"passed": True, "rows": [], "tolerance": 0.0})
    html = card._repr_html_()
    for needle in ("Model passport", "v1.2.0", "RandomForestClassifier", "0.910", "gate PASS", "scikit-learn"):
        assert needle in html
    assert "v1.2.0" in str(card) and "accuracy=0.910" in str(card)


def test_compatibility_rules():
    inst = {"python": "3.11.7", "scikit-learn": "1.9.1", "numpy": "2.4.6", "joblib": "1.6.0"}
    assert check_compatibility(dict(inst), inst) == []
    notes = check_compatibility({**inst, "scikit-learn": "1.9.0", "numpy": "2.3.1"}, inst)
    assert len(notes) == 2 and any("scikit-learn: saved with 1.9.0, installed 1.9.1" in n for n in notes)
    with pytest.raises(pl.CompatibilityError) as info:
        check_compatibility({**inst, "scikit-learn": "1.8.2"}, inst)
    msg = str(info.value)
    assert "1.8.2" in msg and "1.9.1" in msg and "allow_version_mismatch=True" in msg
    # the fix works on any Python: retrain here, or a separate environment built with the card's Python
    assert "retrain the model and save it again under the installed versions" in msg
    assert "python3.11 -m venv old-env && old-env/bin/pip install scikit-learn==1.8.2" in msg
    old = {**inst, "python": "3.10.12", "scikit-learn": "1.0.2", "numpy": "1.21.6", "joblib": "1.1.0"}
    with pytest.raises(pl.CompatibilityError) as info:
        check_compatibility(old, inst)
    msg = str(info.value)
    assert "Python (3.10.12)" in msg and "joblib: saved with" not in msg  # joblib differs, but only a pin
    pins = "joblib==1.1.0 numpy==1.21.6 scikit-learn==1.0.2"
    assert f"python3.10 -m venv old-env && old-env/bin/pip install {pins}" in msg
    with pytest.raises(pl.CompatibilityError, match="numpy: saved with 1.26.4, installed 2.4.6"):
        check_compatibility({**inst, "numpy": "1.26.4"}, inst)
    # a package missing here is not an error (e.g. skops only needed for skops files)
    assert check_compatibility({**inst, "skops": "0.16.0"}, inst) == []


def test_check_environment_warns_or_raises():
    import sklearn

    installed = sklearn.__version__
    major, minor, patch = installed.split(".")[:3]
    patch_diff = make_card(dependencies={"scikit-learn": f"{major}.{minor}.{int(patch) + 1}"})
    with pytest.warns(pl.CompatibilityWarning, match="saved with"):
        patch_diff.check_environment()
    minor_diff = make_card(dependencies={"scikit-learn": f"{major}.{int(minor) + 1}.0"})
    with pytest.raises(pl.CompatibilityError, match="model v1.2.0"):
        minor_diff.check_environment()
    with pytest.warns(pl.CompatibilityWarning, match="despite"):
        minor_diff.check_environment(allow_version_mismatch=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_card(dependencies=environment_versions()).check_environment()
