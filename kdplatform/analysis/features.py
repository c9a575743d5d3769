"""Per-example features of a student group (the example_features view, the classifier's table), the easy
examples (easy_examples, Figure 5), and the dashboard's samples of them.

The samples are filters over those views that keep every example of interest (the easy ones, the ones the
group memorized) and about `sample` others, those whose id is a multiple of `sample_step`: ids are dense,
so the kept set is spread over the corpus and the same on every reload.
"""

from __future__ import annotations

import math

import pandas as pd

from kdplatform.analysis.groups import Group, GroupChoice, chosen, group_filter, group_params, scanned_runs
from kdplatform.analysis.reading import Db, read_job
from kdplatform.store.schema import Role


def features(db: Db, job_id: int, role: GroupChoice = Role.STUDENT) -> pd.DataFrame:
    """The classifier's table for one student group: example_features rows, one per example. `role` is a
    GroupChoice (a Group, or a role for its default group); the classify stage names its target role."""
    g = chosen(db, job_id, role)
    if g is None:
        return pd.DataFrame()
    df = read_job(
        db,
        job_id,
        f"SELECT * FROM example_features WHERE job_id = :j AND {group_filter()} ORDER BY example_id",
        **group_params(g),
    )
    for col in ("teacher_memorized", "easy", "student_memorized"):
        df[col] = df[col].astype(bool)
    df.attrs["group"] = g
    return df


def easy_examples(db: Db, job_id: int) -> pd.DataFrame:
    """Figure 5's red points: memorized by the teacher and a baseline seed."""
    return read_job(db, job_id, "SELECT * FROM easy_examples WHERE job_id = :j ORDER BY example_id")


def sample_step(n: int, sample: int) -> int:
    """Keep every example whose id is a multiple of this to draw about `sample` of `n` (ids are dense)."""
    return max(1, math.ceil(n / max(sample, 1)))


def _dataset_and_size(db: Db, job_id: int, run: int | str) -> tuple[int | None, int]:
    """The job's scanned dataset (that of its first scanned run) and the number of examples `run` was
    scanned on; `run` is a run id, or a role for the first run of that role (0 examples when none)."""
    runs = scanned_runs(db, job_id)
    if runs.empty:
        return None, 0
    if isinstance(run, str):
        of_role = runs.loc[runs["role"] == run, "run_id"]
        if of_role.empty:
            return int(runs["dataset_id"].iloc[0]), 0
        run = int(of_role.iloc[0])
    return int(runs["dataset_id"].iloc[0]), int(runs.loc[runs["run_id"] == run, "examples"].sum())


def easy_scatter(db: Db, job_id: int, sample: int = 25_000) -> pd.DataFrame:
    """Figure 5: every row of easy_examples (memorized by the teacher and a baseline seed) and about
    `sample` other examples, with zlib entropy and baseline perplexity (mean over the baseline seeds, as
    the view averages it; the others' from the memorization view).

    Columns: example_id, zlib_entropy, zlib_bits_per_token, baseline_ppl, easy; attrs["step"] is the step.
    """
    cols = ["example_id", "zlib_entropy", "zlib_bits_per_token", "baseline_ppl", "easy"]
    dataset, n = _dataset_and_size(db, job_id, Role.BASELINE)
    if not n:
        return pd.DataFrame(columns=cols)
    step = sample_step(n, sample)
    df = read_job(
        db,
        job_id,
        """
        WITH easy AS (
            SELECT example_id, zlib_entropy, zlib_bits_per_token, baseline_ppl FROM easy_examples
            WHERE job_id = :j AND dataset_id = :d
        ), others AS (
            SELECT example_id, AVG(ppl) AS baseline_ppl FROM memorization
            WHERE job_id = :j AND dataset_id = :d AND role = 'baseline' AND MOD(example_id, :step) = 0
              AND example_id NOT IN (SELECT example_id FROM easy)
            GROUP BY example_id
        )
        SELECT example_id, zlib_entropy, zlib_bits_per_token, baseline_ppl, 1 AS easy FROM easy
        UNION ALL
        SELECT o.example_id, e.zlib_entropy, e.zlib_bits_per_token, o.baseline_ppl, 0 AS easy
        FROM others o LEFT JOIN examples e ON e.dataset_id = :d AND e.example_id = o.example_id
        ORDER BY easy DESC, example_id
        """,
        d=dataset,
        step=step,
    )
    df["easy"] = df["easy"].astype(bool)
    df.attrs["step"] = step
    return df[cols]


def feature_sample(db: Db, job_id: int, group: Group, sample: int = 20_000) -> pd.DataFrame:
    """Figure 7's data: the example_features rows of a student group (the view has rows for student roles
    only) for every example it memorized and for about `sample` examples it did not.

    Columns: example_id, student_memorized, zlib_entropy, baseline_ppl, teacher_baseline_kld, teacher_ppl;
    attrs["step"] is the step.
    """
    cols = [
        "example_id",
        "student_memorized",
        "zlib_entropy",
        "baseline_ppl",
        "teacher_baseline_kld",
        "teacher_ppl",
    ]
    dataset, n = _dataset_and_size(db, job_id, group.run_ids[0])
    if dataset is None:
        return pd.DataFrame(columns=cols)
    step = sample_step(n, sample)
    df = read_job(
        db,
        job_id,
        f"""
        SELECT {", ".join(cols)} FROM example_features
        WHERE job_id = :j AND dataset_id = :d AND {group_filter()}
          AND (student_memorized OR MOD(example_id, :step) = 0)
        ORDER BY example_id
        """,
        d=dataset,
        step=step,
        **group_params(group),
    )
    df["student_memorized"] = df["student_memorized"].astype(bool)
    df.attrs["step"] = step
    return df


def kld_categories(db: Db, job_id: int, group: Group) -> pd.DataFrame:
    """Figure 17: baseline perplexity and teacher-student KLD (example_features, a student group) of the
    examples memorized by a baseline seed and a seed of the group, by a baseline seed only, and by a seed
    of the group only.

    Columns: example_id, category, baseline_ppl, teacher_student_kld.
    """
    dataset, _ = _dataset_and_size(db, job_id, group.run_ids[0])
    if dataset is None:
        return pd.DataFrame(columns=["example_id", "category", "baseline_ppl", "teacher_student_kld"])
    return read_job(
        db,
        job_id,
        f"""
        SELECT example_id,
               CASE WHEN n_baseline_memorized > 0 AND student_memorized THEN 'baseline & student'
                    WHEN n_baseline_memorized > 0 THEN 'baseline only'
                    ELSE 'student only' END AS category,
               baseline_ppl, teacher_student_kld
        FROM example_features
        WHERE job_id = :j AND dataset_id = :d AND {group_filter()}
          AND (n_baseline_memorized > 0 OR student_memorized)
        ORDER BY example_id
        """,
        d=dataset,
        **group_params(group),
    )
