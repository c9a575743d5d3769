"""The store tests' study: kdplatform.testing's store preset (awkward texts, ids from the sequences,
datasets shared by digest), plus `dump` for exact before/after comparisons."""

from __future__ import annotations

from sqlalchemy import Engine, text

from kdplatform.store import db, materialized
from kdplatform.testing import AWKWARD, store_design
from kdplatform.testing import build_study as _build

__all__ = ["AWKWARD", "build_study", "dump"]


def build_study(engine: Engine, name: str = "study", seed: int = 0, n: int = 120) -> dict[str, int]:
    """Write job `name` (teacher, two baselines, a soft and a hard-data student, their scans) and
    return stage key -> run id. The dataset digest depends on `seed`, so jobs of different seeds have
    different datasets and jobs of the same seed share one."""
    return _build(engine, store_design(name, seed, n)).stages[name]


def dump(engine: Engine, tables: list[str] | None = None) -> dict[str, list[tuple]]:
    """Every row of every table (sorted), for exact before/after comparisons; the views' per-job copies
    are derived (each database writes its own, with its time: tests/store/test_materialized.py)."""
    with engine.connect() as conn:
        names = tables or sorted(
            t for t in db.table_names(engine) if t != "alembic_version" and not materialized.is_derived(t)
        )
        out = {}
        for t in names:
            rows = conn.execute(text(f'SELECT * FROM "{t}"')).all()
            out[t] = sorted((tuple(r) for r in rows), key=repr)
        return out
