"""Runs whose stage left the job's plan (a seed or a temperature removed from the spec): stale.

`kdplatform run` marks them `stale` (Status.STALE), after which no view or group reads them;
`kdplatform status` lists them without writing; `kdplatform prune` deletes them with every row they own
(schema.RUN_OWNED_TABLES), in one transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kdplatform.store import db
from kdplatform.store.schema import RUN_OWNED_TABLES, Run, RunInput, Status


class PruneBlocked(Exception):
    """A run to prune is still an input of a run that stays (run the job first: it reruns that one)."""


def left_plan(runs: Collection[Run], planned: Collection[str]) -> list[Run]:
    """The runs whose stage key is not in the plan, in id order."""
    return sorted((r for r in runs if r.stage_key not in planned), key=lambda r: r.id)


def mark_stale(s: Session, job_id: int, planned: Collection[str]) -> list[str]:
    """Set `stale` on the job's runs that left the plan and are not stale yet; returns their keys."""
    rows = s.scalars(select(Run).where(Run.job_id == job_id, Run.status != Status.STALE)).all()
    keys = [r.stage_key for r in left_plan(rows, planned)]
    if keys:
        s.execute(
            update(Run).where(Run.job_id == job_id, Run.stage_key.in_(keys)).values(status=Status.STALE)
        )
    return keys


def prune(s: Session, job_id: int, planned: Collection[str], *, dry_run: bool = False) -> list[Run]:
    """Delete the job's runs that left the plan and the rows they own (in the caller's transaction)."""
    gone = left_plan(s.scalars(select(Run).where(Run.job_id == job_id)).all(), planned)
    ids = [r.id for r in gone]
    if not ids:
        return []
    readers = s.execute(
        select(Run.stage_key, RunInput.input_run_id)
        .join(Run, Run.id == RunInput.run_id)
        .where(RunInput.input_run_id.in_(ids), RunInput.run_id.not_in(ids))
    ).all()
    if readers:
        names = {r.id: r.stage_key for r in gone}
        pairs = ", ".join(sorted({f"{k} reads {names[i]}" for k, i in readers}))
        raise PruneBlocked(f"{pairs}: run the job first (it reruns those stages), then prune")
    if dry_run:
        return gone
    conn = s.connection()
    # Lineage first: on PostgreSQL its edges reference the checkpoints deleted after it.
    owned = sorted(RUN_OWNED_TABLES.items(), key=lambda t: t[0] != "run_inputs")
    for table, column in owned:
        for run_id in ids:
            db.delete_rows(conn, table, **{column: run_id})
    for run_id in ids:
        db.delete_rows(conn, "runs", id=run_id)
    return gone


def render(runs: Sequence[Run], *, removed: bool | None = None) -> str:
    """Lines for stale runs: for `status` (removed None), or what `prune` removed (or would)."""
    if not runs:
        return "no stale runs" if removed is not None else ""
    head = {
        None: "stale runs (no longer in the plan; `kdplatform prune` removes them):",
        True: f"pruned {len(runs)} stale run(s) and their rows:",
        False: f"would prune {len(runs)} stale run(s) and their rows (--dry-run):",
    }[removed]
    lines = [head]
    for r in runs:
        lines.append(f"  {r.stage_key}  (run {r.id}, {r.kind}, status {r.status})")
    return "\n".join(lines)
