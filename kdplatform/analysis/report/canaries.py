"""The report's "Canaries" section: per model group (teacher, baseline, each student configuration; seeds
pooled as means), the canaries memorized and their mean exposure by duplication count (the view
canary_memorization); left out for a job without canaries."""

from __future__ import annotations

import pandas as pd

from kdplatform.analysis.canaries import canary_inheritance, canary_summary
from kdplatform.analysis.reading import Db
from kdplatform.analysis.report.markdown import config, num, table


def _wide(summary: pd.DataFrame, copies: list[int], cell) -> str:
    rows = []
    for (role, objective, temperature), g in summary.groupby(
        ["role", "objective", "temperature"], dropna=False, sort=False
    ):
        by = {int(r.copies): r for r in g.itertuples()}
        cells = [cell(by[c]) if c in by else "–" for c in copies]
        rows.append([role, config(objective, temperature), int(g.runs.max()), *cells])
    return table(["model", "config", "seeds", *(f"×{c}" for c in copies)], rows)


def canary_section(db: Db, job_id: int) -> list[str]:
    """The section's lines; none for a job without canaries."""
    summary = canary_summary(db, job_id)
    if summary.empty:
        return []
    copies = sorted({int(c) for c in summary.copies})
    per = int(summary.n_canaries.max())
    top = float(summary.max_exposure.max())
    return [
        "## Canaries by duplication count",
        "",
        f"{per} synthetic {'canary' if per == 1 else 'canaries'} per count (a random prefix, a fixed "
        "template and a random secret of digits that ends the suffix) were in the training data ×1, ×2, "
        "… times each; the natural examples' tables leave them out. Memorized: greedy decoding of the "
        f"prefix reproduces the whole suffix, secret included (mean over seeds, of {per}). Exposure: "
        "log2(R + 1) - log2(rank) of the true secret among R random alternatives under the model's suffix "
        f"log-likelihood, in bits (at most {top:.2f}; about 1.4 for a model that has not seen the canary).",
        "",
        "Canaries memorized:",
        "",
        _wide(summary, copies, lambda r: num(r.n_memorized, 3)),
        "",
        "Mean exposure (bits):",
        "",
        _wide(summary, copies, lambda r: f"{r.exposure_mean:.2f}"),
        "",
        *_inherited(db, job_id, copies),
    ]


def _inherited(db: Db, job_id: int, copies: list[int]) -> list[str]:
    """Canaries each student inherited: memorized by the teacher and the student, not by the baseline."""
    inh = canary_inheritance(db, job_id)
    if inh.empty:
        return []
    rows = []
    for (_run, role, objective, temperature, seed), g in inh.groupby(
        ["student_run_id", "student_role", "objective", "temperature", "seed"], dropna=False, sort=False
    ):
        by = {int(r.copies): r for r in g.itertuples()}
        cells = [f"{by[c].n_inherited}/{by[c].n_teacher_not_baseline}" if c in by else "–" for c in copies]
        rows.append([role, config(objective, temperature), seed, *cells])
    return [
        "Canaries inherited: memorized by the teacher and the student but not by the baseline of the "
        "student's seed, of those the teacher memorized and the baseline did not (|T∩S∖B| / |T∖B|):",
        "",
        table(["student", "config", "seed", *(f"×{c}" for c in copies)], rows),
        "",
    ]
