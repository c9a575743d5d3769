"""Read-only, confined SQL over the study database: the one function behind `kdplatform sql` and the
dashboard's console.

Two fences: a statement check (one SELECT/WITH query; no writes, attaches, file or network readers,
extensions or settings) and, on DuckDB, a read-only connection with external access disabled and the
configuration locked. A timer interrupts queries that run too long; results are capped at `max_rows`.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pandas as pd
from sqlalchemy import text
from sqlalchemy.engine import make_url

from kdplatform.store import db
from kdplatform.store import views as sql_views

FORBIDDEN_WORDS = {
    "insert",
    "update",
    "delete",
    "merge",
    "upsert",
    "replace",
    "truncate",
    "drop",
    "create",
    "alter",
    "attach",
    "detach",
    "copy",
    "export",
    "import",
    "install",
    "load",
    "force",
    "set",
    "reset",
    "pragma",
    "call",
    "checkpoint",
    "vacuum",
    "analyze",
    "grant",
    "revoke",
    "begin",
    "commit",
    "rollback",
    "use",
    "lock",
    "listen",
    "notify",
    "prepare",
    "execute",
    "deallocate",
    "do",
    "comment",
    "refresh",
    "secret",
    "into",
}
FORBIDDEN_FUNCTIONS = re.compile(
    r"\b(read_\w+|\w*_scan|glob|parquet_\w+|sniff_csv|json_\w*_read|from_json_file|duckdb_secrets|"
    r"pg_\w+|lo_\w+|dblink\w*|query_table|query|current_setting|set_config|json_execute_serialized_sql|"
    r"getvariable|setvariable|sqlite_\w+|postgres_\w+|mysql_\w+|iceberg_\w+|delta_\w+|httpfs\w*|"
    r"pg_sleep\w*|load_extension|write_\w+)\s*\(",
    re.IGNORECASE,
)
ALLOWED_START = re.compile(
    r"^\s*\(*\s*(select|with|values|from|table|describe|summarize|show)\b", re.IGNORECASE
)


class QueryRefused(Exception):
    """A query the console will not run; the message says why, for the user."""


def _strip(query: str) -> str:
    """The query with comments removed and string literals blanked, so checks see only SQL words."""
    out, i, n = [], 0, len(query)
    while i < n:
        c = query[i]
        if query.startswith("--", i):
            j = query.find("\n", i)
            i = n if j < 0 else j
        elif query.startswith("/*", i):
            j = query.find("*/", i + 2)
            if j < 0:
                raise QueryRefused("unterminated /* comment")
            i = j + 2
            out.append(" ")
        elif c in "'\"":
            j = i + 1
            while True:
                j = query.find(c, j)
                if j < 0:
                    raise QueryRefused("unterminated quoted string")
                if query.startswith(c * 2, j):
                    j += 2
                    continue
                break
            # A quoted identifier keeps its name (lower-cased, as a bare word) so the checks see
            # `"read_csv"(...)` as read_csv(...); string literals are blanked.
            out.append("''" if c == "'" else " " + re.sub(r"\W", "_", query[i + 1 : j].lower()) + " ")
            i = j + 1
        elif c == "$" and re.match(r"\$\w*\$", query[i:]):
            raise QueryRefused("dollar-quoted strings are not allowed")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def check_query(query: str) -> str:
    """Raise QueryRefused unless `query` is a single read-only SELECT; return it without a trailing ';'."""
    if not query or not query.strip():
        raise QueryRefused("empty query: write a SELECT over the documented views and tables")
    bare = _strip(query).strip()
    while bare.endswith(";"):
        bare = bare[:-1].rstrip()
    if ";" in bare:
        raise QueryRefused("only one statement is allowed; remove the ';' between statements")
    if not ALLOWED_START.match(bare):
        raise QueryRefused("only SELECT queries are allowed (start with SELECT or WITH)")
    words = {w.lower() for w in re.findall(r"[A-Za-z_]+", bare)}
    bad = sorted(words & FORBIDDEN_WORDS)
    if bad:
        raise QueryRefused(f"read-only console: {', '.join(w.upper() for w in bad)} is not allowed")
    m = FORBIDDEN_FUNCTIONS.search(bare)
    if m:
        raise QueryRefused(f"{m.group(1)}() reads files, the network or settings and is not allowed here")
    if re.search(r"\bfrom\s+''", bare, re.IGNORECASE) or re.search(r"\bjoin\s+''", bare, re.IGNORECASE):
        raise QueryRefused("reading files by path is not allowed; query the documented views and tables")
    return query.strip().rstrip(";").strip()


def _duckdb_connect(path: str):
    if not Path(path).exists():
        raise QueryRefused(f"no database at {path}; run a job first (make demo, or kdplatform run JOB)")
    return db.duckdb_connect(path, lock_configuration=True)


def run_readonly(url: str, query: str, *, max_rows: int = 10_000, timeout_s: float = 30.0) -> pd.DataFrame:
    """Run one read-only query and return at most `max_rows` rows (df.attrs['truncated'] says if cut)."""
    sql = check_query(query)
    u = make_url(url)
    if u.get_backend_name() == "duckdb":
        if not u.database or u.database == ":memory:":
            raise QueryRefused("the console needs a database file")
        conn = _duckdb_connect(u.database)
        timer = threading.Timer(timeout_s, conn.interrupt)
        timer.start()
        try:
            cur = conn.execute(sql)
            cols = [d[0] for d in cur.description] if cur.description else []
            rows = cur.fetchmany(max_rows + 1)
        except Exception as e:
            if not timer.is_alive():
                raise QueryRefused(
                    f"query ran longer than the {timeout_s:g} s limit and was stopped"
                ) from None
            raise QueryRefused(f"query failed: {e}") from None
        finally:
            timer.cancel()
            conn.close()
    else:
        engine = db.make_engine(url)
        try:
            with engine.connect() as conn:
                if engine.dialect.name == "postgresql":
                    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                    conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}")
                try:
                    res = conn.execute(text(sql))
                    cols = list(res.keys())
                    rows = res.fetchmany(max_rows + 1)
                except Exception as e:
                    if "statement timeout" in str(e):
                        raise QueryRefused(f"query ran longer than the {timeout_s:g} s limit") from None
                    raise QueryRefused(f"query failed: {e}") from None
                finally:
                    conn.rollback()
        finally:
            engine.dispose()
    df = pd.DataFrame([tuple(r) for r in rows[:max_rows]], columns=cols)
    df.attrs["truncated"] = len(rows) > max_rows
    return df


def console(
    url: str, query: str, *, max_rows: int = 10_000, timeout_s: float = 30.0, wait_s: float = 20.0
) -> pd.DataFrame:
    """run_readonly for the dashboard: QueryRefused passes through; on DuckDB it opens its connection when
    no page connection of this process is open (see store.locking.Gate) and waits out a job's write lock
    (both before the query runs, so retrying is safe)."""
    u = make_url(url)
    if u.get_backend_name() != "duckdb" or not u.database or u.database == ":memory:":
        return run_readonly(url, query, max_rows=max_rows, timeout_s=timeout_s)

    def once() -> pd.DataFrame:
        try:
            with db.gate(u.database).console(wait_s, "the database"):
                return run_readonly(url, query, max_rows=max_rows, timeout_s=timeout_s)
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
