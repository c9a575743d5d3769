"""Read-only queries behind the dashboard that kdplatform.analysis.queries does not already offer: jobs,
runs and their lineage, checkpoints (Table 1), sampled scatter data, classifier curves, the example
browser, and the SQL console with its retries.

Every function takes `db` as queries does (an Engine, a Connection or a URL) and returns a DataFrame or a
small dict; the SQL is portable between DuckDB and PostgreSQL and aggregates or samples in the database,
so a page stays quick on a million examples per run. `engine(url)` is the dashboard's way in: read-only,
external access off on DuckDB, and it waits out a running job's write lock instead of failing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pandas as pd
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

T = TypeVar("T")

# The same configuration kdplatform.sql opens DuckDB with: one process may hold a file under a single
# configuration, so the pages and the console must agree or each would lock the other out.
DUCKDB_CONFIG = {
    "enable_external_access": False,
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
}
RUN_HINT = "run a job first: `make demo` (the quickstart) or `kdplatform run jobs/smoke.yaml`"


class DatabaseUnavailable(Exception):
    """No database, no schema yet, or a job held the write lock past the wait; the message says what to do."""


# ------------------------------------------------------------------------------------------- engine
class _Transient(Exception):
    """A failure before the query ran that a retry may clear."""


def _is_transient(e: BaseException) -> bool:
    """A job's write lock, or another connection of this process opened with a different configuration."""
    if isinstance(e, _Transient):
        return True
    msg = str(e).lower()
    return (
        ("lock" in msg and "conflict" in msg)
        or "could not set lock" in msg
        or "different configuration" in msg
    )


def _retry(fn: Callable[[], T], wait_s: float, what: str) -> T:
    deadline, delay = time.monotonic() + wait_s, 0.05
    while True:
        try:
            return fn()
        except Exception as e:
            if not _is_transient(e):
                raise
            if time.monotonic() + delay > deadline:
                raise DatabaseUnavailable(
                    f"{what} is busy: a job is writing to it. The page shows again once the write is done "
                    f"(DuckDB allows one writer); reload in a few seconds. ({e})"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


class _Gate:
    """Orders a process's DuckDB connections to one file around the console.

    kdplatform.sql.run_readonly runs `SET lock_configuration = true` on each connection it opens; DuckDB
    keeps one instance per file while any connection is open, so that SET fails whenever another
    connection is open on an instance a console connection already locked. The console therefore opens
    its connection when no page connection is open (new ones wait meanwhile), and consoles run one at a
    time; page connections share freely. Waits are bounded by `wait_s`.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pages = 0
        self._console = False
        self._console_waiting = 0

    def page_open(self, wait_s: float, what: str) -> None:
        deadline = time.monotonic() + wait_s
        with self._cond:
            while self._console or self._console_waiting:
                if not self._cond.wait(timeout=max(0.0, deadline - time.monotonic())):
                    raise DatabaseUnavailable(f"{what} is busy with a console query; reload in a few seconds")
            self._pages += 1

    def page_close(self) -> None:
        with self._cond:
            self._pages -= 1
            self._cond.notify_all()

    @contextmanager
    def console(self, wait_s: float, what: str) -> Iterator[None]:
        deadline = time.monotonic() + wait_s
        with self._cond:
            self._console_waiting += 1
            try:
                while self._console or self._pages:
                    if not self._cond.wait(timeout=max(0.0, deadline - time.monotonic())):
                        raise DatabaseUnavailable(f"{what} is busy; run the query again in a few seconds")
                self._console = True
            finally:
                self._console_waiting -= 1
                self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                self._console = False
                self._cond.notify_all()


_gates: dict[str, _Gate] = {}
_gates_lock = threading.Lock()


def _gate(path: str) -> _Gate:
    key = str(Path(path).resolve())
    with _gates_lock:
        return _gates.setdefault(key, _Gate())


def engine(url: str, *, wait_s: float = 20.0) -> Engine:
    """A read-only engine over `url` whose connections are short-lived (NullPool).

    On DuckDB each connection opens the file read-only with external access disabled and retries for up to
    `wait_s` while a job holds the write lock, then raises DatabaseUnavailable; a missing file raises it at
    once. Other backends get kdplatform.store.db.make_engine(url, read_only=True).
    """
    from kdplatform.store.db import DatabaseError, make_engine

    try:
        u = make_url(url)
    except Exception as e:
        raise DatabaseUnavailable(
            f"{url!r} is not a database URL (e.g. duckdb:///runs/x/kdp.duckdb): {e}"
        ) from None
    if u.get_backend_name() != "duckdb":
        try:
            return make_engine(url, read_only=True)
        except DatabaseError as e:
            raise DatabaseUnavailable(str(e)) from None
    if not u.database or u.database == ":memory:":
        raise DatabaseUnavailable("the dashboard needs a database file, not an in-memory database")
    path = Path(u.database)
    if not path.exists():
        raise DatabaseUnavailable(f"no database at {path}: {RUN_HINT}")
    gate, what = _gate(str(path)), f"database {path}"

    def creator():
        import duckdb

        gate.page_open(wait_s, what)
        try:
            conn = _retry(
                lambda: duckdb.connect(str(path), read_only=True, config=dict(DUCKDB_CONFIG)), wait_s, what
            )
        except BaseException:
            gate.page_close()
            raise
        return _page_connection(conn, gate)

    return create_engine(u, creator=creator, poolclass=NullPool)


def _page_connection(conn, gate: _Gate):
    """duckdb-sqlalchemy's connection wrapper that tells the gate when it closes."""
    from duckdb_sqlalchemy import ConnectionWrapper

    class PageConnection(ConnectionWrapper):
        _released = False

        def close(self) -> None:
            try:
                conn.close()
            finally:
                if not self._released:
                    self._released = True
                    gate.page_close()

    return PageConnection(conn)


def console(
    url: str, query: str, *, max_rows: int = 10_000, timeout_s: float = 30.0, wait_s: float = 20.0
) -> pd.DataFrame:
    """kdplatform.sql.run_readonly for the dashboard: QueryRefused passes through; on DuckDB it opens its
    connection when no page connection of this process is open (see _Gate) and waits out a job's write
    lock (both before the query runs, so retrying is safe)."""
    from kdplatform.sql import run_readonly

    u = make_url(url)
    if u.get_backend_name() != "duckdb" or not u.database or u.database == ":memory:":
        return run_readonly(url, query, max_rows=max_rows, timeout_s=timeout_s)

    def once() -> pd.DataFrame:
        try:
            with _gate(u.database).console(wait_s, "the database"):
                return run_readonly(url, query, max_rows=max_rows, timeout_s=timeout_s)
        except Exception as e:
            if "configuration has been locked" in str(e):
                raise _Transient(str(e)) from e
            raise

    return _retry(once, wait_s, "the database")


# ------------------------------------------------------------------------------------------ the console
SURFACE: dict[str, str] = {
    "memorization": "per (run, example): memorized, match_len, suffix_logprob, suffix_entropy, ppl, "
    "job, role, seed, temperature, objective, model",
    "memorized_examples": "(run_id, example_id, dataset_id) for every memorized example",
    "memorization_rates": "per run: examples, memorized, rate_pct (Table 2)",
    "scanned_runs": "per scanned model: job, dataset, role, seed, temperature, objective, family, counts",
    "run_overlap": "every ordered pair of a job's runs: n_a, n_b, n_both, n_a_only, n_b_only, jaccard",
    "inherited_examples": "memorized by teacher and student, not the baseline of the student's seed",
    "inheritance": "per (teacher, student, baseline): n_inherited and its shares",
    "easy_examples": "memorized by the teacher and a baseline seed: zlib entropy, teacher/baseline ppl",
    "seed_consistency": "per example and student group: baseline and student seeds that memorized it",
    "example_features": "the classifier's features per example and student group",
    "classifier_summary": "mean and std over trials of each metric and coefficient",
    "jobs": "one row per job (name, spec JSON, workdir, MLflow run)",
    "runs": "one row per stage: kind, role, seed, temperature, objective, status, timings, MLflow run",
    "run_inputs": "lineage edges: dataset, teacher, model, reference",
    "datasets": "tokenized datasets: tokenizer, lengths, sizes, parent",
    "models": "model name, family, parameters",
    "checkpoints": "per epoch: train_loss, val_loss, val_ppl, is_final",
    "examples": "per example: text, prefix_text, suffix_text, zlib_entropy, zlib_bits_per_token",
    "scan_results": "per (trained run, example): memorized, match_len, suffix_logprob, suffix_entropy, ppl",
    "example_kld": "per (run, reference run, example): mean suffix KL(reference || model)",
    "greedy_continuations": "greedy suffix tokens and text of (near-)memorized examples",
    "classifier_trials": "test metrics of each classifier trial",
    "classifier_coefficients": "standardized coefficient of each feature in each trial",
    "example_risk": "risk score and prediction per example of a classifier run",
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
