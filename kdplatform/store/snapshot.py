"""A job's database content without ids or timestamps: two runs of one job compare equal iff they hold
the same rows. The crash tests (tests/integration/test_kill_resume.py, bench/soak.py) use it."""

from __future__ import annotations

from sqlalchemy import Engine, text

QUERIES = {
    "runs": "SELECT stage_key, kind, role, status, config_hash FROM runs WHERE job_id = :j",
    "checkpoints": "SELECT r.stage_key, c.epoch, c.is_final, c.val_loss FROM checkpoints c "
    "JOIN runs r ON r.id = c.run_id WHERE r.job_id = :j",
    "run_inputs": "SELECT r.stage_key, i.kind, t.stage_key FROM run_inputs i JOIN runs r ON r.id = i.run_id "
    "LEFT JOIN runs t ON t.id = i.input_run_id WHERE r.job_id = :j",
    "scan_results": "SELECT r.stage_key, s.example_id, s.memorized, s.match_len, s.suffix_logprob, "
    "s.ppl FROM scan_results s JOIN runs r ON r.id = s.run_id WHERE r.job_id = :j",
    "example_kld": "SELECT r.stage_key, k.example_id, k.kld FROM example_kld k "
    "JOIN runs r ON r.id = k.run_id WHERE r.job_id = :j",
    "greedy_continuations": "SELECT r.stage_key, g.example_id, g.tokens FROM greedy_continuations g "
    "JOIN runs r ON r.id = g.run_id WHERE r.job_id = :j",
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
