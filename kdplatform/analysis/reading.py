"""Reading the study's database: the `Db` every analysis function takes, a connection from it, and one
query into a DataFrame.

`db` is an SQLAlchemy Engine or Connection or a database URL (opened read-only). The SQL the analysis
modules send is plain and portable (DuckDB and PostgreSQL); the views it reads are documented in
kdplatform/store/views/*.sql.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, bindparam, text

from kdplatform.store import materialized
from kdplatform.store.db import RUN_HINT, DatabaseUnavailable  # noqa: F401  (the dashboard's way in)
from kdplatform.store.db import reader_engine as engine  # noqa: F401  (read-only, waits out a writer)
from kdplatform.store.views import part

MEMBER_SCANS = f"(\n{part('member_scan_results')}\n)"
"""scan_results of members of D only, as a subquery (`FROM {MEMBER_SCANS} s`): held-out non-members are
scanned too (for membership inference) and every analysis over D leaves them out, as the views do."""

Db = Engine | Connection | str
RunSet = int | Sequence[int]
"""A run id or several: several are pooled (their union), as the paper pools seeds."""


@contextmanager
def connect(db: Db) -> Iterator[Connection]:
    """A connection from whatever the caller holds; a URL is opened read-only and closed afterwards."""
    if isinstance(db, Connection):
        yield db
        return
    if isinstance(db, str):
        from kdplatform.store.db import make_engine

        engine = make_engine(db, read_only=True)
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            engine.dispose()
        return
    with db.connect() as conn:
        yield conn


def read(db: Db, sql: str, **params: Any) -> pd.DataFrame:
    """Run one query; list or tuple parameters expand for `IN :name`."""
    stmt = text(sql)
    lists = [k for k, v in params.items() if isinstance(v, list | tuple)]
    if lists:
        stmt = stmt.bindparams(*[bindparam(k, expanding=True) for k in lists])
        params = {k: list(v) if k in lists else v for k, v in params.items()}
    with connect(db) as conn:
        res = conn.execute(stmt, params)
        if conn.dialect.name == "duckdb":
            # Columnar fetch: a million per-example rows in a tenth of a second instead of ten seconds.
            return res.cursor.df()
        return pd.DataFrame([tuple(r) for r in res.fetchall()], columns=list(res.keys()))


def read_job(db: Db, job_id: int, sql: str, **params: Any) -> pd.DataFrame:
    """read() of a query about one job, bound as `:j`: each view of materialized.MATERIALIZED that it
    reads (`FROM view` or `JOIN view`) is read from the job's copy while that is fresh (the view itself
    otherwise), checked in the query's own connection. Every reference to such a view must be filtered on
    `job_id = :j`: the copy holds the jobs refreshed so far."""
    with connect(db) as conn:
        for view in materialized.MATERIALIZED:
            pattern = re.compile(rf"\b(FROM|JOIN)(\s+){view}\b", re.IGNORECASE)
            if pattern.search(sql):
                sql = pattern.sub(rf"\1\2{materialized.source(conn, view, job_id)}", sql)
        return read(conn, sql, j=job_id, **params)


def fresh(db: Db, view: str, job_id: int) -> bool:
    """Whether the job's copy of `view` is fresh now (read_job would read it)."""
    with connect(db) as conn:
        return materialized.source(conn, view, job_id) != view


def none_if_null(v: Any) -> Any:
    """A value read back from SQL with NULL as None: DataFrames hold it as None, NaN or pd.NA."""
    return None if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else v
