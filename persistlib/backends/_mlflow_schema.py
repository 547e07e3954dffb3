"""A new SQLite store, set up in milliseconds instead of seconds.

MLflow sets up a new database by running its Alembic migrations one by one, dozens of them, each a
Python file to import: about 3 s of CPU, paid by every student who opens notebook 13 and by every test
that starts a store. The result is always the same tables. This module ships that result for the
pinned MLflow as SQL text, ``mlflow_sqlite_<version>.sql``: a dump of a store MLflow itself set up,
with nothing in it but its tables, its Alembic revision and its default workspace. Before MLflow opens a
SQLite file that does not exist yet, :func:`prepare_sqlite_store` writes the dump into it. MLflow then
finds every table at its current revision and only checks them; it adds its default experiment itself,
as on any new store.

For any other MLflow version there is no dump, nothing is written, and MLflow sets the store up the
slow way, as usual. Nothing here can break a store: any failure leaves the file to MLflow.

``tests/test_backends_mlflow.py`` sets a store up with the installed MLflow and fails if the dump
differs. After upgrading MLflow, write the new dump with::

    python -m persistlib.backends._mlflow_schema
"""

from __future__ import annotations

import os
import sqlite3
from importlib import resources
from pathlib import Path

from .._files import temp_path


def dump_name(mlflow_version: str) -> str:
    """The file name of the dump for one MLflow version (package data of ``persistlib.backends``)."""
    return f"mlflow_sqlite_{mlflow_version}.sql"


def shipped_dump(mlflow_version: str) -> str | None:
    """The SQL that sets up a store for ``mlflow_version``, or ``None`` if none is shipped for it."""
    dump = resources.files(__package__) / dump_name(mlflow_version)
    return dump.read_text(encoding="utf-8") if dump.is_file() else None


def prepare_sqlite_store(tracking_uri: str, mlflow_version: str) -> bool:
    """Write MLflow's tables into a SQLite store that does not exist yet; ``True`` if it did.

    The tables are written into a hidden file beside the store, which is then linked into place
    only if no store appeared meanwhile (another process opening the same store first wins).
    """
    if not tracking_uri.startswith("sqlite:///"):
        return False
    db = Path(tracking_uri[len("sqlite:///") :])
    sql = shipped_dump(mlflow_version)
    if sql is None or db.exists() or not db.parent.is_dir():
        return False
    tmp = temp_path(db)
    try:
        connection = sqlite3.connect(tmp)
        try:
            connection.executescript(sql)
        finally:
            connection.close()
        os.link(tmp, db)  # never replaces a store: FileExistsError if one appeared
        return True
    except (OSError, sqlite3.Error):
        return False  # MLflow sets the store up itself, the slow way
    finally:
        tmp.unlink(missing_ok=True)


def dump_new_store(db: Path) -> str:
    """Let the installed MLflow set up a new store in ``db`` (its migrations only) and dump it as SQL."""
    import sqlalchemy
    from mlflow.store.db.utils import _initialize_tables

    engine = sqlalchemy.create_engine(f"sqlite:///{db}")
    try:
        _initialize_tables(engine)
    finally:
        engine.dispose()
    connection = sqlite3.connect(db)
    try:
        return "\n".join(connection.iterdump()) + "\n"
    finally:
        connection.close()


if __name__ == "__main__":  # python -m persistlib.backends._mlflow_schema: write the dump for this MLflow
    import tempfile

    import mlflow

    with tempfile.TemporaryDirectory() as folder:
        sql = dump_new_store(Path(folder) / "mlflow.db")
    target = Path(__file__).with_name(dump_name(mlflow.__version__))
    target.write_text(sql, encoding="utf-8")
    print(f"wrote {target} ({len(sql):,} characters)")
