"""SQL console: one read-only SELECT over the documented views and tables, shown and downloadable as CSV.

The query goes through kdplatform.sql.console (run_readonly), the function behind `kdplatform sql`: the
database's parser refuses anything but one SELECT, and file, network or settings functions, with a
message; the connection is read-only (DuckDB: external access disabled; PostgreSQL: a read-only
transaction); long queries are stopped and results capped in rows and bytes."""

from __future__ import annotations

import common
import pandas as pd
import streamlit as st

from kdplatform.sql import EXAMPLE_QUERIES, MAX_BYTES, SURFACE, QueryRefused, console
from kdplatform.store.errors import DatabaseUnavailable

MAX_ROWS = 10_000
TIMEOUT_S = 30.0

st.title("SQL console")
if not common.database_ready():
    st.stop()


def _use_example() -> None:
    st.session_state["console_sql"] = EXAMPLE_QUERIES[st.session_state["console_example"]]


if "console_sql" not in st.session_state:
    st.session_state["console_sql"] = next(iter(EXAMPLE_QUERIES.values()))
st.selectbox("Start from an example", list(EXAMPLE_QUERIES), key="console_example", on_change=_use_example)
with st.form("console"):
    query = st.text_area("Query (one SELECT or WITH statement)", key="console_sql", height=160)
    max_rows = st.number_input("Row limit", 1, MAX_ROWS, 1_000, step=100, key="console_max_rows")
    run = st.form_submit_button("Run", type="primary")

if run:
    try:
        df = console(
            common.database_url(), query, max_rows=int(max_rows), timeout_s=TIMEOUT_S, max_bytes=MAX_BYTES
        )
        st.session_state["console_result"] = {
            "query": query,
            "df": df,
            "truncated": df.attrs.get("truncated"),
        }
        st.session_state.pop("console_error", None)
    except QueryRefused as e:
        st.session_state["console_error"] = str(e)
        st.session_state.pop("console_result", None)
    except DatabaseUnavailable as e:
        st.session_state["console_error"] = str(e)
        st.session_state.pop("console_result", None)

if err := st.session_state.get("console_error"):
    st.error(f"Refused: {err}")
elif res := st.session_state.get("console_result"):
    df: pd.DataFrame = res["df"]
    note = {
        "rows": f" (cut at the row limit of {len(df):,})",
        "bytes": f" (cut at the result limit of {MAX_BYTES / 1e6:g} MB)",
    }.get(res["truncated"] or "", "")
    st.caption(f"{len(df):,} rows{note}")
    st.dataframe(df, hide_index=True)
    st.download_button(
        "Download CSV",
        df.to_csv(index=False).encode(),
        file_name="kdplatform-query.csv",
        mime="text/csv",
        key="console_csv",
    )

with st.expander("Documented views and tables"):
    st.dataframe(
        pd.DataFrame({"name": list(SURFACE), "what it holds": list(SURFACE.values())}),
        hide_index=True,
    )
    st.caption(
        "Read-only: one SELECT/WITH statement, no writes, ATTACH, COPY, file or network readers, "
        "extensions or "
        f"settings; stopped after {TIMEOUT_S:g} s; at most {MAX_ROWS:,} rows and {MAX_BYTES / 1e6:g} MB. "
        "The same function serves "
        "`kdplatform sql QUERY`."
    )
