"""Classifier: feature distributions of memorized vs not (Figure 7), metrics and standardized
coefficients mean ± std over trials (Tables 4-7), ROC curve and risk-score histogram of the stored risk
scores, and filtering before vs after (section 4.2)."""

from __future__ import annotations

import altair as alt
import common
import numpy as np
import pandas as pd
import streamlit as st

from kdplatform.analysis.classifier_results import roc_curve, summary_table

job_id, name = common.scanned_job("Classifier")

FEATURES = {
    "zlib_entropy": ("zlib entropy (bytes)", False),
    "baseline_ppl": ("log10 baseline perplexity", True),
    "teacher_baseline_kld": ("teacher-baseline KLD", False),
    "teacher_ppl": ("log10 teacher perplexity", True),
}

cl = common.load("classifier_run", job_id)
default = cl["group"] if cl else common.load("student_group", job_id)

st.subheader("Feature distributions: memorized vs not (Figure 7)")
group = common.pick_group(
    job_id, "Student group (label: memorized by any of its seeds)", key="clf_group", default=default
)
if group is None:
    st.info(f"Job `{name}` has no scanned students.")
else:
    fs = common.load("feature_sample", job_id, group)
    n_pos = int(fs["student_memorized"].sum())
    st.caption(
        f"{n_pos:,} memorized examples (all) and {len(fs) - n_pos:,} others (ids that are multiples of "
        f"{fs.attrs.get('step', 1)}); densities per class, so the sample does not tilt them."
    )
    rows = []
    for col, (title, log) in FEATURES.items():
        vals = fs[col].astype(float)
        vals = np.log10(vals.clip(lower=1e-12)) if log else vals
        ok = np.isfinite(vals)
        if ok.sum() == 0:
            continue
        edges = np.histogram_bin_edges(vals[ok], bins=30)
        for label, mask in (
            ("memorized", fs["student_memorized"]),
            ("not memorized", ~fs["student_memorized"]),
        ):
            v = vals[ok & mask]
            if len(v) == 0:
                continue
            dens, _ = np.histogram(v, bins=edges, density=True)
            rows += [
                {"feature": title, "class": label, "x": (edges[i] + edges[i + 1]) / 2, "density": dens[i]}
                for i in range(len(dens))
            ]
    if rows:
        hist = pd.DataFrame(rows)
        st.altair_chart(
            alt.Chart(hist)
            .mark_area(opacity=0.45, interpolate="step")
            .encode(
                x=alt.X("x:Q", title=None),
                y=alt.Y("density:Q", stack=None),
                color=alt.Color(
                    "class:N",
                    scale=alt.Scale(domain=["memorized", "not memorized"], range=["#d62728", "#7f7f7f"]),
                ),
            )
            .properties(height=170, width=300)
            .facet(facet=alt.Facet("feature:N", title=None), columns=2)
            .resolve_scale(x="independent", y="independent"),
        )


def classifier_results(cl: dict | None) -> None:
    """Tables 4-7, ROC and risk histogram of the job's latest classifier run."""
    st.subheader("Metrics and coefficients over trials (Tables 4-7)")
    if cl is None:
        st.info(
            f"Job `{name}` has no classifier run: the classifier stage stores classifier_trials, "
            "classifier_coefficients and example_risk "
            "(kdplatform.analysis.classifier.run_classifier, then to_arrow)."
        )
        return
    summary = common.load("classifier_summary", job_id, cl["run_id"])
    c = st.columns(2)
    c[0].markdown(f"**Test metrics** (classifier run #{cl['run_id']})")
    c[0].dataframe(
        summary_table(summary, "metric"),
        hide_index=True,
        column_config={"mean": None, "std": None},
    )
    c[1].markdown("**Standardized coefficients**")
    c[1].dataframe(
        summary_table(summary, "coefficient"),
        hide_index=True,
        column_config={"mean": None, "std": None},
    )
    labelled = cl["group"]
    if labelled is None:
        st.info("The classifier run's student group has no scanned runs; ROC and histogram need its labels.")
        return

    counts = common.load("risk_counts", cl["run_id"], labelled)
    roc, auc = roc_curve(counts)
    c = st.columns(2)
    c[0].markdown(f"**ROC of the stored risk scores** (AUC {auc:.3f})" if auc == auc else "**ROC**")
    if roc.empty:
        c[0].info("Needs memorized and non-memorized examples with a risk score.")
    else:
        diag = pd.DataFrame({"fpr": [0, 1], "tpr": [0, 1]})
        c[0].altair_chart(
            (
                alt.Chart(roc)
                .mark_line()
                .encode(
                    x=alt.X("fpr:Q", title="false positive rate"),
                    y=alt.Y("tpr:Q", title="true positive rate"),
                    tooltip=["threshold", "fpr", "tpr"],
                )
                + alt.Chart(diag).mark_line(strokeDash=[4, 4], color="#999").encode(x="fpr:Q", y="tpr:Q")
            ).properties(height=300),
            width="stretch",
        )
        c[0].caption(
            f"Every example's risk against {labelled.label} memorization (in-sample: the risk model saw "
            "the trials' examples); the trials' held-out ROC-AUC is in the table above."
        )
    c[1].markdown("**Risk-score histogram**")
    if not counts.empty:
        bins = counts.assign(bin=(np.floor(counts["risk_bin"].astype(float) * 20) / 20).clip(upper=0.95))
        hist = bins.groupby("bin", as_index=False)[["positives", "negatives"]].sum()
        long = hist.melt(id_vars="bin", var_name="label", value_name="examples")
        long["label"] = long["label"].map({"positives": "memorized", "negatives": "not memorized"})
        c[1].altair_chart(
            alt.Chart(long)
            .mark_bar()
            .encode(
                x=alt.X("bin:Q", bin=alt.Bin(step=0.05), title="risk"),
                y=alt.Y("examples:Q", scale=alt.Scale(type="symlog")),
                color=alt.Color(
                    "label:N",
                    scale=alt.Scale(domain=["memorized", "not memorized"], range=["#d62728", "#7f7f7f"]),
                ),
                tooltip=["bin", "label", "examples"],
            )
            .properties(height=300),
            width="stretch",
        )
        threshold = cl["config"].get("threshold", 0.5)
        flagged = int(
            counts.loc[counts["risk_bin"] >= threshold, ["positives", "negatives"]].to_numpy().sum()
        )
        c[1].caption(f"{flagged:,} examples at risk ≥ {threshold:g} (the exclusion set when filtering).")


classifier_results(cl)

fsum = common.section(
    "Filtering before vs after (section 4.2)",
    "filtering_summary",
    job_id,
    missing=(
        f"Job `{name}` has no scanned student_filtered run: distilling on D ∖ exclusion set and "
        "scanning on D gives the after numbers."
    ),
)
if fsum is not None:
    c = st.columns(4)
    c[0].metric("excluded examples", f"{fsum.n_excluded:,}")
    c[1].metric("memorized before → after", f"{fsum.n_before:,} → {fsum.n_after:,}")
    c[2].metric("new after filtering", f"{fsum.n_new:,}")
    c[3].metric("memorized after although excluded", f"{fsum.n_after_excluded:,}")
    st.caption(
        f"before: {fsum.before.label}; after: {fsum.after.label}; {fsum.n_before_excluded:,} of the "
        "before set were in the exclusion set."
    )
