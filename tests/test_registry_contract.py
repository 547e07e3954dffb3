"""One contract, three back ends: a folder (``Registry``), MLflow on SQLite, and a real MLflow tracking server.

Every test here runs against each back end, so ``ModelServer``, the alias
follower and ``RetrainLoop`` can rely on the same behaviour from all of them.
MLflow saves cost about a second each, so each back end gets one module-scoped
registry with four versions, and tests that move aliases use their own alias
name instead of a fresh registry. Tests that damage a store make their own
registered model (a fresh registry in the same store).
"""

from __future__ import annotations

import hashlib
import itertools
import pickle
from pathlib import Path

import httpx
import joblib
import pytest
from conftest import server_processes, versions_served
from sklearn.tree import DecisionTreeClassifier

import persistlib as pl
from persistlib import errors
from persistlib.backends.tracking_server import server_installed

BACKENDS = ["folder", "mlflow-sqlite", "mlflow-server"]
_names = (f"m{n}" for n in itertools.count())


@pytest.fixture(scope="module")
def data():
    return pl.make_churn(300, random_state=3)


@pytest.fixture(scope="module")
def trees(data):
    X, y = data
    return [DecisionTreeClassifier(max_depth=d, random_state=0).fit(X, y) for d in (2, 3, 4, 5)]


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory):
    """One real ``mlflow server`` on 127.0.0.1 for this module (started only if a test needs it).

    The course pins the client only (mlflow-skinny); the server comes with the full mlflow package.
    """
    if not server_installed():
        pytest.skip("the tracking server needs the full mlflow package: pip install mlflow==3.17.2")
    server = pl.start_tracking_server(tmp_path_factory.mktemp("tracking_server"))
    yield server
    assert server.stop() == 0, (server.folder / "server.log").read_text()[-2000:]


@pytest.fixture(scope="module", params=BACKENDS)
def new_registry(request, tmp_path_factory):
    """``new_registry(**kwargs)``: an empty registry of this back end (a folder, or a new model name in a store)."""
    kind = request.param
    if kind == "folder":
        root = tmp_path_factory.mktemp("folders")
        factory = lambda **kw: pl.Registry(root / next(_names), **kw)  # noqa: E731
    elif kind == "mlflow-sqlite":
        uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow_sqlite') / 'mlflow.db'}"
        factory = lambda **kw: pl.MlflowRegistry(uri, next(_names), **kw)  # noqa: E731
    else:
        url = request.getfixturevalue("tracking_server").url
        factory = lambda **kw: pl.MlflowRegistry(url, next(_names), **kw)  # noqa: E731
    factory.kind = kind
    return factory


@pytest.fixture(scope="module")
def reg(new_registry, trees, data):
    """A registry holding 1.0.0, 1.0.1, 2.0.0 and 2.1.0, with production -> 1.0.0 (tests must leave it there)."""
    registry = new_registry()
    X, _ = data
    for model, kwargs in zip(trees, ({}, {"bump": "patch"}, {"version": "2.0.0"}, {}), strict=True):
        registry.save(model, metrics={"accuracy": 0.8 + model.max_depth / 100}, dataset=X, **kwargs)
    registry.promote("1.0.0")
    return registry


@pytest.fixture()
def store_server(new_registry, request):
    """The tracking server behind this back end, or None."""
    return request.getfixturevalue("tracking_server") if new_registry.kind == "mlflow-server" else None


def artefact_path(registry, version: str, tracking_server=None) -> Path:
    """Where a version's model file lies on disk, in any back end (for the tests that tamper with it)."""
    card = registry.card(version)
    if isinstance(registry, pl.Registry):
        return registry.root / card.artifact
    source = registry._index()[version].source
    if source.startswith("mlflow-artifacts:/"):
        return tracking_server.folder / "artifacts" / source.removeprefix("mlflow-artifacts:/") / card.artifact
    return Path(source) / card.artifact


# --------------------------------------------------------------------------- versions


def test_versions_bump_from_the_highest_and_sort_semantically(reg):
    assert reg.versions() == ["1.0.0", "1.0.1", "2.0.0", "2.1.0"]
    assert reg.resolve("latest") == "2.1.0"


def test_an_existing_version_is_refused_and_nothing_is_written(reg, trees):
    with pytest.raises(errors.VersionExistsError, match="2.0.0 already exists"):
        reg.save(trees[0], version="2.0.0")
    with pytest.raises(pl.InvalidVersionError, match="MAJOR.MINOR.PATCH"):
        reg.save(trees[0], version="2.0")
    assert reg.versions() == ["1.0.0", "1.0.1", "2.0.0", "2.1.0"]


def test_a_failed_gate_writes_nothing(reg, trees):
    report = pl.Gate({"accuracy": 0.99}).check({"accuracy": 0.5})
    with pytest.raises(pl.GateRejected, match="accuracy 0.500 is below the threshold 0.990"):
        reg.save(trees[0], gate_report=report)
    assert reg.versions() == ["1.0.0", "1.0.1", "2.0.0", "2.1.0"]


def test_the_card_records_the_data_the_metrics_and_the_artefact(reg, data, store_server):
    server = store_server
    card = reg.card("2.0.0")
    assert card.version == "2.0.0" and card.algorithm == "DecisionTreeClassifier"
    assert card.metrics == {"accuracy": 0.8 + 4 / 100} and card.hyperparams["max_depth"] == 4
    assert card.dataset_sha256 == pl.fingerprint(data[0])["sha256"] and card.dataset_rows == 300
    on_disk = artefact_path(reg, "2.0.0", server).read_bytes()
    assert card.artifact_sha256 == hashlib.sha256(on_disk).hexdigest() and card.artifact_bytes == len(on_disk)
    assert [c.version for c in reg.cards()] == reg.versions()


# --------------------------------------------------------------------------- loading


def test_load_by_version_alias_and_latest(reg, trees, data):
    X, _ = data
    for ref, depth in (("1.0.1", 3), ("production", 2), ("latest", 5)):
        model, card = reg.load(ref)
        assert model.max_depth == depth and card.version == reg.resolve(ref)
        assert (model.predict(X) == trees[depth - 2].predict(X)).all()


def test_an_unknown_ref_lists_what_exists(reg):
    with pytest.raises(pl.VersionNotFoundError, match=r"'9.9.9'.*1\.0\.0.*production"):
        reg.load("9.9.9")
    with pytest.raises(pl.VersionNotFoundError, match="nightly"):
        reg.resolve("nightly")
    with pytest.raises(errors.ArgumentTypeError, match="ref must be"):
        reg.resolve(3)


def test_a_new_registry_object_sees_the_same_state(reg):
    again = type(reg)(reg.root) if isinstance(reg, pl.Registry) else type(reg)(reg.tracking_uri, reg.name)
    assert again.versions() == reg.versions()
    assert again.aliases()["production"] == "1.0.0"
    assert again.card("2.1.0") == reg.card("2.1.0")


# --------------------------------------------------------------------------- aliases


def test_promote_rollback_and_history(reg):
    alias = "canary"
    assert reg.promote("1.0.0", alias) == "1.0.0"
    assert reg.promote("2.0.0", alias) == "2.0.0"
    assert reg.promote("2.0.0", alias) == "2.0.0"  # no move, no history entry
    assert reg.aliases()[alias] == "2.0.0"
    assert reg.rollback(alias) == "1.0.0"
    assert reg.aliases()[alias] == "1.0.0" and reg.aliases()["production"] == "1.0.0"
    with pytest.raises(pl.RollbackError, match="no earlier version"):
        reg.rollback(alias)
    moves = [(h["action"], h["from"], h["to"]) for h in reg.history() if h["alias"] == alias]
    assert moves == [("promote", None, "1.0.0"), ("promote", "1.0.0", "2.0.0"), ("rollback", "2.0.0", "1.0.0")]
    assert all(h["at"].endswith("+00:00") for h in reg.history())


def test_bad_aliases_are_refused(reg):
    for bad in ["", "latest", "has space", "1.0.0", None]:
        with pytest.raises(errors.InvalidArgumentError, match="alias"):
            reg.promote("1.0.0", bad)
    with pytest.raises(pl.RollbackError, match="no earlier version"):
        reg.rollback("never-used")
    with pytest.raises(pl.VersionNotFoundError):
        reg.promote("7.0.0", "staging")
    assert "staging" not in reg.aliases()


# --------------------------------------------------------------------------- safety


def test_a_tampered_artefact_is_refused_before_unpickling(new_registry, trees, tmp_path, store_server):
    """The marker payload runs only if unpickled: the registry refuses it first, by size and by sha256."""
    server = store_server
    registry = new_registry(format="joblib") if new_registry.kind == "folder" else new_registry(allow_pickle=True)
    card = registry.save(trees[0], format="joblib")
    path = artefact_path(registry, card.version, server)
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    evil = pickle.dumps(Payload())
    assert len(evil) < card.artifact_bytes
    path.write_bytes(evil)  # a different size
    with pytest.raises(pl.IntegrityError, match="NOT unpickled"):
        registry.load(card.version)
    path.write_bytes(evil + b"\0" * (card.artifact_bytes - len(evil)))  # the same size: only the sha256 differs
    with pytest.raises(pl.IntegrityError, match="sha256"):
        registry.load(card.version)
    with pytest.raises(pl.IntegrityError):
        registry.promote(card.version)
    assert not marker.exists()
    joblib.load(path)  # the payload is live: loading it without the check runs it
    assert marker.exists()


# --------------------------------------------------------------------------- serving


def test_model_server_serves_and_hot_swaps_from_the_registry(reg, data):
    X, _ = data
    reg.promote("1.0.0", "serving")
    server = pl.ModelServer(reg, alias="serving")
    rows = X.head(3).to_dict("records")
    assert server.version == "1.0.0" and server.predict(rows).version == "1.0.0"
    reg.promote("2.1.0", "serving")
    assert server.swap() == "2.1.0"
    assert server.predict(rows).version == "2.1.0"
    assert server.rollback() == "1.0.0" and reg.rollback("serving") == "1.0.0"


_FOLLOWER = """
import sys
import persistlib as pl

registry = pl.MlflowRegistry(sys.argv[1], sys.argv[2])
server = pl.ModelServer(registry)
follower = pl.follow_alias(server, "production", every=0.2)
url = pl.start_http(server)
print(url, flush=True)
sys.stdin.read()  # serve until the test closes our stdin
follower.stop()
pl.stop_http(url)
"""


def test_two_server_processes_follow_production_in_mlflow(request, tmp_path, trees, data, wait_until):
    """Promote once in MLflow, and both running servers swap; roll back, and both swap back.

    Through the tracking server where the full mlflow package is installed, else through a shared SQLite store.
    """
    if server_installed():
        uri = request.getfixturevalue("tracking_server").url
    else:
        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    registry = pl.MlflowRegistry(uri, next(_names))
    for model in trees[:2]:
        registry.save(model)
    registry.promote("1.0.0")
    with server_processes(_FOLLOWER, registry.tracking_uri, registry.name, exit_timeout=60) as urls:

        def served() -> list[str]:
            return versions_served(urls)

        assert served() == ["1.0.0", "1.0.0"]
        registry.promote("1.1.0")
        wait_until(lambda: served() == ["1.1.0", "1.1.0"], "both servers followed the promotion to 1.1.0", 60)
        registry.rollback()
        wait_until(lambda: served() == ["1.0.0", "1.0.0"], "both servers followed the rollback to 1.0.0", 60)
        row = data[0].head(1).to_dict("records")
        assert [httpx.post(f"{u}/predict", json={"rows": row}).json()["version"] for u in urls] == ["1.0.0"] * 2
