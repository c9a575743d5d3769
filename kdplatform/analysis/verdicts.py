"""One line per headline finding of the paper, decided by a test on this job's rows (kdplatform.analysis
.stats): 'reproduced' when p < 0.05 in the paper's direction, 'contradicted' when p < 0.05 against it,
'inconclusive' otherwise or when the job lacks what the test needs (the line says why).

Comparisons of two run groups use the seeds both trained, paired seed by seed on the same examples, or
pooled over those seeds on both sides, so three seeds never stand against one. Students are the
classifier's student group (groups.student_group), in Table 1 too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kdplatform.analysis import stats
from kdplatform.analysis.classifier_results import classifier_runs, classifier_target
from kdplatform.analysis.features import features
from kdplatform.analysis.filtering import stored_exclusion
from kdplatform.analysis.groups import Group, scanned_runs, student_group
from kdplatform.analysis.jobs import resolve_job
from kdplatform.analysis.rates import final_checkpoints
from kdplatform.analysis.reading import MEMBER_SCANS, Db, none_if_null, read
from kdplatform.store.schema import Role

INHERITED_AT_MOST = 0.10
"""Section 3.1's 'little': the reference share of teacher-only examples a student inherits (paper 0.9%)."""
EASY_AT_LEAST = 0.80
"""Figure 4's 'mostly': the reference share of student-memorized examples that are easy (paper 95.7%)."""
OVERLAP_AT_LEAST = 0.70
"""Figure 10's 'largely the same': the reference share of the hard student's examples the soft one has."""


@dataclass(frozen=True)
class Verdict:
    finding: str
    outcome: str
    """reproduced | contradicted | inconclusive"""
    evidence: str
    """The job's numbers, or why no test ran."""
    test: str = ""
    """The test that decided; empty when none could run."""
    effect: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    p_value: float = math.nan
    n: int = 0
    unit: str = ""
    """Unit of effect and interval as printed (pp: percentage points)."""
    measured: bool = True
    """False when the job's design has no run this finding needs (one temperature, no filtered student,
    no hard student, no classifier): not a verdict, listed apart from them."""

    def line(self) -> str:
        head = f"[{self.outcome}] {self.finding}: {self.evidence}"
        if not self.test:
            return head
        u = self.unit if self.unit in ("", "%") else f" {self.unit}"
        return (
            f"{head}; effect {self.effect:.3g}{u}, 95% CI [{self.ci_low:.3g}, {self.ci_high:.3g}]; "
            f"{self.test}, p = {self.p_value:.2g}"
        )


def _verdict(
    finding: str, evidence: str, result: stats.TestResult, paper: stats.Direction, scale: float, unit: str
) -> Verdict:
    return Verdict(
        finding,
        stats.decide(result, paper),
        evidence,
        result.test,
        scale * result.effect,
        scale * result.ci_low,
        scale * result.ci_high,
        float(result.p_value),
        result.n,
        unit,
    )


def _seeds(seeds: list) -> str:
    return "seed" + ("s " if len(seeds) != 1 else " ") + ", ".join(str(s) for s in seeds)


class _Job:
    """A job's scanned runs, by role and seed, and their memorized flags per (dataset, example)."""

    def __init__(self, db: Db, job_id: int) -> None:
        self.db, self.job_id = db, job_id
        self.runs = scanned_runs(db, job_id)
        self.seed = {int(r.run_id): none_if_null(r.seed) for r in self.runs.itertuples()}
        flags = read(
            db,
            "SELECT s.run_id, s.dataset_id, s.example_id, CASE WHEN s.memorized THEN 1 ELSE 0 END AS m "
            f"FROM {MEMBER_SCANS} s JOIN runs r ON r.id = s.run_id WHERE r.job_id = :j",
            j=job_id,
        )
        index = ["dataset_id", "example_id"]
        self.flags = flags.set_index([*index, "run_id"]).m.unstack("run_id") if len(flags) else pd.DataFrame()

    def role(self, role: str) -> tuple[int, ...]:
        return tuple(int(r) for r in self.runs.loc[self.runs.role == role, "run_id"])

    def by_seed(self, runs: tuple[int, ...]) -> dict:
        out: dict = {}
        for r in runs:
            out.setdefault(self.seed[r], r)
        return out

    def matched(self, *groups: tuple[int, ...]) -> tuple[list, list[list[int]]]:
        """The seeds every group trained (ascending) and, per group, its run of each of those seeds."""
        maps = [self.by_seed(g) for g in groups]
        common = sorted(set.intersection(*(set(m) for m in maps)), key=lambda s: (s is None, s))
        return common, [[m[s] for s in common] for m in maps]

    def mem(self, *run_lists: list[int]) -> list[np.ndarray]:
        """(runs, examples) memorized flags of each list, on the examples every listed run scanned."""
        ids = [r for runs in run_lists for r in runs]
        sub = self.flags[ids].dropna()
        return [sub[runs].to_numpy(dtype=bool).T for runs in run_lists]


def _paired_rates(job: _Job, finding: str, student: Group | None, extra: str = "") -> Verdict:
    """Table 2's comparison: a student group against the baseline, seed by seed on the same examples."""
    label = (
        "converged student" if student is not None and student.role == Role.STUDENT_CONVERGED else "student"
    )
    if student is None or not job.role(Role.BASELINE):
        return Verdict(finding, "inconclusive", f"the job has no scanned baseline and {label}")
    seeds, (s, b) = job.matched(student.run_ids, job.role(Role.BASELINE))
    if not seeds:
        return Verdict(finding, "inconclusive", f"no seed trained both the baseline and the {label}")
    ms, mb = job.mem(s, b)
    ev = f"{label} {100 * ms.mean():.2f}% vs baseline {100 * mb.mean():.2f}% ({_seeds(seeds)}{extra})"
    return _verdict(finding, ev, stats.paired_binary(ms, mb), "less", 100, "pp")


def _table1(job: _Job, g: Group | None) -> Verdict:
    f = "Distilled students reach a lower validation loss than the baseline (Table 1)"
    final = read(
        job.db,
        "SELECT c.run_id, CAST(c.val_loss AS DOUBLE PRECISION) AS val_loss FROM checkpoints c "
        "JOIN runs r ON r.id = c.run_id WHERE r.job_id = :j AND c.is_final AND c.val_loss IS NOT NULL",
        j=job.job_id,
    )
    loss = dict(zip(final.run_id.astype(int), final.val_loss, strict=True))
    base = tuple(r for r in job.role(Role.BASELINE) if r in loss)
    stud = tuple(r for r in (g.run_ids if g is not None else ()) if r in loss)
    seeds, (s, b) = job.matched(stud, base) if base and stud else ([], ([], []))
    if not seeds:
        return Verdict(f, "inconclusive", "no seed with final checkpoints for both baseline and student")
    vs, vb = np.array([loss[r] for r in s]), np.array([loss[r] for r in b])
    group = g.label.rsplit(" (", 1)[0]
    ev = f"student {vs.mean():.3f} vs baseline {vb.mean():.3f} nats/token ({group}, {_seeds(seeds)})"
    unit = "seeds"
    if len(seeds) < 2:  # one seed pair: the two models' losses on the same held-out examples, if scanned
        held = _heldout_losses(job, s, b)
        if held is not None:
            hs, hb = held
            ev = (
                f"student {hs.mean():.3f} vs baseline {hb.mean():.3f} nats/token on {len(hs)} held-out "
                f"examples ({group}, {_seeds(seeds)}; validation loss {vs.mean():.3f} vs {vb.mean():.3f})"
            )
            vs, vb, unit = hs, hb, "held-out examples"
    try:
        return _verdict(f, ev, stats.paired_t(vs, vb, unit), "less", 1, "nats/token")
    except ValueError as e:
        return Verdict(f, "inconclusive", f"{ev}; {e}")


def _heldout_losses(
    job: _Job, student: list[int], baseline: list[int]
) -> tuple[np.ndarray, np.ndarray] | None:
    """Per held-out example, the mean loss of the student runs and of the baseline runs (the same
    examples, unseen by both): None when the job scanned no held-out non-members."""
    ids = [*student, *baseline]
    df = read(
        job.db,
        "SELECT s.run_id, s.example_id, CAST(s.loss AS DOUBLE PRECISION) AS loss FROM scan_results s "
        "JOIN examples e ON e.dataset_id = s.dataset_id AND e.example_id = s.example_id "
        "WHERE e.split = 'heldout' AND s.loss IS NOT NULL AND s.run_id IN ("
        + ", ".join(str(int(r)) for r in ids)
        + ")",
    )
    if df.empty:
        return None
    wide = df.pivot_table(index="example_id", columns="run_id", values="loss").dropna()
    if wide.empty or not set(ids) <= set(wide.columns):
        return None
    return wide[student].mean(axis=1).to_numpy(), wide[baseline].mean(axis=1).to_numpy()


def _triple(job: _Job, g: Group | None) -> tuple[list, np.ndarray, np.ndarray, np.ndarray] | None:
    """Teacher (its runs pooled), baseline and student pooled over the seeds both trained, per example."""
    teacher, base = job.role(Role.TEACHER), job.role(Role.BASELINE)
    if g is None or not teacher or not base:
        return None
    seeds, (s, b) = job.matched(g.run_ids, base)
    if not seeds:
        return None
    mt, mb, ms = job.mem(list(teacher), b, s)
    return seeds, mt.any(axis=0), mb.any(axis=0), ms.any(axis=0)


def _inheritance(job: _Job, g: Group | None) -> list[Verdict]:
    f = "Students inherit little of what only the teacher memorized (section 3.1, paper 0.9%)"
    f2 = "Students memorize mostly easy examples, memorized by teacher and baseline (Figure 4, paper 95.7%)"
    tri = _triple(job, g)
    if tri is None:
        why = "the job has no scanned teacher, baseline and student sharing a seed"
        return [Verdict(f, "inconclusive", why), Verdict(f2, "inconclusive", why)]
    seeds, t, b, s = tri
    pool, k = int((t & ~b).sum()), int((t & ~b & s).sum())
    out = []
    if pool == 0:
        out.append(Verdict(f, "inconclusive", "no example memorized by the teacher and no baseline seed"))
    else:
        ev = f"{k} of {pool} ({100 * k / pool:.1f}%) teacher-only examples inherited ({_seeds(seeds)})"
        out.append(_verdict(f, ev, stats.binomial_share(k, pool, INHERITED_AT_MOST), "less", 100, "%"))
    n, easy = int(s.sum()), int((t & b & s).sum())
    if n == 0:
        out.append(Verdict(f2, "inconclusive", f"the student memorized nothing ({_seeds(seeds)})"))
    else:
        ev = f"{easy} of {n} ({100 * easy / n:.1f}%) student-memorized examples are easy ({_seeds(seeds)})"
        out.append(_verdict(f2, ev, stats.binomial_share(easy, n, EASY_AT_LEAST), "greater", 100, "%"))
    return out


def _easy_features(job: _Job, g: Group | None) -> list[Verdict]:
    """Figure 5, one line per feature: easy examples (teacher and a baseline seed) against the others."""
    feats = features(job.db, job.job_id) if g is not None else pd.DataFrame()
    out = []
    for col, what, unit, fmt in (
        ("zlib_entropy", "zlib entropy", "bytes", ".0f"),
        ("baseline_ppl", "baseline perplexity", "", ".2f"),
    ):
        f = f"Easy examples have lower {what} than the others (Figure 5)"
        if feats.empty or feats.easy.sum() < 2 or (~feats.easy).sum() < 2:
            out.append(Verdict(f, "inconclusive", "fewer than 2 easy or 2 other examples"))
            continue
        e, o = feats.loc[feats.easy, col].astype(float), feats.loc[~feats.easy, col].astype(float)
        u = f" {unit}" if unit else ""
        ev = f"median {e.median():{fmt}} vs {o.median():{fmt}}{u} ({len(e)} easy, {len(o)} others)"
        out.append(_verdict(f, ev, stats.shift(e.to_numpy(), o.to_numpy()), "less", 1, unit))
    return out


def _temperature(job: _Job, g: Group | None) -> Verdict:
    """Figure 2, on the seeds that trained every temperature of the student group's objective."""
    f = "Higher distillation temperature gives less memorization (Figure 2)"
    runs = job.runs[(job.runs.role == Role.STUDENT) & job.runs.temperature.notna()]
    if g is not None:
        runs = runs[runs.objective.map(none_if_null) == g.objective]
    temps = sorted({float(t) for t in runs.temperature})
    if len(temps) < 2:
        return Verdict(f, "inconclusive", "the job has fewer than two temperatures", measured=False)
    per_t = [
        job.by_seed(tuple(int(r) for r in runs.loc[np.isclose(runs.temperature.astype(float), t), "run_id"]))
        for t in temps
    ]
    seeds = sorted(set.intersection(*(set(m) for m in per_t)), key=lambda s: (s is None, s))
    if not seeds:
        return Verdict(f, "inconclusive", "no seed trained every temperature")
    mats = job.mem(*[[m[s] for s in seeds] for m in per_t])
    pts = ", ".join(f"T={t:g}: {100 * m.mean():.2f}%" for t, m in zip(temps, mats, strict=True))
    ev = f"{pts} (seeds {[int(s) if s is not None else s for s in seeds]})"
    rows = np.stack([m.reshape(-1) for m in mats], axis=1)
    return _verdict(f, ev, stats.trend(rows, np.array(temps)), "less", 100, "pp per unit T")


def _classifier(job: _Job) -> Verdict:
    f = "Student memorization is predictable before distillation (Table 4)"
    runs = classifier_runs(job.db, job.job_id)
    trials = read(
        job.db,
        "SELECT n_test, n_positive, n_negative, CAST(roc_auc AS DOUBLE PRECISION) AS roc_auc "
        "FROM classifier_trials WHERE run_id = :r AND roc_auc IS NOT NULL ORDER BY trial",
        r=runs[-1] if runs else -1,
    )
    if trials.empty:
        planned = read(job.db, "SELECT id FROM runs WHERE job_id = :j AND kind = 'classify'", j=job.job_id)
        if planned.empty:
            return Verdict(f, "inconclusive", "the job has no classifier", measured=False)
        return Verdict(f, "inconclusive", "the classifier was skipped: too few student-memorized examples")
    share = trials.n_positive / (trials.n_positive + trials.n_negative)
    n_pos = np.maximum(1, np.round(trials.n_test * share))
    auc = trials.roc_auc.to_numpy()
    ev = f"ROC-AUC {auc.mean():.3f} ± {auc.std(ddof=1) if len(auc) > 1 else 0:.3f} over {len(auc)} trials"
    ev += f" ({classifier_target(job.db, runs[-1])} positives)"
    result = stats.auc_trials(auc, n_pos.to_numpy(), (trials.n_test - n_pos).to_numpy())
    return _verdict(f, ev, result, "greater", 1, "")


def _soft_hard(job: _Job, g: Group | None) -> list[Verdict]:
    """Section 6 on the seeds soft student, hard student and baseline all trained, each pooled."""
    f = "Soft- and hard-distilled students memorize largely the same examples (Figure 10, paper >70%)"
    f2 = "Hard distillation inherits more difficult examples than soft (section 6, paper 2.7x)"
    hard = student_group(job.db, job.job_id, Role.STUDENT_HARD)
    teacher, base = job.role(Role.TEACHER), job.role(Role.BASELINE)
    if g is None or hard is None or not teacher or not base:
        why = "the job has no scanned hard and soft students, teacher and baseline"
        return [
            Verdict(f, "inconclusive", why, measured=False),
            Verdict(f2, "inconclusive", why, measured=False),
        ]
    seeds, (s, h, b) = job.matched(g.run_ids, hard.run_ids, base)
    if not seeds:
        why = "no seed trained the soft student, the hard student and the baseline"
        return [Verdict(f, "inconclusive", why), Verdict(f2, "inconclusive", why)]
    mt, ms, mh, mb = (m.any(axis=0) for m in job.mem(list(teacher), s, h, b))
    n_hard, both = int(mh.sum()), int((mh & ms).sum())
    if n_hard == 0:
        out = [Verdict(f, "inconclusive", f"the hard student memorized nothing ({_seeds(seeds)})")]
    else:
        ev = f"{both} of the hard student's {n_hard} also memorized by the soft student ({_seeds(seeds)})"
        out = [_verdict(f, ev, stats.binomial_share(both, n_hard, OVERLAP_AT_LEAST), "greater", 100, "%")]
    pool = mt & ~mb
    ev = (
        f"inherited: hard {int((pool & mh).sum())}, soft {int((pool & ms).sum())}; of {int(pool.sum())} "
        f"memorized by the teacher and no baseline seed ({_seeds(seeds)})"
    )
    if not pool.any():
        return [*out, Verdict(f2, "inconclusive", ev)]
    return [*out, _verdict(f2, ev, stats.paired_binary(mh[pool], ms[pool]), "greater", 100, "pp")]


def _filtering(job: _Job, g: Group | None) -> Verdict:
    f = "Re-distilling without the flagged examples reduces memorization (section 4.2)"
    after = student_group(job.db, job.job_id, Role.STUDENT_FILTERED)
    if after is None or g is None:
        return Verdict(f, "inconclusive", "the job has no filtered student", measured=False)
    seeds, (b, a) = job.matched(g.run_ids, after.run_ids)
    if not seeds:
        return Verdict(f, "inconclusive", "no seed trained both the student and the filtered student")
    mb, ma = job.mem(b, a)
    pb, pa = mb.any(axis=0), ma.any(axis=0)
    ev = (
        f"{int(pb.sum())} memorized before, {int(pa.sum())} after ({int((pa & ~pb).sum())} new), "
        f"{len(stored_exclusion(job.db, job.job_id))} examples excluded ({_seeds(seeds)})"
    )
    return _verdict(f, ev, stats.paired_binary(ma, mb), "less", 100, "pp")


def not_measured_line(verdicts: list[Verdict]) -> str | None:
    """The findings the job's design does not measure, in one line (None when it measures them all)."""
    missing = [f"{v.finding} ({v.evidence})" for v in verdicts if not v.measured]
    return "Not measured by this job's design: " + "; ".join(missing) if missing else None


def verdicts(db: Db, job: int | str) -> list[Verdict]:
    j = _Job(db, resolve_job(db, job))
    g = student_group(db, j.job_id)
    out = [_paired_rates(j, "Distilled students memorize less than the baseline (Table 2)", g)]
    conv = student_group(db, j.job_id, Role.STUDENT_CONVERGED)
    if conv is not None:
        final = final_checkpoints(db, j.job_id)
        epochs = final.loc[final.role == Role.STUDENT_CONVERGED, "epoch"].mean()
        f = "Students trained until they beat the baseline's validation loss memorize less (Table 2, rule)"
        out.append(_paired_rates(j, f, conv, f"; stopped after {epochs:.1f} epochs on average"))
    out.append(_table1(j, g))
    out += _inheritance(j, g) + _easy_features(j, g)
    out += [_temperature(j, g), _classifier(j)]
    out += [*_soft_hard(j, g), _filtering(j, g)]
    return out
