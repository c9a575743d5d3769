"""Read-only queries behind the dashboard that kdplatform.analysis.queries does not already offer: jobs,
runs and their lineage, checkpoints (Table 1), sampled scatter data, classifier curves, the example
browser, and the SQL console (kdplatform.sql.console, re-exported here).

Every function takes `db` as queries does (an Engine, a Connection or a URL) and returns a DataFrame or a
small dict; the SQL is portable between DuckDB and PostgreSQL and aggregates or samples in the database,
so a page stays quick on a million examples per run. `engine(url)` (kdplatform.store.db.reader_engine) is
the dashboard's way in: read-only, external access off on DuckDB, and it waits out a running job's write
lock instead of failing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kdplatform.analysis import queries
from kdplatform.analysis.queries import ROLE_ORDER, Db, Group, read
from kdplatform.sql import console  # noqa: F401  (the dashboard's console; re-exported for app/)
from kdplatform.store.db import RUN_HINT, DatabaseUnavailable  # noqa: F401  (re-exported for app/)
from kdplatform.store.db import reader_engine as engine  # noqa: F401  (the dashboard's way in)


# --------------------------------------------------------------------------------------------- jobs
def schema_ready(db: Db) -> bool:
    """True when the database has the study's tables (a job or `kdplatform db upgrade` created them)."""
    df = read(db, "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_name IN ('jobs', 'runs')")
    return int(df.iloc[0, 0]) >= 2


def jobs(db: Db) -> pd.DataFrame:
    """One row per job: id, name, workdir, mlflow_run_id, created_at, runs by status, total seconds."""
    return read(
        db,
        """
        SELECT j.id, j.name, j.workdir, j.mlflow_run_id, j.created_at,
               COUNT(r.id) AS runs,
               SUM(CASE WHEN r.status = 'done' THEN 1 ELSE 0 END) AS done,
               SUM(CASE WHEN r.status = 'running' THEN 1 ELSE 0 END) AS running,
               SUM(CASE WHEN r.status = 'failed' THEN 1 ELSE 0 END) AS failed,
               SUM(r.seconds) AS seconds
        FROM jobs j LEFT JOIN runs r ON r.job_id = j.id
        GROUP BY j.id, j.name, j.workdir, j.mlflow_run_id, j.created_at
        ORDER BY j.id
        """,
    )


def runs(db: Db, job_id: int) -> pd.DataFrame:
    """Every run (stage) of a job with its model, dataset, status and timings, in stage order."""
    return read(
        db,
        """
        SELECT r.id AS run_id, r.stage_key, r.kind, r.role, r.seed, r.temperature, r.objective, r.status,
               m.name AS model, m.family, m.n_params, d.name AS dataset, r.started_at, r.finished_at,
               r.seconds, r.mlflow_run_id, r.error
        FROM runs r
        LEFT JOIN models m ON m.id = r.model_id
        LEFT JOIN datasets d ON d.id = r.dataset_id
        WHERE r.job_id = :j
        ORDER BY r.id
        """,
        j=job_id,
    )


def lineage(db: Db, job_id: int) -> pd.DataFrame:
    """Lineage edges of a job, source → target: datasets and runs as nodes.

    Columns: source, target (node ids `d<dataset id>` or `r<run id>`), kind (dataset | teacher | model |
    reference from run_inputs, `produces` from a data or generate run to the dataset it wrote).
    """
    return read(
        db,
        """
        SELECT CASE WHEN i.input_run_id IS NOT NULL THEN 'r' || CAST(i.input_run_id AS VARCHAR)
                    ELSE 'd' || CAST(i.dataset_id AS VARCHAR) END AS source,
               'r' || CAST(i.run_id AS VARCHAR) AS target, i.kind
        FROM run_inputs i JOIN runs r ON r.id = i.run_id
        WHERE r.job_id = :j
        UNION ALL
        SELECT 'r' || CAST(r.id AS VARCHAR) AS source, 'd' || CAST(r.dataset_id AS VARCHAR) AS target,
               'produces' AS kind
        FROM runs r WHERE r.job_id = :j AND r.kind IN ('data', 'generate') AND r.dataset_id IS NOT NULL
        ORDER BY target, source
        """,
        j=job_id,
    )


def datasets(db: Db, job_id: int) -> pd.DataFrame:
    """The datasets a job's runs wrote or read: id, name, tokenizer, lengths, sizes, parent, path."""
    return read(
        db,
        """
        SELECT d.id, d.name, d.tokenizer, d.vocab_size, d.seq_len, d.prefix_len, d.num_train, d.num_val,
               d.parent_dataset_id, d.source, d.path
        FROM datasets d
        WHERE d.id IN (SELECT dataset_id FROM runs WHERE job_id = :j AND dataset_id IS NOT NULL)
           OR d.id IN (SELECT i.dataset_id FROM run_inputs i JOIN runs r ON r.id = i.run_id
                       WHERE r.job_id = :j AND i.dataset_id IS NOT NULL)
        ORDER BY d.id
        """,
        j=job_id,
    )


def lineage_dot(
    run_rows: pd.DataFrame, edges: pd.DataFrame, data: pd.DataFrame, *, scans: bool = False
) -> str:
    """Graphviz DOT of the lineage: datasets as boxes, runs as ellipses coloured by role, failed or
    unfinished runs dashed; scan runs only when `scans` (pure)."""
    colours = {"teacher": "#2ca02c", "baseline": "#d62728", "student_hard": "#9467bd"}
    keep: set[str] = set()
    lines = ["digraph lineage {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10];']
    for d in data.itertuples():
        keep.add(f"d{d.id}")
        lines.append(f'  d{d.id} [shape=box, style=filled, fillcolor="#eeeeee", label="{_dot(d.name)}"];')
    for r in run_rows.itertuples():
        if r.kind == "scan" and not scans:
            continue
        keep.add(f"r{r.run_id}")
        role = _str(r.role)
        label = _dot(r.stage_key) + (f"\\n{_dot(role)}" if role else "")
        colour = colours.get(role, "#1f77b4" if role.startswith("student") else "#7f7f7f")
        style = "solid" if r.status == "done" else "dashed"
        lines.append(f'  r{r.run_id} [label="{label}", color="{colour}", style={style}];')
    produced = {(e.source, e.target) for e in edges.itertuples() if e.kind == "produces"}
    for e in edges.itertuples():
        if (e.target, e.source) in produced:  # a data run's own dataset, recorded as its input too
            continue
        if e.source in keep and e.target in keep:
            lines.append(f'  {e.source} -> {e.target} [label="{_dot(e.kind)}", fontsize=8];')
    lines.append("}")
    return "\n".join(lines)


def _str(v: object) -> str:
    return v if isinstance(v, str) else ""


def _dot(s: object) -> str:
    return str(s).replace("\\", "\\\\").replace('"', '\\"')


def checkpoints(db: Db, job_id: int, *, final_only: bool = False) -> pd.DataFrame:
    """Checkpoints of the job's training runs: epoch, step, tokens, train/val loss, val perplexity.
    `final_only` gives Table 1: one row per trained model, its final checkpoint."""
    return read(
        db,
        f"""
        SELECT c.run_id, r.role, r.seed, r.objective, r.temperature, m.name AS model, m.n_params, c.epoch,
               c.step, c.tokens, c.train_loss, c.val_loss, c.val_ppl, c.is_final
        FROM checkpoints c JOIN runs r ON r.id = c.run_id LEFT JOIN models m ON m.id = r.model_id
        WHERE r.job_id = :j {"AND c.is_final" if final_only else ""}
        ORDER BY {ROLE_ORDER.replace("role", "r.role")}, r.role, r.objective, r.temperature, r.seed,
                 c.run_id, c.epoch, c.step
        """,
        j=job_id,
    )


# ------------------------------------------------------------------------------------------ run sets
def scanned(db: Db, job_id: int | None = None) -> pd.DataFrame:
    """The scanned models of a job (every job when None), as the scanned_runs view gives them plus the
    job's name, but counting scan_results per run before joining runs (20x quicker on 10M rows).

    Columns: job_id, job, dataset_id, run_id, role, seed, temperature, objective, model_family,
    model_name, examples, memorized.
    """
    where = "WHERE r.job_id = :j" if job_id is not None else ""
    params = {"j": job_id} if job_id is not None else {}
    return read(
        db,
        f"""
        WITH c AS (
            SELECT run_id, dataset_id, COUNT(*) AS examples,
                   CAST(SUM(CASE WHEN memorized THEN 1 ELSE 0 END) AS BIGINT) AS memorized
            FROM scan_results
            GROUP BY run_id, dataset_id
        )
        SELECT r.job_id, j.name AS job, c.dataset_id, c.run_id, r.role, r.seed, r.temperature, r.objective,
               m.family AS model_family, m.name AS model_name, c.examples, c.memorized
        FROM c JOIN runs r ON r.id = c.run_id JOIN jobs j ON j.id = r.job_id
        LEFT JOIN models m ON m.id = r.model_id
        {where}
        ORDER BY r.job_id, {ROLE_ORDER.replace("role", "r.role")}, r.role, r.objective, r.temperature, r.seed,
                 c.run_id
        """,
        **params,
    )


def run_sets(db: Db, job_id: int | None = None) -> pd.DataFrame:
    """The sets a user can compare: each scanned run, and each role configuration with several seeds
    pooled (the paper's Venn diagrams pool seeds). `job_id` None lists every job's runs.

    Columns: key, label, job, run_ids (tuple), pooled (bool).
    """
    df = scanned(db, job_id)
    rows: list[dict[str, Any]] = []
    groups: dict[tuple, list] = {}
    for r in df.itertuples():
        cfg = _config(r.objective, r.temperature)
        prefix = f"{r.job}: " if job_id is None else ""
        rows.append(
            {
                "key": f"run:{r.run_id}",
                "label": f"{prefix}{r.role}{cfg} seed {r.seed} (run {r.run_id}, {r.memorized} memorized)",
                "job": r.job,
                "run_ids": (int(r.run_id),),
                "pooled": False,
            }
        )
        groups.setdefault((r.job, r.role, cfg), []).append(
            (int(r.run_id), int(r.seed) if r.seed == r.seed else 0)
        )
    for (job, role, cfg), members in groups.items():
        if len(members) > 1:
            prefix = f"{job}: " if job_id is None else ""
            rows.append(
                {
                    "key": "group:" + ",".join(str(m[0]) for m in members),
                    "label": f"{prefix}{role}{cfg}, {len(members)} seeds pooled",
                    "job": job,
                    "run_ids": tuple(m[0] for m in members),
                    "pooled": True,
                }
            )
    out = pd.DataFrame(rows, columns=["key", "label", "job", "run_ids", "pooled"])
    return out.sort_values(["job", "pooled"], ascending=[True, False], kind="stable").reset_index(drop=True)


def _config(objective: object, temperature: object) -> str:
    parts = []
    if isinstance(objective, str) and objective:
        parts.append(objective)
    if temperature is not None and not (isinstance(temperature, float) and math.isnan(temperature)):
        parts.append(f"T={float(temperature):g}")
    return f" ({', '.join(parts)})" if parts else ""


def overlap_counts(db: Db, job_id: int) -> pd.DataFrame:
    """|A ∩ B| for every ordered pair of the job's scanned runs on one dataset, A = B included (|A|):
    run_a, run_b, n_both. The numbers of the run_overlap view, from the memorized rows alone."""
    return read(
        db,
        """
        WITH m AS (
            SELECT run_id, dataset_id, example_id FROM memorized_examples
            WHERE run_id IN (SELECT id FROM runs WHERE job_id = :j)
        )
        SELECT a.run_id AS run_a, b.run_id AS run_b, COUNT(*) AS n_both
        FROM m a JOIN m b ON b.dataset_id = a.dataset_id AND b.example_id = a.example_id
        GROUP BY a.run_id, b.run_id
        ORDER BY a.run_id, b.run_id
        """,
        j=job_id,
    )


def overlap_matrix(db: Db, job_id: int, value: str = "n_both") -> pd.DataFrame:
    """Pairwise overlap as a square matrix over the job's scanned runs: `n_both` (|A ∩ B|, the diagonal
    |A|) or `jaccard` (|A ∩ B| / |A ∪ B|, NaN when both are empty). Labels `role (config) s<seed> (#id)`."""
    runs_ = scanned(db, job_id)
    labels = {
        int(r.run_id): f"{r.role}{_config(r.objective, r.temperature)} s{r.seed} (#{r.run_id})"
        for r in runs_.itertuples()
    }
    dataset = {int(r.run_id): int(r.dataset_id) for r in runs_.itertuples()}
    order = list(labels)
    both = pd.DataFrame(0.0, index=order, columns=order)
    for r in overlap_counts(db, job_id).itertuples():
        if int(r.run_a) in labels and int(r.run_b) in labels:
            both.loc[int(r.run_a), int(r.run_b)] = float(r.n_both)
    for a in order:
        for b in order:
            if dataset[a] != dataset[b]:
                both.loc[a, b] = np.nan
    if value == "jaccard":
        n = np.diag(both.to_numpy())
        union = n[:, None] + n[None, :] - both.to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            both = pd.DataFrame(
                np.where(union > 0, both.to_numpy() / union, np.nan), index=order, columns=order
            )
    both.index = [labels[i] for i in order]
    both.columns = [labels[i] for i in order]
    return both


# ---------------------------------------------------------------------------------------- easy / ppl
def _baseline_runs(db: Db, job_id: int) -> list[int]:
    return _roles(db, job_id)[0].get("baseline", [])


def sample_step(n: int, sample: int) -> int:
    """Keep every example whose id is a multiple of this to draw about `sample` of `n` (ids are dense)."""
    return max(1, math.ceil(n / max(sample, 1)))


def easy_scatter(db: Db, job_id: int, sample: int = 25_000) -> pd.DataFrame:
    """Figure 5: every easy-to-memorize example (memorized by a teacher run and a baseline seed, as the
    easy_examples view defines them) and about `sample` others (ids that are multiples of a step), with
    zlib entropy and baseline perplexity (mean over the baseline seeds).

    Columns: example_id, zlib_entropy, zlib_bits_per_token, baseline_ppl, easy. The example set is chosen
    from the memorized rows first, so nothing per-example leaves the database in full.
    """
    cols = ["example_id", "zlib_entropy", "zlib_bits_per_token", "baseline_ppl", "easy"]
    roles, dataset = _roles(db, job_id)
    baseline, teacher = roles.get("baseline", []), roles.get("teacher") or [-1]
    if not baseline or dataset is None:
        return pd.DataFrame(columns=cols)
    n = int(read(db, "SELECT COUNT(*) AS n FROM scan_results WHERE run_id = :r", r=baseline[0]).iloc[0, 0])
    step = sample_step(n, sample)
    df = read(
        db,
        """
        WITH easy AS (
            SELECT DISTINCT example_id FROM memorized_examples
            WHERE run_id IN :t AND dataset_id = :d
              AND example_id IN (
                  SELECT example_id FROM memorized_examples WHERE run_id IN :b AND dataset_id = :d)
        ), cand AS (
            SELECT example_id, 1 AS easy FROM easy
            UNION ALL
            SELECT example_id, 0 AS easy FROM scan_results
            WHERE run_id = :b0 AND MOD(example_id, :step) = 0
              AND example_id NOT IN (SELECT example_id FROM easy)
        ), b AS (
            SELECT example_id, AVG(ppl) AS baseline_ppl FROM scan_results
            WHERE run_id IN :b AND dataset_id = :d AND example_id IN (SELECT example_id FROM cand)
            GROUP BY example_id
        )
        SELECT c.example_id, e.zlib_entropy, e.zlib_bits_per_token, b.baseline_ppl, c.easy
        FROM cand c
        LEFT JOIN b ON b.example_id = c.example_id
        LEFT JOIN examples e ON e.dataset_id = :d AND e.example_id = c.example_id
        ORDER BY c.easy DESC, c.example_id
        """,
        t=teacher,
        b=baseline,
        b0=baseline[0],
        d=dataset,
        step=step,
    )
    df["easy"] = df["easy"].astype(bool)
    df.attrs["step"] = step
    return df[cols]


# ---------------------------------------------------------------------------------------- classifier
def _roles(db: Db, job_id: int) -> tuple[dict[str, list[int]], int | None]:
    """The job's scanned run ids by role, and its scanned dataset."""
    df = scanned(db, job_id)
    out: dict[str, list[int]] = {}
    for r in df.itertuples():
        out.setdefault(str(r.role), []).append(int(r.run_id))
    return out, (int(df["dataset_id"].iloc[0]) if not df.empty else None)


def feature_sample(
    db: Db,
    job_id: int,
    group: Group,
    sample: int = 20_000,
) -> pd.DataFrame:
    """Figure 7's data: the classifier's features (as example_features defines them) of every example the
    student group memorized and of about `sample` examples it did not (ids that are multiples of a step).

    Columns: example_id, student_memorized, zlib_entropy, baseline_ppl, teacher_baseline_kld, teacher_ppl.
    The example set is chosen first and the features computed for it alone, so the cost does not grow
    with the number of examples the way the full example_features view does.
    """
    roles, dataset = _roles(db, job_id)
    cols = [
        "example_id",
        "student_memorized",
        "zlib_entropy",
        "baseline_ppl",
        "teacher_baseline_kld",
        "teacher_ppl",
    ]
    if dataset is None:
        return pd.DataFrame(columns=cols)
    n = int(
        read(db, "SELECT COUNT(*) AS n FROM scan_results WHERE run_id = :r", r=group.run_ids[0]).iloc[0, 0]
    )
    step = sample_step(n, sample)
    teacher, baseline = roles.get("teacher") or [-1], roles.get("baseline") or [-1]
    df = read(
        db,
        """
        WITH sm AS (
            SELECT DISTINCT example_id FROM memorized_examples WHERE run_id IN :s AND dataset_id = :d
        ), cand AS (
            SELECT example_id FROM sm
            UNION
            SELECT example_id FROM scan_results WHERE run_id = :s0 AND MOD(example_id, :step) = 0
        ), t AS (
            SELECT example_id, AVG(ppl) AS teacher_ppl FROM scan_results
            WHERE run_id IN :t AND dataset_id = :d AND example_id IN (SELECT example_id FROM cand)
            GROUP BY example_id
        ), b AS (
            SELECT example_id, AVG(ppl) AS baseline_ppl FROM scan_results
            WHERE run_id IN :b AND dataset_id = :d AND example_id IN (SELECT example_id FROM cand)
            GROUP BY example_id
        ), kb AS (
            SELECT example_id, AVG(kld) AS teacher_baseline_kld FROM example_kld
            WHERE run_id IN :b AND reference_run_id IN :t AND dataset_id = :d
              AND example_id IN (SELECT example_id FROM cand)
            GROUP BY example_id
        )
        SELECT c.example_id, CASE WHEN sm.example_id IS NULL THEN 0 ELSE 1 END AS student_memorized,
               e.zlib_entropy, b.baseline_ppl, kb.teacher_baseline_kld, t.teacher_ppl
        FROM cand c
        LEFT JOIN sm ON sm.example_id = c.example_id
        LEFT JOIN t ON t.example_id = c.example_id
        LEFT JOIN b ON b.example_id = c.example_id
        LEFT JOIN kb ON kb.example_id = c.example_id
        LEFT JOIN examples e ON e.dataset_id = :d AND e.example_id = c.example_id
        ORDER BY c.example_id
        """,
        s=list(group.run_ids),
        s0=group.run_ids[0],
        t=teacher,
        b=baseline,
        d=dataset,
        step=step,
    )
    df["student_memorized"] = df["student_memorized"].astype(bool)
    df.attrs["step"] = step
    return df[cols]


def classifier_run(db: Db, job_id: int) -> dict[str, Any] | None:
    """The job's latest classifier run: id, config (its JSON), and the student group it labels with."""
    ids = queries.classifier_runs(db, job_id)
    if not ids:
        return None
    row = read(db, "SELECT id, stage_key, config FROM runs WHERE id = :r", r=ids[-1])
    try:
        config = json.loads(row["config"].iloc[0]) if not row.empty else {}
    except (TypeError, ValueError):
        config = {}
    config = config if isinstance(config, dict) else {}
    group = queries.student_group(
        db, job_id, config.get("role", "student"), config.get("objective"), config.get("temperature")
    )
    return {"run_id": ids[-1], "config": config, "group": group, "all_runs": ids}


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


def summary_table(summary: pd.DataFrame, kind: str) -> pd.DataFrame:
    """classifier_summary rows of one kind as `name`, `mean ± std`, mean, std, n_trials (pure)."""
    s = summary[summary["kind"] == kind].copy()
    s["mean ± std"] = [
        f"{m:.4f} ± {sd:.4f}" if sd == sd and sd is not None else f"{m:.4f}"
        for m, sd in zip(s["mean"].astype(float), s["std"].astype(float), strict=True)
    ]
    return s[["name", "mean ± std", "mean", "std", "n_trials"]].reset_index(drop=True)


# ----------------------------------------------------------------------------------------- mechanism
def kld_categories(db: Db, job_id: int, group: Group) -> pd.DataFrame:
    """Figure 17: baseline perplexity (mean over baseline seeds) and teacher-student KLD (mean over the
    group's seeds) of the examples memorized by a baseline seed and a student seed, by a baseline seed
    only, and by a student seed only; as example_features defines them, computed for those examples alone.

    Columns: example_id, category, baseline_ppl, teacher_student_kld.
    """
    roles, dataset = _roles(db, job_id)
    if dataset is None:
        return pd.DataFrame(columns=["example_id", "category", "baseline_ppl", "teacher_student_kld"])
    teacher, baseline = roles.get("teacher") or [-1], roles.get("baseline") or [-1]
    return read(
        db,
        """
        WITH bm AS (
            SELECT DISTINCT example_id FROM memorized_examples WHERE run_id IN :b AND dataset_id = :d
        ), sm AS (
            SELECT DISTINCT example_id FROM memorized_examples WHERE run_id IN :s AND dataset_id = :d
        ), cat AS (
            SELECT COALESCE(bm.example_id, sm.example_id) AS example_id,
                   CASE WHEN bm.example_id IS NOT NULL AND sm.example_id IS NOT NULL THEN 'baseline & student'
                        WHEN bm.example_id IS NOT NULL THEN 'baseline only'
                        ELSE 'student only' END AS category
            FROM bm FULL OUTER JOIN sm ON sm.example_id = bm.example_id
        ), b AS (
            SELECT example_id, AVG(ppl) AS baseline_ppl FROM scan_results
            WHERE run_id IN :b AND dataset_id = :d AND example_id IN (SELECT example_id FROM cat)
            GROUP BY example_id
        ), ks AS (
            SELECT example_id, AVG(kld) AS teacher_student_kld FROM example_kld
            WHERE run_id IN :s AND reference_run_id IN :t AND dataset_id = :d
              AND example_id IN (SELECT example_id FROM cat)
            GROUP BY example_id
        )
        SELECT cat.example_id, cat.category, b.baseline_ppl, ks.teacher_student_kld
        FROM cat LEFT JOIN b ON b.example_id = cat.example_id LEFT JOIN ks ON ks.example_id = cat.example_id
        ORDER BY cat.example_id
        """,
        s=list(group.run_ids),
        t=teacher,
        b=baseline,
        d=dataset,
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


# ------------------------------------------------------------------------------------ example browser
def _job_datasets(db: Db, job_id: int) -> list[int]:
    df = read(
        db,
        "SELECT DISTINCT dataset_id FROM runs WHERE job_id = :j AND kind = 'scan' AND dataset_id IS NOT NULL",
        j=job_id,
    )
    return sorted(int(x) for x in df["dataset_id"])


def _like(text: str) -> str:
    return "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def search_examples(
    db: Db, job_id: int, *, text: str | None = None, example_id: int | None = None, limit: int = 50
) -> pd.DataFrame:
    """Examples of the job's scanned dataset by id or by a case-insensitive substring of their text; with
    neither, the examples most of the job's models memorized. Columns: example_id, dataset_id, split,
    text, models_memorized, max_match_len."""
    ds = _job_datasets(db, job_id)
    cols = ["example_id", "dataset_id", "split", "text", "models_memorized", "max_match_len"]
    if not ds:
        return pd.DataFrame(columns=cols)
    where, params = ["e.dataset_id IN :ds"], {"ds": ds, "j": job_id, "limit": int(limit)}
    if example_id is not None:
        where.append("e.example_id = :eid")
        params["eid"] = int(example_id)
    if text:
        where.append("LOWER(e.text) LIKE :pat ESCAPE '\\'")
        params["pat"] = _like(text)
    if example_id is None and not text:
        # The most memorized examples first: aggregate the job's memorized rows, then fetch their text.
        return read(
            db,
            """
            WITH m AS (
                SELECT s.dataset_id, s.example_id,
                       SUM(CASE WHEN s.memorized THEN 1 ELSE 0 END) AS models_memorized,
                       MAX(s.match_len) AS max_match_len
                FROM scan_results s JOIN runs r ON r.id = s.run_id
                WHERE r.job_id = :j AND s.dataset_id IN :ds AND s.match_len > 0
                GROUP BY s.dataset_id, s.example_id
                ORDER BY models_memorized DESC, max_match_len DESC, s.example_id
                LIMIT :limit
            )
            SELECT m.example_id, m.dataset_id, e.split, e.text, m.models_memorized, m.max_match_len
            FROM m JOIN examples e ON e.dataset_id = m.dataset_id AND e.example_id = m.example_id
            ORDER BY m.models_memorized DESC, m.max_match_len DESC, m.example_id
            """,
            **params,
        )
    return read(
        db,
        f"""
        WITH hits AS (
            SELECT e.dataset_id, e.example_id, e.split, e.text FROM examples e
            WHERE {" AND ".join(where)} ORDER BY e.example_id LIMIT :limit
        )
        SELECT h.example_id, h.dataset_id, h.split, h.text,
               COALESCE(SUM(CASE WHEN s.memorized THEN 1 ELSE 0 END), 0) AS models_memorized,
               MAX(s.match_len) AS max_match_len
        FROM hits h
        LEFT JOIN scan_results s ON s.dataset_id = h.dataset_id AND s.example_id = h.example_id
             AND s.run_id IN (SELECT id FROM runs WHERE job_id = :j)
        GROUP BY h.example_id, h.dataset_id, h.split, h.text
        ORDER BY h.example_id
        """,
        **params,
    )


def example_detail(
    db: Db, job_id: int, example_id: int, dataset_id: int | None = None
) -> dict[str, Any] | None:
    """One example and every scanned model of the job on it.

    Returns None when the job's datasets have no such example, else a dict: `example` (dataset_id,
    example_id, split, text, prefix_text, suffix_text, zlib_entropy, zlib_bits_per_token, dataset path,
    prefix_len, seq_len) and `models` (DataFrame: run_id, role, seed, objective, temperature, model,
    memorized, match_len, suffix_logprob, suffix_entropy, ppl, kld (vs the teacher), risk, greedy_tokens,
    greedy_text; greedy columns are null where the scan stored no continuation).
    """
    ds = [dataset_id] if dataset_id is not None else _job_datasets(db, job_id)
    if not ds:
        return None
    ex = read(
        db,
        """
        SELECT e.dataset_id, e.example_id, e.split, e.n_tokens, e.text, e.prefix_text, e.suffix_text,
               e.zlib_entropy, e.zlib_bits_per_token, d.path, d.prefix_len, d.seq_len, d.name AS dataset
        FROM examples e JOIN datasets d ON d.id = e.dataset_id
        WHERE e.example_id = :e AND e.dataset_id IN :ds ORDER BY e.dataset_id LIMIT 1
        """,
        e=int(example_id),
        ds=ds,
    )
    if ex.empty:
        return None
    example = ex.iloc[0].to_dict()
    models = read(
        db,
        f"""
        SELECT s.run_id, r.role, r.seed, r.objective, r.temperature, m.name AS model, s.memorized,
               s.match_len, s.suffix_logprob, s.suffix_entropy, s.ppl, k.kld, g.tokens AS greedy_tokens,
               g.text AS greedy_text
        FROM scan_results s
        JOIN runs r ON r.id = s.run_id
        LEFT JOIN models m ON m.id = r.model_id
        LEFT JOIN (SELECT k.run_id, k.example_id, AVG(k.kld) AS kld FROM example_kld k
                   JOIN runs t ON t.id = k.reference_run_id AND t.role = 'teacher'
                   WHERE k.example_id = :e GROUP BY k.run_id, k.example_id) k
               ON k.run_id = s.run_id AND k.example_id = s.example_id
        LEFT JOIN greedy_continuations g ON g.run_id = s.run_id AND g.example_id = s.example_id
        WHERE r.job_id = :j AND s.example_id = :e AND s.dataset_id = :d
        ORDER BY {ROLE_ORDER.replace("role", "r.role")}, r.role, r.objective, r.temperature, r.seed, s.run_id
        """,
        j=job_id,
        e=int(example_id),
        d=int(example["dataset_id"]),
    )
    risk = read(
        db,
        "SELECT k.run_id, k.risk FROM example_risk k JOIN runs r ON r.id = k.run_id "
        "WHERE r.job_id = :j AND k.example_id = :e ORDER BY k.run_id DESC",
        j=job_id,
        e=int(example_id),
    )
    example["risk"] = None if risk.empty else risk["risk"].iloc[0]
    return {"example": example, "models": models}


def true_tokens(dataset_path: str | None, example_id: int) -> list[int] | None:
    """The example's token ids from its dataset's train.parquet, or None when the file is not reachable
    (the database moved without its workdir)."""
    if not dataset_path:
        return None
    path = Path(dataset_path) / "train.parquet"
    if not path.is_file():
        return None
    import pyarrow.parquet as pq

    try:
        t = pq.read_table(path, filters=[("example_id", "=", int(example_id))])
    except Exception:
        return None
    if t.num_rows == 0:
        return None
    return [int(x) for x in t.column("tokens")[0].as_py()]


_tokenizers: dict[str, Any] = {}


def token_decoder(dataset_path: str | None) -> Callable[[list[int]], str] | None:
    """A decode function from the dataset's saved tokenizer (the `tokenizers` library, no transformers),
    or None when there is none to read."""
    if not dataset_path:
        return None
    path = Path(dataset_path) / "tokenizer" / "tokenizer.json"
    key = str(path)
    if key not in _tokenizers:
        tok = None
        if path.is_file():
            try:
                from tokenizers import Tokenizer

                tok = Tokenizer.from_file(key)
            except Exception:
                tok = None
        _tokenizers[key] = tok
    tok = _tokenizers[key]
    if tok is None:
        return None
    return lambda ids: tok.decode(list(ids), skip_special_tokens=False)


def token_pieces(ids: list[int], decode: Callable[[list[int]], str]) -> list[str]:
    """The text each token adds: piece k = decode(ids[:k+1]) minus decode(ids[:k]), so the pieces join to
    the decoded text whatever the tokenizer does with spaces (pure)."""
    pieces, prev = [], ""
    for k in range(len(ids)):
        cur = decode(ids[: k + 1])
        pieces.append(cur[len(prev) :] if cur.startswith(prev) else decode([ids[k]]))
        prev = cur
    return pieces


def first_mismatch(truth: list[int], greedy: list[int]) -> int:
    """Index of the first position where the greedy tokens differ from the true suffix (len when none)."""
    for i, (a, b) in enumerate(zip(truth, greedy, strict=False)):
        if a != b:
            return i
    return min(len(truth), len(greedy))


def continuation_parts(
    example: dict[str, Any],
    greedy_tokens: str | None,
    greedy_text: str | None,
    match_len: int,
    decode: Callable[[list[int]], str] | None,
    truth: list[int] | None,
) -> dict[str, Any] | None:
    """Split a model's greedy continuation at its first mismatching token (pure).

    Returns None when no continuation is stored; else matched, mismatch, rest (strings), expected (the true
    token's text at the mismatch), index (the mismatching token's position in the suffix, == match_len
    for a consistent scan) and exact (True when split on tokens, False when only the texts could be
    compared: no tokenizer or dataset file at hand).
    """
    greedy_tokens = greedy_tokens if isinstance(greedy_tokens, str) else None  # NULL arrives as None or NaN
    greedy_text = greedy_text if isinstance(greedy_text, str) else None
    if greedy_tokens is None and greedy_text is None:
        return None
    ids = [int(x) for x in str(greedy_tokens or "").split()]
    prefix_len = int(example.get("prefix_len") or 0)
    suffix = truth[prefix_len:] if truth is not None and prefix_len else None
    if decode is not None and ids:
        pieces = token_pieces(ids, decode)
        k = first_mismatch(suffix, ids) if suffix is not None else min(int(match_len), len(ids))
        expected = None
        if suffix is not None and k < len(suffix):
            expected = token_pieces(suffix[: k + 1], decode)[k]
        return {
            "matched": "".join(pieces[:k]),
            "mismatch": "".join(pieces[k : k + 1]),
            "rest": "".join(pieces[k + 1 :]),
            "expected": expected,
            "index": k,
            "exact": True,
        }
    # No tokenizer: compare characters of the decoded texts; the mismatching "token" runs from the first
    # differing character to the next space.
    text, truth_text = str(greedy_text or ""), str(example.get("suffix_text") or "")
    i = 0
    while i < min(len(text), len(truth_text)) and text[i] == truth_text[i]:
        i += 1
    start = i
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    end = i
    while end < len(text) and (end == start or not text[end].isspace()):
        end += 1
    exp_end = start
    while exp_end < len(truth_text) and (exp_end == start or not truth_text[exp_end].isspace()):
        exp_end += 1
    return {
        "matched": text[:start],
        "mismatch": text[start:end],
        "rest": text[end:],
        "expected": truth_text[start:exp_end] or None,
        "index": min(int(match_len), len(ids)) if ids else int(match_len),
        "exact": False,
    }


# ------------------------------------------------------------------------------------------ the console
from kdplatform.store import views as sql_views  # noqa: E402  (this section's own import)

# The documented surface: each view with the summary of its file's header, then the tables.
SURFACE: dict[str, str] = {v.name: v.summary for v in sql_views.load()} | {
    "jobs": "one row per job (name, spec JSON, workdir, MLflow run)",
    "runs": "one row per stage: kind, role, seed, temperature, objective, status, timings, MLflow run",
    "run_inputs": "lineage edges: dataset, teacher, model, reference",
    "datasets": "tokenized datasets: tokenizer, lengths, sizes, parent",
    "models": "model name, family, parameters",
    "checkpoints": "per epoch: train_loss, val_loss, val_ppl, is_final",
    "examples": "per example: text, prefix_text, suffix_text, zlib_entropy, zlib_bits_per_token",
    "scan_results": "per (trained run, example): memorized, match_len, suffix_logprob, suffix_entropy, ppl",
    "example_kld": "per (run, reference run, example): mean suffix KL(reference || model)",
    "greedy_continuations": "greedy suffix tokens and text of (near-)memorized examples",
    "classifier_trials": "test metrics of each classifier trial",
    "classifier_coefficients": "standardized coefficient of each feature in each trial",
    "example_risk": "risk score and prediction per example of a classifier run",
}

EXAMPLE_QUERIES: dict[str, str] = {
    "Memorization rate per run (Table 2)": "SELECT job_id, run_id, role, seed, temperature, objective,\n"
    "       examples, memorized, ROUND(rate_pct, 4) AS rate_pct\n"
    "FROM memorization_rates\nORDER BY job_id, run_id",
    "Pairwise overlap": "SELECT run_a, role_a, run_b, role_b, n_both, ROUND(jaccard, 3) AS jaccard\n"
    "FROM run_overlap\nORDER BY run_a, run_b",
    "Inherited examples": "SELECT student_run_id, student_seed, n_inherited, n_teacher_not_baseline,\n"
    "       ROUND(share_of_teacher_not_baseline, 4) AS share\nFROM inheritance",
    "Most memorized examples": "SELECT e.example_id, COUNT(*) AS models, MIN(e.text) AS text\n"
    "FROM memorized_examples m JOIN examples e USING (dataset_id, example_id)\n"
    "GROUP BY e.example_id ORDER BY models DESC, e.example_id LIMIT 20",
}
