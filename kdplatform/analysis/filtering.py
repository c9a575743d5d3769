"""Filtering before distillation (section 4.2): examples the classifier flags become an exclusion set.

A job distils a fresh student (role `student_filtered`) on D_clean = D ∖ exclusion and scans it on all of
D. The summary compares the pooled memorized sets of the original student group and of the filtered one:
how many were memorized before and after, and how many memorized after were not memorized before (the
paper's "four new examples").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kdplatform.analysis.classifier_results import example_risk, latest_classifier
from kdplatform.analysis.groups import Group, scanned_runs, student_group
from kdplatform.analysis.overlap import memorized_sets, pooled
from kdplatform.analysis.reading import Db, read
from kdplatform.store.schema import Role


def exclusion_set(risk: pd.DataFrame, threshold: float = 0.5) -> np.ndarray:
    """Sorted example ids whose risk is at or above `threshold` (missing risks are kept in D_clean)."""
    flagged = risk["risk"].to_numpy(dtype=float) >= threshold
    return np.sort(risk["example_id"].to_numpy()[flagged])


def clean_mask(example_ids: np.ndarray, excluded: np.ndarray) -> np.ndarray:
    """True for the examples that stay in D_clean."""
    return ~np.isin(example_ids, excluded)


def stored_exclusion(
    db: Db, job_id: int, threshold: float | None = None, run_id: int | None = None
) -> np.ndarray:
    """The exclusion set of the job's latest classifier run: its stored `predicted` flags, or risk >=
    `threshold` when one is given."""
    risk = example_risk(db, job_id, run_id)
    if threshold is None:
        return np.sort(risk.loc[risk["predicted"], "example_id"].to_numpy(dtype=np.int64))
    return exclusion_set(risk, threshold)


def excluded_ids(db: Db, job_id: int) -> set[int]:
    """stored_exclusion's set (the latest classifier run's `predicted` flags) without reading every risk."""
    run_id = latest_classifier(db, job_id)
    if run_id is None:
        return set()
    df = read(db, "SELECT example_id FROM example_risk WHERE run_id = :r AND predicted", r=run_id)
    return {int(x) for x in df["example_id"]}


@dataclass(frozen=True)
class FilteringSummary:
    before: Group
    after: Group
    n_excluded: int
    """Examples in the stored exclusion set (0 when no classifier run is stored)."""
    n_before: int
    """Memorized by the original student group (seeds pooled)."""
    n_after: int
    """Memorized by the filtered student group (seeds pooled), scanned on all of D."""
    n_new: int
    """Memorized after filtering but not before."""
    n_before_excluded: int
    """Memorized before and in the exclusion set: how much of the student's memorization was flagged."""
    n_after_excluded: int
    """Memorized after although excluded from D_clean."""


def filtering_summary(
    db: Db, job_id: int, role: str = Role.STUDENT, filtered_role: str = Role.STUDENT_FILTERED
) -> FilteringSummary | None:
    """None when the job has no scanned `filtered_role` or `role` runs."""
    runs = scanned_runs(db, job_id)
    after = student_group(db, job_id, filtered_role, runs=runs)
    before = student_group(db, job_id, role, runs=runs)
    if after is None or before is None:
        return None
    excluded = excluded_ids(db, job_id)
    sets = memorized_sets(db, sorted({*before.run_ids, *after.run_ids}))
    mb, ma = pooled(sets, before.run_ids), pooled(sets, after.run_ids)
    return FilteringSummary(
        before,
        after,
        len(excluded),
        len(mb),
        len(ma),
        len(ma - mb),
        len(mb & excluded),
        len(ma & excluded),
    )
