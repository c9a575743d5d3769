"""A job's database content without ids or timestamps: two runs of one job compare equal iff they hold
the same rows. The crash tests (tests/integration/test_kill_resume.py, bench/soak.py) use it.

The tables compared are the job's runs, every table a run owns (schema.RUN_OWNED_TABLES) and the examples;
ids of runs become their stage keys, other ids, paths and timestamps are left out.
"""

from __future__ import annotations

from sqlalchemy import Engine, text

from kdplatform.store.schema import RUN_OWNED_TABLES, Base

COMPARED = {
    "checkpoints": ("epoch", "is_final", "val_loss"),
    "run_inputs": ("kind", "input_run_id"),
    "scan_results": ("run_id", "example_id", "memorized", "match_len", "suffix_logprob", "ppl"),
    "example_kld": ("run_id", "reference_run_id", "example_id", "kld"),
    "greedy_continuations": ("run_id", "example_id", "tokens"),
}
"""The columns compared per run-owned table; a table not named here is compared on all its columns
except ids (other than example_id and run references), paths and timestamps."""
SKIPPED = {"id", "path", "created_at", "started_at", "finished_at", "seconds", "mlflow_run_id"}
OTHER = {
    "runs": "SELECT stage_key, kind, role, status, config_hash FROM runs WHERE job_id = :j",
    "examples": "SELECT d.name, e.split, e.example_id, e.text FROM examples e JOIN datasets d "
    "ON d.id = e.dataset_id",
}
KEYS = {
    t: f"SELECT COUNT(*) FROM (SELECT {k} FROM {t} GROUP BY {k} HAVING COUNT(*) > 1) d"
    for t, k in [
        ("scan_results", "run_id, example_id"),
        ("example_kld", "run_id, reference_run_id, example_id"),
        ("examples", "dataset_id, example_id"),
        ("runs", "job_id, stage_key"),
    ]
}


def _is_run(column: str) -> bool:
    return column.endswith("run_id")


def _columns(table: str, owner: str) -> tuple[str, ...]:
    if table in COMPARED:
        return COMPARED[table]
    cols = [c.name for c in Base.metadata.tables[table].columns if c.name != owner and c.name not in SKIPPED]
    return tuple(c for c in cols if not c.endswith("_id") or c == "example_id" or _is_run(c))


def owned_query(table: str, owner: str) -> str:
    """The rows of a run-owned table for the job `:j`: the owner's stage key, then the compared columns
    with every run reference as that run's stage key."""
    select, joins = ["o.stage_key"], [f'JOIN runs o ON o.id = x."{owner}"']
    for i, c in enumerate(_columns(table, owner)):
        if _is_run(c):
            select.append(f"r{i}.stage_key")
            joins.append(f'LEFT JOIN runs r{i} ON r{i}.id = x."{c}"')
        else:
            select.append(f'x."{c}"')
    return f"SELECT {', '.join(select)} FROM {table} x {' '.join(joins)} WHERE o.job_id = :j"


QUERIES = {**{t: owned_query(t, owner) for t, owner in RUN_OWNED_TABLES.items()}, **OTHER}


def _round(v):
    """Floats to 4 significant digits (in Python: ROUND(double, n) is not portable to PostgreSQL)."""
    return float(f"{v:.4g}") if isinstance(v, float) else v


def snapshot(engine: Engine, job_name: str) -> dict[str, list[tuple]]:
    """Sorted content of every table a job writes, plus duplicate-key counts (which must be 0)."""
    out: dict[str, list[tuple]] = {}
    with engine.connect() as conn:
        job = conn.execute(text("SELECT id FROM jobs WHERE name = :n"), {"n": job_name}).scalar_one()
        for name, sql in QUERIES.items():
            rows = conn.execute(text(sql), {"j": job}).all()
            out[name] = sorted((tuple(_round(v) for v in r) for r in rows), key=repr)
        for name, sql in KEYS.items():
            out[f"duplicates:{name}"] = [(conn.execute(text(sql)).scalar_one(),)]
    return out


def differences(a: dict[str, list[tuple]], b: dict[str, list[tuple]]) -> list[str]:
    """Human-readable differences between two snapshots (empty when they match)."""
    diffs = []
    for name in sorted(set(a) | set(b)):
        ra, rb = a.get(name, []), b.get(name, [])
        if ra != rb:
            only_a = len(set(ra) - set(rb))
            only_b = len(set(rb) - set(ra))
            diffs.append(
                f"{name}: {len(ra)} vs {len(rb)} rows ({only_a} only in first, {only_b} only in second)"
            )
    return diffs
