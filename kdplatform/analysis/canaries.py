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


INHERITANCE_COLUMNS = [
    "student_run_id",
    "student_role",
    "objective",
    "temperature",
    "seed",
    "copies",
    "n_teacher",
    "n_student",
    "n_baseline",
    "n_inherited",
    "n_teacher_not_baseline",
]


def canary_inheritance(db: Db, job_id: int) -> pd.DataFrame:
    """Per (student run, copies): the canaries its teacher, it and the baseline of its seed memorized, and
    n_inherited = |T∩S∖B| among n_teacher_not_baseline = |T∖B| (the inheritance view's sets, on the
    canaries). A student whose seed no baseline has is compared with any baseline's memorization."""
    rows = read(
        db,
        """
        SELECT c.run_id, r.role, r.seed, r.objective, r.temperature, c.example_id, k.copies, c.memorized
        FROM canary_results c
        JOIN canaries k ON k.dataset_id = c.dataset_id AND k.example_id = c.example_id
        JOIN runs r ON r.id = c.run_id
        JOIN runs q ON q.id = c.scan_run_id
        WHERE r.job_id = :j AND r.status = 'done' AND q.status = 'done'
        """,
        j=job_id,
    )
    teacher = rows[rows.role == "teacher"]
    if teacher.empty or not rows.role.str.startswith("student").any():
        return pd.DataFrame(columns=INHERITANCE_COLUMNS)
    t = teacher[teacher.run_id == teacher.run_id.min()].set_index("example_id").memorized.astype(bool)
    baselines = rows[rows.role == "baseline"]
    out = []
    for run_id, s in rows[rows.role.str.startswith("student")].groupby("run_id", sort=True):
        b_rows = baselines[baselines.seed == s.seed.iloc[0]]
        b_rows = baselines if b_rows.empty else b_rows
        b = b_rows.groupby("example_id").memorized.any().reindex(t.index, fill_value=False)
        sm = s.set_index("example_id").memorized.astype(bool).reindex(t.index, fill_value=False)
        copies = s.set_index("example_id").copies.reindex(t.index)
        frame = pd.DataFrame({"t": t, "s": sm, "b": b, "copies": copies})
        for c, g in frame.groupby("copies", sort=True):
            first = s.iloc[0]
            out.append(
                [run_id, first.role, first.objective, first.temperature, first.seed, int(c)]
                + [int(g.t.sum()), int(g.s.sum()), int(g.b.sum())]
                + [int((g.t & g.s & ~g.b).sum()), int((g.t & ~g.b).sum())]
            )
    return pd.DataFrame(out, columns=INHERITANCE_COLUMNS)
