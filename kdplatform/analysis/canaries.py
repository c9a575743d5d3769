"""Canaries by duplication count (issue 15, item 5): memorization and exposure of the synthetic canaries
inserted into D (data.canaries), per model, read from the view `canary_memorization`. It answers whether a
student inherits the teacher's canaries, and how that depends on how often the canaries were seen.
"""

from __future__ import annotations

import pandas as pd

from kdplatform.analysis.groups import ROLE_ORDER
from kdplatform.analysis.reading import Db, read

_RUN = "job_id, run_id, role, seed, temperature, objective"
SUMMARY_COLUMNS = [
    "role",
    "objective",
    "temperature",
    "copies",
    "runs",
    "n_canaries",
    "n_memorized",
    "rate",
    "exposure_mean",
    "exposure_std",
    "max_exposure",
]


def canary_memorization(db: Db, job_id: int) -> pd.DataFrame:
    """One row per (scanned run, copies) of the job: n_canaries, n_memorized, rate, mean_exposure,
    max_exposure; teacher first, then the baseline and the students, copies ascending."""
    return read(
        db,
        f"""
        SELECT {_RUN}, copies, n_canaries, n_memorized, rate, mean_exposure, max_exposure
        FROM canary_memorization WHERE job_id = :j
        ORDER BY {ROLE_ORDER}, role, objective, temperature, seed, run_id, copies
        """,
        j=job_id,
    )


def canary_summary(db: Db, job_id: int) -> pd.DataFrame:
    """Per (role, objective, temperature, copies), over the group's seeds: runs, n_canaries (per run),
    n_memorized and rate (means), exposure_mean and exposure_std (of the runs' mean exposures),
    max_exposure (the report's and the dashboard's comparison of teacher, baseline and students)."""
    df = canary_memorization(db, job_id)
    if df.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    out = (
        df.groupby(["role", "objective", "temperature", "copies"], dropna=False, sort=False)
        .agg(
            runs=("run_id", "nunique"),
            n_canaries=("n_canaries", "max"),
            n_memorized=("n_memorized", "mean"),
            rate=("rate", "mean"),
            exposure_mean=("mean_exposure", "mean"),
            exposure_std=("mean_exposure", "std"),
            max_exposure=("max_exposure", "max"),
        )
        .reset_index()
    )
    return out[SUMMARY_COLUMNS]
