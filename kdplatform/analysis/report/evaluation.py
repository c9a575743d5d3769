"""The report's "Utility" section: each model group's lm-evaluation-harness scores (the job's `eval:`
tasks; seeds pooled as mean and std) and the paper's section 6 comparison of the hard-KD student with the
baseline on the seeds both were evaluated on (the view eval_scores)."""

from __future__ import annotations

from kdplatform.analysis.evaluation import eval_summary, hard_vs_baseline
from kdplatform.analysis.reading import Db
from kdplatform.analysis.report.markdown import config, num, table


def eval_section(db: Db, job_id: int) -> list[str]:
    """The section's lines; none for a job without an eval stage."""
    summary = eval_summary(db, job_id)
    if summary.empty:
        return []
    rows = [
        [r.role, config(r.objective, r.temperature), r.runs, r.task, r.num_fewshot, r.metric]
        + [num(r.mean), num(r.std), num(r.stderr_mean), num(r.n_samples)]
        for r in summary.itertuples()
    ]
    lines = [
        "## Utility (lm-evaluation-harness)",
        "",
        "Each trained model's scores on the job's `eval:` tasks, computed by lm-evaluation-harness's "
        "`simple_evaluate`: mean and std over seeds (– for one seed), the mean of lm-eval's own standard "
        "errors, and the documents evaluated.",
        "",
        table(
            ["model", "config", "seeds", "task", "shots", "metric", "mean", "std", "stderr", "n"],
            rows,
        ),
        "",
    ]
    cmp = hard_vs_baseline(db, job_id)
    if cmp.empty:
        return lines
    rows = [
        [r.task, r.num_fewshot, r.metric, r.seeds, num(r.baseline), num(r.student_hard), num(r.difference)]
        for r in cmp.itertuples()
    ]
    return lines + [
        "Hard-KD student vs baseline (section 6), on the seeds both were evaluated on:",
        "",
        table(["task", "shots", "metric", "seeds", "baseline", "hard-KD student", "hard − baseline"], rows),
        "",
    ]
