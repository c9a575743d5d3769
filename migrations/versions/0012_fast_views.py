"""views at the paper's scale: fewer passes over scan_results, the same rows

Issue 17: every view is made again from kdplatform/store/views/*.sql, whose SELECTs now group the scan
rows on the run before joining the run's attributes, count memorized rows with COUNT(*) FILTER, leave out
held-out non-members with a LEFT JOIN anti-join (DuckDB ran the NOT EXISTS as a grouping of every scanned
example), and read scanned_runs and the memorized rows once per view (materialized CTEs) where they were
read up to eight times. The rows are those of 0005's views (scanned_runs' and memorization_rates'
memorized counts are BIGINT on DuckDB too, where the latter was HUGEINT). No table changes.

The downgrade makes the views again from the same files (their results are 0005's), as 0005's own
downgrade does.

Revision ID: 0012
Revises: 0011

"""

from collections.abc import Sequence

from alembic import op

from kdplatform.store import views

# revision identifiers, used by Alembic.
revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    views.recreate(op.get_bind())


def downgrade() -> None:
    views.recreate(op.get_bind())
