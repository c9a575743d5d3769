"""The store is the bottom layer: it imports nothing of kdplatform above it and no torch or transformers,
and it is the one place that builds engines and DuckDB connections; its tables-a-run-owns declaration is
what snapshots and transfers read."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from kdplatform.store import snapshot
from kdplatform.store.schema import RUN_OWNED_TABLES

ROOT = Path(__file__).resolve().parents[2]
STORE = ROOT / "kdplatform" / "store"


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


@pytest.mark.parametrize("path", sorted(STORE.rglob("*.py")), ids=lambda p: str(p.relative_to(STORE)))
def test_store_imports_nothing_above_it(path):
    bad = [
        m
        for m in _imports(path)
        if m.split(".")[0] in ("torch", "transformers", "accelerate", "mlflow", "streamlit")
        or (m.startswith("kdplatform") and not m.startswith("kdplatform.store"))
    ]
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_only_the_store_builds_engines_and_duckdb_connections():
    """create_engine and duckdb.connect appear in kdplatform/ only under store/ (the factory)."""
    found = []
    for path in (ROOT / "kdplatform").rglob("*.py"):
        if STORE in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
                owner = getattr(node.func, "value", None)
                if name == "create_engine" or (
                    name == "connect" and isinstance(owner, ast.Name) and owner.id == "duckdb"
                ):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, found


def test_snapshot_covers_every_table_a_run_owns():
    assert set(RUN_OWNED_TABLES) <= set(snapshot.QUERIES)
    for table, owner in RUN_OWNED_TABLES.items():
        assert f'x."{owner}"' in snapshot.QUERIES[table]


def test_snapshot_equal_iff_same_rows(tmp_path):
    from synthetic_study import build_study

    from kdplatform.store import db

    snaps = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        engine = db.make_engine(f"duckdb:///{tmp_path / name}.duckdb")
        db.upgrade(engine)
        build_study(engine, seed=seed, n=20)
        snaps.append(snapshot.snapshot(engine, "study"))
        engine.dispose()
    assert snaps[0]["scan_results"] and snapshot.differences(snaps[0], snaps[1]) == []
    assert snapshot.differences(snaps[0], snaps[2])
