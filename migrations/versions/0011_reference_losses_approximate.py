"""a base's per-example losses (the reference attack) and approximate memorization

Issue 15 items 2 and 6: `example_losses` holds the loss of a model that is not scanned (a base, scanned
for its loss alone) on the members of D and the held-out non-members, and membership_inference's
`reference` attack now subtracts the loss of the scanned model's own base (the baseline's only for a
model without a base); `approximate_memorization` holds the token-match share and normalized edit
distance of the greedy continuation of each member with a long match (the optional approximate stage),
summarized by the view approximate_memorization_rates. The views are dropped and made again from
kdplatform/store/views/; the downgrade drops both tables and makes the views again, those that read them
left out.

Revision ID: 0011
Revises: 0010

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kdplatform.store import views

# revision identifiers, used by Alembic.
revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(table: str) -> list[sa.ForeignKeyConstraint]:
    """Foreign keys on PostgreSQL only, as in 0001 (DuckDB's forbid updating a referenced run)."""
    if op.get_bind().dialect.name == "duckdb":
        return []
    return [
        sa.ForeignKeyConstraint([c], [f"{t}.id"], name=op.f(f"fk_{table}_{c}_{t}"))
        for c, t in (("dataset_id", "datasets"), ("run_id", "runs"), ("scan_run_id", "runs"))
    ]


def _owned(table: str, *values: sa.Column) -> None:
    """A per-example table owned by a scan-like run: (run_id, example_id) with the dataset and scan ids."""
    op.create_table(
        table,
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("example_id", sa.BigInteger(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("scan_run_id", sa.Integer(), nullable=False),
        *values,
        *_fk(table),
        sa.PrimaryKeyConstraint("run_id", "example_id", name=op.f(f"pk_{table}")),
    )


def upgrade() -> None:
    conn = op.get_bind()
    views.drop_all(conn)
    _owned("example_losses", sa.Column("loss", sa.Float(), nullable=False))
    _owned(
        "approximate_memorization",
        sa.Column("match_len", sa.Integer(), nullable=False),
        sa.Column("token_match", sa.Float(), nullable=False),
        sa.Column("edit_distance", sa.Float(), nullable=False),
    )
    views.create_all(conn)


def downgrade() -> None:
    conn = op.get_bind()
    views.drop_all(conn)
    op.drop_table("approximate_memorization")
    op.drop_table("example_losses")
    views.create_all(conn)  # those over the dropped tables are left out
