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
from kdplatform.analysis.groups import GroupChoice, group_filter, group_params, trio
from kdplatform.analysis.reading import Db, read_job
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
    """Long table: subset, model (teacher | baseline | student), example_id, suffix_logprob, suffix_entropy,
    from the mechanism_examples view (the job's copy of it while fresh), one row per model that scanned
    the example.

    subset is `teacher_baseline_not_student` or `student_memorized`.
    """
    cols = ["subset", "model", "example_id", "suffix_logprob", "suffix_entropy"]
    found = trio(db, job_id, group)
    if found is None:
        return pd.DataFrame(columns=cols)
    g = found[2]
    wide = read_job(
        db,
        job_id,
        f"SELECT * FROM mechanism_examples WHERE job_id = :j AND {group_filter()}",
        **group_params(g),
    )
    parts = [
        wide[["subset", "example_id", f"{m}_suffix_logprob", f"{m}_suffix_entropy"]]
        .rename(columns={f"{m}_suffix_logprob": "suffix_logprob", f"{m}_suffix_entropy": "suffix_entropy"})
        .assign(model=m)
        for m in ("baseline", "student", "teacher")
    ]
    long = pd.concat(parts, ignore_index=True).dropna(subset=["suffix_logprob"])
    return long.sort_values(["subset", "model", "example_id"], ignore_index=True)[cols]


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
