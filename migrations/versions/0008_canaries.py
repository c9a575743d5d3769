"""canaries: synthetic examples inserted into D at controlled duplication counts, and their exposure

Issue 15 (item 5): `canaries` records each canary of a dataset once (its examples row has split
`canary`), with how many copies the training data held and its secret; `canary_results` (run-owned, by
the `canary` stage) holds each model's exact greedy extraction of a canary's suffix and the exposure of
its secret among sampled alternatives. Canaries get no scan_results rows, so every earlier view keeps
meaning the natural examples of D. The view `canary_memorization` is made from kdplatform/store/views/.

Revision ID: 0008
Revises: 0007

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kdplatform.store import views

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
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
    op.create_table(
        "canaries",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("example_id", sa.BigInteger(), nullable=False),
        sa.Column("copies", sa.Integer(), nullable=False),
        sa.Column("secret", sa.String(), nullable=False),
        *_fk(["dataset_id"], ["datasets.id"], name=op.f("fk_canaries_dataset_id_datasets")),
        sa.PrimaryKeyConstraint("dataset_id", "example_id", name=op.f("pk_canaries")),
    )
    op.create_table(
        "canary_results",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("example_id", sa.BigInteger(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("scan_run_id", sa.Integer(), nullable=False),
        sa.Column("memorized", sa.Boolean(), nullable=False),
        sa.Column("match_len", sa.Integer(), nullable=False),
        sa.Column("suffix_logprob", sa.Float(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("alternatives", sa.Integer(), nullable=False),
        sa.Column("exposure", sa.Float(), nullable=False),
        *_fk(["dataset_id"], ["datasets.id"], name=op.f("fk_canary_results_dataset_id_datasets")),
        *_fk(["run_id"], ["runs.id"], name=op.f("fk_canary_results_run_id_runs")),
        *_fk(["scan_run_id"], ["runs.id"], name=op.f("fk_canary_results_scan_run_id_runs")),
        sa.PrimaryKeyConstraint("run_id", "example_id", name=op.f("pk_canary_results")),
    )
    views.create_all(conn)


def downgrade() -> None:
    conn = op.get_bind()
    views.drop_all(conn)
    op.drop_table("canary_results")
    op.drop_table("canaries")
    views.create_all(conn)  # canary_memorization is left out: its tables are gone
