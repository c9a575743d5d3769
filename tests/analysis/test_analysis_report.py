"""The Markdown report holds this job's numbers, each equal to an independent count."""

from __future__ import annotations

import numpy as np
from scipy import stats

from kdplatform.analysis import report
from kdplatform.analysis.verdicts import verdicts


def test_report_numbers(study, classified, tmp_path):
    _, result, _ = classified
    md = report.write_report(study.engine, "alpha", tmp_path / "out" / "report.md")
    assert (tmp_path / "out" / "report.md").read_text() == md
    assert md.startswith("# Memorization report: alpha (job 1)")

    for run in study.run_ids("alpha", "baseline"):  # Table 2, per run
        n = len(study.mem[run])
        seed = int(study.runs.set_index("id").seed[run])
        assert f"| {run} | baseline | {seed} | – | 240 | {n} | {100 * n / 240:.4g} |" in md

    t = study.union(study.run_ids("alpha", "teacher"))
    b = study.union(study.run_ids("alpha", "baseline"))
    s = study.union(study.run_ids("alpha", "student", "forward_kl", 1.0))
    h = study.union(study.run_ids("alpha", "student_hard"))
    assert f"| AC — teacher and student, not baseline (inherited) | {len((t & s) - b)} |" in md
    assert f"| ABC — teacher, baseline and student (easy) | {len(t & b & s)} |" in md
    assert f"| A — teacher only | {len(t - b - s)} |" in md
    assert f"**{len((t & s) - b)}** of {len(t - b)} teacher-not-baseline examples" in md

    summary = result.summary.set_index("name")
    for metric, label in (("accuracy", "Accuracy"), ("roc_auc", "ROC-AUC")):
        mean, std = summary.loc[metric, "mean"], summary.loc[metric, "std"]
        assert f"| {label} | {mean:.4f} ± {std:.4f} |" in md
    z = summary.loc["zlib_entropy"]
    assert f"| zlib Entropy | {z['mean']:.4f} ± {z['std']:.4f} |" in md
    assert "over 100 trials" in md
    assert "positives are the examples memorized by the student (`classifier.target`)" in md

    assert f"| memorized by the hard student | {len(h)} |" in md
    assert f"| memorized by both | {len(s & h)} |" in md
    assert f"| difficult (hard only: not soft, no baseline seed) | {len(h - s - b)} |" in md
    assert f"| excluded (predicted memorized) | {int(result.risk.predicted.sum())} |" in md


def test_report_findings(study, classified):
    """The findings section: the rule, then every verdict's line; Table 2's and Table 4's p-values equal
    an independent scipy computation on the same rows."""
    _, result, _ = classified
    md = report.render_report(study.engine.url.render_as_string(hide_password=False), "alpha")
    section = md.split("## The paper's findings on this job\n\n", 1)[1].split("\n## ", 1)[0]
    found = verdicts(study.engine, "alpha")
    assert section.startswith("Each line: the outcome, the finding")
    assert [ln for ln in section.splitlines() if ln.startswith("- ")] == [f"- {v.line()}" for v in found]
    by = {v.finding.split(" (")[0]: v for v in found}

    seed = study.runs.set_index("id").seed
    stud = {int(seed[r]): r for r in study.run_ids("alpha", "student", "forward_kl", 1.0)}
    base = {int(seed[r]): r for r in study.run_ids("alpha", "baseline")}
    pairs = [(study.mem[stud[k]], study.mem[base[k]]) for k in sorted(stud.keys() & base.keys())]
    n_s, n_b = sum(len(s - b) for s, b in pairs), sum(len(b - s) for s, b in pairs)
    t2 = by["Distilled students memorize less than the baseline"]
    assert f"p = {stats.binomtest(n_s, n_s + n_b).pvalue:.2g}" in t2.line()

    t4 = by["Student memorization is predictable before distillation"]
    tr = result.trials.dropna(subset=["roc_auc"])
    pos = np.round(tr.n_test * tr.n_positive / (tr.n_positive + tr.n_negative))
    neg = tr.n_test - pos
    z = np.median((tr.roc_auc - 0.5) / np.sqrt((pos + neg + 1) / (12 * pos * neg)))
    assert np.isclose(t4.p_value, min(1.0, 4 * stats.norm.sf(abs(z))))
    assert np.isclose(t4.effect, tr.roc_auc.median())
    assert f"ROC-AUC {tr.roc_auc.mean():.3f} ± {tr.roc_auc.std():.3f} over {len(tr)} trials" in t4.evidence


def test_report_without_optional_sections(study):
    md = report.render_report(study.engine.url.render_as_string(hide_password=False), "gamma")
    assert "No classifier run stored for this job." in md
    assert "Soft vs hard" not in md and "Filtering" not in md
    assert "## Overlap of memorized examples (Figure 4)" in md


def test_report_of_a_job_without_scans(tmp_path):
    """A section the job lacks the runs for keeps its heading and says what it needs, or is left out."""
    from sqlalchemy import text

    from kdplatform.store import db, migrate

    e = db.make_engine(f"duckdb:///{tmp_path / 'empty.duckdb'}")
    migrate.upgrade(e)
    with e.begin() as c:
        c.execute(
            text(
                "INSERT INTO jobs (id, name, spec, spec_hash, workdir, created_at) "
                "VALUES (1, 'empty', '{}', 'h', '/w', CURRENT_TIMESTAMP)"
            )
        )
    md = report.render_report(e, "empty")
    for heading, missing in (
        ("## Memorization rates (Table 2)", "No scanned models yet."),
        ("## Overlap of memorized examples (Figure 4)", "Needs a scanned teacher, baseline and student."),
        ("## Consistency across seeds (Figure 3)", "Needs scanned baseline and student runs."),
        ("## Memorization classifier (section 4.1, Tables 4-7)", "No classifier run stored for this job."),
    ):
        assert f"\n{heading}\n\n{missing}\n" in md
    # the findings and those four; inheritance, filtering, A.5 and soft vs hard are left out
    assert md.count("\n## ") == 5
    assert "- [inconclusive] Distilled students memorize less than the baseline" in md
    e.dispose()
