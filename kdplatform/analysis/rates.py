"""Memorization rates (Table 2), the final checkpoints beside them, and the temperature sweep (Figure 2),
from the memorization_rates view."""

from __future__ import annotations

import pandas as pd

from kdplatform.analysis.groups import ROLE_ORDER
from kdplatform.analysis.reading import Db, read, read_job
from kdplatform.store.schema import Role


def rates(db: Db, job_id: int) -> pd.DataFrame:
    """The paper's Table 2 per run: examples scanned, memorized, rate (%)."""
    return read_job(
        db,
        job_id,
        "SELECT run_id, role, seed, objective, temperature, model_name, examples, "
        "CAST(memorized AS BIGINT) AS memorized, "
        f"CAST(rate_pct AS DOUBLE PRECISION) AS rate_pct FROM memorization_rates WHERE job_id = :j "
        f"ORDER BY {ROLE_ORDER}, role, objective, temperature, seed, run_id",
    )


def final_checkpoints(db: Db, job_id: int) -> pd.DataFrame:
    """Each trained run's final checkpoint: epochs trained and validation loss, so equal-compute and
    trained-to-a-target students can be told apart in Table 2."""
    return read(
        db,
        "SELECT c.run_id, r.role, c.epoch, c.step, CAST(c.val_loss AS DOUBLE PRECISION) AS val_loss "
        "FROM checkpoints c JOIN runs r ON r.id = c.run_id WHERE r.job_id = :j AND c.is_final "
        "ORDER BY c.run_id",
        j=job_id,
    )


def base_losses(db: Db, job_id: int) -> pd.DataFrame:
    """Each base's validation loss on D's validation split before any fine-tuning (its final checkpoint),
    the starting point of the fine-tuned models' losses."""
    return read(
        db,
        "SELECT r.stage_key AS stage, CAST(c.val_loss AS DOUBLE PRECISION) AS val_loss FROM checkpoints c "
        "JOIN runs r ON r.id = c.run_id WHERE r.job_id = :j AND r.role = :base AND c.is_final "
        "AND r.status = 'done' ORDER BY r.id",
        j=job_id,
        base=Role.BASE,
    )


def rate_summary(db: Db, job_id: int) -> pd.DataFrame:
    """Table 2 per model configuration: mean and std of the rate over seeds."""
    return read_job(
        db,
        job_id,
        "SELECT role, objective, temperature, model_name, COUNT(*) AS runs, "
        "AVG(CAST(rate_pct AS DOUBLE PRECISION)) AS rate_pct_mean, "
        "STDDEV_SAMP(CAST(rate_pct AS DOUBLE PRECISION)) AS rate_pct_std, "
        "AVG(CAST(memorized AS DOUBLE PRECISION)) AS memorized_mean, MAX(examples) AS examples "
        "FROM memorization_rates WHERE job_id = :j GROUP BY role, objective, temperature, model_name "
        f"ORDER BY {ROLE_ORDER}, role, objective, temperature",
    )


def temperature_sweep(
    db: Db, job_id: int, role: str = Role.STUDENT, *, every_temperature: bool = False
) -> pd.DataFrame:
    """Figure 2: a role's rate per (objective, temperature): runs, mean, min and max over seeds, the mean
    memorized count and the seeds (comma-separated, ascending).

    With `every_temperature`, only the seeds that trained every temperature of their objective count: a
    sweep may train the other temperatures on fewer seeds (distill.sweep_seeds), and a mean over 3 seeds
    at one T beside 1 seed at another compares seeds as much as temperatures.
    """
    rows = (
        "SELECT objective, seed, CAST(temperature AS DOUBLE PRECISION) AS temperature, "
        "CAST(rate_pct AS DOUBLE PRECISION) AS rate_pct, CAST(memorized AS DOUBLE PRECISION) AS memorized "
        "FROM memorization_rates WHERE job_id = :j AND role = :role AND temperature IS NOT NULL"
    )
    if every_temperature:
        rows = f"""
            WITH r AS ({rows}),
            nt AS (SELECT objective, COUNT(DISTINCT temperature) AS n FROM r GROUP BY objective),
            full_seeds AS (
                SELECT r.objective, r.seed FROM r JOIN nt ON nt.objective IS NOT DISTINCT FROM r.objective
                GROUP BY r.objective, r.seed, nt.n HAVING COUNT(DISTINCT r.temperature) = nt.n
            )
            SELECT r.* FROM r JOIN full_seeds f
              ON f.objective IS NOT DISTINCT FROM r.objective AND f.seed IS NOT DISTINCT FROM r.seed
        """
    return read_job(
        db,
        job_id,
        "SELECT objective, temperature, COUNT(*) AS runs, AVG(rate_pct) AS rate_pct_mean, "
        "MIN(rate_pct) AS rate_pct_min, MAX(rate_pct) AS rate_pct_max, AVG(memorized) AS memorized_mean, "
        f"STRING_AGG(CAST(seed AS VARCHAR), ',' ORDER BY seed) AS seeds FROM ({rows}) t "
        "GROUP BY objective, temperature ORDER BY objective, temperature",
        role=role,
    )
