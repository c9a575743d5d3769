"""Which examples runs memorized in common: pairwise overlap (run_overlap), three-set Venn counts over
pooled seeds (Figures 4, 10, 11, 13), inheritance (section 3.1) and consistency across seeds (Figure 3).

Sets are matched on example_id within one scanned dataset; `venn3` matches on example_id alone, so runs on
different tokenizations of one corpus compare too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kdplatform.analysis.groups import (
    Group,
    GroupChoice,
    chosen,
    config_parts,
    group_filter,
    group_params,
    scanned,
    scanned_runs,
    trio,
)
from kdplatform.analysis.reading import MEMBER_SCANS, Db, RunSet, fresh, read, read_job
from kdplatform.store.schema import Role

REGIONS = ("A", "B", "C", "AB", "AC", "BC", "ABC")


def _ids(runs: RunSet) -> list[int]:
    ids = [int(runs)] if isinstance(runs, int) else [int(r) for r in runs]
    if not ids:
        raise ValueError("a run set needs at least one run id")
    return ids


def memorized_ids(db: Db, runs: RunSet) -> set[int]:
    """Examples memorized by any of the runs."""
    df = read(db, "SELECT DISTINCT example_id FROM memorized_examples WHERE run_id IN :r", r=_ids(runs))
    return {int(x) for x in df["example_id"]}


def memorized_sets(db: Db, runs: RunSet) -> dict[int, set[int]]:
    """Each run's memorized example ids, from one pass (an analysis pooling several run sets reads them
    once and pools in Python: `pooled`)."""
    ids = _ids(runs)
    df = read(db, "SELECT run_id, example_id FROM memorized_examples WHERE run_id IN :r", r=ids)
    out: dict[int, set[int]] = {r: set() for r in ids}
    for run, examples in df.groupby("run_id")["example_id"]:
        out[int(run)] = set(examples.astype(int).tolist())
    return out


def pooled(sets: dict[int, set[int]], runs: RunSet) -> set[int]:
    """The union of the runs' memorized sets (seeds pooled), as memorized_ids gives it."""
    return set().union(*(sets[r] for r in _ids(runs)))


def overlap(db: Db, job_id: int) -> pd.DataFrame:
    """Every ordered pair of the job's scanned runs: |A|, |B|, |A∩B|, |A∖B|, |B∖A|, Jaccard."""
    return read_job(db, job_id, "SELECT * FROM run_overlap WHERE job_id = :j ORDER BY run_a, run_b")


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


def _pair_counts(db: Db, job_id: int, runs_: pd.DataFrame) -> pd.DataFrame:
    """overlap_counts' rows: from the job's fresh copy of run_overlap (its pairs, and each run's |A|
    from scanned_runs) when there is one, else from the memorized rows."""
    if not fresh(db, "run_overlap", job_id):
        return overlap_counts(db, job_id)
    pairs = overlap(db, job_id)[["run_a", "run_b", "n_both"]]
    diagonal = pd.DataFrame(
        {"run_a": runs_["run_id"], "run_b": runs_["run_id"], "n_both": runs_["memorized"]}
    )
    return pd.concat([pairs, diagonal], ignore_index=True)


def overlap_matrix(db: Db, job_id: int, value: str = "n_both") -> pd.DataFrame:
    """Pairwise overlap as a square matrix over the job's scanned runs: `n_both` (|A ∩ B|, the diagonal
    |A|) or `jaccard` (|A ∩ B| / |A ∪ B|, NaN when both are empty). Labels `role (config) s<seed> (#id)`."""
    runs_ = scanned_runs(db, job_id)
    labels = {
        int(r.run_id): f"{r.role}{_config_suffix(r.objective, r.temperature)} s{r.seed} (#{r.run_id})"
        for r in runs_.itertuples()
    }
    dataset = {int(r.run_id): int(r.dataset_id) for r in runs_.itertuples()}
    order = list(labels)
    both = pd.DataFrame(0.0, index=order, columns=order)
    for r in _pair_counts(db, job_id, runs_).itertuples():
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


def run_sets(db: Db, job_id: int | None = None) -> pd.DataFrame:
    """The sets a user can compare: each scanned run, and each role configuration with several seeds
    pooled (the paper's Venn diagrams pool seeds). `job_id` None lists every job's runs.

    Columns: key, label, job, run_ids (tuple), pooled (bool).
    """
    df = scanned(db, job_id)
    rows: list[dict[str, Any]] = []
    groups: dict[tuple, list] = {}
    for r in df.itertuples():
        cfg = _config_suffix(r.objective, r.temperature)
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


def _config_suffix(objective: object, temperature: object) -> str:
    """` (forward_kl, T=2)` after a role, or nothing for a run without a distillation configuration."""
    parts = config_parts(objective, temperature)
    return f" ({', '.join(parts)})" if parts else ""


def venn3(db: Db, a: RunSet, b: RunSet, c: RunSet) -> pd.DataFrame:
    """The seven region counts of three memorized sets (Figures 4, 10, 11, 13).

    Each of a, b, c is a run id or several (their union: pooled seeds). Examples are matched on
    example_id alone, so runs on different tokenizations of one corpus compare too. Region "AC" counts
    examples memorized by A and C but not B, and so on.
    """
    ia, ib, ic = _ids(a), _ids(b), _ids(c)
    counts = read(
        db,
        "SELECT in_a, in_b, in_c, COUNT(*) AS n FROM ("
        " SELECT example_id,"
        "  MAX(CASE WHEN run_id IN :a THEN 1 ELSE 0 END) AS in_a,"
        "  MAX(CASE WHEN run_id IN :b THEN 1 ELSE 0 END) AS in_b,"
        "  MAX(CASE WHEN run_id IN :c THEN 1 ELSE 0 END) AS in_c"
        " FROM memorized_examples WHERE run_id IN :abc GROUP BY example_id"
        ") t GROUP BY in_a, in_b, in_c",
        a=ia,
        b=ib,
        c=ic,
        abc=sorted(set(ia + ib + ic)),
    )
    return _regions({(int(r.in_a), int(r.in_b), int(r.in_c)): int(r.n) for r in counts.itertuples()})


def venn_counts(a: set[int], b: set[int], c: set[int]) -> pd.DataFrame:
    """venn3's seven region counts from three sets of example ids in hand (pure)."""
    found: dict[tuple[int, int, int], int] = {}
    for x in a | b | c:
        key = (int(x in a), int(x in b), int(x in c))
        found[key] = found.get(key, 0) + 1
    return _regions(found)


def _regions(found: dict[tuple[int, int, int], int]) -> pd.DataFrame:
    rows = []
    for region in REGIONS:
        key = tuple(int(x in region) for x in "ABC")
        rows.append(
            {
                "region": region,
                "in_a": bool(key[0]),
                "in_b": bool(key[1]),
                "in_c": bool(key[2]),
                "count": found.get(key, 0),
            }
        )
    return pd.DataFrame(rows)


def region(venn: pd.DataFrame, name: str) -> int:
    return int(venn.loc[venn["region"] == name, "count"].iloc[0])


@dataclass(frozen=True)
class JobVenn:
    """Teacher (A), baseline seeds pooled (B) and a student group pooled (C) of one job."""

    teacher: tuple[int, ...]
    baseline: tuple[int, ...]
    student: Group
    counts: pd.DataFrame

    def __getitem__(self, name: str) -> int:
        return region(self.counts, name)

    @property
    def n_student(self) -> int:
        return self["C"] + self["AC"] + self["BC"] + self["ABC"]

    @property
    def n_teacher_not_baseline(self) -> int:
        return self["A"] + self["AC"]

    @property
    def n_inherited(self) -> int:
        """Memorized by the teacher and the student but by no baseline seed (section 3.1)."""
        return self["AC"]

    @property
    def n_easy(self) -> int:
        """Memorized by the teacher and a baseline seed (easy-to-memorize)."""
        return self["AB"] + self["ABC"]


def job_venn(
    db: Db, job_id: int, group: GroupChoice = Role.STUDENT, runs: pd.DataFrame | None = None
) -> JobVenn | None:
    """Figure 4 for a job: None when it lacks a scanned teacher, baseline or that student group."""
    found = trio(db, job_id, group, runs)
    if found is None:
        return None
    teacher, baseline, student = found
    counts = venn3(db, teacher, baseline, student.run_ids)
    return JobVenn(tuple(teacher), tuple(baseline), student, counts)


def inheritance(db: Db, job_id: int) -> pd.DataFrame:
    """Per (teacher, student, baseline) triple: inherited examples and their shares."""
    return read_job(
        db,
        job_id,
        "SELECT * FROM inheritance WHERE job_id = :j "
        "ORDER BY student_role, student_objective, student_temperature, student_seed, baseline_seed",
    )


def inherited_examples(db: Db, job_id: int, student_run_id: int | None = None) -> pd.DataFrame:
    sql = "SELECT * FROM inherited_examples WHERE job_id = :j"
    params: dict[str, Any] = {"j": job_id}
    if student_run_id is not None:
        sql += " AND student_run_id = :s"
        params["s"] = student_run_id
    return read(db, sql + " ORDER BY student_run_id, baseline_run_id, example_id", **params)


def consistency_matrix(db: Db, job_id: int, group: GroupChoice = Role.STUDENT) -> pd.DataFrame:
    """Figure 3: examples by how many baseline seeds (rows) and student seeds (columns) memorized them.

    Rows run 0..number of baseline runs and columns 0..number of student runs of the group, zeros kept.
    The cells are seed_consistency's GROUP BY, of the job's copy of it while that is fresh; else, when
    every baseline run and every run of the group scanned the same dense range of example ids of one
    dataset (as a scan stage does: every example of D), they are counted from the memorized rows alone
    (consistency_cells), the same numbers without a pass per example over every scan row.
    """
    runs = scanned_runs(db, job_id)
    g = chosen(db, job_id, group, runs)
    if g is None:
        return pd.DataFrame()
    baseline = [int(r) for r in runs.loc[runs["role"] == Role.BASELINE, "run_id"]]
    cells = (
        None if fresh(db, "seed_consistency", job_id) else consistency_cells(db, baseline, list(g.run_ids))
    )
    if cells is None:
        cells = read_job(
            db,
            job_id,
            "SELECT n_baseline_memorized, n_student_memorized, MAX(n_baseline_runs) AS nb, "
            "MAX(n_student_runs) AS ns, COUNT(*) AS n FROM seed_consistency "
            f"WHERE job_id = :j AND {group_filter()} GROUP BY n_baseline_memorized, n_student_memorized",
            **group_params(g),
        )
    if cells.empty:
        return pd.DataFrame()
    nb, ns = int(cells["nb"].max()), int(cells["ns"].max())
    m = pd.DataFrame(
        0,
        index=pd.RangeIndex(nb + 1, name="baseline_seeds"),
        columns=pd.RangeIndex(ns + 1, name="student_seeds"),
    )
    for r in cells.itertuples():
        m.loc[int(r.n_baseline_memorized), int(r.n_student_memorized)] = int(r.n)
    m.attrs["group"] = g
    return m


def consistency_cells(db: Db, baseline: list[int], student: list[int]) -> pd.DataFrame | None:
    """seed_consistency's cells for one group (n_baseline_memorized, n_student_memorized, nb, ns, n) from
    the memorized rows, when every run (baseline and student) covers the same ids lo..hi of one dataset
    (count = hi - lo + 1: run and example are the key of scan_results, so that range is its whole set);
    None otherwise (or without baseline runs), for the caller to read the view."""
    if not baseline or not student:
        return None
    cover = read(
        db,
        f"SELECT run_id, dataset_id, COUNT(*) AS n, MIN(example_id) AS lo, MAX(example_id) AS hi "
        f"FROM {MEMBER_SCANS} s WHERE run_id IN :r GROUP BY run_id, dataset_id",
        r=baseline + student,
    )
    spans = {(int(r.dataset_id), int(r.n), int(r.lo), int(r.hi)) for r in cover.itertuples()}
    if len(cover) != len(baseline) + len(student) or len(spans) != 1:
        return None
    _, n, lo, hi = spans.pop()
    if hi - lo + 1 != n:
        return None
    counts = read(
        db,
        "SELECT nb_m AS n_baseline_memorized, ns_m AS n_student_memorized, COUNT(*) AS n FROM ("
        " SELECT example_id, SUM(CASE WHEN run_id IN :b THEN 1 ELSE 0 END) AS nb_m,"
        "  SUM(CASE WHEN run_id IN :s THEN 1 ELSE 0 END) AS ns_m"
        " FROM memorized_examples WHERE run_id IN :r GROUP BY example_id"
        ") t GROUP BY nb_m, ns_m",
        b=baseline,
        s=student,
        r=baseline + student,
    )
    zero = n - int(counts["n"].sum())
    cells = pd.concat(
        [counts, pd.DataFrame({"n_baseline_memorized": [0], "n_student_memorized": [0], "n": [zero]})]
    )
    cells = cells[cells["n"] > 0].assign(nb=len(baseline), ns=len(student))
    return cells.reset_index(drop=True)
