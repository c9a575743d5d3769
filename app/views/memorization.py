"""Memorization: rate per run and per configuration (Table 2), the temperature sweep (Figure 2), and soft
vs hard distillation (Figure 9 and the counts of section 6)."""

from __future__ import annotations

import altair as alt
import common
import pandas as pd
import streamlit as st

from kdplatform.store.schema import Role

job_id, name = common.scanned_job("Memorization")


def rate_bars(df: pd.DataFrame, x: str, color: alt.Color, tooltip: list[str], height: int) -> alt.Chart:
    """Memorization rate (`rate_pct`) as one bar per row, in the frame's order."""
    return (
        alt.Chart(df)
        .mark_bar()
        .encode(
            x=alt.X(x, sort=None, title=None),
            y=alt.Y("rate_pct:Q", title="memorized (%)"),
            color=color,
            tooltip=tooltip,
        )
        .properties(height=height)
    )


rates = common.load("rates", job_id)
summary = common.load("rate_summary", job_id)

st.subheader("Memorization rate per run (Table 2)")
rates = rates.assign(run=[f"{r.role} s{r.seed} (#{r.run_id})" for r in rates.itertuples()])
st.dataframe(
    rates.drop(columns=["run"]),
    hide_index=True,
    column_config={"rate_pct": st.column_config.NumberColumn("rate (%)", format="%.4f")},
)
tooltip = ["run_id", "role", "seed", "objective", "temperature", "examples", "memorized", "rate_pct"]
st.altair_chart(rate_bars(rates, "run:N", alt.Color("role:N"), tooltip, 280), width="stretch")
st.markdown("**Mean ± std over seeds, per configuration**")
st.dataframe(
    summary,
    hide_index=True,
    column_config={
        "rate_pct_mean": st.column_config.NumberColumn("rate (%) mean", format="%.4f"),
        "rate_pct_std": st.column_config.NumberColumn("rate (%) std", format="%.4f"),
        "memorized_mean": st.column_config.NumberColumn("memorized mean", format="%.1f"),
    },
)

st.subheader("Temperature sweep (Figure 2)")
students = summary[(summary["role"] == Role.STUDENT) & summary["temperature"].notna()]
baseline = summary[summary["role"] == Role.BASELINE]
if students["temperature"].nunique() < 2:
    temps = ", ".join(f"{t:g}" for t in students["temperature"].dropna().unique()) or "none"
    st.info(
        f"Job `{name}` distils at one temperature ({temps}): list several under "
        "`student.distill.temperature` in the job's yaml to sweep (jobs/paper/ has the paper's)."
    )
else:
    sweep = students.assign(objective=students["objective"].fillna("—"))
    line = (
        alt.Chart(sweep)
        .mark_line(point=True)
        .encode(
            x=alt.X("temperature:Q", title="distillation temperature T"),
            y=alt.Y("rate_pct_mean:Q", title="student memorization (%)"),
            color=alt.Color("objective:N"),
            tooltip=["objective", "temperature", "runs", "rate_pct_mean", "rate_pct_std"],
        )
    )
    bars = (
        alt.Chart(
            sweep.assign(
                lo=sweep["rate_pct_mean"] - sweep["rate_pct_std"].fillna(0),
                hi=sweep["rate_pct_mean"] + sweep["rate_pct_std"].fillna(0),
            )
        )
        .mark_errorbar()
        .encode(
            x="temperature:Q",
            y=alt.Y("lo:Q", title="student memorization (%)"),
            y2="hi:Q",
            color="objective:N",
        )
    )
    layers = [line, bars]
    if not baseline.empty:
        rule = pd.DataFrame({"baseline (%)": [float(baseline["rate_pct_mean"].iloc[0])]})
        layers.append(
            alt.Chart(rule).mark_rule(strokeDash=[4, 4], color="#d62728").encode(y="baseline (%):Q")
        )
    st.altair_chart(alt.layer(*layers).properties(height=300), width="stretch")
    st.caption("Mean over seeds, error bars ± one std; the dashed line is the baseline's rate.")
    st.dataframe(students, hide_index=True)

sh = common.section(
    "Soft vs hard distillation (Figure 9)",
    "soft_vs_hard",
    job_id,
    missing=(
        f"Job `{name}` lacks a scanned hard-KD student (role student_hard), soft student, teacher or "
        "baseline: add `hard_student:` to the job's yaml (jobs/smoke.yaml has one) and run it."
    ),
)
if sh is not None:
    base = summary[summary["role"] == Role.BASELINE]
    picked = []
    for label, role, g in (
        ("baseline", Role.BASELINE, None),
        ("soft student", sh.soft.role, sh.soft),
        ("hard student", sh.hard.role, sh.hard),
    ):
        rows = summary[summary["role"] == role]
        if g is not None:
            rows = rows[
                (rows["objective"].fillna("") == (g.objective or ""))
                & (rows["temperature"].fillna(-1.0) == (g.temperature if g.temperature is not None else -1.0))
            ]
        if not rows.empty:
            picked.append(
                {
                    "model": label,
                    "rate_pct": float(rows["rate_pct_mean"].iloc[0]),
                    "std": rows["rate_pct_std"].iloc[0],
                    "runs": int(rows["runs"].iloc[0]),
                }
            )
    fig9 = pd.DataFrame(picked)
    tooltip = ["model", "rate_pct", "std", "runs"]
    st.altair_chart(
        rate_bars(fig9, "model:N", alt.Color("model:N", legend=None), tooltip, 260), width="stretch"
    )
    c = st.columns(4)
    c[0].metric(
        "hard-memorized also soft-memorized",
        common.fmt_pct(sh.share_hard_in_soft),
        help=f"{sh.n_both} of {sh.n_hard}",
    )
    c[1].metric(
        "difficult (hard only, no baseline)",
        sh.n_difficult,
        help=f"{sh.n_difficult_teacher} of them memorized by the teacher",
    )
    c[2].metric("inherited: soft / hard", f"{sh.inherited_soft} / {sh.inherited_hard}")
    ratio = sh.inheritance_ratio
    c[3].metric("hard ÷ soft inheritance", "–" if ratio != ratio else f"{ratio:.2f}")
    st.caption(f"soft = {sh.soft.label}; hard = {sh.hard.label}. The Overlap page draws Figures 10 and 11.")
