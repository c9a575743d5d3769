"""Verdict lines carry the job's numbers, recomputed in Python from the generated study's memorized sets,
and p-values an independent scipy call on the same counts gives; the outcome follows the stated rule."""

from __future__ import annotations

import re

import numpy as np
from scipy import stats as sps

from kdplatform.analysis.verdicts import verdicts

N = 240
OUTCOMES = {"reproduced", "contradicted", "inconclusive"}


def _by_finding(study) -> dict[str, object]:
    return {v.finding.split(" (")[0]: v for v in verdicts(study.engine, "alpha")}


def _seed_runs(study, runs: list[int]) -> dict[int, int]:
    seeds = study.runs.set_index("id").seed
    return {int(seeds[r]): r for r in runs}


def _matched(study, *groups: list[int]) -> tuple[list[int], list[list[int]]]:
    maps = [_seed_runs(study, g) for g in groups]
    common = sorted(set.intersection(*(set(m) for m in maps)))
    return common, [[m[s] for s in common] for m in maps]


def _rule(p: float, effect: float, null: float, paper: str) -> str:
    if not p < 0.05 or effect == null:
        return "inconclusive"
    return "reproduced" if (effect < null) == (paper == "less") else "contradicted"


def _rate(study, runs: list[int]) -> float:
    return float(np.mean([100 * len(study.mem[r]) / N for r in runs]))


def test_student_vs_baseline_seed_by_seed(study):
    """Seeds 0 and 1 trained both the baseline and the T=1 student: seed 2's baseline stays out."""
    v = _by_finding(study)["Distilled students memorize less than the baseline"]
    seeds, (s, b) = _matched(
        study, study.run_ids("alpha", "student", "forward_kl", 1.0), study.run_ids("alpha", "baseline")
    )
    assert seeds == [0, 1]
    assert f"student {_rate(study, s):.2f}% vs baseline {_rate(study, b):.2f}% (seeds 0, 1)" in v.evidence
    n_s = sum(len(study.mem[rs] - study.mem[rb]) for rs, rb in zip(s, b, strict=True))
    n_b = sum(len(study.mem[rb] - study.mem[rs]) for rs, rb in zip(s, b, strict=True))
    assert v.p_value == sps.binomtest(n_s, n_s + n_b, 0.5).pvalue
    assert np.isclose(v.effect, 100 * (n_s - n_b) / (len(seeds) * N))
    assert v.ci_low <= v.effect <= v.ci_high
    assert v.outcome == _rule(v.p_value, v.effect, 0, "less")
    assert f"{n_s} vs {n_b} discordant, 2 seed pairs" in v.test


def test_temperature_curve_uses_seeds_that_trained_every_temperature(study):
    """T=2 has seeds 0-2 and T=1 seeds 0-1: the comparison is on seeds 0 and 1 only."""
    v = _by_finding(study)["Higher distillation temperature gives less memorization"]
    runs = study.runs.set_index("id")
    means = {}
    for t in (1.0, 2.0):
        ids = [r for r in study.run_ids("alpha", "student", "forward_kl", t) if runs.seed[r] in (0, 1)]
        assert len(ids) == 2
        means[t] = np.mean([_rate(study, [r]) for r in ids])
    assert f"T=1: {means[1.0]:.2f}%, T=2: {means[2.0]:.2f}% (seeds [0, 1])" in v.evidence
    assert np.isclose(v.effect, np.polyfit([1.0, 2.0], [means[1.0], means[2.0]], 1)[0])
    assert 0 < v.p_value <= 1 and v.ci_low <= v.effect <= v.ci_high
    assert v.outcome == _rule(v.p_value, v.effect, 0, "less")


def _triple(study, student: list[int]) -> tuple[set, set, set]:
    """Teacher, and baseline and student pooled over the seeds both trained."""
    _, (s, b) = _matched(study, student, study.run_ids("alpha", "baseline"))
    return study.union(study.run_ids("alpha", "teacher")), study.union(b), study.union(s)


def test_inheritance_and_easy_shares(study):
    by = _by_finding(study)
    t, b, s = _triple(study, study.run_ids("alpha", "student", "forward_kl", 1.0))
    inherited, pool = len((t & s) - b), len(t - b)
    v = by["Students inherit little of what only the teacher memorized"]
    assert pool > 0 and v.evidence.startswith(f"{inherited} of {pool} ({100 * inherited / pool:.1f}%)")
    assert v.p_value == sps.binomtest(inherited, pool, 0.10).pvalue
    ci = sps.binomtest(inherited, pool, 0.10).proportion_ci(method="exact")
    assert np.allclose([v.ci_low, v.ci_high], [100 * ci.low, 100 * ci.high])
    assert v.outcome == _rule(v.p_value, v.effect / 100, 0.10, "less")
    easy = len(t & b & s)
    v = by["Students memorize mostly easy examples, memorized by teacher and baseline"]
    assert v.evidence.startswith(f"{easy} of {len(s)} ({100 * easy / len(s):.1f}%)")
    assert v.p_value == sps.binomtest(easy, len(s), 0.80).pvalue
    assert v.outcome == _rule(v.p_value, v.effect / 100, 0.80, "greater")


def test_no_converged_line_without_converged_students(study):
    findings = [v.finding for v in verdicts(study.engine, "alpha")]
    assert len(findings) == 11 and not any("validation loss memorize less" in f for f in findings)


def test_soft_vs_hard_overlap_and_inheritance(study):
    """Soft (T=1: seeds 0, 1), hard (seeds 0, 5) and baseline (0-2) share seed 0 alone."""
    by = _by_finding(study)
    seeds, (s, h, b) = _matched(
        study,
        study.run_ids("alpha", "student", "forward_kl", 1.0),
        study.run_ids("alpha", "student_hard"),
        study.run_ids("alpha", "baseline"),
    )
    assert seeds == [0]
    t = study.union(study.run_ids("alpha", "teacher"))
    s, h, b = study.union(s), study.union(h), study.union(b)
    v = by["Soft- and hard-distilled students memorize largely the same examples"]
    assert v.evidence.startswith(f"{len(s & h)} of the hard student's {len(h)} ")
    assert v.p_value == sps.binomtest(len(s & h), len(h), 0.70).pvalue
    assert v.outcome == _rule(v.p_value, v.effect / 100, 0.70, "greater")
    v2 = by["Hard distillation inherits more difficult examples than soft"]
    pool = t - b
    inh_h, inh_s = len(pool & h), len(pool & s)
    assert v2.evidence.startswith(f"inherited: hard {inh_h}, soft {inh_s}; of {len(pool)} ")
    only_h, only_s = len(pool & h - s), len(pool & s - h)
    assert v2.p_value == sps.binomtest(only_h, only_h + only_s, 0.5).pvalue
    assert v2.outcome == _rule(v2.p_value, v2.effect, 0, "greater")


def test_easy_examples_features_against_mann_whitney(study):
    """Figure 5's lines: the easy examples' (teacher and a baseline seed) values against the others'."""
    from kdplatform.analysis.reading import read

    t = study.union(study.run_ids("alpha", "teacher"))
    easy = t & study.union(study.run_ids("alpha", "baseline"))
    ex = read(
        study.engine,
        "SELECT example_id, zlib_entropy FROM examples WHERE dataset_id = :d",
        d=int(study.runs[study.runs.job == "alpha"].dataset_id.iloc[0]),
    )
    is_easy = ex.example_id.isin(easy)
    e, o = ex.zlib_entropy[is_easy].astype(float), ex.zlib_entropy[~is_easy].astype(float)
    v = _by_finding(study)["Easy examples have lower zlib entropy than the others"]
    assert f"({len(e)} easy, {len(o)} others)" in v.evidence
    assert np.isclose(v.p_value, sps.mannwhitneyu(e, o, alternative="two-sided").pvalue)
    assert np.isclose(v.effect, np.median(np.subtract.outer(e.to_numpy(), o.to_numpy())))
    assert v.outcome == _rule(v.p_value, v.effect, 0, "less")


def test_filtering_seed_by_seed(study):
    """The filtered student (T=2, seed 0) against the student group's seed 0, on the same examples."""
    v = _by_finding(study)["Re-distilling without the flagged examples reduces memorization"]
    _, (before, after) = _matched(
        study,
        study.run_ids("alpha", "student", "forward_kl", 1.0),
        study.run_ids("alpha", "student_filtered"),
    )
    mb, ma = study.mem[before[0]], study.mem[after[0]]
    assert v.evidence.startswith(f"{len(mb)} memorized before, {len(ma)} after ({len(ma - mb)} new)")
    assert v.p_value == sps.binomtest(len(ma - mb), len(ma ^ mb), 0.5).pvalue
    assert v.outcome == _rule(v.p_value, v.effect, 0, "less")


def test_every_line_states_test_effect_interval_and_p(study):
    line = re.compile(r"^\[(\w+)\] .+: .+; effect \S+( .+)?, 95% CI \[\S+, \S+\]; .+, p = \S+$")
    for v in verdicts(study.engine, "alpha"):
        assert v.outcome in OUTCOMES
        if v.test:
            assert line.match(v.line()), v.line()
        else:
            assert v.outcome == "inconclusive" and v.line() == f"[inconclusive] {v.finding}: {v.evidence}"


def test_validation_loss_line_on_a_trained_job(smoke):
    """Table 1's line: the student group's and the baseline's final validation loss on the seeds both
    trained; smoke trains one seed, too few for a paired t-test."""
    from kdplatform.analysis.groups import student_group
    from kdplatform.analysis.reading import read

    ck = read(
        smoke.engine,
        "SELECT c.run_id, r.role, r.seed, c.val_loss FROM checkpoints c JOIN runs r ON r.id = c.run_id "
        "WHERE c.is_final",
    )
    g = student_group(smoke.engine, 1)
    stud = ck[ck.run_id.isin(g.run_ids)].set_index("seed").val_loss
    base = ck[ck.role == "baseline"].set_index("seed").val_loss
    seeds = sorted(set(stud.index) & set(base.index))
    vs, vb = float(stud[seeds].mean()), float(base[seeds].mean())
    v = next(v for v in verdicts(smoke.engine, "smoke") if v.finding.startswith("Distilled students reach"))
    assert (
        f"{vs:.3f} vs {vb:.3f})" in v.evidence
        if len(seeds) < 2
        else v.evidence.startswith(f"student {vs:.3f} vs baseline {vb:.3f} nats/token")
    )
    if len(seeds) < 2:  # one seed: the two models' losses on the same held-out examples
        held = read(
            smoke.engine,
            "SELECT s.run_id, s.example_id, s.loss FROM scan_results s JOIN examples e "
            "ON e.dataset_id = s.dataset_id AND e.example_id = s.example_id WHERE e.split = 'heldout'",
        ).pivot(index="example_id", columns="run_id", values="loss")
        b_run = int(ck[(ck.role == "baseline") & (ck.seed == seeds[0])].run_id.iloc[0])
        s_runs = [r for r in g.run_ids if int(ck[ck.run_id == r].seed.iloc[0]) == seeds[0]]
        hs, hb = held[s_runs].mean(axis=1), held[b_run]
        assert len(hs) == smoke.spec.data.num_heldout and "held-out examples" in v.test
        assert f"student {hs.mean():.3f} vs baseline {hb.mean():.3f} nats/token on {len(hs)}" in v.evidence
        assert np.isclose(v.p_value, sps.ttest_rel(hs, hb).pvalue)
    else:
        assert np.isclose(v.p_value, sps.ttest_rel(stud[seeds], base[seeds]).pvalue)


def test_converged_students_and_table1_on_matched_seeds(tmp_path):
    """A job with converged students on seeds 0-1 beside baseline and students on seeds 0-2, and final
    checkpoints: the rule's line pairs seeds 0 and 1, Table 1 pairs the student group's seeds 0-2."""
    from kdplatform.analysis.reading import read
    from kdplatform.store import db
    from kdplatform.store.schema import Role
    from kdplatform.testing import Arm, DatasetDesign, Design, JobDesign, build_study

    arms = (
        Arm(Role.TEACHER, capacity=0.35),
        Arm(Role.BASELINE, (0, 1, 2), 0.25),
        Arm(Role.STUDENT, (0, 1, 2), 0.1, "forward_kl", 1.0),
        Arm(Role.STUDENT_CONVERGED, (0, 1), 0.12, "forward_kl", 1.0),
    )
    engine = db.make_engine(f"duckdb:///{tmp_path / 'conv.duckdb'}")
    db.upgrade(engine)
    study = build_study(engine, Design(jobs=(JobDesign("conv", arms, "d"),), datasets=(DatasetDesign("d"),)))
    t1_seeds, (s, b0) = _matched(study, study.run_ids("conv", "student"), study.run_ids("conv", "baseline"))
    planted = {r: 6.4 + 0.01 * k * k for k, r in enumerate(s)} | {r: 6.5 + 0.01 * k for k, r in enumerate(b0)}
    with engine.begin() as conn:
        for run, loss in planted.items():
            conn.exec_driver_sql(
                f"UPDATE checkpoints SET val_loss = {loss} WHERE run_id = {run} AND is_final"
            )
    by = {v.finding.split(" (")[0]: v for v in verdicts(engine, "conv")}
    v = by["Students trained until they beat the baseline's validation loss memorize less"]
    seeds, (c, b) = _matched(
        study, study.run_ids("conv", "student_converged"), study.run_ids("conv", "baseline")
    )
    assert seeds == [0, 1]
    assert v.evidence.startswith(
        f"converged student {_rate(study, c):.2f}% vs baseline {_rate(study, b):.2f}%"
    )
    n_c = sum(len(study.mem[x] - study.mem[y]) for x, y in zip(c, b, strict=True))
    n_b = sum(len(study.mem[y] - study.mem[x]) for x, y in zip(c, b, strict=True))
    assert v.p_value == sps.binomtest(n_c, n_c + n_b).pvalue

    ck = read(engine, "SELECT run_id, val_loss FROM checkpoints WHERE is_final").set_index("run_id").val_loss
    v = by["Distilled students reach a lower validation loss than the baseline"]
    assert t1_seeds == [0, 1, 2] and v.test == "paired t-test over 3 seeds"
    assert v.evidence.startswith(f"student {ck[s].mean():.3f} vs baseline {ck[b0].mean():.3f} nats/token")
    assert np.isclose(v.p_value, sps.ttest_rel(ck[s].to_numpy(), ck[b0].to_numpy()).pvalue)
    assert v.outcome == _rule(v.p_value, v.effect, 0, "less")
    engine.dispose()


def test_findings_the_design_lacks_are_listed_apart_from_the_verdicts(smoke):
    """Smoke trains one temperature: Figure 2 is not measured (no test), listed in one line after the
    verdicts in the report, while every measured finding keeps its line."""
    from kdplatform.analysis.report import render_report
    from kdplatform.analysis.verdicts import not_measured_line

    found = verdicts(smoke.engine, "smoke")
    temp = next(v for v in found if v.finding.startswith("Higher distillation temperature"))
    assert not temp.measured and not temp.test
    assert all(v.measured for v in found if v.finding.startswith("Distilled students memorize less"))
    line = not_measured_line(found)
    assert line.startswith("Not measured by this job's design: ") and temp.finding in line
    report = render_report(smoke.engine, "smoke")
    assert line in report and f"- {temp.line()}" not in report
