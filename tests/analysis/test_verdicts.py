"""Verdict lines carry the job's numbers and the outcome their stated rule gives, recomputed in Python."""

from __future__ import annotations

import numpy as np

from kdplatform.analysis.verdicts import MIN_COUNT, verdicts

N = 240


def _by_finding(study) -> dict[str, object]:
    return {v.finding.split(" (")[0]: v for v in verdicts(study.engine, "alpha")}


def _rate(study, run: int) -> float:
    return 100 * len(study.mem[run]) / N


def test_student_vs_baseline_rates(study):
    v = _by_finding(study)["Distilled students memorize less than the baseline"]
    base = np.mean([_rate(study, r) for r in study.run_ids("alpha", "baseline")])
    stud = np.mean([_rate(study, r) for r in study.run_ids("alpha", "student", "forward_kl", 1.0)])
    assert f"student {stud:.2f}% vs baseline {base:.2f}%" in v.evidence
    assert v.outcome == ("reproduced" if stud < base else "not reproduced")


def test_temperature_curve_uses_seeds_that_trained_every_temperature(study):
    """T=2 has seeds 0-2 and T=1 seeds 0-1: the comparison is on seeds 0 and 1 only."""
    v = _by_finding(study)["Higher distillation temperature gives less memorization"]
    runs = study.runs.set_index("id")
    means = {}
    for t in (1.0, 2.0):
        ids = [r for r in study.run_ids("alpha", "student", "forward_kl", t) if runs.seed[r] in (0, 1)]
        assert len(ids) == 2
        means[t] = np.mean([_rate(study, r) for r in ids])
    assert f"T=1: {means[1.0]:.2f}%, T=2: {means[2.0]:.2f}% (seeds [0, 1])" in v.evidence
    assert v.outcome == ("reproduced" if means[2.0] < means[1.0] else "not reproduced")


def test_inheritance_share(study):
    v = _by_finding(study)["Students inherit little of what only the teacher memorized"]
    t = study.union(study.run_ids("alpha", "teacher"))
    b = study.union(study.run_ids("alpha", "baseline"))
    s = study.union(study.run_ids("alpha", "student", "forward_kl", 1.0))
    inherited, pool = len((t & s) - b), len(t - b)
    assert pool >= MIN_COUNT and len(s) >= MIN_COUNT
    assert v.evidence.startswith(f"{inherited} of {pool} ({100 * inherited / pool:.1f}%")
    assert v.outcome == ("reproduced" if inherited / pool < 0.10 else "not reproduced")


def test_no_converged_line_without_converged_students(study):
    findings = [v.finding for v in verdicts(study.engine, "alpha")]
    assert len(findings) == 10 and not any("validation loss memorize less" in f for f in findings)


def test_soft_vs_hard_overlap_and_inheritance(study):
    by = _by_finding(study)
    t = study.union(study.run_ids("alpha", "teacher"))
    b = study.union(study.run_ids("alpha", "baseline"))
    s = study.union(study.run_ids("alpha", "student", "forward_kl", 1.0))
    h = study.union(study.run_ids("alpha", "student_hard"))
    assert min(len(s), len(h)) >= MIN_COUNT
    v = by["Soft- and hard-distilled students memorize largely the same examples"]
    share = len(s & h) / len(h)
    assert v.evidence.startswith(f"{len(s & h)} of the hard student's {len(h)} ")
    assert v.outcome == ("reproduced" if share >= 0.7 else "not reproduced")
    v2 = by["Hard distillation inherits more difficult examples than soft"]
    inh_h, inh_s = len((t & h) - b), len((t & s) - b)
    assert v2.evidence.startswith(f"inherited: hard {inh_h}, soft {inh_s};")


def test_validation_loss_line_on_a_trained_job(smoke):
    """Table 1's line: each role's mean final validation loss, as the checkpoints table stores it."""
    from kdplatform.analysis.reading import read

    ck = read(
        smoke.engine,
        "SELECT r.role, c.val_loss FROM checkpoints c JOIN runs r ON r.id = c.run_id WHERE c.is_final",
    )
    vb, vs = (float(ck[ck.role == role].val_loss.mean()) for role in ("baseline", "student"))
    v = next(v for v in verdicts(smoke.engine, "smoke") if v.finding.startswith("Distilled students reach"))
    assert v.evidence.startswith(f"student {vs:.3f} vs baseline {vb:.3f}")
    assert v.outcome == ("reproduced" if vs < vb else "not reproduced")
