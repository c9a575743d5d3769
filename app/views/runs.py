"""Runs and lineage: jobs, runs with role/seed/temperature/objective/status/timings and MLflow links,
the lineage graph dataset → teacher → students (and hard-KD data), checkpoints (Table 1)."""

from __future__ import annotations

import altair as alt
import common
import streamlit as st

from kdplatform.analysis import lineage

st.title("Runs and lineage")
if not common.database_ready():
    st.stop()

jobs = common.load("jobs")
st.subheader("Jobs")
st.dataframe(
    jobs,
    hide_index=True,
    column_config={
        "seconds": st.column_config.NumberColumn(format="%.1f"),
        "workdir": st.column_config.TextColumn(),
    },
)

job_id, name = common.job()
runs = common.load("runs", job_id)
links = common.load("mlflow_links", job_id, common.mlflow_ui())
st.subheader(f"Runs of job `{name}`")
if runs.empty:
    st.info(f"Job `{name}` has no runs yet: `kdplatform run <the job's yaml>` starts them.")
    st.stop()
urls = links.runs.set_index("run_id")
shown = runs.assign(mlflow=runs["run_id"].map(urls["run_url"]), model=runs["run_id"].map(urls["model_url"]))
st.dataframe(
    shown.drop(columns=["mlflow_run_id"]),
    hide_index=True,
    column_config={
        "mlflow": st.column_config.LinkColumn("MLflow", display_text="open run"),
        "model": st.column_config.LinkColumn("LoggedModel", display_text="open model"),
        "seconds": st.column_config.NumberColumn(format="%.1f"),
        "n_params": st.column_config.NumberColumn(format="%d"),
    },
)
st.caption(
    f"MLflow links open {links.ui} (set `--mlflow-ui URL` or $KDP_MLFLOW_UI)"
    + (f"; {links.hint}." if links.hint else ".")
)
failed = runs[runs["status"] == "failed"]
for r in failed.itertuples():
    st.error(f"Run {r.run_id} ({r.stage_key}) failed: {r.error or 'no message recorded'}")

st.subheader("Lineage")
scans = st.toggle("Show scan runs", value=False)
edges = common.load("lineage", job_id)
data = common.load("datasets", job_id)
st.graphviz_chart(lineage.lineage_dot(runs, edges, data, scans=scans))
st.caption(
    "Boxes are datasets, ellipses runs (green teacher, red baseline, blue students, purple hard-KD student); "
    "dashed runs are not done. Edges are the run_inputs table."
)
with st.expander("Datasets"):
    st.dataframe(data, hide_index=True)

final = common.section(
    "Checkpoints (Table 1)",
    "checkpoints",
    job_id,
    final_only=True,
    missing="No checkpoints yet: training stages write one per epoch.",
)
if final is not None:
    common.number_table(
        final,
        [
            "run_id",
            "role",
            "seed",
            "objective",
            "temperature",
            "model",
            "n_params",
            "epoch",
            "val_loss",
            "val_ppl",
        ],
        {"val_loss": "%.4f", "val_ppl": "%.2f", "n_params": "%d"},
    )
    allck = common.load("checkpoints", job_id)
    allck = allck.assign(run=[f"{r.role} s{r.seed} (#{r.run_id})" for r in allck.itertuples()])
    chart = (
        alt.Chart(allck)
        .mark_line(point=True)
        .encode(
            x=alt.X("epoch:Q"),
            y=alt.Y("val_loss:Q", title="validation loss", scale=alt.Scale(zero=False)),
            color=alt.Color("run:N"),
            tooltip=["run", "epoch", "train_loss", "val_loss", "val_ppl"],
        )
        .properties(height=300)
    )
    st.altair_chart(chart, width="stretch")
