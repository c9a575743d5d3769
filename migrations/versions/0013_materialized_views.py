"""per-job copies of the views that group every scan row by example

Issue 17: the view example_memorization (the example browser's per-example counts) is added, and the
views run_overlap, inheritance, seed_consistency, easy_examples, example_features and example_memorization
get a per-job copy each (`mat_<view>`, filled from the view), with the table `materialized_views`
recording the job's state each copy was written at (kdplatform/store/materialized.py: a copy is read only
while that state is the job's). The copies are made and filled for every job here; no other table
changes. The downgrade drops the copies and the state table and makes the views again, without
example_memorization.

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
    conn.exec_driver_sql("DROP VIEW IF EXISTS example_memorization")
