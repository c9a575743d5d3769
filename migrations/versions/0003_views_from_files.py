"""views from kdplatform/store/views/*.sql

Every view is dropped and created again from its file, so that databases made at 0001 or 0002 and fresh
ones share one definition (the files' SQL is 0001's and 0002's, verbatim but for white space). From here
on a view changes in its file, and the migration that ships the change calls `views.recreate` again (its
downgrade restores the text it replaced, as this one restores the texts of 0001 and 0002, read from
those migrations). A view over a table that a later migration adds is left out here and made there.

Revision ID: 0003
Revises: 0002

"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

from kdplatform.store import views

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _historic(filename: str) -> ModuleType:
    """An earlier migration of this folder, imported for its view texts."""
    spec = importlib.util.spec_from_file_location(
        f"_kdp_{Path(filename).stem}", Path(__file__).with_name(filename)
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    views.recreate(op.get_bind())


def downgrade() -> None:
    views.drop_all(op.get_bind())
    for sql in _historic("0001_initial.py").VIEWS:
        op.execute(sql)
    for name, sql in _historic("0002_analysis_views.py").VIEWS:
        op.execute(f"CREATE VIEW {name} AS {sql}")
