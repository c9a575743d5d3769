"""The report's "Membership inference" section: per model group (teacher, baseline, each student
configuration; seeds pooled as mean ± std), each attack's ROC AUC and TPR at 1 % FPR of members of D
against the held-out non-members (the view membership_inference); and, when the job ran the approximate
stage, one line per model group on how close its long matches come to the true suffix."""

from __future__ import annotations

import math

import pandas as pd

from kdplatform.analysis.groups import config_parts
from kdplatform.analysis.membership import ATTACKS, approximate_rates, membership_summary
from kdplatform.analysis.reading import Db
from kdplatform.analysis.report.markdown import config, table


def _cell(mean: float, std: float) -> str:
    if mean is None or math.isnan(mean):
        return "–"
    return f"{mean:.3f}" if std is None or math.isnan(std) else f"{mean:.3f} ± {std:.3f}"


def _wide(summary: pd.DataFrame, attacks: list[str], mean: str, std: str) -> str:
    rows = []
    for (role, objective, temperature), g in summary.groupby(
        ["role", "objective", "temperature"], dropna=False, sort=False
    ):
        by = g.set_index("attack")
        cells = [_cell(by[mean].get(a, math.nan), by[std].get(a, math.nan)) for a in attacks]
        rows.append([role, config(objective, temperature), int(g.runs.max()), *cells])
    return table(["model", "config", "seeds", *attacks], rows)


def membership_section(db: Db, job_id: int) -> list[str]:
    """The section's lines; none for a job without held-out scores (scanned before migration 0005, or
    with data.heldout_examples: 0)."""
    summary = membership_summary(db, job_id)
    if summary.empty:
        return []
    attacks = [a for a in ATTACKS if a in set(summary.attack)]
    members, nonmembers = int(summary.n_members.max()), int(summary.n_nonmembers.max())
    return [
        "## Membership inference (members of D vs held-out non-members)",
        "",
        f"Each attack scores every example (higher = more member-like) from the scan's one pass: {members} "
        f"members of D against {nonmembers} held-out non-members of the same corpus. `loss` is minus the "
        "mean NLL, `zlib` minus its ratio to the zlib entropy, `min_k_20` and `min_k_pp_20` min-k % and "
        "min-k %++ at k = 20 %, `reference` minus the loss beyond the reference model's: the model's own "
        "base (the baseline of the same seed for a model without a base; none for a baseline without "
        "one). Mean ± std over seeds.",
        "",
        "ROC AUC:",
        "",
        _wide(summary, attacks, "auc_mean", "auc_std"),
        "",
        "TPR at 1 % FPR (the largest share of members flagged by a threshold that flags at most 1 % of "
        "the non-members):",
        "",
        _wide(summary, attacks, "tpr_1pct_mean", "tpr_1pct_std"),
        "",
        *approximate_lines(db, job_id),
    ]


def approximate_lines(db: Db, job_id: int) -> list[str]:
    """The approximate-memorization lines: per model group (seeds pooled), the share of D whose greedy
    continuation is within 10 % edit distance of the suffix beside the exact rate; none without the
    approximate stage."""
    df = approximate_rates(db, job_id)
    if df.empty:
        return []
    parts = []
    for (role, objective, temperature), g in df.groupby(
        ["role", "objective", "temperature"], dropna=False, sort=False
    ):
        exact = 100.0 * g.exact.sum() / g.members.sum()
        edit = 100.0 * g.edit_10.sum() / g.members.sum()
        mean = g.token_match_mean.mean()
        match = "" if math.isnan(mean) else f", mean token match of long matches {mean:.3f}"
        label = " ".join([role, *config_parts(objective, temperature)])
        parts.append(f"{label}: {edit:.2f} % ({exact:.2f} % exact{match})")
    return [
        "Approximate memorization (members of D whose greedy continuation reproduces at least "
        "scan.approximate_min_match leading suffix tokens; share of D within 10 % normalized edit "
        "distance of the true suffix, token ids): " + "; ".join(parts) + ".",
        "",
    ]
