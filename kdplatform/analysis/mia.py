"""Why distillation memorizes less (section 5) and which examples only the baseline memorizes (A.5).

`mechanism_points` gives Figure 8's data: suffix log-probability and mean suffix entropy of each model on
(1) the examples the teacher and a baseline seed memorized but no student seed did, and (2) the examples
a student seed memorized; values are averaged over the seeds of a role. `mechanism_means` summarises it.

`feature_auc` is the membership-inference view of A.5: how well one feature separates D_s (memorized by
the student group, any seed) from D_b (memorized by a baseline seed but by no student seed). `auc` treats
larger values as "student"; `auc_separation` = max(auc, 1 - auc) is direction-free, as the paper reports.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from kdplatform.analysis.features import features as example_features
from kdplatform.analysis.groups import GroupChoice, trio
from kdplatform.analysis.reading import Db, read
from kdplatform.store.schema import Role

MIA_FEATURES = ("teacher_ppl", "baseline_ppl", "teacher_student_kld", "teacher_baseline_kld", "zlib_entropy")


def feature_auc(df: pd.DataFrame, features: tuple[str, ...] = MIA_FEATURES) -> pd.DataFrame:
    """One row per feature: auc, auc_separation, direction, n_student, n_baseline_only (pure)."""
    d_s = df["student_memorized"].to_numpy(dtype=bool)
    d_b = (df["n_baseline_memorized"].to_numpy() > 0) & ~d_s
    rows = []
    for f in features:
        vals = df[f].to_numpy(dtype=float) if f in df.columns else np.full(len(df), np.nan)
        ok = np.isfinite(vals) & (d_s | d_b)
        y, score = d_s[ok], vals[ok]
        auc = float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else float("nan")
        rows.append(
            {
                "feature": f,
                "auc": auc,
                "auc_separation": max(auc, 1 - auc) if np.isfinite(auc) else float("nan"),
                "direction": "higher: student" if auc >= 0.5 else "lower: student",
                "n_student": int(y.sum()),
                "n_baseline_only": int((~y).sum()),
            }
        )
    return pd.DataFrame(rows)


def mia(
    db: Db, job_id: int, group: GroupChoice = Role.STUDENT, features: tuple[str, ...] = MIA_FEATURES
) -> pd.DataFrame:
    """feature_auc over the job's example_features for one student group."""
    df = example_features(db, job_id, group)
    if df.empty:
        return pd.DataFrame(
            columns=["feature", "auc", "auc_separation", "direction", "n_student", "n_baseline_only"]
        )
    return feature_auc(df, features)


def mechanism_points(db: Db, job_id: int, group: GroupChoice = Role.STUDENT) -> pd.DataFrame:
    """Long table: subset, model (teacher | baseline | student), example_id, suffix_logprob, suffix_entropy.

    subset is `teacher_baseline_not_student` or `student_memorized`.
    """
    found = trio(db, job_id, group)
    if found is None:
        return pd.DataFrame(columns=["subset", "model", "example_id", "suffix_logprob", "suffix_entropy"])
    teacher, baseline, g = found
    student = list(g.run_ids)
    return read(
        db,
        """
        WITH flags AS (
            SELECT example_id,
                   MAX(CASE WHEN run_id IN :t THEN 1 ELSE 0 END) AS in_t,
                   MAX(CASE WHEN run_id IN :b THEN 1 ELSE 0 END) AS in_b,
                   MAX(CASE WHEN run_id IN :s THEN 1 ELSE 0 END) AS in_s
            FROM memorized_examples WHERE run_id IN :all GROUP BY example_id
        ), subsets AS (
            SELECT example_id, 'teacher_baseline_not_student' AS subset FROM flags
            WHERE in_t = 1 AND in_b = 1 AND in_s = 0
            UNION ALL
            SELECT example_id, 'student_memorized' AS subset FROM flags WHERE in_s = 1
        )
        SELECT u.subset,
               CASE WHEN s.run_id IN :t THEN 'teacher' WHEN s.run_id IN :b THEN 'baseline'
                    ELSE 'student' END AS model,
               u.example_id, AVG(s.suffix_logprob) AS suffix_logprob, AVG(s.suffix_entropy) AS suffix_entropy
        FROM subsets u JOIN scan_results s ON s.example_id = u.example_id AND s.run_id IN :all
        GROUP BY 1, 2, 3
        ORDER BY 1, 2, 3
        """,
        t=teacher,
        b=baseline,
        s=student,
        all=sorted(set(teacher + baseline + student)),
    )


def mechanism_means(points: pd.DataFrame) -> pd.DataFrame:
    """Figure 8 summarised: mean and std of suffix log-probability and entropy per subset and model (pure)."""
    if points.empty:
        return pd.DataFrame(columns=["subset", "model", "examples", "suffix_logprob", "suffix_entropy"])
    g = points.groupby(["subset", "model"], sort=True)
    return g.agg(
        examples=("example_id", "count"),
        suffix_logprob=("suffix_logprob", "mean"),
        suffix_logprob_std=("suffix_logprob", "std"),
        suffix_entropy=("suffix_entropy", "mean"),
        suffix_entropy_std=("suffix_entropy", "std"),
    ).reset_index()
