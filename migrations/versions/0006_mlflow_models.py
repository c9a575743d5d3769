"""MLflow LoggedModels and the job's MLflow store

Issue 16: each final checkpoint is registered as an MLflow LoggedModel by reference to its directory;
`checkpoints.mlflow_model_id` holds its id, which the model inputs of later runs and the dashboard's
model links name. `jobs.mlflow_tracking_uri` and `jobs.mlflow_experiment_id` say where the job's runs
and models are, so the dashboard links to that store's UI. No view reads these tables' columns by `*`, so
the views stay.

Revision ID: 0006
Revises: 0005

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("checkpoints", "mlflow_model_id"),
    ("jobs", "mlflow_tracking_uri"),
    ("jobs", "mlflow_experiment_id"),
)


def upgrade() -> None:
    for table, column in COLUMNS:
        op.add_column(table, sa.Column(column, sa.String(), nullable=True))


def downgrade() -> None:
    for table, column in reversed(COLUMNS):
        op.drop_column(table, column)
