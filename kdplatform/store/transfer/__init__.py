"""Move one job's rows between databases (a DuckDB file and PostgreSQL, either way), lineage intact.

    export_job("duckdb:///runs/study/kdp.duckdb", "postgresql://lab-db/kdp", "study")   # promote
    import_job("postgresql://lab-db/kdp", "duckdb:///local.duckdb", "study")            # take a copy

What moves: the job row; its runs, their checkpoints and run_inputs; the models and datasets they name
(with parent datasets) and those datasets' examples; every table a run owns (schema.RUN_OWNED_TABLES:
scan_results, example_kld, greedy_continuations, scan_audits, extraction_scores, prefix_memorization, the
classifier's tables) and whatever other analysis tables both databases have, by their owner column
(`scan_run_id`, else `run_id`, else `job_id`).

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

from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from kdplatform.store import materialized
from kdplatform.store.db import make_engine
from kdplatform.store.migrate import current_revision, head_revision, upgrade
from kdplatform.store.postgres import advisory_xact_lock
from kdplatform.store.transfer.rows import TransferConflict, TransferError
from kdplatform.store.transfer.source import Source
from kdplatform.store.transfer.write import TransferResult, write

__all__ = ["TransferConflict", "TransferError", "TransferResult", "export_job", "import_job"]


def export_job(src_url: str, dst_url: str, job_name: str, *, replace: bool = False) -> TransferResult:
    """Copy job `job_name` and everything it produced from `src_url` into `dst_url` (see module doc)."""
    if _same_database(src_url, dst_url):
        raise TransferError("source and destination are the same database")
    src = make_engine(src_url, read_only=True)
    dst = make_engine(dst_url)
    try:
        return _transfer(src, dst, job_name, replace)
    finally:
        src.dispose()
        dst.dispose()


def import_job(src_url: str, dst_url: str, job_name: str, *, replace: bool = False) -> TransferResult:
    """The same move seen from the receiving side: bring `job_name` from `src_url` into `dst_url`."""
    return export_job(src_url, dst_url, job_name, replace=replace)


def _same_database(a: str, b: str) -> bool:
    ua, ub = make_url(a), make_url(b)
    if ua.get_backend_name() == ub.get_backend_name() == "duckdb":
        return (
            bool(ua.database and ub.database) and Path(ua.database).resolve() == Path(ub.database).resolve()
        )
    return ua.get_backend_name() == ub.get_backend_name() and (ua.host, ua.port, ua.database) == (
        ub.host,
        ub.port,
        ub.database,
    )


def _transfer(src: Engine, dst: Engine, name: str, replace: bool) -> TransferResult:
    head = head_revision()
    rev = current_revision(src)
    if rev != head:
        raise TransferError(
            f"source database {src.url} is at schema revision {rev}, not {head}: upgrade it first "
            f"(kdplatform db upgrade --db URL)"
        )
    upgrade(dst)
    with src.connect() as s:
        if s.dialect.name == "postgresql":
            s = s.execution_options(isolation_level="REPEATABLE READ")  # one snapshot of the source
        source = Source.read(s, name)
        with dst.begin() as d:
            advisory_xact_lock(d, "transfer")
            result = write(s, d, source, replace)
            materialized.refresh(d, result.job_id)
            return result
