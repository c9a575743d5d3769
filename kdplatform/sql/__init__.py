"""Read-only, confined SQL over the study database: the one function behind `kdplatform sql` and the
dashboard's console.

Fences, each enough alone against writes: the statement check (sql.check: DuckDB's parser; one SELECT,
WITH ... SELECT or EXPLAIN SELECT; no file, network or settings functions), and the backend's own
(sql.backends: DuckDB's read-only connection with external access off and its configuration locked, a
memory limit; PostgreSQL's read-only transaction, which one statement sent alone cannot leave). Limits
(sql.limits) are validated as positive and finite: rows, bytes, seconds (a server-side statement timeout
on PostgreSQL, an interrupt on DuckDB).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy.engine import make_url

from kdplatform.sql.backends import duckdb_rows, postgres_rows, sqlalchemy_rows
from kdplatform.sql.check import QueryRefused, check_query
from kdplatform.sql.limits import MAX_BYTES, MAX_ROWS, MEMORY_LIMIT_BYTES, TIMEOUT_S, Limits
from kdplatform.store import db
from kdplatform.store import views as sql_views

__all__ = [
    "EXAMPLE_QUERIES",
    "MAX_BYTES",
    "SURFACE",
    "Limits",
    "QueryRefused",
    "check_query",
    "console",
    "run_readonly",
]


def _duckdb_connect(path: str):
    """The console's DuckDB connection (for tests of the connection's own fence)."""
    if not Path(path).exists():
        raise QueryRefused(f"no database at {path}; run a job first (make demo, or kdplatform run JOB)")
    return db.duckdb_connect(path, lock_configuration=True)


def run_readonly(
    url: str,
    query: str,
    *,
    max_rows: int = MAX_ROWS,
    timeout_s: float = TIMEOUT_S,
    max_bytes: int = MAX_BYTES,
    memory_limit_bytes: int = MEMORY_LIMIT_BYTES,
) -> pd.DataFrame:
    """Run one read-only query and return at most `max_rows` rows and `max_bytes` bytes of them;
    df.attrs['truncated'] is None, 'rows' or 'bytes' (which limit cut the result)."""
    limits = Limits(
        max_rows=max_rows, max_bytes=max_bytes, timeout_s=timeout_s, memory_limit_bytes=memory_limit_bytes
    )
    sql = check_query(query)
    try:
        u = make_url(url)
    except Exception as e:
        raise QueryRefused(f"{url!r} is not a database URL (e.g. duckdb:///runs/x/kdp.duckdb): {e}") from None
    backend = u.get_backend_name()
    if backend == "duckdb":
        if not u.database or u.database == ":memory:":
            raise QueryRefused("the console needs a database file")
        cols, got = duckdb_rows(u.database, sql, limits)
    elif backend == "postgresql" or u.drivername == "postgres":
        cols, got = postgres_rows(url, sql, limits)
    elif backend == "sqlite" and not (u.database and Path(u.database).is_file()):
        raise QueryRefused(f"no database file at {u.database or '(none)'}; a read-only query creates none")
    else:
        cols, got = sqlalchemy_rows(url, sql, limits)
    df = pd.DataFrame(got.rows, columns=cols)
    df.attrs["truncated"] = got.truncated
    return df


def console(url: str, query: str, *, wait_s: float = 20.0, **limits) -> pd.DataFrame:
    """run_readonly for the dashboard: QueryRefused passes through; on DuckDB it opens its connection when
    no page connection of this process is open (see store.locking.Gate) and waits out a job's write lock
    (both before the query runs, so retrying is safe). `limits` are run_readonly's."""
    u = make_url(url)
    if u.get_backend_name() != "duckdb" or not u.database or u.database == ":memory:":
        return run_readonly(url, query, **limits)

    def once() -> pd.DataFrame:
        try:
            with db.gate(u.database).console(wait_s, "the database"):
                return run_readonly(url, query, **limits)
        except Exception as e:
            if "configuration has been locked" in str(e):
                raise db.Transient(str(e)) from e
            raise

    return db.wait_out_lock(once, wait_s, "the database")


# ------------------------------------------------------------------------- what the console documents
# The documented surface: each view with the summary of its file's header, then the tables.
SURFACE: dict[str, str] = {v.name: v.summary for v in sql_views.load()} | {
    "jobs": "one row per job (name, spec JSON, workdir, MLflow run)",
    "runs": "one row per stage: kind, role, seed, temperature, objective, status, timings, MLflow run",
    "run_inputs": "lineage edges: dataset, teacher, model, reference",
    "datasets": "tokenized datasets: tokenizer, lengths, sizes, parent",
    "models": "model name, family, parameters",
    "checkpoints": "per epoch: train_loss, val_loss, val_ppl, is_final",
    "examples": "per example: split (train = D, val, heldout = non-members), text, prefix_text, suffix_text, "
    "zlib_entropy, zlib_bits_per_token",
    "scan_results": "per (trained run, example of D or held-out): memorized, match_len, suffix_logprob, "
    "suffix_entropy, ppl, min_margin (smallest top-1 minus top-2 logit over the deciding suffix positions), "
    "loss, min_k_20, min_k_pp_20",
    "extraction_scores": "per (run, example, temperature, top_k): log-probability that one sample "
    "reproduces the suffix (top_k 0: whole vocabulary)",
    "prefix_memorization": "per (run, example, prefix_len): memorized after another prefix length, "
    "same suffix length",
    "example_kld": "per (run, reference run, example): mean suffix KL(reference || model)",
    "greedy_continuations": "greedy suffix tokens and text of (near-)memorized examples",
    "classifier_trials": "test metrics of each classifier trial",
    "classifier_coefficients": "standardized coefficient of each feature in each trial",
    "example_risk": "risk score and prediction per example of a classifier run",
    "scan_audits": "per scan: examples re-decided by float32 generate() (near-ties, a sample), "
    "disagreements, memorized before and after",
    "eval_results": "per (trained run, task, num_fewshot, metric): lm-evaluation-harness value, stderr, "
    "n_samples (the eval stage's run: eval_run_id)",
}

EXAMPLE_QUERIES: dict[str, str] = {
    "Memorization rate per run (Table 2)": "SELECT job_id, run_id, role, seed, temperature, objective,\n"
    "       examples, memorized, ROUND(rate_pct, 4) AS rate_pct\n"
    "FROM memorization_rates\nORDER BY job_id, run_id",
    "Pairwise overlap": "SELECT run_a, role_a, run_b, role_b, n_both, ROUND(jaccard, 3) AS jaccard\n"
    "FROM run_overlap\nORDER BY run_a, run_b",
    "Inherited examples": "SELECT student_run_id, student_seed, n_inherited, n_teacher_not_baseline,\n"
    "       ROUND(share_of_teacher_not_baseline, 4) AS share\nFROM inheritance",
    "Most memorized examples": "SELECT e.example_id, COUNT(*) AS models, MIN(e.text) AS text\n"
    "FROM memorized_examples m JOIN examples e USING (dataset_id, example_id)\n"
    "GROUP BY e.example_id ORDER BY models DESC, e.example_id LIMIT 20",
}
