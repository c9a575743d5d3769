"""examples.text_hash and cross_scan_results: analyses across jobs on the same texts

Issue 19: an example's identity across datasets is its text, so `examples` gains `text_hash` (md5 of the
text, hex: what kdplatform.data.examples.text_hash writes, filled here for the rows already stored with
SQL's md5(), which DuckDB and PostgreSQL share; no index: the views join on it by hash join).
`cross_scan_results` is the run-owned table of the `cross_scan` stage: one of this job's models scanned
on another job's examples. The views are made again from kdplatform/store/views/, the cross-job views
among them. The downgrade drops the table and the column and makes the views again (those over them are
left out).

Revision ID: 0009
Revises: 0008

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kdplatform.store import views

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(*args, **kwargs) -> list[sa.ForeignKeyConstraint]:
    """Foreign keys on PostgreSQL only, as in 0001 (DuckDB's forbid updating a referenced run)."""
    if op.get_bind().dialect.name == "duckdb":
        return []
    return [sa.ForeignKeyConstraint(*args, **kwargs)]


def upgrade() -> None:
    conn = op.get_bind()
    views.drop_all(conn)
    op.add_column("examples", sa.Column("text_hash", sa.String(), nullable=True))
    conn.exec_driver_sql("UPDATE examples SET text_hash = md5(text)")
    t = "cross_scan_results"
    op.create_table(
        t,
        sa.Column("scan_run_id", sa.Integer(), nullable=False),
        sa.Column("example_id", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("text_hash", sa.String(), nullable=False),
        sa.Column("n_tokens", sa.Integer(), nullable=False),
        sa.Column("zlib_bits_per_token", sa.Float(), nullable=False),
        sa.Column("memorized", sa.Boolean(), nullable=False),
        sa.Column("match_len", sa.Integer(), nullable=False),
        sa.Column("suffix_logprob", sa.Float(), nullable=False),
        sa.Column("suffix_entropy", sa.Float(), nullable=False),
        sa.Column("ppl", sa.Float(), nullable=False),
        *_fk(["dataset_id"], ["datasets.id"], name=op.f(f"fk_{t}_dataset_id_datasets")),
        *_fk(["run_id"], ["runs.id"], name=op.f(f"fk_{t}_run_id_runs")),
        *_fk(["scan_run_id"], ["runs.id"], name=op.f(f"fk_{t}_scan_run_id_runs")),
        sa.PrimaryKeyConstraint("scan_run_id", "example_id", name=op.f(f"pk_{t}")),
    )
    views.create_all(conn)


def downgrade() -> None:
    conn = op.get_bind()
    views.drop_all(conn)
    op.drop_table("cross_scan_results")
    op.drop_column("examples", "text_hash")
    views.create_all(conn)  # those over the dropped table and column are left out
