"""Easy examples: zlib entropy against baseline perplexity, easy-to-memorize examples in red over a sample
of the others (Figure 5), and perplexity pairs across model families (Figure 6)."""

from __future__ import annotations

import altair as alt
import common
import numpy as np
import streamlit as st

job_id, name = common.scanned_job("Easy examples")

st.subheader("zlib entropy vs baseline perplexity (Figure 5)")
sample = st.select_slider(
    "Other examples to sample", [1_000, 5_000, 10_000, 25_000], value=25_000, key="easy_sample"
)
df = common.load("easy_scatter", job_id, sample)
if df.empty:
    st.info(f"Job `{name}` has no scanned baseline: the figure plots baseline perplexity.")
else:
    n_easy = int(df["easy"].sum())
    c = st.columns(3)
    c[0].metric("easy-to-memorize examples", f"{n_easy:,}")
    c[1].metric(
        "others shown", f"{len(df) - n_easy:,}", help=f"ids that are multiples of {df.attrs.get('step', 1)}"
    )
    if n_easy:
        med_easy, med_other = (
            df.loc[df.easy, "zlib_entropy"].median(),
            df.loc[~df.easy, "zlib_entropy"].median(),
        )
        c[2].metric("median zlib entropy: easy / others", f"{med_easy:.0f} / {med_other:.0f}")
    plot = df.assign(kind=np.where(df["easy"], "easy-to-memorize", "other"))
    chart = (
        alt.Chart(plot)
        .mark_circle(opacity=0.5, size=12)
        .encode(
            x=alt.X("zlib_entropy:Q", title="zlib entropy (bytes)", scale=alt.Scale(zero=False)),
            y=alt.Y("baseline_ppl:Q", title="baseline perplexity", scale=alt.Scale(type="log")),
            color=alt.Color(
                "kind:N", scale=alt.Scale(domain=["other", "easy-to-memorize"], range=["#b0b0b0", "#d62728"])
            ),
            order=alt.Order("easy:Q"),
            tooltip=["example_id", "zlib_entropy", "zlib_bits_per_token", "baseline_ppl"],
        )
        .properties(height=420)
    )
    st.altair_chart(chart, width="stretch")
    st.caption(
        "Easy-to-memorize: memorized by the teacher and at least one baseline seed (easy_examples view); "
        "baseline perplexity is the mean over baseline seeds."
    )

st.subheader("Perplexity across model families (Figure 6)")
allruns = common.load("scanned")
if len(allruns) < 2:
    st.info("Needs two scanned models; for families, two jobs on one corpus with different model families.")
else:
    label = {
        int(r.run_id): f"{r.job}: {r.role} s{r.seed} · {r.model_family} (#{r.run_id})"
        for r in allruns.itertuples()
    }
    ids = list(label)
    fams = allruns.drop_duplicates("model_family")
    default = [int(x) for x in fams["run_id"][:2]] if len(fams) >= 2 else ids[:2]
    c = st.columns(2)
    a = c[0].selectbox("Model A", ids, index=ids.index(default[0]), format_func=label.get, key="fam_a")
    b = c[1].selectbox("Model B", ids, index=ids.index(default[1]), format_func=label.get, key="fam_b")
    pairs = common.load("cross_ppl", a, b)
    if pairs.empty:
        st.info("Neither model memorized an example both were scanned on.")
    else:
        who = np.where(
            pairs["memorized_a"] & pairs["memorized_b"],
            "both",
            np.where(pairs["memorized_a"], "A only", "B only"),
        )
        st.altair_chart(
            alt.Chart(pairs.assign(memorized_by=who))
            .mark_circle(size=25, opacity=0.6)
            .encode(
                x=alt.X("ppl_a:Q", title=f"perplexity of A (#{a})", scale=alt.Scale(type="log")),
                y=alt.Y("ppl_b:Q", title=f"perplexity of B (#{b})", scale=alt.Scale(type="log")),
                color=alt.Color("memorized_by:N"),
                tooltip=["example_id", "ppl_a", "ppl_b", "memorized_a", "memorized_b"],
            )
            .properties(height=380),
            width="stretch",
        )
        st.caption(f"{len(pairs):,} examples memorized by A or B, matched on example id.")
    da = int(allruns.loc[allruns["run_id"] == a, "dataset_id"].iloc[0])
    db_ = int(allruns.loc[allruns["run_id"] == b, "dataset_id"].iloc[0])
    if da != db_:
        r, n = common.load("zlib_correlation", da, db_, (a, b))
        st.metric(
            "Pearson r of zlib bits per token between the two tokenizations",
            "–" if r != r else f"{r:.3f}",
            help=f"over {n:,} examples memorized by A or B",
        )
