"""Comparisons beyond one teacher-baseline-student triple: soft vs hard distillation (section 6) and
model families on one corpus (section 3.2.1).

Soft vs hard pools seeds per role, as the paper's Figures 10 and 11 do: `soft` is the student group
(groups.student_group), `hard` the `student_hard` runs. Difficult examples are those the hard student
memorized and neither the soft student nor any baseline seed did (Figure 10's hard-only region).

Cross-family comparisons match examples on example_id alone: one corpus tokenized by two tokenizers keeps
its example ids, while token-level data (and so the dataset row) differs per tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kdplatform.analysis.groups import Group, role_runs, scanned_runs, student_group
from kdplatform.analysis.overlap import memorized_sets, pooled, venn_counts
from kdplatform.analysis.reading import MEMBER_SCANS, Db, RunSet, read
from kdplatform.store.schema import Role


def _share(num: int, den: int) -> float:
    return num / den if den else float("nan")


@dataclass(frozen=True)
class SoftHard:
    soft: Group
    hard: Group
    n_soft: int
    n_hard: int
    n_both: int
    share_hard_in_soft: float
    """Of the hard student's memorized examples, the share the soft student also memorized (~70%)."""
    n_hard_easy: int
    """Hard-memorized examples the teacher and a baseline seed also memorized (Figure 11's centre)."""
    n_difficult: int
    """Memorized by the hard student, not by the soft student nor any baseline seed."""
    n_difficult_teacher: int
    """Difficult examples the teacher memorized too (the paper: 80%)."""
    inherited_soft: int
    """Teacher and soft student, no baseline seed (Figure 4's inheritance)."""
    inherited_hard: int
    """Teacher and hard student, no baseline seed (Figure 11's)."""
    soft_hard_baseline: pd.DataFrame
    """venn3 counts with A = soft, B = hard, C = baseline (Figure 10)."""
    teacher_baseline_hard: pd.DataFrame
    """venn3 counts with A = teacher, B = baseline, C = hard (Figure 11)."""

    @property
    def inheritance_ratio(self) -> float:
        """Hard over soft inheritance (the paper: 2.7)."""
        return _share(self.inherited_hard, self.inherited_soft)


def soft_vs_hard(
    db: Db, job_id: int, soft_role: str = Role.STUDENT, hard_role: str = Role.STUDENT_HARD
) -> SoftHard | None:
    """None when the job lacks scanned soft or hard students, a teacher or a baseline. The runs and their
    memorized sets are read once each; the set algebra, the two Venn diagrams included, is done on them."""
    runs = scanned_runs(db, job_id)
    soft = student_group(db, job_id, soft_role, runs=runs)
    hard = student_group(db, job_id, hard_role, runs=runs)
    teacher, baseline = role_runs(db, job_id, Role.TEACHER, runs), role_runs(db, job_id, Role.BASELINE, runs)
    if soft is None or hard is None or not teacher or not baseline:
        return None
    sets = memorized_sets(db, sorted({*soft.run_ids, *hard.run_ids, *teacher, *baseline}))
    s, h = pooled(sets, soft.run_ids), pooled(sets, hard.run_ids)
    t, b = pooled(sets, teacher), pooled(sets, baseline)
    difficult = h - s - b
    return SoftHard(
        soft=soft,
        hard=hard,
        n_soft=len(s),
        n_hard=len(h),
        n_both=len(s & h),
        share_hard_in_soft=_share(len(s & h), len(h)),
        n_hard_easy=len(h & t & b),
        n_difficult=len(difficult),
        n_difficult_teacher=len(difficult & t),
        inherited_soft=len((t & s) - b),
        inherited_hard=len((t & h) - b),
        soft_hard_baseline=venn_counts(s, h, b),
        teacher_baseline_hard=venn_counts(t, b, h),
    )


def cross_overlap(db: Db, runs: Sequence[int]) -> pd.DataFrame:
    """Every ordered pair of the given runs, from any jobs and tokenizations, matched on example_id:
    run_a, run_b, n_a, n_b, n_both, jaccard."""
    ids = sorted({int(r) for r in runs})
    counts = read(
        db,
        "SELECT r.id AS run_id, COALESCE(m.n, 0) AS n FROM runs r LEFT JOIN ("
        " SELECT run_id, COUNT(DISTINCT example_id) AS n FROM memorized_examples WHERE run_id IN :r"
        " GROUP BY run_id) m ON m.run_id = r.id WHERE r.id IN :r",
        r=ids,
    )
    both = read(
        db,
        "SELECT a.run_id AS run_a, b.run_id AS run_b, COUNT(DISTINCT a.example_id) AS n_both "
        "FROM memorized_examples a JOIN memorized_examples b "
        "ON b.example_id = a.example_id AND b.run_id <> a.run_id "
        "WHERE a.run_id IN :r AND b.run_id IN :r GROUP BY a.run_id, b.run_id",
        r=ids,
    )
    n = {int(r.run_id): int(r.n) for r in counts.itertuples()}
    nb = {(int(r.run_a), int(r.run_b)): int(r.n_both) for r in both.itertuples()}
    rows = []
    for a in ids:
        for b in ids:
            if a != b:
                k = nb.get((a, b), 0)
                union = n.get(a, 0) + n.get(b, 0) - k
                rows.append(
                    {
                        "run_a": a,
                        "run_b": b,
                        "n_a": n.get(a, 0),
                        "n_b": n.get(b, 0),
                        "n_both": k,
                        "jaccard": _share(k, union),
                    }
                )
    return pd.DataFrame(rows, columns=["run_a", "run_b", "n_a", "n_b", "n_both", "jaccard"])


def zlib_bits(db: Db, dataset_a: int, dataset_b: int, memorized_by: RunSet | None = None) -> pd.DataFrame:
    """zlib bits per token of the same examples under two tokenizations (datasets), joined on example_id;
    only the examples memorized by `memorized_by` when given. Canaries are left out: they are drawn per
    tokenizer, so one id names two different texts."""
    sql = (
        "SELECT a.example_id, a.zlib_bits_per_token AS bits_a, b.zlib_bits_per_token AS bits_b "
        "FROM examples a JOIN examples b ON b.example_id = a.example_id "
        "WHERE a.dataset_id = :dataset_a AND b.dataset_id = :dataset_b AND a.split <> 'canary'"
    )
    params: dict = {"dataset_a": dataset_a, "dataset_b": dataset_b}
    if memorized_by is not None:
        sql += " AND a.example_id IN (SELECT example_id FROM memorized_examples WHERE run_id IN :m)"
        params["m"] = [int(memorized_by)] if isinstance(memorized_by, int) else [int(r) for r in memorized_by]
    return read(db, sql + " ORDER BY a.example_id", **params)


def zlib_correlation(
    db: Db, dataset_a: int, dataset_b: int, memorized_by: RunSet | None = None
) -> tuple[float, int]:
    """Pearson r of zlib bits per token between two tokenizers (section 3.2.1) and the examples used."""
    df = zlib_bits(db, dataset_a, dataset_b, memorized_by)
    x, y = df["bits_a"].to_numpy(dtype=float), df["bits_b"].to_numpy(dtype=float)
    if len(df) < 2 or x.std() == 0 or y.std() == 0:
        return float("nan"), len(df)
    return float(np.corrcoef(x, y)[0, 1]), len(df)


def cross_ppl(db: Db, run_a: int, run_b: int) -> pd.DataFrame:
    """Figure 6: for examples of D memorized by either run, both models' perplexities and who memorized it."""
    return read(
        db,
        f"""
        SELECT a.example_id, a.ppl AS ppl_a, b.ppl AS ppl_b, a.memorized AS memorized_a,
               b.memorized AS memorized_b
        FROM {MEMBER_SCANS} a JOIN {MEMBER_SCANS} b ON b.example_id = a.example_id
        WHERE a.run_id = :a AND b.run_id = :b AND (a.memorized OR b.memorized)
        ORDER BY a.example_id
        """,
        a=run_a,
        b=run_b,
    )
