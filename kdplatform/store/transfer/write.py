"""What a transfer writes into the destination, in one transaction: ids kept where free, every
reference rewritten, owned rows copied where the two sides' counts differ."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from sqlalchemy import Connection, Table

from kdplatform.store import materialized
from kdplatform.store.ingest import bulk_insert, quote_ident
from kdplatform.store.schema import RUN_OWNED_TABLES
from kdplatform.store.transfer.rows import (
    SEQ_TABLES,
    Ids,
    TransferConflict,
    TransferError,
    arrow_schema,
    in_ids,
    literal,
    read,
    reflect,
    remap,
    rows_of,
)
from kdplatform.store.transfer.source import Source

log = logging.getLogger(__name__)

DATASET_OWNED = ("examples", "canaries")
"""Tables whose rows belong to a dataset (dataset_id): copied with a dataset that is new or differs."""
CORE = set(SEQ_TABLES) | set(DATASET_OWNED) | {"alembic_version"}
UNDECLARED_OWNERS = ("scan_run_id", "run_id", "job_id")
"""The owner of a table the schema does not declare (an analysis table of another version): the first of
these columns it has (job_id: the job owns it)."""
SAME_RUN = ("kind", "config_hash", "status", "finished_at")


def owner_column(table: Table) -> str | None:
    """The column naming the run (or job) that owns `table`'s rows: schema.RUN_OWNED_TABLES, else the
    first of UNDECLARED_OWNERS that the table has."""
    return RUN_OWNED_TABLES.get(table.name) or next((c for c in UNDECLARED_OWNERS if c in table.c), None)


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


def _insert(d: Connection, table: Table, rows: list[dict[str, Any]] | pa.Table, counts: dict) -> None:
    if isinstance(rows, list):
        rows = pa.Table.from_pylist(rows, schema=arrow_schema(table)) if rows else None
    if rows is None or rows.num_rows == 0:
        return
    bulk_insert(d, table.name, rows)
    counts[table.name] = counts.get(table.name, 0) + rows.num_rows


def write(s: Connection, d: Connection, src: Source, replace: bool) -> TransferResult:
    """Write `src` (read from `s`) into the destination connection `d`, inside d's transaction."""
    t_dst = reflect(d)
    t_src = src.tables
    counts: dict[str, int] = {}
    ids = Ids(d)
    maps: dict[str, dict[int, int]] = {k: {} for k in SEQ_TABLES}
    job_name = src.job["name"]

    # The job and what the destination already has of it.
    dst_jobs = rows_of(d, t_dst["jobs"], f"name = {literal(job_name)}")
    dst_job = dst_jobs[0] if dst_jobs else None
    dst_runs = (
        {r["stage_key"]: r for r in rows_of(d, t_dst["runs"], f"job_id = {dst_job['id']}")} if dst_job else {}
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
        found = rows_of(d, t_dst["datasets"], f"digest = {literal(ds['digest'])}")
        if found:
            maps["datasets"][ds["id"]] = found[0]["id"]
        else:
            maps["datasets"].update(ids.allocate("datasets", [ds["id"]]))
            row = dict(ds, id=maps["datasets"][ds["id"]])
            if row["parent_dataset_id"]:
                row["parent_dataset_id"] = maps["datasets"][row["parent_dataset_id"]]
            _insert(d, t_dst["datasets"], [row], counts)
    for table in DATASET_OWNED:
        if table in t_src and table in t_dst:  # canaries: from migration 0008
            _copy_owned(s, d, t_src[table], t_dst[table], "dataset_id", maps["datasets"], maps, counts)

    # The job row.
    if dst_job is None:
        maps["jobs"] = ids.allocate("jobs", [src.job["id"]])
        _insert(d, t_dst["jobs"], [dict(src.job, id=maps["jobs"][src.job["id"]])], counts)
    else:
        maps["jobs"] = {src.job["id"]: dst_job["id"]}
        if replace and differ:
            cols = (
                "spec",
                "spec_hash",
                "workdir",
                "mlflow_run_id",
                "mlflow_tracking_uri",
                "mlflow_experiment_id",
            )
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
            rows_of(d, t_dst["models"], " OR ".join(f"name = {literal(n)}" for n in names)) if names else []
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
            arrow = pa.Table.from_pylist(rows, arrow_schema(t_src[table]))
            _insert(d, t_dst[table], remap(arrow, t_src[table], maps), counts)

    # Per-example and analysis tables, by owner.
    for table in sorted(set(t_src) & set(t_dst) - CORE):
        if materialized.is_derived(table):  # derived: _transfer refreshes the job's copies
            continue
        owner = owner_column(t_src[table])
        if owner is None:
            log.warning("transfer: table %s has no owner column (%s); not copied", table, UNDECLARED_OWNERS)
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


def _external_ids(src: Source) -> set[int]:
    return {r["id"] for r in src.external_runs}


def _map_external_runs(d: Connection, t_dst: dict[str, Table], src: Source, maps: dict) -> None:
    for r in src.external_runs:
        jobs = rows_of(d, t_dst["jobs"], f"name = {literal(r['_job_name'])}")
        found = (
            rows_of(d, t_dst["runs"], f"job_id = {jobs[0]['id']} AND stage_key = {literal(r['stage_key'])}")
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
        theirs = rows_of(d, t_dst["checkpoints"], f"run_id = {maps['runs'][run_id]}")
        theirs.sort(key=lambda c: (c["epoch"], c["step"], c["id"]))
        cks.sort(key=lambda c: (c["epoch"], c["step"], c["id"]))
        for mine, other in zip(cks, theirs, strict=False):
            maps["checkpoints"][mine["id"]] = other["id"]


def _counts(conn: Connection, table: Table, owner: str, ids: Iterable[int]) -> dict[int, int]:
    sql = (
        f"SELECT {quote_ident(owner)}, COUNT(*) FROM {quote_ident(table.name)} WHERE {in_ids(owner, ids)} "
        f"GROUP BY {quote_ident(owner)}"
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
        d.exec_driver_sql(f"DELETE FROM {quote_ident(t_dst.name)} WHERE {in_ids(owner, gone)}")
    rows = read(s, t_src, in_ids(owner, stale))
    common = [c for c in rows.column_names if c in t_dst.c]
    _insert(d, t_dst, remap(rows.select(common), t_src, maps), counts)


def _delete_job_rows(d: Connection, t: dict[str, Table], job_id: int, runs: list[dict]) -> None:
    """Remove a job's runs and all they own from the destination (for replace=True)."""
    run_ids = [r["id"] for r in runs]
    for name in sorted(set(t) - CORE):
        if materialized.is_derived(name):
            continue
        owner = owner_column(t[name])
        if owner == "job_id":
            d.exec_driver_sql(f"DELETE FROM {quote_ident(name)} WHERE job_id = {int(job_id)}")
        elif owner:
            d.exec_driver_sql(f"DELETE FROM {quote_ident(name)} WHERE {in_ids(owner, run_ids)}")
    d.exec_driver_sql(f"DELETE FROM run_inputs WHERE {in_ids('run_id', run_ids)}")
    d.exec_driver_sql(f"DELETE FROM checkpoints WHERE {in_ids('run_id', run_ids)}")
    model_ids = [r["model_id"] for r in runs if r["model_id"]]
    d.exec_driver_sql(f"DELETE FROM runs WHERE {in_ids('id', run_ids)}")
    if model_ids:
        d.exec_driver_sql(
            f"DELETE FROM models WHERE {in_ids('id', model_ids)} AND id NOT IN "
            "(SELECT model_id FROM runs WHERE model_id IS NOT NULL)"
        )
