"""Move one job's rows between databases (a DuckDB file and PostgreSQL, either way), lineage intact.

    export_job("duckdb:///runs/study/kdp.duckdb", "postgresql://lab-db/kdp", "study")   # promote
    import_job("postgresql://lab-db/kdp", "duckdb:///local.duckdb", "study")            # take a copy

What moves: the job row; its runs, their checkpoints and run_inputs; the models and datasets they name
(with parent datasets) and those datasets' examples; every per-example or analysis table that has an
owner column (`scan_run_id`, else `run_id`, else `job_id`) — scan_results, example_kld,
greedy_continuations and whatever analysis tables both databases have.

Identity. Rows are matched by natural keys: a job by name, a run by (job, stage_key), a dataset by
digest, a model by (name, revision, config); a checkpoint or lineage edge by the run it belongs to.
Each id is kept when the destination does not use it for another row, and otherwise replaced by a fresh
id from the destination's sequence; every reference is rewritten through the same map, so lineage is
preserved either way.
Example ids never change. MLflow run ids are copied as they are (they point into the source's MLflow).

Idempotent: a run already in the destination with the same kind, config hash, status and finish time is
left alone; owned rows are copied for an owner only when the two sides' row counts differ (so results
added to a finished run later, e.g. an analysis, do follow). A run that differs raises TransferConflict
unless `replace=True`, which replaces the destination's copy of the job. All destination writes are one
transaction; on PostgreSQL, transfers queue on an advisory lock and never take ids a running job could
be handed by a sequence.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import Connection, Engine, MetaData, Table
from sqlalchemy import types as satypes

from kdplatform.store import db
from kdplatform.store.postgres import advisory_xact_lock, arrow_type

log = logging.getLogger(__name__)

SEQ_TABLES = ("jobs", "datasets", "models", "runs", "checkpoints", "run_inputs")
CORE = set(SEQ_TABLES) | {"examples", "alembic_version"}
OWNER_COLUMNS = ("scan_run_id", "run_id", "job_id")
SAME_RUN = ("kind", "config_hash", "status", "finished_at")


class TransferError(Exception):
    """A transfer that cannot be done; the message says why and what to do."""


class TransferConflict(TransferError):
    """The destination holds a different version of the job's runs."""


@dataclass
class TransferResult:
    job: str
    source_job_id: int
    job_id: int
    inserted: dict[str, int] = field(default_factory=dict)
    """Rows written per table (0 everywhere on a repeated transfer)."""
    unchanged_runs: int = 0
    ids: dict[str, dict[int, int]] = field(default_factory=dict)
    """Source id -> destination id per table with sequence ids."""

    @property
    def changed(self) -> bool:
        return any(self.inserted.values())

    def summary(self) -> str:
        moved = ", ".join(f"{t} {n}" for t, n in self.inserted.items() if n) or "nothing (already there)"
        kept = sum(1 for m in self.ids.values() for s, d in m.items() if s == d)
        total = sum(len(m) for m in self.ids.values())
        return (
            f"job {self.job!r}: source id {self.source_job_id} -> destination id {self.job_id}; "
            f"rows written: {moved}; {self.unchanged_runs} runs already present; "
            f"{kept}/{total} ids kept as in the source"
        )


# --------------------------------------------------------------------------------------------- reading
def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _in(column: str, ids: Iterable[int]) -> str:
    ids = sorted({int(i) for i in ids})
    return f"{_quote(column)} IN ({', '.join(map(str, ids))})" if ids else "FALSE"


def _schema(table: Table) -> pa.Schema:
    return pa.schema([(c.name, arrow_type(c.type)) for c in table.columns])


def _read(conn: Connection, table: Table, where: str) -> pa.Table:
    """Rows of `table` matching the SQL condition `where` (built here from ints and quoted literals)."""
    cols = ", ".join(_quote(c.name) for c in table.columns)
    sql = f"SELECT {cols} FROM {_quote(table.name)} WHERE {where}"
    schema = _schema(table)
    if db.is_duckdb(conn):
        cur = conn.connection.driver_connection.execute(sql)
        out = cur.to_arrow_table() if hasattr(cur, "to_arrow_table") else cur.fetch_arrow_table()
        return out.cast(schema)
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        from kdplatform.store.postgres import copy_query_to_arrow

        return copy_query_to_arrow(conn, sql, schema)
    rows = [dict(r) for r in conn.exec_driver_sql(sql).mappings()]
    return pa.Table.from_pylist(rows, schema=schema)


def _rows(conn: Connection, table: Table, where: str) -> list[dict[str, Any]]:
    return _read(conn, table, where).to_pylist()


def _reflect(conn: Connection) -> dict[str, Table]:
    md = MetaData()
    md.reflect(conn)
    return dict(md.tables)


def _literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


# ---------------------------------------------------------------------------------------- remapping
def _ref_kind(column: str, sa_type) -> str | None:
    """Which id map rewrites this column (None: copied as is)."""
    if not isinstance(sa_type, satypes.Integer) or column == "id" or column.startswith("mlflow"):
        return None
    if column == "job_id":
        return "jobs"
    for suffix, kind in (
        ("run_id", "runs"),
        ("dataset_id", "datasets"),
        ("model_id", "models"),
        ("checkpoint_id", "checkpoints"),
    ):
        if column.endswith(suffix):
            return kind
    return None


def _remap_column(arr: pa.ChunkedArray, mapping: dict[int, int], table: str, column: str) -> pa.Array:
    values = arr.to_numpy(zero_copy_only=False)
    valid = ~np.asarray(arr.is_null().to_numpy(zero_copy_only=False))
    if not valid.any():
        return arr
    keys = np.array(sorted(mapping), dtype=np.int64)
    vals = np.array([mapping[k] for k in keys], dtype=np.int64)
    v = values[valid].astype(np.int64)
    if len(keys):
        pos = np.clip(np.searchsorted(keys, v), 0, len(keys) - 1)
        found = keys[pos] == v
    else:
        pos, found = np.zeros(len(v), dtype=np.int64), np.zeros(len(v), dtype=bool)
    if not found.all():
        missing = sorted(set(v[~found].tolist()))[:5]
        raise TransferError(
            f"{table}.{column} refers to ids {missing} that are not part of this transfer (rows of another "
            "job?); transfer that job first"
        )
    out = np.zeros(len(values), dtype=np.int64)
    out[valid] = vals[pos]
    return pa.array(out, type=arr.type, mask=~valid)


def _remap(rows: pa.Table, table: Table, maps: dict[str, dict[int, int]]) -> pa.Table:
    for c in table.columns:
        kind = _ref_kind(c.name, c.type)
        if kind is None or c.name not in rows.column_names:
            continue
        i = rows.column_names.index(c.name)
        rows = rows.set_column(i, c.name, _remap_column(rows[c.name], maps[kind], table.name, c.name))
    return rows


# ---------------------------------------------------------------------------------------- id allocation
class _Ids:
    """Destination ids: the source's when free there, else the sequence's next."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.pg = conn.dialect.name == "postgresql"

    def reserve(self, table: str, max_src_id: int) -> None:
        """PostgreSQL: move the sequence past the source's ids first (setval is not transactional), so a
        job running meanwhile is never handed an id this transfer keeps."""
        if self.pg and max_src_id:
            seq = f"{table}_id_seq"
            self.conn.exec_driver_sql(
                f"SELECT setval('{seq}', GREATEST((SELECT last_value FROM {seq}), {int(max_src_id)}))"
            )

    def allocate(self, table: str, src_ids: list[int]) -> dict[int, int]:
        if not src_ids:
            return {}
        taken = {
            r[0]
            for r in self.conn.exec_driver_sql(f"SELECT id FROM {_quote(table)} WHERE {_in('id', src_ids)}")
        }
        out = {}
        for sid in src_ids:
            if sid in taken:
                out[sid] = self.conn.exec_driver_sql(f"SELECT nextval('{table}_id_seq')").scalar_one()
            else:
                out[sid] = sid
        return out

    def settle(self, table: str) -> None:
        """DuckDB: advance the sequence past the largest id now in the table (no setval there)."""
        if self.pg:
            return
        top = self.conn.exec_driver_sql(f"SELECT MAX(id) FROM {_quote(table)}").scalar()
        if top is None:
            return
        seq = f"{table}_id_seq"
        nxt = self.conn.exec_driver_sql(f"SELECT nextval('{seq}')").scalar_one()
        if nxt < top:
            self.conn.exec_driver_sql(f"SELECT MAX(nextval('{seq}')) FROM range({int(top - nxt)})")


# ------------------------------------------------------------------------------------------- transfer
def export_job(src_url: str, dst_url: str, job_name: str, *, replace: bool = False) -> TransferResult:
    """Copy job `job_name` and everything it produced from `src_url` into `dst_url` (see module doc)."""
    if _same_database(src_url, dst_url):
        raise TransferError("source and destination are the same database")
    src = db.make_engine(src_url, read_only=True)
    dst = db.make_engine(dst_url)
    try:
        return _transfer(src, dst, job_name, replace)
    finally:
        src.dispose()
        dst.dispose()


def import_job(src_url: str, dst_url: str, job_name: str, *, replace: bool = False) -> TransferResult:
    """The same move seen from the receiving side: bring `job_name` from `src_url` into `dst_url`."""
    return export_job(src_url, dst_url, job_name, replace=replace)


def _same_database(a: str, b: str) -> bool:
    from sqlalchemy.engine import make_url

    ua, ub = make_url(a), make_url(b)
    if ua.get_backend_name() == ub.get_backend_name() == "duckdb":
        from pathlib import Path

        return (
            bool(ua.database and ub.database) and Path(ua.database).resolve() == Path(ub.database).resolve()
        )
    return ua.get_backend_name() == ub.get_backend_name() and (ua.host, ua.port, ua.database) == (
        ub.host,
        ub.port,
        ub.database,
    )


def _transfer(src: Engine, dst: Engine, name: str, replace: bool) -> TransferResult:
    head = db.head_revision()
    rev = db.current_revision(src)
    if rev != head:
        raise TransferError(
            f"source database {src.url} is at schema revision {rev}, not {head}: upgrade it first "
            f"(kdplatform db upgrade --db URL)"
        )
    db.upgrade(dst)
    with src.connect() as s:
        if s.dialect.name == "postgresql":
            s = s.execution_options(isolation_level="REPEATABLE READ")  # one snapshot of the source
        source = _Source.read(s, name)
        with dst.begin() as d:
            advisory_xact_lock(d, "transfer")
            return _write(s, d, source, replace)


@dataclass
class _Source:
    tables: dict[str, Table]
    job: dict[str, Any]
    runs: list[dict[str, Any]]
    models: list[dict[str, Any]]
    checkpoints: list[dict[str, Any]]
    run_inputs: list[dict[str, Any]]
    datasets: list[dict[str, Any]]
    """Parents before children."""
    external_runs: list[dict[str, Any]]
    """Runs of other jobs that this job's lineage edges point at (matched by job name + stage key)."""
    external_checkpoints: list[dict[str, Any]]

    @classmethod
    def read(cls, s: Connection, name: str) -> _Source:
        t = _reflect(s)
        jobs = _rows(s, t["jobs"], f"name = {_literal(name)}")
        if not jobs:
            raise TransferError(f"no job named {name!r} in the source database {s.engine.url}")
        job = jobs[0]
        runs = _rows(s, t["runs"], f"job_id = {int(job['id'])}")
        run_ids = [r["id"] for r in runs]
        checkpoints = _rows(s, t["checkpoints"], _in("run_id", run_ids))
        run_inputs = _rows(s, t["run_inputs"], _in("run_id", run_ids))
        models = _rows(s, t["models"], _in("id", [r["model_id"] for r in runs if r["model_id"]]))
        ext_ids = {i["input_run_id"] for i in run_inputs if i["input_run_id"]} - set(run_ids)
        external_runs = _rows(s, t["runs"], _in("id", ext_ids))
        if external_runs:
            names = {
                j["id"]: j["name"]
                for j in _rows(s, t["jobs"], _in("id", [r["job_id"] for r in external_runs]))
            }
            for r in external_runs:
                r["_job_name"] = names[r["job_id"]]
        ck_ids = {i["checkpoint_id"] for i in run_inputs if i["checkpoint_id"]}
        ext_ck = [c for c in _rows(s, t["checkpoints"], _in("run_id", ext_ids)) if c["id"] in ck_ids]
        ds_ids = {r["dataset_id"] for r in runs if r["dataset_id"]}
        ds_ids |= {i["dataset_id"] for i in run_inputs if i["dataset_id"]}
        datasets: dict[int, dict[str, Any]] = {}
        todo = set(ds_ids)
        while todo:
            found = _rows(s, t["datasets"], _in("id", todo))
            datasets.update({d["id"]: d for d in found})
            todo = {d["parent_dataset_id"] for d in found if d["parent_dataset_id"]} - set(datasets)
        ordered: list[dict[str, Any]] = []

        def visit(d: dict[str, Any]) -> None:
            if d in ordered:
                return
            if d["parent_dataset_id"]:
                visit(datasets[d["parent_dataset_id"]])
            ordered.append(d)

        for d in sorted(datasets.values(), key=lambda d: d["id"]):
            visit(d)
        return cls(t, job, runs, models, checkpoints, run_inputs, ordered, external_runs, ext_ck)


def _insert(d: Connection, table: Table, rows: list[dict[str, Any]] | pa.Table, counts: dict) -> None:
    if isinstance(rows, list):
        rows = pa.Table.from_pylist(rows, schema=_schema(table)) if rows else None
    if rows is None or rows.num_rows == 0:
        return
    db.bulk_insert(d, table.name, rows)
    counts[table.name] = counts.get(table.name, 0) + rows.num_rows


def _write(s: Connection, d: Connection, src: _Source, replace: bool) -> TransferResult:
    t_dst = _reflect(d)
    t_src = src.tables
    counts: dict[str, int] = {}
    ids = _Ids(d)
    maps: dict[str, dict[int, int]] = {k: {} for k in SEQ_TABLES}
    job_name = src.job["name"]

    # The job and what the destination already has of it.
    dst_jobs = _rows(d, t_dst["jobs"], f"name = {_literal(job_name)}")
    dst_job = dst_jobs[0] if dst_jobs else None
    dst_runs = (
        {r["stage_key"]: r for r in _rows(d, t_dst["runs"], f"job_id = {dst_job['id']}")} if dst_job else {}
    )
    differ = [
        r["stage_key"]
        for r in src.runs
        if r["stage_key"] in dst_runs and any(r[c] != dst_runs[r["stage_key"]][c] for c in SAME_RUN)
    ]
    if differ and not replace:
        raise TransferConflict(
            f"job {job_name!r} in the destination differs from the source in {len(differ)} run(s) "
            f"({', '.join(differ[:5])}{' ...' if len(differ) > 5 else ''}): pass replace=True "
            "(kdplatform export/import --replace) to replace the destination's copy of the job"
        )
    if dst_job and replace and differ:
        _delete_job_rows(d, t_dst, dst_job["id"], list(dst_runs.values()))
        dst_runs = {}

    for table in SEQ_TABLES:
        top = {
            "jobs": [src.job["id"]],
            "datasets": [x["id"] for x in src.datasets],
            "models": [x["id"] for x in src.models],
            "runs": [x["id"] for x in src.runs],
            "checkpoints": [x["id"] for x in src.checkpoints],
            "run_inputs": [x["id"] for x in src.run_inputs],
        }[table]
        ids.reserve(table, max(top, default=0))

    # Datasets by digest, parents first; examples follow a dataset whose example count differs.
    for ds in src.datasets:
        found = _rows(d, t_dst["datasets"], f"digest = {_literal(ds['digest'])}")
        if found:
            maps["datasets"][ds["id"]] = found[0]["id"]
        else:
            maps["datasets"].update(ids.allocate("datasets", [ds["id"]]))
            row = dict(ds, id=maps["datasets"][ds["id"]])
            if row["parent_dataset_id"]:
                row["parent_dataset_id"] = maps["datasets"][row["parent_dataset_id"]]
            _insert(d, t_dst["datasets"], [row], counts)
    _copy_owned(s, d, t_src["examples"], t_dst["examples"], "dataset_id", maps["datasets"], maps, counts)

    # The job row.
    if dst_job is None:
        maps["jobs"] = ids.allocate("jobs", [src.job["id"]])
        _insert(d, t_dst["jobs"], [dict(src.job, id=maps["jobs"][src.job["id"]])], counts)
    else:
        maps["jobs"] = {src.job["id"]: dst_job["id"]}
        if replace and differ:
            cols = ("spec", "spec_hash", "workdir", "mlflow_run_id")
            t = t_dst["jobs"]
            d.execute(t.update().where(t.c.id == dst_job["id"]).values({c: src.job[c] for c in cols}))

    # Runs: present ones map to the destination's, new ones get ids (their models too).
    new_runs = [r for r in src.runs if r["stage_key"] not in dst_runs]
    for r in src.runs:
        if r["stage_key"] in dst_runs:
            dr = dst_runs[r["stage_key"]]
            maps["runs"][r["id"]] = dr["id"]
            if r["model_id"] and dr["model_id"]:
                maps["models"][r["model_id"]] = dr["model_id"]
    wanted = sorted({r["model_id"] for r in new_runs if r["model_id"]} - set(maps["models"]))
    # The pipeline keeps one models row per (name, config): reuse the destination's when it has it.
    names = {m["name"] for m in src.models if m["id"] in wanted}
    theirs = {
        (m["name"], m["revision"], m["config"]): m["id"]
        for m in (
            _rows(d, t_dst["models"], " OR ".join(f"name = {_literal(n)}" for n in names)) if names else []
        )
    }
    for m in src.models:
        key = (m["name"], m["revision"], m["config"])
        if m["id"] in wanted and key in theirs:
            maps["models"][m["id"]] = theirs[key]
    new_models = [i for i in wanted if i not in maps["models"]]
    maps["models"].update(ids.allocate("models", new_models))
    _insert(
        d,
        t_dst["models"],
        [dict(m, id=maps["models"][m["id"]]) for m in src.models if m["id"] in new_models],
        counts,
    )
    maps["runs"].update(ids.allocate("runs", [r["id"] for r in new_runs]))
    _map_external_runs(d, t_dst, src, maps)

    # Checkpoints and lineage edges of new runs; checkpoints of present runs pair up in order.
    new_ids = {r["id"] for r in new_runs}
    _pair_checkpoints(d, t_dst, [c for c in src.checkpoints if c["run_id"] not in new_ids], maps)
    _pair_checkpoints(d, t_dst, src.external_checkpoints, maps)
    new_ck = [c for c in src.checkpoints if c["run_id"] in new_ids]
    maps["checkpoints"].update(ids.allocate("checkpoints", [c["id"] for c in new_ck]))
    new_in = [i for i in src.run_inputs if i["run_id"] in new_ids]
    maps["run_inputs"].update(ids.allocate("run_inputs", [i["id"] for i in new_in]))
    for table, rows in (("runs", new_runs), ("checkpoints", new_ck), ("run_inputs", new_in)):
        if rows:
            rows = [
                {k: v for k, v in r.items() if not k.startswith("_")} | {"id": maps[table][r["id"]]}
                for r in rows
            ]
            arrow = pa.Table.from_pylist(rows, _schema(t_src[table]))
            _insert(d, t_dst[table], _remap(arrow, t_src[table], maps), counts)

    # Per-example and analysis tables, by owner.
    for table in sorted(set(t_src) & set(t_dst) - CORE):
        owner = next((c for c in OWNER_COLUMNS if c in t_src[table].c), None)
        if owner is None:
            log.warning("transfer: table %s has no owner column (%s); not copied", table, OWNER_COLUMNS)
            continue
        owners = maps["jobs"] if owner == "job_id" else maps["runs"]
        own = {k: v for k, v in owners.items() if k not in _external_ids(src)}
        _copy_owned(s, d, t_src[table], t_dst[table], owner, own, maps, counts)

    for table in SEQ_TABLES:
        ids.settle(table)
    return TransferResult(
        job=job_name,
        source_job_id=src.job["id"],
        job_id=maps["jobs"][src.job["id"]],
        inserted={k: counts.get(k, 0) for k in sorted(set(counts) | set(SEQ_TABLES) | {"examples"})},
        unchanged_runs=len(src.runs) - len(new_runs),
        ids={k: dict(v) for k, v in maps.items()},
    )


def _external_ids(src: _Source) -> set[int]:
    return {r["id"] for r in src.external_runs}


def _map_external_runs(d: Connection, t_dst: dict[str, Table], src: _Source, maps: dict) -> None:
    for r in src.external_runs:
        jobs = _rows(d, t_dst["jobs"], f"name = {_literal(r['_job_name'])}")
        found = (
            _rows(d, t_dst["runs"], f"job_id = {jobs[0]['id']} AND stage_key = {_literal(r['stage_key'])}")
            if jobs
            else []
        )
        if not found:
            raise TransferError(
                f"job {src.job['name']!r} uses run {r['stage_key']!r} of job {r['_job_name']!r}, which the "
                f"destination lacks: transfer job {r['_job_name']!r} first"
            )
        maps["runs"][r["id"]] = found[0]["id"]


def _pair_checkpoints(d: Connection, t_dst: dict[str, Table], checkpoints: list[dict], maps: dict) -> None:
    """Checkpoints of runs the destination already has: the n-th of a run (by epoch, step) is the n-th."""
    by_run: dict[int, list[dict]] = {}
    for c in checkpoints:
        by_run.setdefault(c["run_id"], []).append(c)
    for run_id, cks in by_run.items():
        theirs = _rows(d, t_dst["checkpoints"], f"run_id = {maps['runs'][run_id]}")
        theirs.sort(key=lambda c: (c["epoch"], c["step"], c["id"]))
        cks.sort(key=lambda c: (c["epoch"], c["step"], c["id"]))
        for mine, other in zip(cks, theirs, strict=False):
            maps["checkpoints"][mine["id"]] = other["id"]


def _counts(conn: Connection, table: Table, owner: str, ids: Iterable[int]) -> dict[int, int]:
    sql = (
        f"SELECT {_quote(owner)}, COUNT(*) FROM {_quote(table.name)} WHERE {_in(owner, ids)} "
        f"GROUP BY {_quote(owner)}"
    )
    return {int(k): int(n) for k, n in conn.exec_driver_sql(sql).all()}


def _copy_owned(
    s: Connection,
    d: Connection,
    t_src: Table,
    t_dst: Table,
    owner: str,
    owners: dict[int, int],
    maps: dict,
    counts: dict,
) -> None:
    """Copy the rows of each owner whose row count differs between the two sides (replacing the
    destination's); owners already equal are left alone."""
    if not owners:
        return
    have = _counts(s, t_src, owner, owners)
    there = _counts(d, t_dst, owner, owners.values())
    stale = [k for k in owners if have.get(k, 0) != there.get(owners[k], 0)]
    if not stale:
        return
    gone = [owners[k] for k in stale if there.get(owners[k], 0)]
    if gone:
        d.exec_driver_sql(f"DELETE FROM {_quote(t_dst.name)} WHERE {_in(owner, gone)}")
    rows = _read(s, t_src, _in(owner, stale))
    common = [c for c in rows.column_names if c in t_dst.c]
    _insert(d, t_dst, _remap(rows.select(common), t_src, maps), counts)


def _delete_job_rows(d: Connection, t: dict[str, Table], job_id: int, runs: list[dict]) -> None:
    """Remove a job's runs and all they own from the destination (for replace=True)."""
    run_ids = [r["id"] for r in runs]
    for name in sorted(set(t) - CORE):
        owner = next((c for c in OWNER_COLUMNS if c in t[name].c), None)
        if owner == "job_id":
            d.exec_driver_sql(f"DELETE FROM {_quote(name)} WHERE job_id = {int(job_id)}")
        elif owner:
            d.exec_driver_sql(f"DELETE FROM {_quote(name)} WHERE {_in(owner, run_ids)}")
    d.exec_driver_sql(f"DELETE FROM run_inputs WHERE {_in('run_id', run_ids)}")
    d.exec_driver_sql(f"DELETE FROM checkpoints WHERE {_in('run_id', run_ids)}")
    model_ids = [r["model_id"] for r in runs if r["model_id"]]
    d.exec_driver_sql(f"DELETE FROM runs WHERE {_in('id', run_ids)}")
    if model_ids:
        d.exec_driver_sql(
            f"DELETE FROM models WHERE {_in('id', model_ids)} AND id NOT IN "
            "(SELECT model_id FROM runs WHERE model_id IS NOT NULL)"
        )
