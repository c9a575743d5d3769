"""kdplatform dashboard: the paper's figures and tables for any job, an example browser and a read-only
SQL console, each page a few library queries (kdplatform.analysis) and a chart.

make dashboard                                        # the quickstart's database, on localhost:8501
kdplatform dashboard jobs/smoke.yaml --address 0.0.0.0   # a team server (streamlit's --server.address)
streamlit run app/Home.py -- --db duckdb:///runs/quickstart/kdp.duckdb [--mlflow-ui http://host:5000]

The URL may also come from $KDP_DATABASE_URL. The app only reads: short-lived read-only connections that
wait while a job writes (DuckDB allows one writer), results cached for 30 s.
"""

from __future__ import annotations

import sys
from pathlib import Path

APP = Path(__file__).resolve().parent
if str(APP) not in sys.path:
    sys.path.insert(0, str(APP))  # pages import common

import common  # noqa: E402
import streamlit as st  # noqa: E402

PAGES = [
    ("views/runs.py", "Runs and lineage", ":material/account_tree:"),
    ("views/memorization.py", "Memorization", ":material/percent:"),
    ("views/overlap.py", "Overlap", ":material/join_inner:"),
    ("views/easy.py", "Easy examples", ":material/scatter_plot:"),
    ("views/classifier.py", "Classifier", ":material/model_training:"),
    ("views/mechanism.py", "Mechanism", ":material/insights:"),
    ("views/membership.py", "Membership inference", ":material/fingerprint:"),
    ("views/evaluation.py", "Utility (lm-eval)", ":material/checklist:"),
    ("views/canaries.py", "Canaries", ":material/pest_control:"),
    ("views/crossjob.py", "Across jobs", ":material/compare_arrows:"),
    ("views/examples.py", "Example browser", ":material/search:"),
    ("views/console.py", "SQL console", ":material/terminal:"),
]


def main() -> None:
    st.set_page_config(page_title="kdplatform", layout="wide")
    pages = [
        st.Page(str(APP / path), title=title, icon=icon, default=i == 0)
        for i, (path, title, icon) in enumerate(PAGES)
    ]
    page = st.navigation(pages)
    common.sidebar()
    page.run()


main()
