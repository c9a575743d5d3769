"""kdplatform dashboard: memorization per run and the runs' lineage, read with SQL.

make dashboard                      # over the quickstart's database, on localhost:8501
streamlit run app/Home.py -- --db duckdb:///runs/quickstart/kdp.duckdb
"""

from __future__ import annotations

import argparse
import os

import streamlit as st

from kdplatform.sql import QueryRefused, run_readonly

RATES_SQL = """
SELECT j.name AS job, r.run_id, r.role, r.seed, r.temperature, r.objective, r.model_name,
       r.examples, r.memorized, ROUND(r.rate_pct, 3) AS rate_pct
FROM memorization_rates r JOIN jobs j ON j.id = r.job_id
ORDER BY j.name, r.run_id
"""

RUNS_SQL = """
SELECT j.name AS job, r.id AS run_id, r.stage_key, r.kind, r.role, r.seed, r.temperature, r.objective,
       r.status, r.started_at, ROUND(r.seconds, 1) AS seconds, r.mlflow_run_id,
       (SELECT STRING_AGG(t.stage_key, ', ') FROM run_inputs i JOIN runs t ON t.id = i.input_run_id
        WHERE i.run_id = r.id) AS inputs
FROM runs r JOIN jobs j ON j.id = r.job_id
ORDER BY j.name, r.id
"""


def database_url() -> str:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--db", default=os.environ.get("KDP_DATABASE_URL", "duckdb:///runs/quickstart/kdp.duckdb")
    )
    args, _ = parser.parse_known_args()
    return args.db


@st.cache_data(ttl=10, show_spinner=False)
def query(url: str, sql: str):
    return run_readonly(url, sql)


def main() -> None:
    st.set_page_config(page_title="kdplatform", layout="wide")
    st.title("Memorization under knowledge distillation")
    url = database_url()
    st.caption(f"database: `{url}`")
    try:
        rates = query(url, RATES_SQL)
        runs = query(url, RUNS_SQL)
    except QueryRefused as e:
        st.info(f"No results to show yet ({e}). Run a job first: `make demo` or `kdplatform run JOB`.")
        return
    st.subheader("Memorization rate per model (Table 2)")
    if rates.empty:
        st.info("No scans yet. Run a job first: `make demo` or `kdplatform run JOB`.")
    else:
        st.dataframe(rates, hide_index=True)
        st.bar_chart(rates, x="role", y="rate_pct")
    st.subheader("Runs and lineage")
    st.dataframe(runs, hide_index=True)


main()
