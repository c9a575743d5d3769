"""Other runs' lineage edges to a run's checkpoints, across a rerun of that run.

A stage that starts again deletes what its earlier attempt wrote, its checkpoints included, while runs
downstream of it may keep their `run_inputs` edges to those checkpoints: a dependent that is not rerun (a
base pretrained again because its cache directory is gone), or one that reruns later in the same job.
PostgreSQL refuses that delete (the edges' foreign key), and on DuckDB the edges would name checkpoints
that no longer exist. So the edges keep their run and drop the checkpoint while the stage runs, and name
its new final checkpoint in the transaction that marks it done.
"""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, text

from kdplatform.store.schema import InputKind

CHECKPOINT_EDGES = (InputKind.BASE, InputKind.TEACHER, InputKind.MODEL)
"""Edge kinds that name the input run's final checkpoint (every one is written with it)."""


def detach_checkpoint_edges(conn: Connection, run_id: int) -> int:
    """Before a stage that ran before starts again: other runs' edges to its checkpoints keep the run and
    lose the checkpoint id. Returns the edges detached."""
    return conn.execute(
        text(
            "UPDATE run_inputs SET checkpoint_id = NULL WHERE run_id <> :r "
            "AND checkpoint_id IN (SELECT id FROM checkpoints WHERE run_id = :r)"
        ),
        {"r": run_id},
    ).rowcount


def reattach_checkpoint_edges(conn: Connection, run_id: int) -> int:
    """In the stage's last transaction: every detached edge to it names its new final checkpoint (stays
    NULL when the run wrote no final checkpoint). Returns the edges reattached."""
    return conn.execute(
        text(
            "UPDATE run_inputs SET checkpoint_id = "
            "(SELECT MAX(id) FROM checkpoints WHERE run_id = :r AND is_final) "
            "WHERE input_run_id = :r AND checkpoint_id IS NULL AND kind IN :kinds"
        ).bindparams(bindparam("kinds", expanding=True)),
        {"r": run_id, "kinds": [str(k) for k in CHECKPOINT_EDGES]},
    ).rowcount
