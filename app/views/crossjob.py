"""Across jobs: the selected job's runs beside other jobs' on the same texts (issue 19): the scale
hierarchy (section 3.2), other families' memorized sets on the same texts by cross-scan (section 3.2.1,
Figure 13 across families), each family's perplexity on the others' memorized texts (Figure 6), and the
zlib bits-per-token correlation between tokenizers; each a library call of kdplatform.analysis.crossjob."""

from __future__ import annotations

import altair as alt
import common
import streamlit as st

job_id, name = common.scanned_job("Across jobs")
SHARES = {c: "%.3f" for c in ("share_of_small_in_large", "share_of_source_in_scanned", "jaccard")}
NO_CROSS = (
    f"Job `{name}` has no cross-scans: give its spec a `cross_scan:` section naming other jobs of this "
    "database (or theirs one naming it), and run it after them."
)

hier = common.section(
    "Scale hierarchy (section 3.2)",
    "scale_hierarchy",
    job_id,
    missing=f"No model of `{name}` shares texts with a larger or smaller one of its family.",
)
if hier is not None:
    st.caption(
        "Share of the smaller model's memorized set that the larger one also memorized (texts both scanned)."
    )
    cols = ["job_name_small", "role_small", "seed_small", "params_small", "job_name_large", "role_large"]
    cols += ["seed_large", "params_large", "n_small", "n_large", "n_both", "share_of_small_in_large"]
    common.number_table(hier, cols, SHARES)

cross = common.section(
    "Other families on the same texts (Figure 13, section 3.2.1)", "cross_scans", job_id, missing=NO_CROSS
)
if cross is not None:
    cols = ["cross_scan_run_id", "job_name", "role", "seed", "model_family", "source_job_name", "source_role"]
    cols += ["source_seed", "source_family", "n_texts", "n_source", "n_scanned", "n_both"]
    common.number_table(cross, cols + ["share_of_source_in_scanned", "jaccard"], SHARES)
    st.subheader("Perplexity on the other family's memorized texts (Figure 6)")
    pairs = list(zip(cross.cross_scan_run_id.astype(int), cross.source_run_id.astype(int), strict=True))
    label = {
        p: f"{r.job_name} {r.role} s{r.seed} on {r.source_job_name} {r.source_role} s{r.source_seed}"
        for p, r in zip(pairs, cross.itertuples(), strict=True)
    }
    pick = st.selectbox("Cross-scan", pairs, format_func=label.get, key="cross_pair")
    points = common.load("cross_ppl_points", *pick)
    if points.empty:
        st.info("Neither model memorized a text of this cross-scan.")
    else:
        st.altair_chart(
            alt.Chart(points)
            .mark_circle(size=25, opacity=0.6)
            .encode(
                x=alt.X("source_ppl:Q", title="other job's model: perplexity", scale=alt.Scale(type="log")),
                y=alt.Y("ppl:Q", title="scanning model: perplexity", scale=alt.Scale(type="log")),
                color=alt.Color("memorized_by:N"),
                tooltip=["example_id", "source_ppl", "ppl", "memorized_by"],
            )
            .properties(height=380),
            width="stretch",
        )
        st.caption(f"{len(points):,} texts memorized by either model, each on its own tokens.")

zlib = common.section(
    "zlib bits per token under two tokenizers (section 3.2.1)", "zlib_correlations", job_id, missing=NO_CROSS
)
if zlib is not None:
    cols = ["cross_scan_run_id", "role", "seed", "source_tokenizer", "tokenizer", "n_texts"]
    common.number_table(zlib, cols + ["source_mean_bits", "mean_bits", "pearson_r"], {"pearson_r": "%.3f"})

shared = common.section(
    "Runs of other jobs on the same dataset texts",
    "text_overlap",
    job_id,
    missing=f"No other job shares texts of D with `{name}` (one data section and tokenizer: one dataset).",
)
if shared is not None:
    cols = ["job_name_a", "role_a", "seed_a", "job_name_b", "role_b", "seed_b", "n_shared", "n_a", "n_b"]
    common.number_table(
        shared, cols + ["n_both", "jaccard", "share_of_a_in_b"], SHARES | {"share_of_a_in_b": "%.3f"}
    )
