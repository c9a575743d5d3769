"""A trained stage that runs again while runs downstream keep their edges to its checkpoints (a base whose
cache is gone, a teacher retrained before its dependents rerun): its old checkpoints go, on PostgreSQL
too (the edges' foreign key), and the edges name its new final checkpoint once it is done."""

from __future__ import annotations

from types import SimpleNamespace

from sqlalchemy import text
from sqlalchemy.orm import Session

from kdplatform.pipeline import JobRunner
from kdplatform.pipeline.context import finish
from kdplatform.store import db
from kdplatform.store.schema import Checkpoint, InputKind
from kdplatform.testing import build_study, store_design

EDGES = """
    SELECT i.id, r.stage_key, i.kind, i.checkpoint_id FROM run_inputs i JOIN runs r ON r.id = i.run_id
    WHERE i.input_run_id = :t AND i.kind IN ('teacher', 'model', 'base') ORDER BY i.id
"""


def test_rerun_of_a_trained_stage_moves_its_dependents_edges_to_the_new_checkpoint(db_url):
    engine = db.make_engine(db_url)
    db.upgrade(engine)
    study = build_study(engine, store_design("e", 0, 20))
    with engine.connect() as conn:
        teacher = conn.execute(text("SELECT id FROM runs WHERE stage_key = 'train/teacher'")).scalar_one()
        old = (
            conn.execute(text("SELECT id FROM checkpoints WHERE run_id = :t"), {"t": teacher}).scalars().all()
        )
        before = conn.execute(text(EDGES), {"t": teacher}).all()
    assert before and {e.checkpoint_id for e in before} <= set(old)
    assert {e.kind for e in before} >= {InputKind.TEACHER, InputKind.MODEL}  # students and the scan

    runner = SimpleNamespace(_session=lambda: Session(engine, expire_on_commit=False), job_id=study.jobs["e"])
    stage = SimpleNamespace(
        key="train/teacher", kind="train", role="teacher", seed=0, temperature=None, objective=None, config={}
    )
    assert JobRunner._start(runner, stage, "another hash") == teacher  # refused by PostgreSQL before
    with engine.connect() as conn:
        assert (
            conn.execute(text("SELECT COUNT(*) FROM checkpoints WHERE run_id = :t"), {"t": teacher}).scalar()
            == 0
        )
        assert all(e.checkpoint_id is None for e in conn.execute(text(EDGES), {"t": teacher}).all())

    with Session(engine) as s, s.begin():  # the stage's last transaction: its checkpoints, then done
        for epoch, final in ((0, False), (1, True)):
            s.add(
                Checkpoint(
                    run_id=teacher,
                    path="/new" if final else None,
                    epoch=epoch,
                    step=epoch,
                    tokens=1,
                    train_loss=1.0,
                    val_loss=1.0,
                    val_ppl=2.7,
                    is_final=final,
                )
            )
        finish(s, teacher)
    with engine.connect() as conn:
        new = conn.execute(
            text("SELECT id FROM checkpoints WHERE run_id = :t AND is_final"), {"t": teacher}
        ).scalar_one()
        after = conn.execute(text(EDGES), {"t": teacher}).all()
    assert new not in old
    assert [(e.id, e.stage_key, e.kind) for e in after] == [(e.id, e.stage_key, e.kind) for e in before]
    assert {e.checkpoint_id for e in after} == {new}
    engine.dispose()
