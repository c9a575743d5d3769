"""Overlap: a three-set Venn diagram for any three runs or pooled seeds (Figures 4, 10, 11, 13), the
pairwise overlap matrix, inheritance counts, and the seed-consistency heatmap (Figure 3)."""

from __future__ import annotations

import common
import pandas as pd
import plots
import streamlit as st

job_id, name = common.scanned_job("Overlap")

REGION_TEXT = {
    "A": "A only",
    "B": "B only",
    "C": "C only",
    "AB": "A and B, not C",
    "AC": "A and C, not B",
    "BC": "B and C, not A",
    "ABC": "all three",
}
PRESETS = [
    "Figure 4: teacher · baseline · student",
    "Figure 10: soft student · hard student · baseline",
    "Figure 11: teacher · baseline · hard student",
    "Any three runs (Figure 13 across jobs)",
]

st.subheader("Venn diagram of memorized sets")
preset = st.radio("Sets", PRESETS, horizontal=True, key="venn_preset")
counts, labels = None, None
if preset == PRESETS[0]:
    jv = common.load("job_venn", job_id)
    if jv is None:
        st.info(f"Job `{name}` lacks a scanned teacher, baseline or student.")
    else:
        counts = jv.counts
        labels = (
            f"teacher ({len(jv.teacher)} run)",
            f"baseline ({len(jv.baseline)} seeds pooled)",
            jv.student.label,
        )
        c = st.columns(3)
        c[0].metric("inherited (teacher ∩ student ∖ baseline)", jv.n_inherited)
        c[1].metric(
            "student memorization that is easy",
            common.fmt_pct(jv["ABC"] / jv.n_student if jv.n_student else None),
        )
        c[2].metric("teacher ∩ baseline not memorized by the student", jv["AB"])
elif preset in PRESETS[1:3]:
    sh = common.load("soft_vs_hard", job_id)
    if sh is None:
        st.info(f"Job `{name}` has no scanned hard-KD student: add `hard_student:` to its yaml and run it.")
    elif preset == PRESETS[1]:
        counts = sh.soft_hard_baseline
        labels = (f"soft: {sh.soft.label}", f"hard: {sh.hard.label}", "baseline (seeds pooled)")
    else:
        counts = sh.teacher_baseline_hard
        labels = ("teacher", "baseline (seeds pooled)", f"hard: {sh.hard.label}")
else:
    across = st.toggle("Offer runs of every job (cross-family, Figure 13)", value=False, key="venn_all_jobs")
    sets = common.load("run_sets", None if across else job_id)
    keys = list(sets["key"])
    text = dict(zip(sets["key"], sets["label"], strict=True))
    ids = dict(zip(sets["key"], sets["run_ids"], strict=True))
    cols = st.columns(3)
    picked = [
        cols[i].selectbox(
            f"Set {'ABC'[i]}", keys, index=min(i, len(keys) - 1), format_func=text.get, key=f"venn_{i}"
        )
        for i in range(3)
    ]
    if len(keys) < 1:
        st.info("No scanned runs to compare.")
    else:
        counts = common.load("venn3", *[tuple(ids[k]) for k in picked])
        labels = tuple(text[k] for k in picked)
if counts is not None and labels is not None:
    left, right = st.columns([3, 2])
    left.pyplot(plots.venn3(counts, labels), clear_figure=True)
    table = counts.assign(meaning=[REGION_TEXT[r] for r in counts["region"]])[["region", "meaning", "count"]]
    right.dataframe(table, hide_index=True)
    right.caption(
        "A, B, C: " + " · ".join(labels) + ". Seeds of a pooled set count when any seed memorized it."
    )

st.subheader("Pairwise overlap")
value = st.radio(
    "Cell",
    ["n_both", "jaccard"],
    horizontal=True,
    key="overlap_value",
    format_func={"n_both": "|A ∩ B| (diagonal |A|)", "jaccard": "Jaccard |A ∩ B| / |A ∪ B|"}.get,
)
matrix = common.load("overlap_matrix", job_id, value=value)
st.altair_chart(plots.overlap_heatmap(matrix, value), width="content")
with st.expander("Every pair (run_overlap view)"):
    st.dataframe(common.load("overlap", job_id), hide_index=True)

inh = common.section(
    "Inheritance",
    "inheritance",
    job_id,
    missing=f"Job `{name}` needs a scanned teacher, baseline and student for inheritance counts.",
)
if inh is not None:
    common.number_table(
        inh,
        [
            "teacher_run_id",
            "student_run_id",
            "baseline_run_id",
            "student_role",
            "student_seed",
            "student_objective",
            "student_temperature",
            "baseline_seed",
            "n_teacher",
            "n_student",
            "n_baseline",
            "n_inherited",
            "n_teacher_not_baseline",
            "share_of_student",
            "share_of_teacher_not_baseline",
        ],
        {"share_of_student": "%.4f", "share_of_teacher_not_baseline": "%.4f"},
    )
    st.caption(
        "n_inherited = |teacher ∩ student ∖ baseline of the student's seed| (the paper's 18 of 1,955)."
    )

st.subheader("Seed consistency (Figure 3)")
default = common.load("student_group", job_id)
group = common.pick_group(job_id, "Student group", key="consistency_group", default=default)
if group is None:
    st.info(f"Job `{name}` has no scanned students.")
else:
    m = common.load("consistency_matrix", job_id, group)
    m.attrs = {}  # holds the Group, which Arrow cannot serialise
    if m.empty:
        st.info("No baseline runs to compare the students' seeds with.")
    else:
        st.altair_chart(plots.consistency_heatmap(m), width="content")
        st.dataframe(pd.DataFrame(m.to_numpy(), index=m.index, columns=m.columns))
        st.caption(f"{group.label}; every scanned example counts once, the (0, 0) cell included.")
