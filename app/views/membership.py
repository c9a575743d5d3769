"""Membership inference: each attack's AUC and TPR at low FPR of every scanned model, members of D against
held-out non-members (the view membership_inference); (n, p)-extraction rates and memorization by prefix
length from the same scans. Not the paper's A.5 feature AUC (that is on the Mechanism page's data)."""

from __future__ import annotations

import altair as alt
import common
import streamlit as st

from kdplatform.analysis.groups import config_parts

job_id, name = common.scanned_job("Membership inference")

NO_HELDOUT = (
    f"Job `{name}` has no held-out scores: its scans predate held-out non-members, or it sets "
    "`data.heldout_examples: 0`. Run it again with the default to scan them."
)
FORMATS = {c: "%.3f" for c in ("auc", "auc_mean", "auc_std", "tpr_at_1pct_fpr", "tpr_at_01pct_fpr")}
FORMATS |= {c: "%.3f" for c in ("tpr_1pct_mean", "tpr_1pct_std", "tpr_01pct_mean", "rate")}
FORMATS["rate_pct"] = "%.4f"

summary = common.section("Teacher, baseline and students", "membership_summary", job_id, missing=NO_HELDOUT)
if summary is not None:
    labels = [" ".join([r.role, *config_parts(r.objective, r.temperature)]) for r in summary.itertuples()]
    shown = summary.assign(model=labels)
    st.altair_chart(
        alt.Chart(shown)
        .mark_bar()
        .encode(
            x=alt.X("model:N", sort=None, title=None),
            y=alt.Y("auc_mean:Q", title="ROC AUC (mean over seeds)", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("model:N", legend=None),
            column=alt.Column("attack:N", sort=None, title=None),
            tooltip=["role", "objective", "temperature", "attack", "runs", "auc_mean", "tpr_1pct_mean"],
        )
        .properties(height=240, width=120),
    )
    common.number_table(summary, list(summary.columns), FORMATS)

EXTRACTION = (
    "Share of examples that n samples from the prefix reproduce with probability at least p; member = "
    "FALSE rows are the held-out non-members (the rate of text the model never saw)."
)
APPROX = (
    "Members whose greedy continuation reproduces at least scan.approximate_min_match suffix tokens: the "
    "share of suffix positions right and the normalized edit distance (token ids) of the free continuation."
)
APPROX_MISSING = "No approximate stage: set scan.approximate_min_match in the job's spec."
TABLES = (
    ("Per run", "membership_inference", NO_HELDOUT, None),
    ("(n, p)-extraction", "extraction_rates", "No extraction scores: the scans predate them.", EXTRACTION),
    ("Memorization by prefix length", "prefix_rates", "No scans to show.", None),
    ("Approximate memorization", "approximate_rates", APPROX_MISSING, APPROX),
)
for title, call, missing, caption in TABLES:
    df = common.section(title, call, job_id, missing=missing)
    if df is not None:
        if caption:
            st.caption(caption)
        common.number_table(df, list(df.columns), FORMATS)
