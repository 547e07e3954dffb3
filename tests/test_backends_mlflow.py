"""MlflowRegistry's own promises: what MLflow holds, what it refuses, where it writes, and a clear error without MLflow.

The contract every registry keeps is tested in test_registry_contract.py; these tests
use one SQLite store (module-scoped, a new registered model per test that changes it).
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.tree import DecisionTreeClassifier

import persistlib as pl
from persistlib import errors
from persistlib.backends import _mlflow_schema, _mlflow_store, tracking_server

ROOT = Path(__file__).resolve().parents[1]
_names = (f"b{n}" for n in itertools.count())


@pytest.fixture(scope="module")
def data():
    return pl.make_churn(200, random_state=5)


@pytest.fixture(scope="module")
def tree(data):
    return DecisionTreeClassifier(max_depth=2, random_state=0).fit(*data)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """The SQLite tracking URI of one store for this module."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow_store') / 'mlflow.db'}"


@pytest.fixture()
def fresh(store):
    """``fresh(**kwargs)``: an empty MlflowRegistry (a new registered model) in the module's store."""
    return lambda **kw: pl.MlflowRegistry(store, next(_names), **kw)


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT, env={**os.environ, **env}
    )


# --------------------------------------------------------------------------- without MLflow


def test_the_top_level_name_does_not_import_mlflow():
    out = _run(
        "import sys, persistlib as pl\npl.MlflowRegistry, pl.start_tracking_server\nprint('mlflow' in sys.modules)"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_a_broken_mlflow_is_one_clear_error_naming_the_pip_install(tmp_path):
    fake = tmp_path / "mlflow"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise RuntimeError('deliberately broken for the test')\n")
    code = (
        "import persistlib as pl\n"
        "try:\n"
        f"    pl.MlflowRegistry.in_folder(r'{tmp_path / 'store'}')\n"
        "except pl.PersistError as e:\n"
        "    print(type(e).__name__, isinstance(e, ImportError), e)\n"
    )
    out = _run(code, PYTHONPATH=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("BackendUnavailableError True MlflowRegistry needs MLflow, which failed to import")
    assert "deliberately broken" in out.stdout and "pip install mlflow==3.17.2" in out.stdout


def test_a_missing_mlflow_says_it_is_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # what Python does for a package that is not there
    with pytest.raises(errors.BackendUnavailableError, match=r"which is not installed.*pip install mlflow==3\.17\.2"):
        _mlflow_store.import_mlflow()


def test_the_install_hint_names_the_pinned_release():
    pins = dict(line.split("==") for line in (ROOT / "requirements.txt").read_text().splitlines() if "==" in line)
    assert pins["mlflow-skinny"] == _mlflow_store.MLFLOW_VERSION


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"tracking_uri": 5}, errors.ArgumentTypeError, "tracking_uri must be a string"),
        ({"tracking_uri": "file:///tmp/mlruns"}, errors.InvalidArgumentError, "is not a store"),
        ({"tracking_uri": "/tmp/mlruns"}, errors.InvalidArgumentError, "is not a store"),
        (
            {"tracking_uri": "postgresql://db/mlflow"},
            errors.InvalidArgumentError,
            r"needs artifact_location=.*\./mlruns",
        ),
        ({"name": "../churn"}, errors.InvalidArgumentError, "plain model name"),
        ({"name": "churn' OR name='x"}, errors.InvalidArgumentError, "plain model name"),
        ({"format": "onnx"}, errors.InvalidArgumentError, "format must be one of"),
        ({"format": "joblib"}, errors.UntrustedTypeError, "allow_pickle=True"),
        ({"allow_pickle": "yes"}, errors.ArgumentTypeError, "allow_pickle must be True or False"),
        ({"artifact_location": ""}, errors.InvalidArgumentError, "artifact_location must be"),
    ],
)
def test_bad_arguments_get_clear_errors(tmp_path, kwargs, error, match):
    args = {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}", **kwargs}
    with pytest.raises(error, match=match):
        pl.MlflowRegistry(**args)


def test_a_relative_sqlite_path_is_pinned_to_where_it_was_opened(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri, artifacts = _mlflow_store.check_tracking_uri("sqlite:///stores/mlflow.db")
    assert uri == f"sqlite:///{tmp_path / 'stores' / 'mlflow.db'}"
    assert artifacts == str(tmp_path / "stores" / "artifacts")
    assert _mlflow_store.check_tracking_uri("http://127.0.0.1:5000/") == ("http://127.0.0.1:5000", None)
    assert _mlflow_store.check_tracking_uri("postgresql://db/mlflow", "s3://models") == (
        "postgresql://db/mlflow",
        "s3://models",
    )


# --------------------------------------------------------------------------- what MLflow holds


def _contents(db: Path) -> dict:
    """A SQLite file's tables: columns, indexes, foreign keys, CHECK constraints and rows, each order-free.

    MLflow's migrations run in no fixed order where its history branches, so two new stores list the same
    columns, constraints and indexes in different orders; the comparison is of what a store holds.
    """
    with sqlite3.connect(db) as c:
        tables = sorted(row[0] for row in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
        found = {}
        for t in tables:
            sql = c.execute("SELECT sql FROM sqlite_master WHERE name = ?", (t,)).fetchone()[0]
            indexes = {
                (name, unique, origin, partial, tuple(col[2] for col in c.execute(f'PRAGMA index_info("{name}")')))
                for _, name, unique, origin, partial in c.execute(f'PRAGMA index_list("{t}")')
            }
            found[t] = {
                "columns": {row[1:] for row in c.execute(f'PRAGMA table_info("{t}")')},
                "indexes": indexes,
                "foreign keys": {row[2:] for row in c.execute(f'PRAGMA foreign_key_list("{t}")')},
                "checks": sorted(line.strip().rstrip(",").strip() for line in sql.splitlines() if "CHECK" in line),
                "rows": sorted(map(repr, c.execute(f'SELECT * FROM "{t}"'))),
            }
    return found


def test_the_shipped_tables_are_the_ones_the_installed_mlflow_creates(tmp_path, tree, data):
    import mlflow

    shipped = _mlflow_schema.shipped_dump(mlflow.__version__)
    assert shipped is not None, (
        f"no tables shipped for MLflow {mlflow.__version__}: run python -m persistlib.backends._mlflow_schema"
    )
    _mlflow_schema.dump_new_store(tmp_path / "by_mlflow.db")  # MLflow's own migrations, the slow way
    assert _mlflow_schema.prepare_sqlite_store(f"sqlite:///{tmp_path / 'shipped.db'}", mlflow.__version__)
    by_mlflow, from_dump = _contents(tmp_path / "by_mlflow.db"), _contents(tmp_path / "shipped.db")
    assert len(by_mlflow) > 50 and by_mlflow["alembic_version"]["rows"], "MLflow set up no tables"
    assert from_dump == by_mlflow, "the dump is stale: run python -m persistlib.backends._mlflow_schema"
    # and a store MLflow set up itself (as with any MLflow version without a dump) serves the registry as well
    registry = pl.MlflowRegistry(f"sqlite:///{tmp_path / 'by_mlflow.db'}", "slow_way")
    card = registry.save(tree, dataset=data[0])
    assert registry.versions() == [card.version]
    assert registry.load(card.version)[1].artifact_sha256 == card.artifact_sha256


def test_shipped_tables_are_written_only_into_a_new_sqlite_file(tmp_path):
    import mlflow

    version = mlflow.__version__
    existing = tmp_path / "existing.db"
    existing.write_bytes(b"a store someone else owns")
    assert not _mlflow_schema.prepare_sqlite_store(f"sqlite:///{existing}", version)
    assert existing.read_bytes() == b"a store someone else owns"
    assert not _mlflow_schema.prepare_sqlite_store(f"sqlite:///{tmp_path / 'new.db'}", "0.0.1")  # none shipped
    assert not _mlflow_schema.prepare_sqlite_store(f"sqlite:///{tmp_path / 'no' / 'such' / 'folder.db'}", version)
    assert not _mlflow_schema.prepare_sqlite_store("http://127.0.0.1:5000", version)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.db"], "a file was left behind"


def test_mlflow_sees_the_lifecycle_in_its_own_terms(fresh, tree, data, tmp_path):
    import mlflow.artifacts
    import mlflow.sklearn

    registry = fresh()
    card = registry.save(tree, metrics={"accuracy": 0.75}, dataset=data[0], notes="seen from MLflow")
    registry.promote(card.version)
    client = registry.client
    mv = client.get_model_version_by_alias(registry.name, "production")  # models:/<name>@production
    assert mv.tags["persistlib.version"] == "1.0.0" and mv.tags["persistlib.sha256"] == card.artifact_sha256
    run = client.get_run(mv.run_id)
    assert run.data.metrics == {"accuracy": 0.75} and run.data.params["max_depth"] == "2"
    (dataset_input,) = run.inputs.dataset_inputs
    assert json.loads(dataset_input.dataset.source)["sha256"] == pl.fingerprint(data[0])["sha256"]
    assert [(t.key, t.value) for t in dataset_input.tags] == [("mlflow.data.context", "training")]
    folder = mlflow.artifacts.download_artifacts(
        artifact_uri=client.get_model_version_download_uri(registry.name, mv.version),
        dst_path=str(tmp_path),
        tracking_uri=registry.tracking_uri,
    )
    mlmodel = Path(folder, "MLmodel").read_text()
    assert "serialization_format: skops" in mlmodel and "sklearn.tree._tree.Tree" in mlmodel
    assert pl.ModelCard.from_json(Path(folder, "persistlib_card.json").read_text()) == card
    # MLflow's own loader still works on what persistlib wrote: a team's other tools keep working
    assert (mlflow.sklearn.load_model(folder).predict(data[0]) == tree.predict(data[0])).all()


def test_nothing_is_written_into_the_working_folder(store, tree, data, tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    registry = pl.MlflowRegistry(store, next(_names))
    for _ in range(2):
        registry.save(tree, dataset=data[0])
    registry.promote("1.0.0")
    registry.promote("1.1.0")
    registry.rollback()
    registry.load("production")
    registry.history()
    assert sorted(os.listdir(cwd)) == []


# --------------------------------------------------------------------------- what it refuses


def test_a_changed_card_or_an_edited_tag_is_refused(fresh, tree):
    registry = fresh()
    card = registry.save(tree)
    mv = registry._index()["1.0.0"]
    card_file = Path(mv.source) / "persistlib_card.json"
    original = card_file.read_text()
    card_file.write_text(original.replace('"notes": ""', '"notes": "edited"'))
    fresh_view = pl.MlflowRegistry(registry.tracking_uri, registry.name)  # no cached card
    with pytest.raises(pl.IntegrityError, match="does not match the sha256 MLflow's database records"):
        fresh_view.load("1.0.0")
    card_file.write_text(original)
    registry.client.set_model_version_tag(registry.name, mv.version, "persistlib.sha256", "0" * 64)
    with pytest.raises(pl.IntegrityError, match="disagrees with its tags"):
        pl.MlflowRegistry(registry.tracking_uri, registry.name).load("1.0.0")
    registry.client.set_model_version_tag(registry.name, mv.version, "persistlib.sha256", card.artifact_sha256)
    assert fresh_view.load("1.0.0")[1] == card


def test_a_changed_skops_file_is_refused_before_skops_reads_it(fresh, tree, monkeypatch):
    registry = fresh()
    registry.save(tree)
    stored = Path(registry._index()["1.0.0"].source) / "model.skops"
    data = stored.read_bytes()
    stored.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    import skops.io

    def never(*args, **kwargs):
        raise AssertionError("skops read bytes that had not been verified")

    monkeypatch.setattr(skops.io, "loads", never)
    monkeypatch.setattr(skops.io, "get_untrusted_types", never)
    with pytest.raises(pl.IntegrityError, match="sha256"):
        registry.load("1.0.0")


def test_unreviewed_types_are_refused_and_nothing_is_registered(fresh, tree):
    registry = fresh()
    with pytest.raises(pl.UntrustedTypeError, match=r"sklearn\.tree\._tree\.Tree"):
        registry.save(tree, trusted_types=[])
    assert registry.versions() == []
    card = registry.save(tree, trusted_types=["sklearn.tree._tree.Tree"])
    assert card.trusted_types == ["sklearn.tree._tree.Tree"]


def test_pickle_only_by_explicit_opt_in(fresh, tree, data):
    registry = fresh(allow_pickle=True)
    card = registry.save(tree, format="joblib")
    assert card.format == "joblib" and card.artifact == "model.pkl"
    skops_only = pl.MlflowRegistry(registry.tracking_uri, registry.name)
    with pytest.raises(pl.UntrustedTypeError, match="loads only skops files"):
        skops_only.load(card.version)
    with pytest.raises(pl.UntrustedTypeError, match="allow_pickle=True"):
        skops_only.save(tree, format="joblib")
    model, _ = skops_only.load(card.version, allow_pickle=True)
    assert (model.predict(data[0]) == tree.predict(data[0])).all()


# --------------------------------------------------------------------------- MLflow changed behind persistlib's back


def test_versions_registered_outside_persistlib_are_skipped_with_a_warning(fresh, tree):
    registry = fresh()
    registry.save(tree)
    mv = registry._index()["1.0.0"]
    registry.client.create_model_version(registry.name, mv.source, run_id=mv.run_id)  # no persistlib tags
    with pytest.warns(pl.errors.RegistryWarning, match="no persistlib.version tag"):
        assert registry.versions() == ["1.0.0"]


def test_an_alias_moved_in_mlflow_blocks_a_rollback_and_a_damaged_history_is_named(fresh, tree):
    registry = fresh()
    for _ in range(3):
        registry.save(tree)
    registry.promote("1.0.0")
    registry.promote("1.1.0")
    registry.client.set_registered_model_alias(registry.name, "production", registry._index()["1.2.0"].version)
    with pytest.raises(pl.RollbackError, match="moved outside persistlib"):
        registry.rollback()
    assert registry.aliases() == {"production": "1.2.0"}
    registry.client.set_registered_model_tag(registry.name, "persistlib.history.9", "not a move")
    with pytest.raises(errors.RegistryFileError, match=r"history tag 'persistlib\.history\.9' is not an alias move"):
        registry.history()


# --------------------------------------------------------------------------- the tracking server


def test_the_tracking_server_listens_on_loopback_only(tmp_path):
    with pytest.raises(errors.InvalidArgumentError, match="loopback"):
        pl.start_tracking_server(tmp_path, host="0.0.0.0")
    with pytest.raises(errors.InvalidArgumentError, match="port must be"):
        pl.start_tracking_server(tmp_path, port=70000)


def test_without_the_full_mlflow_package_the_server_names_its_install(tmp_path, monkeypatch):
    monkeypatch.setattr(tracking_server, "server_installed", lambda: False)
    with pytest.raises(errors.BackendUnavailableError, match=r"pip install mlflow==3\.17\.2"):
        pl.start_tracking_server(tmp_path)


def test_a_server_that_exits_at_once_is_one_error_quoting_its_log(tmp_path, monkeypatch):
    fake = tmp_path / "fake" / "mlflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "__main__.py").write_text("print('no database here'); raise SystemExit(3)\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "fake"))
    monkeypatch.setattr(tracking_server, "server_installed", lambda: True)
    with pytest.raises(errors.TrackingServerError, match=r"exited with code 3.*no database here"):
        pl.start_tracking_server(tmp_path / "server", timeout=60)
