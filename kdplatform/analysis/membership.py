"""Membership inference, probabilistic extraction and memorization by prefix length of one job's models
(issue 15), read from the views `membership_inference`, `extraction_rates` and
`prefix_memorization_rates`: members of D against the held-out non-members scanned beside them; and
approximate memorization of long matches (`approximate_memorization_rates`).

Not to be confused with :mod:`kdplatform.analysis.mia`, the paper's section A.5: the AUC of per-example
features between two sets of *memorized* members, with no non-member involved.
"""

from __future__ import annotations

import pandas as pd

from kdplatform.analysis.groups import ROLE_ORDER
from kdplatform.analysis.reading import Db, read

ATTACKS = ("loss", "zlib", "min_k_20", "min_k_pp_20", "reference")
"""The view's attacks in the order kdplatform.memorization.ATTACKS gives them (not imported: it loads
torch, which the dashboard does not)."""

_ATTACK_ORDER = "CASE attack " + " ".join(f"WHEN '{a}' THEN {i}" for i, a in enumerate(ATTACKS)) + " END"
_RUN = "job_id, run_id, role, seed, temperature, objective, model_name"


def membership_inference(db: Db, job_id: int) -> pd.DataFrame:
    """One row per (scanned run, attack) of the job: auc, tpr_at_1pct_fpr, tpr_at_01pct_fpr, n_members,
    n_nonmembers; teacher first, then the baseline and the students, attacks in ATTACKS order."""
    return read(
        db,
        f"""
        SELECT {_RUN}, attack, auc, tpr_at_1pct_fpr, tpr_at_01pct_fpr, n_members, n_nonmembers
        FROM membership_inference WHERE job_id = :j
        ORDER BY {ROLE_ORDER}, role, objective, temperature, seed, run_id, {_ATTACK_ORDER}
        """,
        j=job_id,
    )


def membership_summary(db: Db, job_id: int) -> pd.DataFrame:
    """Per (role, objective, temperature, attack), over the group's seeds: runs, auc_mean, auc_std,
    tpr_1pct_mean, tpr_1pct_std, tpr_01pct_mean, n_members, n_nonmembers (the report's comparison of
    teacher, baseline and students)."""
    df = membership_inference(db, job_id)
    cols = ["role", "objective", "temperature", "attack", "runs", "auc_mean", "auc_std", "tpr_1pct_mean"]
    cols += ["tpr_1pct_std", "tpr_01pct_mean", "n_members", "n_nonmembers"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    keys = ["role", "objective", "temperature", "attack"]
    out = (
        df.groupby(keys, dropna=False, sort=False)
        .agg(
            runs=("run_id", "nunique"),
            auc_mean=("auc", "mean"),
            auc_std=("auc", "std"),
            tpr_1pct_mean=("tpr_at_1pct_fpr", "mean"),
            tpr_1pct_std=("tpr_at_1pct_fpr", "std"),
            tpr_01pct_mean=("tpr_at_01pct_fpr", "mean"),
            n_members=("n_members", "max"),
            n_nonmembers=("n_nonmembers", "max"),
        )
        .reset_index()
    )
    return out[cols]


def extraction_rates(db: Db, job_id: int, member: bool | None = None) -> pd.DataFrame:
    """The job's (n, p)-extraction rates: one row per (run, sample_temperature, top_k, n, p, member);
    `member` True or False keeps members of D or held-out non-members only."""
    where = "" if member is None else f" AND member = {'TRUE' if member else 'FALSE'}"
    return read(
        db,
        f"""
        SELECT {_RUN}, sample_temperature, top_k, n, p, member, examples, extracted, rate
        FROM extraction_rates WHERE job_id = :j{where}
        ORDER BY {ROLE_ORDER}, role, objective, temperature, seed, run_id, sample_temperature DESC, top_k,
                 member DESC, n, p
        """,
        j=job_id,
    )


def prefix_rates(db: Db, job_id: int) -> pd.DataFrame:
    """The job's memorization rate per (run, prefix_len, member), suffix length fixed."""
    return read(
        db,
        f"""
        SELECT {_RUN}, prefix_len, suffix_len, member, examples, memorized, rate_pct
        FROM prefix_memorization_rates WHERE job_id = :j
        ORDER BY {ROLE_ORDER}, role, objective, temperature, seed, run_id, member DESC, prefix_len
        """,
        j=job_id,
    )


def approximate_rates(db: Db, job_id: int) -> pd.DataFrame:
    """The job's approximate memorization (the optional approximate stage): one row per run with members,
    long_matches, exact, token_match_mean, edit_distance_mean, near_90(_pct), edit_10(_pct)."""
    return read(
        db,
        f"""
        SELECT {_RUN}, members, long_matches, exact, token_match_mean, edit_distance_mean, near_90,
               edit_10, near_90_pct, edit_10_pct
        FROM approximate_memorization_rates WHERE job_id = :j
        ORDER BY {ROLE_ORDER}, role, objective, temperature, seed, run_id
        """,
        j=job_id,
    )
