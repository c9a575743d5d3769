"""One line per headline finding of the paper: reproduced, not reproduced or inconclusive, with this job's
numbers, all read from SQL. A finding is inconclusive when the job lacks the runs it needs or has too few
memorized examples to tell (fewer than MIN_COUNT); thresholds are stated in each line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kdplatform.analysis.classifier_results import classifier_summary
from kdplatform.analysis.compare import soft_vs_hard
from kdplatform.analysis.features import features
from kdplatform.analysis.filtering import filtering_summary
from kdplatform.analysis.groups import student_group
from kdplatform.analysis.jobs import resolve_job
from kdplatform.analysis.overlap import job_venn
from kdplatform.analysis.rates import final_checkpoints, rate_summary, temperature_sweep
from kdplatform.analysis.reading import Db
from kdplatform.store.schema import Role

MIN_COUNT = 5
"""Fewest memorized examples a comparison needs before it says more than 'inconclusive'."""


@dataclass(frozen=True)
class Verdict:
    finding: str
    outcome: str
    """reproduced | not reproduced | inconclusive"""
    evidence: str

    def line(self) -> str:
        return f"[{self.outcome}] {self.finding}: {self.evidence}"


def _rate(rates: pd.DataFrame, role: str, objective=None, temperature=None) -> pd.Series | None:
    sel = rates[rates.role == role]
    if objective is not None:
        sel = sel[(sel.objective == objective) & np.isclose(sel.temperature.astype(float), temperature)]
    return None if sel.empty else sel.iloc[0]


def _val_loss(final: pd.DataFrame, role: str) -> float | None:
    """Mean final validation loss of a role's runs (rates.final_checkpoints rows)."""
    v = final.loc[final.role == role, "val_loss"].mean()
    return None if pd.isna(v) else float(v)


def verdicts(db: Db, job: int | str) -> list[Verdict]:
    job_id = resolve_job(db, job)
    rates = rate_summary(db, job_id)
    out: list[Verdict] = []
    g = student_group(db, job_id)
    final = final_checkpoints(db, job_id)
    base = _rate(rates, Role.BASELINE)
    stud = _rate(rates, Role.STUDENT, g.objective, g.temperature) if g is not None else None

    # 1. Table 2: the student memorizes less than the baseline.
    f = "Distilled students memorize less than the baseline (Table 2)"
    if base is None or stud is None:
        out.append(Verdict(f, "inconclusive", "the job has no scanned baseline and student"))
    else:
        ev = f"student {stud.rate_pct_mean:.2f}% vs baseline {base.rate_pct_mean:.2f}% (seed means)"
        if max(base.memorized_mean, stud.memorized_mean) < MIN_COUNT:
            out.append(Verdict(f, "inconclusive", ev + f"; fewer than {MIN_COUNT} memorized examples"))
        else:
            ok = stud.rate_pct_mean < base.rate_pct_mean
            out.append(Verdict(f, "reproduced" if ok else "not reproduced", ev))

    # 1b. The same, for students trained by the paper's stopping rule (until their validation loss beats
    # the baseline's), when the job has them.
    conv = _rate(rates, Role.STUDENT_CONVERGED)
    if conv is not None and base is not None:
        f = "Students trained until they beat the baseline's validation loss memorize less (Table 2, rule)"
        epochs = final[final.role == Role.STUDENT_CONVERGED].epoch
        ev = (
            f"converged student {conv.rate_pct_mean:.2f}% vs baseline {base.rate_pct_mean:.2f}% (seed means; "
            f"stopped after {epochs.mean():.1f} epochs on average)"
        )
        if max(base.memorized_mean, conv.memorized_mean) < MIN_COUNT:
            out.append(Verdict(f, "inconclusive", ev + f"; fewer than {MIN_COUNT} memorized examples"))
        else:
            ok = conv.rate_pct_mean < base.rate_pct_mean
            out.append(Verdict(f, "reproduced" if ok else "not reproduced", ev))

    # 2. Table 1: the student generalizes better than the baseline.
    f = "Distilled students reach a lower validation loss than the baseline (Table 1)"
    vb, vs = _val_loss(final, Role.BASELINE), _val_loss(final, Role.STUDENT)
    if vb is None or vs is None:
        out.append(Verdict(f, "inconclusive", "no final checkpoints for baseline and student"))
    else:
        out.append(
            Verdict(
                f,
                "reproduced" if vs < vb else "not reproduced",
                f"student {vs:.3f} vs baseline {vb:.3f} (mean over seeds, nats/token)",
            )
        )

    venn = job_venn(db, job_id)
    # 3. Section 3.1: little inheritance of the teacher's own memorization.
    f = "Students inherit little of what only the teacher memorized (section 3.1, paper 0.9%)"
    if venn is None or venn.n_teacher_not_baseline < MIN_COUNT or venn.n_student < MIN_COUNT:
        n = 0 if venn is None else venn.n_teacher_not_baseline
        m = 0 if venn is None else venn.n_student
        out.append(
            Verdict(
                f,
                "inconclusive",
                f"{n} examples memorized by the teacher and no baseline seed, {m} by the student",
            )
        )
    else:
        share = venn.n_inherited / venn.n_teacher_not_baseline
        out.append(
            Verdict(
                f,
                "reproduced" if share < 0.10 else "not reproduced",
                f"{venn.n_inherited} of {venn.n_teacher_not_baseline} ({100 * share:.1f}%; threshold 10%)",
            )
        )

    # 4. Section 3.2: the student memorizes mostly easy examples.
    f = "Students memorize mostly easy examples, memorized by teacher and baseline (Figure 4, paper 95.7%)"
    if venn is None or venn.n_student < MIN_COUNT:
        out.append(Verdict(f, "inconclusive", f"student memorized {0 if venn is None else venn.n_student}"))
    else:
        easy = venn["ABC"] / venn.n_student
        out.append(
            Verdict(
                f,
                "reproduced" if easy >= 0.8 else "not reproduced",
                f"{venn['ABC']} of {venn.n_student} ({100 * easy:.1f}%; threshold 80%)",
            )
        )

    # 5. Figure 5: easy examples have lower zlib entropy and baseline perplexity.
    f = "Easy examples have lower zlib entropy and baseline perplexity than the others (Figure 5)"
    feats = features(db, job_id) if g is not None else pd.DataFrame()
    if feats.empty or feats.easy.sum() < MIN_COUNT or (~feats.easy).sum() < MIN_COUNT:
        out.append(Verdict(f, "inconclusive", "fewer than 5 easy or 5 other examples"))
    else:
        e, o = feats[feats.easy], feats[~feats.easy]
        z = (e.zlib_entropy.median(), o.zlib_entropy.median())
        p = (e.baseline_ppl.median(), o.baseline_ppl.median())
        ok = z[0] < z[1] and p[0] < p[1]
        out.append(
            Verdict(
                f,
                "reproduced" if ok else "not reproduced",
                f"median zlib {z[0]:.0f} vs {z[1]:.0f} bytes, baseline ppl {p[0]:.2f} vs {p[1]:.2f} "
                f"({len(e)} easy, {len(o)} others)",
            )
        )

    # 6. Figure 2: higher temperature, less memorization. Compared on the seeds that trained every
    # temperature, so a sweep run on one seed is not mixed with other seeds' rates.
    f = "Higher distillation temperature gives less memorization (Figure 2)"
    sweep = temperature_sweep(db, job_id, every_temperature=True)
    if g is not None:
        sweep = sweep[sweep.objective == g.objective]
    if sweep.temperature.nunique() < 2:
        out.append(Verdict(f, "inconclusive", "the job has fewer than two temperatures"))
    else:
        sweep = sweep.sort_values("temperature")
        rate = sweep.rate_pct_mean.to_numpy()
        pts = ", ".join(f"T={t:g}: {r:.2f}%" for t, r in zip(sweep.temperature, rate, strict=True))
        pts += f" (seeds {sorted(int(x) for x in sweep.seeds.iloc[0].split(','))})"
        ok = bool(np.all(np.diff(rate) <= 0)) and rate[0] > rate[-1]
        flat = sweep.memorized_mean.max() < MIN_COUNT
        out.append(Verdict(f, "inconclusive" if flat else "reproduced" if ok else "not reproduced", pts))

    # 7. Section 4: memorization is predictable before distillation.
    f = "Student memorization is predictable before distillation (Table 4)"
    summ = classifier_summary(db, job_id)
    if summ.empty:
        out.append(Verdict(f, "inconclusive", "no classifier run (or too few student-memorized examples)"))
    else:
        auc = summ[(summ.kind == "metric") & (summ.name == "roc_auc")].iloc[0]
        ok = auc["mean"] - 2 * (auc["std"] if pd.notna(auc["std"]) else 0) > 0.5
        out.append(
            Verdict(
                f,
                "reproduced" if ok else "not reproduced",
                f"ROC-AUC {auc['mean']:.3f} ± {auc['std']:.3f} over {int(auc['n_trials'])} trials "
                "(reproduced if mean - 2 std > 0.5)",
            )
        )

    # 8-9. Section 6: soft vs hard distillation.
    sh = soft_vs_hard(db, job_id)
    f = "Soft- and hard-distilled students memorize largely the same examples (Figure 10, paper >70%)"
    f2 = "Hard distillation inherits more difficult examples than soft (section 6, paper 2.7x)"
    if sh is None or min(sh.n_hard, sh.n_soft) < MIN_COUNT:
        n, m = (0, 0) if sh is None else (sh.n_hard, sh.n_soft)
        ev = f"hard student memorized {n}, soft student {m}; fewer than {MIN_COUNT} for one of them"
        out.append(Verdict(f, "inconclusive", ev))
    else:
        out.append(
            Verdict(
                f,
                "reproduced" if sh.share_hard_in_soft >= 0.7 else "not reproduced",
                f"{sh.n_both} of the hard student's {sh.n_hard} also memorized by the soft student "
                f"({100 * sh.share_hard_in_soft:.1f}%; threshold 70%)",
            )
        )
    if sh is None:
        out.append(Verdict(f2, "inconclusive", "the job has no scanned hard and soft students"))
    else:
        ev = f"inherited: hard {sh.inherited_hard}, soft {sh.inherited_soft}; difficult {sh.n_difficult}"
        if sh.inherited_hard + sh.inherited_soft < MIN_COUNT:
            out.append(Verdict(f2, "inconclusive", ev))
        else:
            out.append(
                Verdict(f2, "reproduced" if sh.inherited_hard > sh.inherited_soft else "not reproduced", ev)
            )

    # 10. Section 4.2: filtering flagged examples reduces memorization.
    f = "Re-distilling without the flagged examples reduces memorization (section 4.2)"
    fsum = filtering_summary(db, job_id)
    if fsum is None:
        out.append(Verdict(f, "inconclusive", "the job has no filtered student"))
    else:
        ev = (
            f"{fsum.n_before} memorized before, {fsum.n_after} after ({fsum.n_new} new), "
            f"{fsum.n_excluded} examples excluded"
        )
        if fsum.n_before < MIN_COUNT:
            out.append(Verdict(f, "inconclusive", ev))
        else:
            out.append(Verdict(f, "reproduced" if fsum.n_after < fsum.n_before else "not reproduced", ev))
    return out
