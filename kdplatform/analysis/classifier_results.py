"""What a classifier stage stored (section 4.1, Tables 4-7): its runs, trials, summary over trials and
per-example risk, with the dashboard's ROC curve binned in the database. Fitting the classifier is
kdplatform.analysis.classifier."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from kdplatform.analysis.groups import Group, student_group
from kdplatform.analysis.reading import Db, read
from kdplatform.store.schema import Role


def classifier_target(db: Db, run_id: int) -> str:
    """The role whose memorization a classifier run predicted: the run's role (the target, or its
    `fallback` when the target memorized too few), else its configured target (`student` for runs
    stored before the option existed)."""
    df = read(db, "SELECT role, config FROM runs WHERE id = :r", r=run_id)
    if len(df) and isinstance(df.role.iloc[0], str):
        return df.role.iloc[0]
    cfg = json.loads(df.config.iloc[0]) if len(df) and df.config.iloc[0] else {}
    return str(cfg.get("target", Role.STUDENT))


def classifier_runs(db: Db, job_id: int) -> list[int]:
    """Runs of the job that stored classifier trials, oldest first."""
    df = read(
        db,
        "SELECT DISTINCT c.run_id FROM classifier_trials c JOIN runs r ON r.id = c.run_id "
        "WHERE r.job_id = :j ORDER BY c.run_id",
        j=job_id,
    )
    return [int(x) for x in df["run_id"]]


def latest_classifier(db: Db, job_id: int, run_id: int | None = None) -> int | None:
    """`run_id` when given, else the job's latest classifier run (None when it has none)."""
    if run_id is not None:
        return run_id
    runs = classifier_runs(db, job_id)
    return runs[-1] if runs else None


def classifier_run(db: Db, job_id: int) -> dict[str, Any] | None:
    """The job's latest classifier run: id, config (its JSON), and the student group it labels with."""
    ids = classifier_runs(db, job_id)
    if not ids:
        return None
    row = read(db, "SELECT id, stage_key, config FROM runs WHERE id = :r", r=ids[-1])
    try:
        config = json.loads(row["config"].iloc[0]) if not row.empty else {}
    except (TypeError, ValueError):
        config = {}
    config = config if isinstance(config, dict) else {}
    target = classifier_target(db, ids[-1])  # the role it labelled with, fallback included
    group = student_group(db, job_id, target, config.get("objective"), config.get("temperature"))
    return {"run_id": ids[-1], "config": config, "group": group, "all_runs": ids}


def classifier_summary(db: Db, job_id: int, run_id: int | None = None) -> pd.DataFrame:
    """Tables 4-7: mean and std over trials of each metric and standardized coefficient."""
    run_id = latest_classifier(db, job_id, run_id)
    if run_id is None:
        return pd.DataFrame(columns=["kind", "name", "mean", "std", "n_trials"])
    order = "CASE name " + " ".join(
        f"WHEN '{m}' THEN {i}" for i, m in enumerate(("accuracy", "precision", "recall", "f1", "roc_auc"))
    )
    return read(
        db,
        "SELECT run_id, kind, name, mean, std, n_trials FROM classifier_summary WHERE run_id = :r "
        f"ORDER BY kind DESC, {order} ELSE 9 END, name",
        r=run_id,
    )


def summary_table(summary: pd.DataFrame, kind: str) -> pd.DataFrame:
    """classifier_summary rows of one kind as `name`, `mean ± std`, mean, std, n_trials (pure)."""
    s = summary[summary["kind"] == kind].copy()
    s["mean ± std"] = [
        f"{m:.4f} ± {sd:.4f}" if sd == sd and sd is not None else f"{m:.4f}"
        for m, sd in zip(s["mean"].astype(float), s["std"].astype(float), strict=True)
    ]
    return s[["name", "mean ± std", "mean", "std", "n_trials"]].reset_index(drop=True)


def classifier_trials(db: Db, run_id: int) -> pd.DataFrame:
    return read(db, "SELECT * FROM classifier_trials WHERE run_id = :r ORDER BY trial", r=run_id)


def example_risk(db: Db, job_id: int, run_id: int | None = None) -> pd.DataFrame:
    """Risk scores of the job's latest classifier run (or `run_id`), highest first."""
    run_id = latest_classifier(db, job_id, run_id)
    if run_id is None:
        return pd.DataFrame(columns=["run_id", "example_id", "dataset_id", "risk", "predicted"])
    df = read(db, "SELECT * FROM example_risk WHERE run_id = :r ORDER BY risk DESC, example_id", r=run_id)
    df["predicted"] = df["predicted"].astype(bool)
    return df


def risk_counts(db: Db, run_id: int, group: Group, bins: int = 1000) -> pd.DataFrame:
    """Risk scores of a classifier run binned in the database, with the student group's label:
    risk_bin (lower edge), positives (memorized by a seed of the group), negatives."""
    return read(
        db,
        """
        SELECT risk_bin, SUM(positive) AS positives, SUM(1 - positive) AS negatives
        FROM (
            SELECT FLOOR(k.risk * :bins) / :bins AS risk_bin,
                   CASE WHEN m.example_id IS NULL THEN 0 ELSE 1 END AS positive
            FROM example_risk k
            LEFT JOIN (SELECT DISTINCT example_id FROM memorized_examples WHERE run_id IN :s) m
              ON m.example_id = k.example_id
            WHERE k.run_id = :r AND k.risk IS NOT NULL
        ) t
        GROUP BY risk_bin
        ORDER BY risk_bin DESC
        """,
        r=run_id,
        s=list(group.run_ids),
        bins=bins,
    )


def roc_curve(counts: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """ROC points (fpr, tpr, threshold) and the area under them from risk_counts (pure)."""
    c = counts.sort_values("risk_bin", ascending=False)
    pos, neg = c["positives"].to_numpy(dtype=float), c["negatives"].to_numpy(dtype=float)
    if pos.sum() == 0 or neg.sum() == 0:
        return pd.DataFrame(columns=["fpr", "tpr", "threshold"]), float("nan")
    tpr = np.concatenate([[0.0], np.cumsum(pos) / pos.sum()])
    fpr = np.concatenate([[0.0], np.cumsum(neg) / neg.sum()])
    thr = np.concatenate([[1.0], c["risk_bin"].to_numpy(dtype=float)])
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    return pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": thr}), auc
