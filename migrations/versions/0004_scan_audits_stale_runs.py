"""scan audits, min_margin, and views that read only runs that are done

Issue 13: `scan_results.min_margin` (each example's smallest top-1/top-2 logit gap over the positions
that decide it), the `scan_audits` table (one row per scan: what float32 generate() re-decided), and the
views of kdplatform/store/views/ again, now leaving out runs that are not `done` (a `stale` run, whose
stage left its job's plan, is pooled by no view). The views are dropped first and made again after the
tables change; the downgrade restores 0003's views (0001's and 0002's texts, as 0003's downgrade does).

Revision ID: 0004
Revises: 0003

"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

from kdplatform.store import views

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
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
    op.add_column("scan_results", sa.Column("min_margin", sa.Float(), nullable=True))
    op.create_table(
        "scan_audits",
        sa.Column("scan_run_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("examples", sa.Integer(), nullable=False),
        sa.Column("checked", sa.Integer(), nullable=False),
        sa.Column("near_ties", sa.Integer(), nullable=False),
        sa.Column("sampled", sa.Integer(), nullable=False),
        sa.Column("disagreements", sa.Integer(), nullable=False),
        sa.Column("sampled_disagreements", sa.Integer(), nullable=False),
        sa.Column("match_len_changed", sa.Integer(), nullable=False),
        sa.Column("memorized_before", sa.Integer(), nullable=False),
        sa.Column("memorized_after", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("scan_dtype", sa.String(), nullable=False),
        *_fk(["run_id"], ["runs.id"], name=op.f("fk_scan_audits_run_id_runs")),
        *_fk(["scan_run_id"], ["runs.id"], name=op.f("fk_scan_audits_scan_run_id_runs")),
        sa.PrimaryKeyConstraint("scan_run_id", name=op.f("pk_scan_audits")),
    )
    views.create_all(conn)


def _downgrade_0003():
    spec = importlib.util.spec_from_file_location(
        "_kdp_0003_views_from_files", Path(__file__).with_name("0003_views_from_files.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.downgrade


def downgrade() -> None:
    views.drop_all(op.get_bind())
    op.drop_table("scan_audits")
    op.drop_column("scan_results", "min_margin")
    _downgrade_0003()()  # 0003's views: the texts of 0001 and 0002
