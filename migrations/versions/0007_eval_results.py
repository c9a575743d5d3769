"""eval_results: lm-evaluation-harness scores of trained models, and the eval_scores view

Issue 16: an optional `eval` stage per trained model writes one row per (task, num_fewshot, metric) to
`eval_results`, owned by that stage's run (`eval_run_id`). The views are made again from
kdplatform/store/views/, which now hold `eval_scores` over it; the downgrade drops the table and makes the
views again (those over it left out).

Revision ID: 0007
Revises: 0006

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kdplatform.store import views

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
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
        "eval_results",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("task", sa.String(), nullable=False),
        sa.Column("num_fewshot", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(), nullable=False),
        sa.Column("eval_run_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("stderr", sa.Float(), nullable=True),
        sa.Column("n_samples", sa.Integer(), nullable=True),
        *_fk(["run_id"], ["runs.id"], name=op.f("fk_eval_results_run_id_runs")),
        *_fk(["eval_run_id"], ["runs.id"], name=op.f("fk_eval_results_eval_run_id_runs")),
        sa.PrimaryKeyConstraint("run_id", "task", "num_fewshot", "metric", name=op.f("pk_eval_results")),
    )
    views.create_all(conn)


def downgrade() -> None:
    conn = op.get_bind()
    views.drop_all(conn)
    op.drop_table("eval_results")
    views.create_all(conn)  # eval_scores, over the dropped table, is left out
