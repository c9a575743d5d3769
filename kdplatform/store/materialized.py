"""Per-job copies of the views that group every scan row by example, read only while they are fresh.

A view such as example_features groups the job's ten million scan rows by example at every read (seconds
at the paper's scale); the dashboard needs it in a fraction of that. Each view named in MATERIALIZED has a
table `mat_<view>` with its columns, filled per job by `refresh` (`INSERT ... SELECT * FROM <view> WHERE
job_id = :j`: the view stays the one definition of what a row means) at the end of `kdplatform run`,
`prune` and an import, and by every migration that makes the views again. `materialized_views` records,
per (view, job), the job's `state` when its copy was written: a digest of the view's SQL and of every
runs row of the job (id, status, hash, start and finish times). Every write of per-example rows happens in
a stage whose runs row it starts and finishes, and staling or pruning a run changes or removes its row, so
a copy whose recorded state differs from the job's state now is out of date: `source` then answers the
view itself (exact, slower) until the next refresh. A copy is never read stale.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, Integer, String, func, inspect, text
from sqlalchemy.orm import Mapped, mapped_column

from kdplatform.store import views
from kdplatform.store.base import Base

MATERIALIZED: tuple[str, ...] = (
    "memorization_rates",
    "scanned_runs",
    "run_overlap",
    "inheritance",
    "seed_consistency",
    "easy_examples",
    "example_features",
    "example_memorization",
    "mechanism_examples",
)
"""Views with a job_id column whose per-job copy the analysis reads (see `source`)."""

STATE_TABLE = "materialized_views"
PREFIX = "mat_"


class MaterializedView(Base):
    """The job's state when its copy of a view was written (no foreign key: derived data, and a copy
    whose job is gone is never read)."""

    __tablename__ = STATE_TABLE
    view_name: Mapped[str] = mapped_column(String, primary_key=True)
    job_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str]
    refreshed_at: Mapped[datetime] = mapped_column(server_default=func.current_timestamp())


def copy_name(view: str) -> str:
    return PREFIX + view


def is_copy(table: str) -> bool:
    """A copy of a view (made from the view's columns, so not in the ORM's metadata)."""
    return table.startswith(PREFIX) and table[len(PREFIX) :] in MATERIALIZED


def is_derived(table: str) -> bool:
    """A table of this module (a copy or the state table): never exported; an import refreshes the
    destination's copies instead."""
    return table == STATE_TABLE or is_copy(table)


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's include_name hook: autogenerate and compare_metadata leave the copies out."""
    return not (type_ == "table" and name is not None and is_copy(name))


_RUNS = (
    "SELECT id, kind, role, seed, temperature, objective, status, config_hash, dataset_id, model_id, "
    "started_at, finished_at FROM runs WHERE job_id = :j ORDER BY id"
)


def _runs_of(conn: Connection, job_id: int) -> bytes:
    """The job's runs rows as the states digest them."""
    return repr([tuple(r) for r in conn.execute(text(_RUNS), {"j": int(job_id)}).all()]).encode()


def _state(view: str, runs: bytes) -> str:
    return hashlib.sha256(views.get(view).body.encode() + runs).hexdigest()


def job_state(conn: Connection, job_id: int, view: str) -> str:
    """A digest of what `view`'s rows for the job depend on: its SQL and the job's runs rows."""
    return _state(view, _runs_of(conn, job_id))


def source(conn: Connection, view: str, job_id: int) -> str:
    """The relation to read `view`'s rows of job `job_id` from: its copy while fresh, else the view."""
    if view not in MATERIALIZED:
        return view
    recorded = conn.execute(
        text(f"SELECT state FROM {STATE_TABLE} WHERE view_name = :v AND job_id = :j"),
        {"v": view, "j": int(job_id)},
    ).scalar()
    return copy_name(view) if recorded is not None and recorded == job_state(conn, job_id, view) else view


def refresh(
    conn: Connection, job_id: int, names: Iterable[str] = MATERIALIZED, *, force: bool = False
) -> list[str]:
    """Write the job's rows of each view whose copy is not fresh (each named one with `force`) into its
    copy and record the job's state, in the caller's transaction (a reader sees the old copy or the new
    one, each with its own state). Returns the views written."""
    if not _present(conn):
        return []
    j = {"j": int(job_id)}
    runs = _runs_of(conn, job_id)  # the runs rows are read once: this transaction writes none
    recorded = dict(
        conn.execute(text(f"SELECT view_name, state FROM {STATE_TABLE} WHERE job_id = :j"), j).all()
    )
    states = {view: _state(view, runs) for view in names}
    written = [view for view, state in states.items() if force or recorded.get(view) != state]
    for view in written:
        table = copy_name(view)
        conn.execute(text(f"DELETE FROM {table} WHERE job_id = :j"), j)
        conn.execute(text(f"INSERT INTO {table} SELECT * FROM {view} WHERE job_id = :j"), j)
        conn.execute(text(f"DELETE FROM {STATE_TABLE} WHERE view_name = :v AND job_id = :j"), j | {"v": view})
        conn.execute(
            text(f"INSERT INTO {STATE_TABLE} (view_name, job_id, state) VALUES (:v, :j, :s)"),
            j | {"v": view, "s": states[view]},
        )
    return written


def rebuild(conn: Connection) -> None:
    """Make every copy again with its view's current columns and refresh it for every job (a migration's
    step after `views.recreate`; nothing where the state table does not exist yet)."""
    if not _present(conn):
        return
    drop_copies(conn)
    conn.execute(text(f"DELETE FROM {STATE_TABLE}"))
    existing = set(inspect(conn).get_view_names())
    for view in MATERIALIZED:
        if view in existing:
            conn.execute(text(f"CREATE TABLE {copy_name(view)} AS SELECT * FROM {view} WHERE 1 = 0"))
            if conn.dialect.name == "postgresql":
                conn.execute(text(f"CREATE INDEX ix_{copy_name(view)}_job_id ON {copy_name(view)} (job_id)"))
    built = [v for v in MATERIALIZED if v in existing]
    for (job_id,) in conn.execute(text("SELECT id FROM jobs ORDER BY id")).all():
        refresh(conn, job_id, built, force=True)


def drop_copies(conn: Connection) -> None:
    for view in MATERIALIZED:
        conn.execute(text(f"DROP TABLE IF EXISTS {copy_name(view)}"))


def _present(conn: Connection) -> bool:
    return inspect(conn).has_table(STATE_TABLE)
