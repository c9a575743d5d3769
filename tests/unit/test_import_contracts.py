"""The architecture's walls: the import-linter contracts of pyproject.toml hold, and no code outside
kdplatform/store builds an SQL engine or a driver connection itself."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILDS_ENGINE = re.compile(r"\b(create_engine|duckdb\.connect|psycopg\.connect)\(")


def test_import_contracts_hold():
    """`lint-imports` on the repository (the layers, the forbidden imports, no cycles)."""
    pytest.importorskip("importlinter", reason="import-linter is in the dev extra")
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]


def test_only_the_store_builds_engines():
    """Engines and connections come from kdplatform.store (its DuckDB settings, read-only mode and lock
    waits); a second `create_engine(` or `duckdb.connect(` elsewhere would skip them."""
    store = ROOT / "kdplatform" / "store"
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for base in ("kdplatform", "app")
        for path in sorted((ROOT / base).rglob("*.py"))
        if store not in path.parents
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if BUILDS_ENGINE.search(line)
    ]
    assert found == [], "\n".join(found)
