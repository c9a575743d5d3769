"""What every page shares: the database URL, cached read-only calls into the library, the job picker,
and the messages shown when there is nothing to draw yet.

Pages call `load("name", *args)`: the named library function (kdplatform.analysis.calls.CALLS, the
table bench/dashboard.py times too) runs on a read-only engine and its result is cached for TTL seconds,
so reruns and other users' views do not hit the database again; a job that is writing makes the call wait
(kdplatform.analysis.reading.engine) and, past the wait, the page says so instead of failing.
"""

from __future__ import annotations

import argparse
import html
import os
from typing import Any

import pandas as pd
import streamlit as st

from kdplatform.analysis import reading
from kdplatform.analysis.calls import CALLS
from kdplatform.analysis.groups import Group
from kdplatform.analysis.reading import DatabaseUnavailable
from kdplatform.store.schema import Role

DEFAULT_DB = "duckdb:///runs/quickstart/kdp.duckdb"
TTL = 30
RUN_HINT = reading.RUN_HINT


def database_url() -> str:
    """`streamlit run app/Home.py -- --db URL`, else $KDP_DATABASE_URL, else the quickstart's database."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--db", default=os.environ.get("KDP_DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--mlflow-ui", default=os.environ.get("KDP_MLFLOW_UI"))
    args, _ = parser.parse_known_args()
    return args.db


def mlflow_ui() -> str | None:
    """`--mlflow-ui URL`, else $KDP_MLFLOW_UI, else None: the job's tracking server, or `mlflow ui`'s."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--mlflow-ui", default=os.environ.get("KDP_MLFLOW_UI"))
    args, _ = parser.parse_known_args()
    return args.mlflow_ui.rstrip("/") if args.mlflow_ui else None


@st.cache_resource(show_spinner=False)
def _engine(url: str):
    # How long a page waits for a writing job before it says the database is busy.
    return reading.engine(url, wait_s=float(os.environ.get("KDP_DB_WAIT_S", "20")))


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=512)
def _cached(name: str, url: str, args: tuple, kwargs: tuple) -> Any:
    return CALLS[name](_engine(url), *args, **dict(kwargs))


def load(name: str, *args: Any, **kwargs: Any) -> Any:
    """CALLS[name](engine, *args, **kwargs), cached; a database that is missing or busy ends the page
    with a message."""
    url = database_url()
    try:
        if name not in ("schema_ready",):
            _engine(url)  # a missing file raises here, before anything is cached
        return _cached(name, url, args, tuple(sorted(kwargs.items())))
    except DatabaseUnavailable as e:
        _engine.clear()
        st.warning(str(e))
        st.stop()


def database_ready() -> bool:
    """Say what to run when there is no database, no schema or no job; True when pages can draw."""
    url = database_url()
    try:
        _engine(url)
    except DatabaseUnavailable as e:
        _engine.clear()
        st.info(f"{e}")
        return False
    if not load("schema_ready"):
        st.info(f"The database at `{url}` has no kdplatform tables yet: {RUN_HINT}.")
        return False
    if load("jobs").empty:
        st.info(f"No jobs in the database at `{url}` yet: {RUN_HINT}.")
        return False
    return True


def sidebar() -> None:
    """The database, the job picker and a refresh button; the chosen job id is st.session_state.job_id."""
    url = database_url()
    st.sidebar.caption(f"database: `{url}`")
    try:
        _engine(url)
        ready = load("schema_ready")
    except DatabaseUnavailable:
        _engine.clear()
        ready = False
    if ready:
        jobs_ = load("jobs")
        if not jobs_.empty:
            names = dict(zip(jobs_["id"].astype(int), jobs_["name"], strict=True))
            ids = list(names)
            if st.session_state.get("job_id") not in ids:
                # ?job=NAME or ?job=ID in the URL picks the job; else the latest one
                wanted = st.query_params.get("job")
                by_name = {v: k for k, v in names.items()}
                pick = by_name.get(wanted) or (int(wanted) if wanted and wanted.isdigit() else None)
                st.session_state["job_id"] = pick if pick in ids else ids[-1]
            st.sidebar.selectbox("Job", ids, format_func=lambda i: f"{names[i]} (#{i})", key="job_id")
    if st.sidebar.button("Refresh data", help=f"results are cached for {TTL} s"):
        _cached.clear()
        st.rerun()


def job() -> tuple[int, str]:
    """The selected job (id, name); ends the page with what to run when there is none."""
    if not database_ready():
        st.stop()
    jobs_ = load("jobs")
    job_id = st.session_state.get("job_id")
    if job_id not in set(jobs_["id"].astype(int)):
        job_id = int(jobs_["id"].iloc[-1])
    name = str(jobs_.loc[jobs_["id"] == job_id, "name"].iloc[0])
    return int(job_id), name


def require_scans(job_id: int, name: str) -> pd.DataFrame:
    """The job's scanned models; ends the page with what to run when the job has none."""
    runs = load("scanned_runs", job_id)
    if runs.empty:
        st.info(
            f"Job `{name}` has no scanned models yet: its scan stages write per-example results "
            f"(`kdplatform run <the job's yaml>` runs or resumes them)."
        )
        st.stop()
    return runs


def scanned_job(title: str) -> tuple[int, str]:
    """A page about the selected job's scanned models: its title, then the job (id, name); ends the page
    with what to run when there is no job or the job has no scanned models."""
    st.title(title)
    job_id, name = job()
    require_scans(job_id, name)
    return job_id, name


def group_label(g: Group | None) -> str:
    return "—" if g is None else g.label


def pick_group(job_id: int, label: str, *, key: str, default: Group | None = None) -> Group | None:
    """A select box over the job's student groups (every student role × objective × temperature)."""
    runs = load("scanned_runs", job_id)
    roles = [r for r in dict.fromkeys(runs["role"]) if isinstance(r, str) and r.startswith(Role.STUDENT)]
    options: list[Group] = [g for r in roles for g in load("groups", job_id, r)]
    if not options:
        return None
    index = next((i for i, g in enumerate(options) if default is not None and g == default), 0)
    return st.selectbox(label, options, index=index, format_func=group_label, key=key)


def section(title: str, name: str, *args: Any, missing: str, **kwargs: Any) -> Any:
    """A page section: its subheader and `load(name, *args, **kwargs)`; None, with `missing` said under
    the subheader, when that gives None or an empty frame."""
    st.subheader(title)
    value = load(name, *args, **kwargs)
    if value is None or (isinstance(value, pd.DataFrame) and value.empty):
        st.info(missing)
        return None
    return value


def number_table(df: pd.DataFrame, columns: list[str], formats: dict[str, str]) -> None:
    """`columns` of `df` as a table without its index, the numbers of a column in `formats` printed with
    that printf format."""
    st.dataframe(
        df[columns],
        hide_index=True,
        column_config={c: st.column_config.NumberColumn(format=f) for c, f in formats.items()},
    )


def fmt_pct(x: float | None) -> str:
    return "–" if x is None or x != x else f"{100 * x:.1f}%"


def esc(s: object) -> str:
    return html.escape("" if s is None else str(s))
