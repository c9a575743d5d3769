"""Mechanism: suffix log-probability against mean suffix entropy of each model on the examples the
teacher and a baseline seed memorized but no student did, and on the student's memorized examples
(Figure 8); KDE of baseline perplexity against teacher-student KLD for three categories (Figure 17)."""

from __future__ import annotations

import altair as alt
import common
import plots
import streamlit as st

from kdplatform.analysis import mia
from kdplatform.store.schema import Role

job_id, name = common.scanned_job("Mechanism")

SUBSETS = {
    "teacher_baseline_not_student": "memorized by teacher and baseline, not the student (left)",
    "student_memorized": "memorized by the student (right)",
}
default = common.load("student_group", job_id)
group = common.pick_group(job_id, "Student group", key="mech_group", default=default)
if group is None:
    st.info(f"Job `{name}` has no scanned students.")
    st.stop()

points = common.section(
    "Entropy vs log-probability (Figure 8)",
    "mechanism_points",
    job_id,
    group,
    missing=(
        "No examples in either subset: the job needs a scanned teacher and baseline, and memorized examples."
    ),
)
if points is not None:
    shown = points.assign(subset=points["subset"].map(SUBSETS))
    st.altair_chart(
        alt.Chart(shown)
        .mark_circle(size=18, opacity=0.55)
        .encode(
            x=alt.X("suffix_entropy:Q", title="mean suffix entropy (nats)"),
            y=alt.Y("suffix_logprob:Q", title="suffix log-probability"),
            color=alt.Color(
                "model:N",
                scale=alt.Scale(
                    domain=[Role.TEACHER, Role.BASELINE, Role.STUDENT],
                    range=["#2ca02c", "#d62728", "#1f77b4"],
                ),
            ),
            tooltip=["example_id", "model", "suffix_logprob", "suffix_entropy"],
        )
        .properties(height=320, width=380)
        .facet(column=alt.Column("subset:N", title=None)),
    )
    st.dataframe(
        mia.mechanism_means(points),
        hide_index=True,
        column_config={
            c: st.column_config.NumberColumn(format="%.3f")
            for c in ("suffix_logprob", "suffix_logprob_std", "suffix_entropy", "suffix_entropy_std")
        },
    )
    st.caption(f"Values are means over each role's seeds; student = {group.label}.")

cats = common.section(
    "Baseline perplexity vs teacher-student KLD (Figure 17)",
    "kld_categories",
    job_id,
    group,
    missing="Neither the baseline nor the student memorized an example.",
)
if cats is not None:
    counts = cats["category"].value_counts()
    cols = st.columns(3)
    for i, cat in enumerate(["baseline & student", "baseline only", "student only"]):
        cols[i].metric(cat, f"{int(counts.get(cat, 0)):,}")
    left, right = st.columns([3, 2])
    left.pyplot(
        plots.kde_contours(
            cats,
            "baseline_ppl",
            "teacher_student_kld",
            "category",
            logx=True,
            xlabel="log10 baseline perplexity",
            ylabel="teacher-student KLD",
        ),
        clear_figure=True,
    )
    right.caption(
        "Gaussian-KDE contours per category; a category with fewer than five examples is drawn as points. "
        "Baseline perplexity is the mean over baseline seeds, KLD the mean over the group's seeds of "
        "KL(teacher ‖ student) on the suffix."
    )

with st.expander("Membership-inference view (A.5): one feature separating student from baseline-only"):
    st.caption("Reads the group's whole example_features table (slow on large jobs), so it runs on request.")
    if st.button("Compute feature AUCs", key="mia_go"):
        st.dataframe(common.load("mia", job_id, group), hide_index=True)
