"""job_locks: who runs a job against this database now

Issue 18: the job lock covers (database, job), not only the workdir, so one job cannot run twice against
one database from two workdirs. One row per running job (its name, host, pid and start), written by
store.job_locks when the job starts and removed when it ends: on DuckDB the lock itself (a row whose
process is gone from the same host is stale), on PostgreSQL the holder's name beside the advisory lock.

Revision ID: 0010
Revises: 0009

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_locks",
        sa.Column("job", sa.String(), nullable=False),
        sa.Column("host", sa.String(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("job", name=op.f("pk_job_locks")),
    )


def downgrade() -> None:
    op.drop_table("job_locks")
