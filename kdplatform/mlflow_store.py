"""A local MLflow SQLite store that a kill cannot break.

MLflow migrates a new SQLite store in place, through dozens of non-transactional schema steps: a process
killed in the middle left a half-migrated file under the final name, and every later run failed in
MLflow's migrations ("duplicate column name: creator"). Here a missing store is built under a temporary
name and linked into place only once MLflow's migrations are done, and a store an older version left
half-migrated is rebuilt while it holds no runs (one that holds runs is left to MLflow, which names the fix).
Other URIs (a tracking server, a file store) are left to MLflow.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from pathlib import Path

from kdplatform.store.job_locks import pid_alive

log = logging.getLogger(__name__)

SIDECARS = ("-journal", "-wal", "-shm")
"""SQLite's files beside a database: a hot journal left beside a new file would be "rolled back" into it."""


def sqlite_path(uri: str) -> Path | None:
    """The file of a `sqlite:///PATH` URI; None for any other URI or an in-memory database."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri.removeprefix("sqlite:///").split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def ensure_store(uri: str) -> None:
    """Make the local store at `uri` complete before MLflow opens it: build a missing one under a temporary
    name and link it into place; rebuild one left incomplete that holds no runs."""
    path = sqlite_path(uri)
    if path is None:
        return
    if path.exists():
        if not incomplete(path) or holds_runs(path):
            return
        log.warning("MLflow store %s was left half-created by a killed process; building it again", path)
        _remove(path)
    _remove_sidecars(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    _remove(tmp)
    try:
        _migrate(tmp)
        with contextlib.suppress(FileExistsError):  # never replace a store another process finished
            os.link(tmp, path)
    finally:
        _remove(tmp)
    _sweep(path)


def incomplete(path: Path) -> bool:
    """The store at `path` lacks some of MLflow's tables or is not at MLflow's latest schema revision."""
    from mlflow.store.db.utils import _all_tables_exist, _get_latest_schema_revision, _get_schema_version

    engine = _engine(path)
    try:
        return not _all_tables_exist(engine) or _get_schema_version(engine) != _get_latest_schema_revision()
    finally:
        engine.dispose()


def holds_runs(path: Path) -> bool:
    """Any run is recorded in the store (an incomplete store without one has nothing to lose)."""
    with sqlite3.connect(path) as con:
        try:
            return con.execute("select count(*) from runs").fetchone()[0] > 0
        except sqlite3.DatabaseError:  # no runs table yet
            return False


def _migrate(path: Path) -> None:
    """MLflow's own creation of a new store (its initial tables, then every migration) at `path`."""
    from mlflow.store.db.utils import _initialize_tables

    engine = _engine(path)
    try:
        _initialize_tables(engine)
    finally:
        engine.dispose()


def _engine(path: Path):
    from kdplatform.store.db import make_engine

    return make_engine(f"sqlite:///{path}")


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    _remove_sidecars(path)


def _remove_sidecars(path: Path) -> None:
    for suffix in SIDECARS:
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def _sweep(path: Path) -> None:
    """Remove the temporary stores of processes that died while building one."""
    for tmp in path.parent.glob(f"{path.name}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdecimal() and not pid_alive(int(pid)):
            _remove(tmp)
