"""Utility: the trained models' lm-evaluation-harness scores on the job's `eval:` tasks (the view
eval_scores), per model group with seeds pooled, the paper's section 6 comparison of the hard-KD student
with the baseline, and every run's scores."""

from __future__ import annotations

import altair as alt
import common
import streamlit as st

from kdplatform.analysis.groups import config_parts

st.title("Utility (lm-evaluation-harness)")
job_id, name = common.job()

NO_EVAL = (
    f"Job `{name}` has no lm-evaluation-harness scores: add an `eval:` section (tasks, roles) to its spec "
    "and run it again (`kdplatform run <the job's yaml>` runs only the new eval stages)."
)
FORMATS = {c: "%.4g" for c in ("mean", "std", "stderr_mean", "value", "stderr")}
FORMATS |= {c: "%.4g" for c in ("baseline", "student_hard", "difference")}

summary = common.section("Per model (mean over seeds)", "eval_summary", job_id, missing=NO_EVAL)
if summary is not None:
    labels = [" ".join([r.role, *config_parts(r.objective, r.temperature)]) for r in summary.itertuples()]
    shown = summary.assign(
        model=labels, score=[f"{r.task} {r.metric} ({r.num_fewshot}-shot)" for r in summary.itertuples()]
    )
    st.altair_chart(
        alt.Chart(shown)
        .mark_bar()
        .encode(
            x=alt.X("model:N", sort=None, title=None),
            y=alt.Y("mean:Q", title="score (mean over seeds)"),
            color=alt.Color("model:N", legend=None),
            column=alt.Column("score:N", sort=None, title=None),
            tooltip=["role", "objective", "temperature", "task", "metric", "runs", "mean", "std"],
        )
        .resolve_scale(y="independent")
        .properties(height=240, width=140),
    )
    common.number_table(summary, list(summary.columns), FORMATS)
    cmp = common.section(
        "Hard-KD student vs baseline (section 6)",
        "hard_vs_baseline",
        job_id,
        missing="The job evaluated no hard-KD student and baseline of the same seed.",
    )
    if cmp is not None:
        common.number_table(cmp, list(cmp.columns), FORMATS)
    runs = common.load("eval_scores", job_id)
    st.subheader("Per run")
    common.number_table(runs, list(runs.columns), FORMATS)
