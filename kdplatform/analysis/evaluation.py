"""Utility of the trained models: their lm-evaluation-harness scores per run, per model group (seeds
pooled) and the paper's section 6 comparison of the hard-KD student with the baseline, from the
eval_scores view."""

from __future__ import annotations

import pandas as pd

from kdplatform.analysis.groups import ROLE_ORDER
from kdplatform.analysis.reading import Db, read
from kdplatform.store.schema import Role

_TASK_ORDER = "task, num_fewshot, metric"


def eval_scores(db: Db, job_id: int) -> pd.DataFrame:
    """One row per (evaluated run, task, few-shot setting, metric): the view's rows of the job."""
    return read(
        db,
        "SELECT run_id, stage_key, role, seed, objective, temperature, model_name, task, num_fewshot, "
        "metric, CAST(value AS DOUBLE PRECISION) AS value, CAST(stderr AS DOUBLE PRECISION) AS stderr, "
        f"n_samples FROM eval_scores WHERE job_id = :j ORDER BY {ROLE_ORDER}, role, objective, "
        f"temperature, seed, run_id, {_TASK_ORDER}",
        j=job_id,
    )


def eval_summary(db: Db, job_id: int) -> pd.DataFrame:
    """One row per (model group, task, few-shot setting, metric): runs (seeds), mean and sample std of
    the score over them (std NaN for one seed), and the mean of lm-eval's stderrs."""
    return read(
        db,
        "SELECT role, objective, temperature, task, num_fewshot, metric, COUNT(*) AS runs, "
        "AVG(CAST(value AS DOUBLE PRECISION)) AS mean, STDDEV_SAMP(CAST(value AS DOUBLE PRECISION)) AS std, "
        "AVG(CAST(stderr AS DOUBLE PRECISION)) AS stderr_mean, MAX(n_samples) AS n_samples "
        f"FROM eval_scores WHERE job_id = :j GROUP BY role, objective, temperature, {_TASK_ORDER} "
        f"ORDER BY {ROLE_ORDER}, role, objective, temperature, {_TASK_ORDER}",
        j=job_id,
    )


def hard_vs_baseline(db: Db, job_id: int) -> pd.DataFrame:
    """Section 6's utility comparison: per (task, few-shot setting, metric), the baseline's and the hard-KD
    student's mean score on the seeds both were evaluated on, and hard minus baseline (empty when the job
    evaluated only one of them)."""
    return read(
        db,
        "SELECT b.task, b.num_fewshot, b.metric, COUNT(*) AS seeds, "
        "AVG(CAST(b.value AS DOUBLE PRECISION)) AS baseline, "
        "AVG(CAST(h.value AS DOUBLE PRECISION)) AS student_hard, "
        "AVG(CAST(h.value AS DOUBLE PRECISION) - CAST(b.value AS DOUBLE PRECISION)) AS difference "
        "FROM eval_scores b JOIN eval_scores h ON h.job_id = b.job_id AND h.seed = b.seed "
        "AND h.task = b.task AND h.num_fewshot = b.num_fewshot AND h.metric = b.metric "
        "WHERE b.job_id = :j AND b.role = :baseline AND h.role = :hard "
        "GROUP BY b.task, b.num_fewshot, b.metric ORDER BY b.task, b.num_fewshot, b.metric",
        j=job_id,
        baseline=Role.BASELINE,
        hard=Role.STUDENT_HARD,
    )
