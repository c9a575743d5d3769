"""Reading a DuckDB database's schema revision works in a fresh process whatever was imported first
(duckdb_sqlalchemy registers its alembic support only when alembic was imported before it connected)."""

from __future__ import annotations

import subprocess
import sys

from kdplatform.store import db


def test_preflight_and_current_revision_in_a_fresh_process(tmp_path):
    url = f"duckdb:///{tmp_path / 'm.duckdb'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    code = (
        "import sys; from kdplatform.store import db; "
        f"db.preflight({url!r}); print(db.current_revision(db.make_engine({url!r}, read_only=True)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == db.head_revision()
