"""The report's sections: the paper's tables and counts with one job's numbers, each a list of Markdown
lines. A section whose runs the job lacks (no hard student, no classifier run) says so or is left out."""

from __future__ import annotations

import math
from collections.abc import Callable

from kdplatform.analysis.classifier_results import classifier_summary, classifier_target
from kdplatform.analysis.compare import soft_vs_hard
from kdplatform.analysis.filtering import filtering_summary
from kdplatform.analysis.jobs import job_info
from kdplatform.analysis.mia import mia
from kdplatform.analysis.overlap import REGIONS, consistency_matrix, inheritance, job_venn
from kdplatform.analysis.rates import final_checkpoints, rate_summary, rates
from kdplatform.analysis.reading import Db, none_if_null
from kdplatform.analysis.report.audit import scan_audit
from kdplatform.analysis.report.canaries import canary_section
from kdplatform.analysis.report.crossjob import crossjob_section
from kdplatform.analysis.report.evaluation import eval_section
from kdplatform.analysis.report.markdown import config, num, pct, pm, share_pct, table
from kdplatform.analysis.report.membership import membership_section
from kdplatform.analysis.verdicts import not_measured_line, verdicts

VENN_LABELS = {
    "A": "teacher only",
    "B": "baseline only",
    "C": "student only",
    "AB": "teacher and baseline, not student (easy, suppressed by distillation)",
    "AC": "teacher and student, not baseline (inherited)",
    "BC": "baseline and student, not teacher",
    "ABC": "teacher, baseline and student (easy)",
}
COEF_LABELS = {
    "teacher_ppl": "Teacher PPL",
    "baseline_ppl": "Baseline PPL",
    "zlib_entropy": "zlib Entropy",
    "teacher_baseline_kld": "Teacher-Baseline KLD",
    "teacher_student_kld": "Teacher-Student KLD",
}
METRIC_LABELS = {
    "accuracy": "Accuracy",
    "precision": "Precision",
    "recall": "Recall",
    "f1": "F1",
    "roc_auc": "ROC-AUC",
}


Section = Callable[[Db, int], list[str]]


def _headed(
    heading: str, missing: str | None = None
) -> Callable[[Callable[[Db, int], list[str] | None]], Section]:
    """A section: its heading and the lines its body gives. A body gives None when the job lacks the runs
    it needs: then the heading and `missing` say so, or, with no `missing`, the section is left out."""

    def wrap(body: Callable[[Db, int], list[str] | None]) -> Section:
        def section(db: Db, job_id: int) -> list[str]:
            lines = body(db, job_id)
            if lines is None:
                return [] if missing is None else [heading, "", missing, ""]
            return [heading, "", *lines]

        return section

    return wrap


@_headed("## Memorization rates (Table 2)", "No scanned models yet.")
def _rates(db: Db, job_id: int) -> list[str] | None:
    summ = rate_summary(db, job_id)
    if summ.empty:
        return None
    out = [
        table(
            ["model", "config", "model name", "seeds", "examples", "memorized (mean)", "rate % (mean ± std)"],
            [
                [
                    r.role,
                    config(r.objective, r.temperature),
                    r.model_name or "–",
                    int(r.runs),
                    int(r.examples),
                    num(float(r.memorized_mean)),
                    f"{num(float(r.rate_pct_mean))} ± {num(none_if_null(r.rate_pct_std))}",
                ]
                for r in summ.itertuples()
            ],
        )
    ]
    runs = rates(db, job_id)
    final = final_checkpoints(db, job_id).set_index("run_id")
    out += ["", "Per run (epochs and validation loss of the final checkpoint):", ""]
    out.append(
        table(
            ["run", "model", "seed", "config", "examples", "memorized", "rate %", "epochs", "val loss"],
            [
                [
                    int(r.run_id),
                    r.role,
                    num(none_if_null(r.seed)),
                    config(r.objective, r.temperature),
                    int(r.examples),
                    int(r.memorized),
                    num(float(r.rate_pct)),
                    int(final.epoch[r.run_id]) if r.run_id in final.index else "–",
                    num(float(final.val_loss[r.run_id])) if r.run_id in final.index else "–",
                ]
                for r in runs.itertuples()
            ],
        )
    )
    return out + [""]


@_headed("## Overlap of memorized examples (Figure 4)", "Needs a scanned teacher, baseline and student.")
def _venn(db: Db, job_id: int) -> list[str] | None:
    v = job_venn(db, job_id)
    if v is None:
        return None
    out = [
        f"Teacher runs {list(v.teacher)}, baseline runs {list(v.baseline)} (seeds pooled), "
        f"student: {v.student.label}, runs {list(v.student.run_ids)}.",
        "",
        table(["region", "examples"], [[f"{r} — {VENN_LABELS[r]}", v[r]] for r in REGIONS]),
        "",
        f"- Easy-to-memorize (teacher and a baseline seed): {v.n_easy}",
        f"- Student memorized (seeds pooled): {v.n_student}; of these easy: {v['ABC']} "
        f"({pct(v['ABC'], v.n_student)})",
        f"- Easy examples the student did not memorize: {v['AB']}",
        "",
        "## Inheritance (section 3.1)",
        "",
        f"Inherited (memorized by the teacher and the student, by no baseline seed): **{v.n_inherited}** "
        f"of {v.n_teacher_not_baseline} teacher-not-baseline examples "
        f"({pct(v.n_inherited, v.n_teacher_not_baseline)}); "
        f"{pct(v.n_inherited, v.n_student)} of the student's memorization.",
        "",
    ]
    inh = inheritance(db, job_id)
    if not inh.empty:
        out += [
            "Per (teacher, student, baseline) run triple, baseline of the student's seed where there is one:",
            "",
            table(
                [
                    "student",
                    "student run (seed)",
                    "baseline run (seed)",
                    "teacher ∖ baseline",
                    "inherited",
                    "share of student",
                ],
                [
                    [
                        f"{r.student_role} {config(r.student_objective, r.student_temperature)}",
                        f"{int(r.student_run_id)} ({num(none_if_null(r.student_seed))})",
                        f"{int(r.baseline_run_id)} ({num(none_if_null(r.baseline_seed))})",
                        int(r.n_teacher_not_baseline),
                        int(r.n_inherited),
                        share_pct(none_if_null(r.share_of_student)),
                    ]
                    for r in inh.itertuples()
                ],
            ),
            "",
        ]
    return out


@_headed("## Consistency across seeds (Figure 3)", "Needs scanned baseline and student runs.")
def _consistency(db: Db, job_id: int) -> list[str] | None:
    m = consistency_matrix(db, job_id)
    if m.empty:
        return None
    return [
        f"Examples by how many baseline seeds (rows) and how many seeds of {m.attrs['group'].label} "
        "(columns) memorized them.",
        "",
        table(
            ["baseline \\ student"] + [str(c) for c in m.columns],
            [[str(i)] + [int(x) for x in m.loc[i]] for i in m.index],
        ),
        "",
    ]


@_headed("## Memorization classifier (section 4.1, Tables 4-7)", "No classifier run stored for this job.")
def _classifier(db: Db, job_id: int) -> list[str] | None:
    s = classifier_summary(db, job_id)
    if s.empty:
        return None
    n = int(s["n_trials"].max())
    metrics, coefs = s[s["kind"] == "metric"], s[s["kind"] == "coefficient"]
    return [
        f"Classifier run {int(s['run_id'].iloc[0])}: mean ± std over {n} trials; positives are the examples "
        f"memorized by the {classifier_target(db, int(s['run_id'].iloc[0]))} "
        "(`classifier.target`).",
        "",
        table(
            ["Metric", "Value"],
            [[METRIC_LABELS.get(r.name, r.name), pm(r.mean, r.std)] for r in metrics.itertuples()],
        ),
        "",
        table(
            ["Feature", "Coefficient"],
            [[COEF_LABELS.get(r.name, r.name), pm(r.mean, r.std)] for r in coefs.itertuples()],
        ),
        "",
    ]


@_headed("## Filtering before distillation (section 4.2)")
def _filtering(db: Db, job_id: int) -> list[str] | None:
    f = filtering_summary(db, job_id)
    if f is None:
        return None
    return [
        table(
            ["", "examples"],
            [
                ["excluded (predicted memorized)", f.n_excluded],
                [f"memorized before ({f.before.label})", f.n_before],
                [f"memorized after ({f.after.label})", f.n_after],
                ["newly memorized after filtering", f.n_new],
                ["memorized before and excluded", f.n_before_excluded],
                ["memorized after although excluded", f.n_after_excluded],
            ],
        ),
        "",
    ]


@_headed("## Student vs baseline-only memorization (A.5)")
def _mia(db: Db, job_id: int) -> list[str] | None:
    auc = mia(db, job_id)
    if auc.empty or auc["auc"].isna().all():
        return None
    r0 = auc.iloc[0]
    return [
        f"AUC of each feature separating {int(r0.n_student)} student-memorized from "
        f"{int(r0.n_baseline_only)} baseline-only examples:",
        "",
        table(
            ["feature", "AUC (max(auc, 1-auc))", "direction"],
            [
                [COEF_LABELS.get(r.feature, r.feature), num(none_if_null(r.auc_separation)), r.direction]
                for r in auc.itertuples()
                if not math.isnan(r.auc)
            ],
        ),
        "",
    ]


@_headed("## Soft vs hard distillation (section 6)")
def _soft_hard(db: Db, job_id: int) -> list[str] | None:
    sh = soft_vs_hard(db, job_id)
    if sh is None:
        return None
    return [
        f"Soft: {sh.soft.label}; hard: {sh.hard.label} (seeds pooled).",
        "",
        table(
            ["", "value"],
            [
                ["memorized by the soft student", sh.n_soft],
                ["memorized by the hard student", sh.n_hard],
                ["memorized by both", sh.n_both],
                ["share of the hard student's also memorized by the soft", pct(sh.n_both, sh.n_hard)],
                ["hard-memorized and easy (teacher and baseline)", sh.n_hard_easy],
                ["difficult (hard only: not soft, no baseline seed)", sh.n_difficult],
                [
                    "difficult also memorized by the teacher",
                    f"{sh.n_difficult_teacher} ({pct(sh.n_difficult_teacher, sh.n_difficult)})",
                ],
                ["inherited by the soft student", sh.inherited_soft],
                ["inherited by the hard student", sh.inherited_hard],
                ["inheritance ratio hard / soft", num(sh.inheritance_ratio, 3)],
            ],
        ),
        "",
    ]


@_headed("## The paper's findings on this job")
def _verdicts(db: Db, job_id: int) -> list[str]:
    """One line per finding, after the rule that decides them (kdplatform.analysis.verdicts)."""
    rule = (
        "Each line: the outcome, the finding, this job's numbers, the effect with its 95% interval, the test "
        "and its two-sided p-value. A finding is reproduced when p < 0.05 in the paper's direction, "
        "contradicted when p < 0.05 against it, inconclusive otherwise or when the job lacks what the test "
        "needs; groups are compared on the seeds both trained."
    )
    found = verdicts(db, job_id)
    rest = not_measured_line(found)
    return [rule, "", *(f"- {v.line()}" for v in found if v.measured), *([f"\n{rest}"] if rest else []), ""]


SECTIONS = (
    _verdicts,
    _rates,
    scan_audit,
    _venn,
    _consistency,
    _classifier,
    _filtering,
    _mia,
    membership_section,
    canary_section,
    _soft_hard,
    eval_section,
    crossjob_section,
)


def title(db: Db, job_id: int) -> list[str]:
    """The page's heading: the job's name and id."""
    return [f"# Memorization report: {job_info(db, job_id)['name']} (job {job_id})", ""]


def body(db: Db, job_id: int) -> list[str]:
    """Every section in order."""
    lines: list[str] = []
    for section in SECTIONS:
        lines += section(db, job_id)
    return lines
