"""Canaries: synthetic examples inserted into D at controlled duplication counts (data.canaries), and
each scanned model's memorization and exposure of them by count (the view canary_memorization). Does a
student inherit the teacher's canaries, and from how many copies on?"""

from __future__ import annotations

import altair as alt
import common
import streamlit as st

from kdplatform.analysis.groups import config_parts

job_id, name = common.scanned_job("Canaries")

NO_CANARIES = (
    f"Job `{name}` has no canaries: add a `data.canaries:` section to its spec (jobs/quickstart.yaml has "
    "one) and run it again."
)
FORMATS = {c: "%.3f" for c in ("rate", "n_memorized", "exposure_mean", "exposure_std", "mean_exposure")}
FORMATS["max_exposure"] = "%.2f"

summary = common.section(
    "Memorization and exposure by duplication count", "canary_summary", job_id, missing=NO_CANARIES
)
if summary is not None:
    st.caption(
        "Memorized: greedy decoding of a canary's prefix reproduces its whole suffix, secret included. "
        "Exposure: log2(R + 1) - log2(rank) of the true secret among R random alternatives, in bits "
        "(about 1.4 for a canary the model never saw; max_exposure when it ranks first). Means over seeds."
    )
    labels = [" ".join([r.role, *config_parts(r.objective, r.temperature)]) for r in summary.itertuples()]
    shown = summary.assign(model=labels)
    base = alt.Chart(shown).encode(
        x=alt.X("copies:Q", scale=alt.Scale(type="log", base=2), title="copies in the training data"),
        color=alt.Color("model:N", sort=None),
        tooltip=["model", "copies", "runs", "n_canaries", "n_memorized", "rate", "exposure_mean"],
    )
    rate = base.mark_line(point=True).encode(
        y=alt.Y("rate:Q", title="share memorized", scale=alt.Scale(domain=[0, 1]))
    )
    exposure = base.mark_line(point=True).encode(y=alt.Y("exposure_mean:Q", title="mean exposure (bits)"))
    left, right = st.columns(2)
    left.altair_chart(rate.properties(height=280), width="stretch")
    right.altair_chart(exposure.properties(height=280), width="stretch")
    common.number_table(summary, list(summary.columns), FORMATS)

inherited = common.section(
    "Inherited from the teacher",
    "canary_inheritance",
    job_id,
    missing="No teacher and student scanned on the canaries yet.",
)
if inherited is not None:
    st.caption(
        "Per student run and count: canaries the teacher memorized (n_teacher), the student (n_student), "
        "the baseline of its seed (n_baseline), and n_inherited = memorized by teacher and student but not "
        "by the baseline, of n_teacher_not_baseline."
    )
    common.number_table(inherited, list(inherited.columns), {})

per_run = common.section("Per run", "canary_memorization", job_id, missing=NO_CANARIES)
if per_run is not None:
    common.number_table(per_run, list(per_run.columns), FORMATS)
