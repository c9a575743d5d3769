"""membership-inference scores, held-out non-members, probabilistic extraction, every prefix length

Issue 15: scan_results gains the scores of the scan's one pass that SQL cannot derive (`loss`,
`min_k_20`, `min_k_pp_20`; the zlib ratio is loss / examples.zlib_entropy and the reference attack joins
the reference model's loss), and stores rows of held-out non-members (examples split `heldout`) beside
the members of D. Two run-owned long tables: `extraction_scores` (one row per example and (temperature,
top_k) setting) and `prefix_memorization` (one row per example and prefix length other than the
dataset's). The views are dropped first and made again from kdplatform/store/views/ after the tables
change: every view over scan_results now reads members only, and the views of the new scores are added.
The downgrade drops the new tables and columns and makes the views again from the same files, but those
that read them (views.create_all leaves them out; held-out rows stay in scan_results, so the others keep
leaving them out).

Revision ID: 0005
Revises: 0004

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kdplatform.store import views

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCORE_COLUMNS = ("loss", "min_k_20", "min_k_pp_20")


def _fk(*args, **kwargs) -> list[sa.ForeignKeyConstraint]:
    """Foreign keys on PostgreSQL only, as in 0001 (DuckDB's forbid updating a referenced run)."""
    if op.get_bind().dialect.name == "duckdb":
        return []
    return [sa.ForeignKeyConstraint(*args, **kwargs)]


def _owned(table: str, key: sa.Column, value: sa.Column) -> None:
    """A per-example table owned by a scan: (run_id, example_id, key) with the dataset and scan ids."""
    op.create_table(
        table,
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("example_id", sa.BigInteger(), nullable=False),
        *key,
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("scan_run_id", sa.Integer(), nullable=False),
        value,
        *_fk(["dataset_id"], ["datasets.id"], name=op.f(f"fk_{table}_dataset_id_datasets")),
        *_fk(["run_id"], ["runs.id"], name=op.f(f"fk_{table}_run_id_runs")),
        *_fk(["scan_run_id"], ["runs.id"], name=op.f(f"fk_{table}_scan_run_id_runs")),
        sa.PrimaryKeyConstraint("run_id", "example_id", *(c.name for c in key), name=op.f(f"pk_{table}")),
    )


def upgrade() -> None:
    conn = op.get_bind()
    views.drop_all(conn)
    for name in SCORE_COLUMNS:
        op.add_column("scan_results", sa.Column(name, sa.Float(), nullable=True))
    _owned(
        "extraction_scores",
        (
            sa.Column("temperature", sa.Float(), nullable=False),
            sa.Column("top_k", sa.Integer(), nullable=False),
        ),
        sa.Column("logprob", sa.Float(), nullable=False),
    )
    _owned(
        "prefix_memorization",
        (sa.Column("prefix_len", sa.Integer(), nullable=False),),
        sa.Column("memorized", sa.Boolean(), nullable=False),
    )
    views.create_all(conn)


def downgrade() -> None:
    conn = op.get_bind()
    views.drop_all(conn)
    op.drop_table("prefix_memorization")
    op.drop_table("extraction_scores")
    for name in SCORE_COLUMNS:
        op.drop_column("scan_results", name)
    views.create_all(conn)  # those over the dropped columns and tables are left out
