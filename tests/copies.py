"""Checks of the views' per-job copies (kdplatform.store.materialized), shared by store and pipeline tests."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import text

from kdplatform.store import materialized


def rows(conn, relation: str, job_id: int) -> pd.DataFrame:
    """A relation's rows of one job, in a stable order, with a fresh index."""
    df = pd.DataFrame(
        conn.execute(text(f"SELECT * FROM {relation} WHERE job_id = :j"), {"j": job_id}).mappings().all()
    )
    if df.empty:
        return df
    return df.sort_values(list(df.columns)).reset_index(drop=True)


def assert_copies_fresh(engine, job_id: int) -> None:
    """Every copy of the job is the one read (fresh) and holds exactly its view's rows."""
    with engine.connect() as conn:
        for view in materialized.MATERIALIZED:
            assert materialized.source(conn, view, job_id) == materialized.copy_name(view), view
            pd.testing.assert_frame_equal(
                rows(conn, materialized.copy_name(view), job_id), rows(conn, view, job_id)
            )
