import hashlib
import hmac
import json
import os
import re
import sys
import warnings
from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

import persistlib as pl
from persistlib import errors
from persistlib.card import _mapping, _optional, algorithm_name, describe_dataset, hyperparameters, utc_now
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


# --------------------------------------------------------------------------- signing payload


def test_signing_payload_is_the_canonical_json_without_the_signature():
    """An independent statement of the canonical form, so any other tool can re-compute a signature.

    Keys sorted, no spaces (separators "," and ":"), non-ASCII kept as UTF-8, and the signature field null.
    """
    card = make_card(notes="qualité ✓ 模型", dataset="churn ünïcode.csv", signature="ab" * 32)
    fields_ = json.loads(card.to_json())
    fields_["signature"] = None
    canonical = json.dumps(fields_, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert card.signing_payload() == canonical
    assert b'"signature":null' in canonical and "qualité ✓ 模型".encode() in canonical
    # the signature itself is not covered: changing it leaves the payload as it was
    assert make_card(notes=card.notes, dataset=card.dataset, signature=None).signing_payload() == canonical
    # a test vector: HMAC-SHA256 over those bytes, which `openssl dgst -sha256 -hmac` also computes
    key = b"test-key"
    assert pl.signing.sign(card, key) == hmac.new(key, canonical, hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------- field checks


def test_mapping_check_accepts_only_an_object_of_name_to_value():
    check = _mapping((int, float), "number")
    assert check({}) is None and check({"accuracy": 0.9, "rows": 3}) is None
    message = "must be an object of name -> number"
    for bad in ([0.9], "accuracy", None, {"accuracy": "high"}, {"accuracy": True}, {1: 0.5}, {"a": 0.5, 2: 0.1}):
        assert check(bad) == message, bad
    assert _mapping(str, "version string")({"numpy": 3}) == "must be an object of name -> version string"


def test_optional_check_lets_null_through_and_checks_anything_else():
    def must_be_short(v):
        return None if len(v) < 3 else "must be short"

    check = _optional(must_be_short)
    assert check(None) is None
    assert check("ab") is None
    assert check("abcd") == "must be short"


# --------------------------------------------------------------------------- display


def full_card(**over):
    base = dict(
        metrics={"accuracy": 0.91, "f1": 0.8},
        artifact_sha256="0123456789abcdef" * 4,
        artifact_bytes=12345,
        dataset="churn.csv",
        dataset_sha256="fedcba9876543210" * 4,
        dataset_rows=1500,
        hyperparams={"n_estimators": 10, "max_depth": None},
        gate={"passed": True, "rows": [], "tolerance": 0.0},
    )
    base.update(over)
    return make_card(**base)


def test_str_shows_the_card_in_four_documented_lines():
    card = full_card()
    assert str(card).splitlines() == [
        "model v1.2.0 · RandomForestClassifier · trained 2026-11-26T10:00:00+00:00",
        "  metrics: accuracy=0.910, f1=0.800 · gate PASS",
        "  artefact: model_v1.2.0.pkl (joblib) sha256 0123456789ab…",
        "  dataset: churn.csv sha256 fedcba987654",
    ]
    failed = full_card(gate={"passed": False, "rows": [], "tolerance": 0.0}, format="skops")
    assert str(failed).splitlines()[1] == "  metrics: accuracy=0.910, f1=0.800 · gate FAIL"
    assert str(failed).splitlines()[2] == "  artefact: model_v1.2.0.pkl (skops) sha256 0123456789ab…"
    # nothing recorded: a dash for the metrics and the dataset, and no gate verdict at all
    bare = full_card(metrics={}, gate=None, dataset=None, dataset_sha256=None)
    lines = str(bare).splitlines()
    assert lines[1].rstrip() == "  metrics: —"
    assert lines[3] == "  dataset: — sha256 —"


class _CardHTML(HTMLParser):
    """The parts of a card's HTML a reader sees: tables (rows of cell texts, the value cells' tooltips),
    the heading and the lines under it, and any text outside those places (there should be none)."""

    TEXT_TAGS = {"th", "td", "code", "h3", "p", "b", "summary"}

    def __init__(self):
        super().__init__()
        self.tables, self.titles, self.styles, self.classes = {}, {}, [], []
        self.stack, self.texts, self.stray, self.scripts = [], {}, [], 0
        self.table = self.row = self.cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.stack.append(tag)
        self.classes.append(attrs.get("class"))
        if tag == "script":
            self.scripts += 1
        if "style" in attrs:
            self.styles.append((tag, attrs.get("class"), attrs["style"]))
        if tag == "table":
            self.table = attrs.get("class")
            self.tables[self.table], self.titles[self.table] = [], []
        elif tag == "tr":
            self.row = []
            self.tables[self.table].append(self.row)
        elif tag in ("td", "th"):
            self.cell = len(self.row)
            self.row.append("")
            if "title" in attrs:
                self.titles[self.table].append(attrs["title"])
        elif tag in ("h3", "p", "b", "summary") and self.cell is None:
            self.texts.setdefault(tag, []).append("")

    def handle_endtag(self, tag):
        while self.stack and self.stack.pop() != tag:
            pass
        if tag in ("td", "th"):
            self.cell = None

    def handle_data(self, data):
        where = self.stack[-1] if self.stack else None
        if self.cell is not None:
            self.row[self.cell] += data
        elif where in self.TEXT_TAGS:
            outer = next(t for t in reversed(self.stack) if t in ("h3", "p", "summary"))
            self.texts[outer][-1] += data
        elif data.strip():
            self.stray.append(data)


def parse_card_html(card):
    parser = _CardHTML()
    parser.feed(card._repr_html_())
    parser.close()
    assert parser.stray == [], f"text outside the cells, heading and lines: {parser.stray}"
    return parser


def css(style):
    """A style attribute as {property: value}; property names and values case-folded, as CSS treats them."""
    pairs = (d.split(":", 1) for d in style.split(";") if d.strip())
    return {k.strip().lower(): v.strip().lower() for k, v in pairs}


def test_html_passport_tables_show_every_field():
    card = full_card(hyperparams={"n_estimators": 10, "max_depth": None, "memory": "m" * 71})
    page = parse_card_html(card)
    table = page.tables
    assert table["persistlib-card-metrics"] == [["metrics"], ["accuracy", "0.910"], ["f1", "0.800"]]
    assert table["persistlib-card-artefact"] == [
        ["artefact"],
        ["file", "model_v1.2.0.pkl"],
        ["format", "joblib"],
        ["bytes", "12345"],
        ["sha256", "0123456789abcdef…"],  # the first 16 hex digits
    ]
    assert table["persistlib-card-data"] == [
        ["data"],
        ["dataset", "churn.csv"],
        ["rows", "1500"],
        ["sha256", "fedcba9876543210…"],
    ]
    assert table["persistlib-card-environment"] == [["environment"]] + [[k, v] for k, v in card.dependencies.items()]
    # a value longer than 70 characters is cut to 69 and an ellipsis; its tooltip holds all of it
    assert table["persistlib-card-hyperparameters"] == [
        ["hyperparameters"],
        ["n_estimators", "10"],
        ["max_depth", "—"],
        ["memory", "m" * 69 + "…"],
    ]
    tips = page.titles["persistlib-card-hyperparameters"]
    assert tips[0] == "10" and tips[2] == "m" * 71
    assert page.titles["persistlib-card-metrics"] == ["0.910", "0.800"]
    assert page.texts["h3"] == ["Model passport · v1.2.0"]
    assert page.texts["p"] == ["RandomForestClassifier · trained 2026-11-26T10:00:00+00:00 · ✓ gate PASS"]
    assert page.texts["summary"] == ["hyperparameters"]


def test_html_passport_without_gate_metrics_data_or_notes():
    card = full_card(gate=None, metrics={}, dataset=None, dataset_sha256=None, dataset_rows=None, artifact_bytes=None)
    page = parse_card_html(card)
    assert page.tables["persistlib-card-metrics"] == [["metrics"], ["—", "none recorded"]]
    assert page.tables["persistlib-card-data"] == [["data"], ["dataset", "—"], ["rows", "—"], ["sha256", "—"]]
    assert page.tables["persistlib-card-artefact"][3] == ["bytes", "—"]
    assert page.texts["p"] == ["RandomForestClassifier · trained 2026-11-26T10:00:00+00:00"]  # no notes paragraph
    failed = parse_card_html(full_card(gate={"passed": False}, notes="retrained after the spike"))
    assert failed.texts["p"] == [
        "RandomForestClassifier · trained 2026-11-26T10:00:00+00:00 · ✗ gate FAIL",
        "retrained after the spike",
    ]


def test_html_passport_layout_is_a_bordered_box_with_a_two_column_grid():
    page = parse_card_html(full_card())
    box = css(next(s for tag, cls, s in page.styles if cls == "persistlib-card"))
    assert box["border"].startswith("2px solid") and box["max-width"] == "760px"
    grid = css(next(s for tag, cls, s in page.styles if tag == "div" and cls is None))
    assert grid["display"] == "grid" and grid["grid-template-columns"].startswith("repeat(2,")


def test_html_passport_escapes_hostile_values():
    evil = "<script>alert(1)</script>"
    card = full_card(
        version="1.0.0",
        algorithm=evil,
        notes=evil,
        metrics={evil: 0.5},
        dependencies={"numpy": evil},
        hyperparams={evil: evil},
        dataset=evil,
    )
    page = parse_card_html(card)
    assert page.scripts == 0
    assert page.texts["p"] == [f"{evil} · trained 2026-11-26T10:00:00+00:00 · ✓ gate PASS", evil]
    assert page.tables["persistlib-card-metrics"][1] == [evil, "0.500"]
    assert page.tables["persistlib-card-environment"][1] == ["numpy", evil]
    assert page.tables["persistlib-card-hyperparameters"][1] == [evil, evil]
    assert page.titles["persistlib-card-hyperparameters"] == [evil]
    assert page.tables["persistlib-card-data"][1] == ["dataset", evil]


# --------------------------------------------------------------------------- each field's rule


@pytest.mark.parametrize(
    "field, bad, rule",
    [
        ("version", "", "must be a string (not empty)"),
        ("version", "   ", "must be a string (not empty)"),
        ("artifact", "model\x00.pkl", "must be a string (not empty)"),
        ("artifact", 7, "must be a string (not empty)"),
        ("trained_at", 5, "must be a string"),
        ("dataset", 3, "must be a string"),
        ("dataset_rows", -1, "must be a whole number >= 0 or null"),
        ("dataset_rows", True, "must be a whole number >= 0 or null"),
        ("artifact_bytes", 1.5, "must be a whole number >= 0 or null"),
    ],
)
def test_from_json_names_the_field_and_its_rule(field, bad, rule):
    data = json.loads(make_card().to_json())
    data[field] = bad
    with pytest.raises(errors.CardError) as info:
        pl.ModelCard.from_json(json.dumps(data), source="card x_meta.json")
    assert str(info.value).startswith(f"card x_meta.json: field {field!r} {rule}, got {bad!r}.")


def test_from_json_accepts_the_edges_of_each_rule():
    card = make_card(dataset_rows=0, artifact_bytes=0, dataset=None, version=" 1 ")
    assert pl.ModelCard.from_json(card.to_json()) == card


# --------------------------------------------------------------------------- filling in a card


def test_algorithm_name_names_a_pipeline_by_its_steps():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    assert algorithm_name(make_pipeline(StandardScaler(), LogisticRegression())) == (
        "Pipeline(StandardScaler → LogisticRegression)"
    )
    assert algorithm_name(LogisticRegression()) == "LogisticRegression"

    class NoSteps:
        steps = []

    class OddSteps:
        steps = "not a list of steps"

    assert algorithm_name(NoSteps()) == "NoSteps" and algorithm_name(OddSteps()) == "OddSteps"


def test_hyperparameters_are_the_top_level_params_as_json_ready_values():
    import numpy as np

    class Model:
        def get_params(self, deep=True):
            top = {
                "n": np.int64(3),
                "rate": np.float32(0.5),
                "flag": True,
                "name": "x" * 300,
                "none": None,
                "grid": np.array([1.0, 2.0]),
                "big": list(range(100)),
            }
            return {**top, "inner__depth": 2} if deep else top

    params = hyperparameters(Model())
    assert list(params) == sorted(params)  # sorted by name
    assert params == {
        "big": repr(list(range(100)))[:199] + "…",  # anything else: its repr, cut to 200 characters
        "flag": True,
        "grid": repr(np.array([1.0, 2.0])),
        "n": 3,
        "name": "x" * 300,  # strings are kept whole
        "none": None,
        "rate": 0.5,
    }
    assert type(params["n"]) is int and type(params["rate"]) is float  # numpy scalars become Python numbers
    assert hyperparameters(object()) == {}


def test_describe_dataset_names_the_data_and_fingerprints_it(tmp_path):
    import numpy as np

    assert describe_dataset(None) == (None, None)
    frame, _ = pl.make_churn(40, random_state=0)
    text, fp = describe_dataset(frame)
    assert text == f"DataFrame: 40 rows × {frame.shape[1]} columns" and fp == pl.fingerprint(frame)
    text, fp = describe_dataset(np.arange(5.0))
    assert text == "ndarray: 5 rows" and fp["rows"] == 5
    path = tmp_path / "churn.csv"
    frame.to_csv(path, index=False)
    text, fp = describe_dataset(str(path))
    assert text == "churn.csv" and fp["kind"] == "file" and fp == pl.fingerprint(str(path))


# --------------------------------------------------------------------------- the card file and new_card


def test_utc_now_is_iso_8601_to_the_second_in_utc():
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", utc_now())


def test_card_file_is_indented_key_sorted_json_that_keeps_non_ascii_text():
    # the _meta.json file is read by people and diffed in version control: stable key order, readable text
    card = make_card(notes="Modèle validé — 95 %", metrics={"recall": 0.7, "accuracy": 0.91})
    text = card.to_json()
    orders = []
    json.loads(text, object_pairs_hook=lambda pairs: orders.append([k for k, _ in pairs]))
    assert len(orders) == 4  # metrics, hyperparams, dependencies, the card
    assert all(keys == sorted(keys) for keys in orders)
    lines = text.splitlines()
    assert lines[0] == "{" and lines[-1] == "}"
    assert '  "algorithm": "RandomForestClassifier",' in lines
    assert '    "accuracy": 0.91,' in lines and '    "recall": 0.7' in lines
    assert '  "notes": "Modèle validé — 95 %",' in lines


def test_from_json_names_the_card_when_no_source_is_given():
    with pytest.raises(errors.CardError, match=r"^card is not valid JSON"):
        pl.ModelCard.from_json("{not json")
    with pytest.raises(errors.CardError, match=r"^card must hold a JSON object"):
        pl.ModelCard.from_json("[]")


REQUIRED = ["version", "trained_at", "algorithm", "artifact", "artifact_sha256"]


def test_a_card_with_only_the_required_fields_loads_with_the_defaults():
    # e.g. a card written before the optional fields existed
    data = {k: v for k, v in json.loads(make_card().to_json()).items() if k in REQUIRED}
    card = pl.ModelCard.from_json(json.dumps(data))
    assert (card.version, card.artifact_sha256) == ("1.2.0", "ab" * 32)
    assert (card.format, card.metrics, card.hyperparams, card.notes, card.signature) == ("joblib", {}, {}, "", None)


@pytest.mark.parametrize("name", REQUIRED)
def test_a_card_without_a_required_field_names_it(name):
    data = json.loads(make_card().to_json())
    del data[name]
    with pytest.raises(errors.CardError, match=rf"^x_meta\.json is missing required field\(s\) \['{name}'\]"):
        pl.ModelCard.from_json(json.dumps(data), source="x_meta.json")


def test_new_card_records_the_dataset_and_the_notes():
    from sklearn.linear_model import LogisticRegression

    from persistlib.card import new_card

    frame, _ = pl.make_churn(40, random_state=0)
    name, fp = describe_dataset(frame)
    args = dict(version="1.0.0", artifact="model_v1.0.0.pkl", sha256="ab" * 32, size=10, format="joblib")
    card = new_card(LogisticRegression(), dataset=(name, fp), notes="first forest", **args)
    assert (card.dataset, card.dataset_sha256, card.dataset_rows) == (name, fp["sha256"], 40)
    assert card.notes == "first forest" and card.algorithm == "LogisticRegression"
    plain = new_card(LogisticRegression(), **args)
    assert (plain.dataset, plain.dataset_sha256, plain.dataset_rows, plain.notes) == (None, None, None, "")


def _load_with_a_patch_difference(registry, model):
    """Load a model whose card records the next scikit-learn patch release; return the warning and the call's line."""

    import sklearn

    major, minor, patch = sklearn.__version__.split(".")[:3]
    registry.save(model)
    meta = registry.root / "model_v1.0.0_meta.json"
    data = json.loads(meta.read_text())
    data["dependencies"]["scikit-learn"] = f"{major}.{minor}.{int(patch) + 1}"
    meta.write_text(json.dumps(data))
    with pytest.warns(pl.CompatibilityWarning, match="usually harmless") as caught:
        line = sys._getframe().f_lineno + 1
        registry.load("1.0.0")
    [w] = [w for w in caught if issubclass(w.category, pl.CompatibilityWarning)]
    return w, line


def test_a_version_warning_points_at_the_line_that_called_load(registry, small_model):
    w, line = _load_with_a_patch_difference(registry, small_model)
    if "MUTANT_UNDER_TEST" not in os.environ:  # mutmut's trampolines add frames between the test and load()
        assert (w.filename, w.lineno) == (__file__, line)


def test_a_version_warning_from_a_direct_check_points_at_its_caller():
    import sklearn

    major, minor, patch = sklearn.__version__.split(".")[:3]
    card = make_card(dependencies={"scikit-learn": f"{major}.{minor}.{int(patch) + 1}"})
    with pytest.warns(pl.CompatibilityWarning) as caught:
        line = sys._getframe().f_lineno + 1
        card.check_environment()
    assert len(caught) == 1
    if "MUTANT_UNDER_TEST" not in os.environ:  # mutmut's trampolines add frames between the test and the card
        assert (caught[0].filename, caught[0].lineno) == (__file__, line)


def test_a_version_warning_is_not_blamed_on_the_card_module(registry, small_model):
    # (also holds under mutmut's extra frames) a warning located in card.py would hide where the load was
    import persistlib.card

    w, _ = _load_with_a_patch_difference(registry, small_model)
    assert w.filename != persistlib.card.__file__
