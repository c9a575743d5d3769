"""per-job copies of the views that group every scan row by example

Issue 17: the views example_memorization (the example browser's per-example counts) and
mechanism_examples (Figure 8's subsets with each model's suffix log-probability and entropy) are added,
and the views of materialized.MATERIALIZED (memorization_rates, scanned_runs, run_overlap, inheritance,
seed_consistency, easy_examples, example_features and the two new ones) get a per-job copy each
(`mat_<view>`, filled from the view), with the table `materialized_views` recording the job's state each
copy was written at (kdplatform/store/materialized.py: a copy is read only while that state is the
job's). The copies are made and filled for every job here; no other table changes, and the other views'
rows are unchanged. The downgrade drops the copies and the state table and makes the views again, without
the two new ones.

Revision ID: 0013
Revises: 0012

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kdplatform.store import materialized, views

# revision identifiers, used by Alembic.
revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        materialized.STATE_TABLE,
        sa.Column("view_name", sa.String(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(), server_default=sa.func.current_timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("view_name", "job_id", name=op.f(f"pk_{materialized.STATE_TABLE}")),
    )
    conn = op.get_bind()
    views.recreate(conn)
    materialized.rebuild(conn)


def downgrade() -> None:
    conn = op.get_bind()
    materialized.drop_copies(conn)
    op.drop_table(materialized.STATE_TABLE)
    views.drop_all(conn)
    views.create_all(conn)
    for view in ("mechanism_examples", "example_memorization"):
        conn.exec_driver_sql(f"DROP VIEW IF EXISTS {view}")
