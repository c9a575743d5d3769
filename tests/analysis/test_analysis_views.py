"""Each view and query against the same counts computed with Python sets from the generated rows."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr
from sklearn.metrics import roc_auc_score

from kdplatform.analysis import compare, features, filtering, groups, jobs, mia, overlap, rates, reading


def view(study, name: str, **where) -> pd.DataFrame:
    cond = " AND ".join(f"{k} = :{k}" for k in where) or "1 = 1"
    return reading.read(study.engine, f"SELECT * FROM {name} WHERE {cond}", **where)


def trained(study, job: str) -> pd.DataFrame:
    return study.runs[study.runs.job_id == study.jobs[job]]


def group_key(r) -> tuple:
    obj = None if pd.isna(r.objective) else r.objective
    t = None if pd.isna(r.temperature) else float(r.temperature)
    return (r.role, obj, t)


def student_groups(study, job: str) -> dict[tuple, list[int]]:
    out: dict[tuple, list[int]] = {}
    for r in trained(study, job).itertuples():
        if r.role.startswith("student"):
            out.setdefault(group_key(r), []).append(int(r.id))
    return out


def none_if_nan(v):
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else v


def test_scanned_runs_counts(study):
    df = reading.read(study.engine, "SELECT * FROM scanned_runs")
    got = {
        int(r.run_id): (int(r.job_id), int(r.dataset_id), int(r.examples), int(r.memorized))
        for r in df.itertuples()
    }
    want = {
        int(r.id): (int(r.job_id), int(r.dataset_id), 240, len(study.mem[int(r.id)]))
        for r in study.runs.itertuples()
    }
    assert got == want


def test_run_overlap_matches_sets(study):
    df = reading.read(study.engine, "SELECT * FROM run_overlap")
    got = {(int(r.run_a), int(r.run_b)): r for r in df.itertuples()}
    want = set()
    for job in study.jobs:
        ids = [int(x) for x in trained(study, job).id]
        want |= {(a, b) for a, b in itertools.permutations(ids, 2)}
    assert set(got) == want  # pairs within one job only, although alpha and beta share a dataset
    for (a, b), r in got.items():
        sa, sb = study.mem[a], study.mem[b]
        assert (r.n_a, r.n_b, r.n_both) == (len(sa), len(sb), len(sa & sb))
        assert (r.n_a_only, r.n_b_only) == (len(sa - sb), len(sb - sa))
        assert r.jaccard == pytest.approx(len(sa & sb) / len(sa | sb))
        assert r.share_of_a_in_b == pytest.approx(len(sa & sb) / len(sa))
    assert overlap.overlap(study.engine, study.jobs["beta"]).shape[0] == 4 * 3


def expected_triples(study, job: str) -> list[tuple[int, int, int]]:
    runs = trained(study, job)
    teachers = [int(r.id) for r in runs.itertuples() if r.role == "teacher"]
    baselines = {int(r.id): int(r.seed) for r in runs.itertuples() if r.role == "baseline"}
    out = []
    for s in runs.itertuples():
        if not s.role.startswith("student"):
            continue
        matched = [b for b, seed in baselines.items() if seed == s.seed]
        for t in teachers:
            for b in matched or list(baselines):
                out.append((t, int(s.id), b))
    return sorted(out)


def test_inheritance_matches_sets(study):
    for job in study.jobs:
        df = view(study, "inheritance", job_id=study.jobs[job])
        got = {
            (int(r.teacher_run_id), int(r.student_run_id), int(r.baseline_run_id)): r for r in df.itertuples()
        }
        assert sorted(got) == expected_triples(study, job)
        rows = view(study, "inherited_examples", job_id=study.jobs[job])
        for (t, s, b), r in got.items():
            mt, ms, mb = study.mem[t], study.mem[s], study.mem[b]
            inherited = (mt & ms) - mb
            assert r.n_inherited == len(inherited)
            assert r.n_teacher_not_baseline == len(mt - mb)
            assert none_if_nan(r.share_of_student) == (
                pytest.approx(len(inherited) / len(ms)) if ms else None
            )
            assert r.share_of_teacher_not_baseline == pytest.approx(len(inherited) / len(mt - mb))
            mine = rows[(rows.student_run_id == s) & (rows.baseline_run_id == b)]
            assert set(mine.example_id.astype(int)) == inherited
    # the student_hard seed 5 has no baseline of its seed: it is compared with every baseline
    hard5 = study.run_ids("alpha", "student_hard")[1]
    df = overlap.inheritance(study.engine, study.jobs["alpha"])
    assert len(df[df.student_run_id == hard5]) == 3
    assert df.n_inherited.sum() > 0


def test_easy_examples_match_sets(study):
    for job in study.jobs:
        teacher = study.union(study.run_ids(job, "teacher"))
        baselines = study.run_ids(job, "baseline")
        easy = teacher & study.union(baselines)
        df = features.easy_examples(study.engine, study.jobs[job])
        assert set(df.example_id.astype(int)) == easy
        scans = study.scans[study.scans.run_id.isin(baselines)].groupby("example_id").ppl.mean()
        ex = study.examples[study.examples.dataset_id == trained(study, job).dataset_id.iloc[0]].set_index(
            "example_id"
        )
        for r in df.itertuples():
            assert r.baseline_ppl == pytest.approx(scans[r.example_id])
            assert r.zlib_entropy == ex.zlib_entropy[r.example_id]
            assert r.n_baseline_memorized == sum(r.example_id in study.mem[b] for b in baselines)


def test_seed_consistency_matches_counts(study):
    for job in study.jobs:
        baselines = study.run_ids(job, "baseline")
        df = view(study, "seed_consistency", job_id=study.jobs[job])
        groups = student_groups(study, job)
        assert len(df) == 240 * len(groups)
        for r in df.itertuples():
            key = (r.student_role, none_if_nan(r.student_objective), none_if_nan(r.student_temperature))
            runs = groups[key]
            assert (r.n_baseline_runs, r.n_student_runs) == (len(baselines), len(runs))
            assert r.n_baseline_memorized == sum(r.example_id in study.mem[b] for b in baselines)
            assert r.n_student_memorized == sum(r.example_id in study.mem[s] for s in runs)


def test_consistency_matrix(study):
    job = study.jobs["alpha"]
    g = groups.student_group(study.engine, job, "student", "forward_kl", 2.0)
    m = overlap.consistency_matrix(study.engine, job, g)
    baselines = study.run_ids("alpha", "baseline")
    students = study.run_ids("alpha", "student", "forward_kl", 2.0)
    ids = study.examples[study.examples.dataset_id == 10].example_id.astype(int)
    want = Counter(
        (sum(e in study.mem[b] for b in baselines), sum(e in study.mem[s] for s in students)) for e in ids
    )
    assert m.shape == (4, 4)
    for i, j in itertools.product(range(4), range(4)):
        assert m.loc[i, j] == want.get((i, j), 0)
    assert m.to_numpy().sum() == 240


def test_example_features(study):
    sc = study.scans.set_index(["run_id", "example_id"])
    for job in study.jobs:
        job_id = study.jobs[job]
        teacher, baselines = study.run_ids(job, "teacher"), study.run_ids(job, "baseline")
        kld = study.kld.set_index(["run_id", "example_id"])
        for (role, obj, t), runs in student_groups(study, job).items():
            df = reading.read(
                study.engine,
                "SELECT * FROM example_features WHERE job_id = :j AND student_role = :r AND "
                "student_objective IS NOT DISTINCT FROM :o AND student_temperature IS NOT DISTINCT FROM :t",
                j=job_id,
                r=role,
                o=obj,
                t=t,
            )
            assert len(df) == 240
            for r in df.sample(40, random_state=0).itertuples():
                e = int(r.example_id)
                assert r.teacher_ppl == pytest.approx(sc.ppl[(teacher[0], e)])
                assert r.baseline_ppl == pytest.approx(np.mean([sc.ppl[(b, e)] for b in baselines]))
                assert r.student_ppl == pytest.approx(np.mean([sc.ppl[(s, e)] for s in runs]))
                if job == "gamma":
                    assert none_if_nan(r.teacher_baseline_kld) is None
                    assert none_if_nan(r.teacher_student_kld) is None
                else:
                    assert r.teacher_baseline_kld == pytest.approx(
                        np.mean([kld.kld[(b, e)] for b in baselines])
                    )
                    assert r.teacher_student_kld == pytest.approx(np.mean([kld.kld[(s, e)] for s in runs]))
                assert bool(r.teacher_memorized) == (e in study.mem[teacher[0]])
                assert r.n_baseline_memorized == sum(e in study.mem[b] for b in baselines)
                assert bool(r.easy) == (e in study.mem[teacher[0]] and r.n_baseline_memorized > 0)
                assert bool(r.student_memorized) == any(e in study.mem[s] for s in runs)


def test_default_student_group(study):
    e = study.engine
    g = groups.student_group(e, study.jobs["alpha"])  # the spec's first temperature, not the most seeds
    assert (g.objective, g.temperature, list(g.run_ids)) == (
        "forward_kl",
        1.0,
        study.run_ids("alpha", "student", "forward_kl", 1.0),
    )
    g = groups.student_group(e, study.jobs["beta"])  # no distill section: the configuration with most seeds
    assert list(g.run_ids) == study.run_ids("beta", "student")
    assert groups.student_group(e, study.jobs["beta"], "student_hard") is None
    f = features.features(
        e, study.jobs["alpha"], groups.student_group(e, study.jobs["alpha"], temperature=2.0)
    )
    assert f.attrs["group"].run_ids == tuple(study.run_ids("alpha", "student", "forward_kl", 2.0))
    assert f.student_memorized.dtype == bool


def test_a_group_choice_is_a_group_a_role_or_none(study):
    """The analyses of one student group take a Group, a role (its default group) or None."""
    e, job = study.engine, study.jobs["alpha"]
    g = groups.student_group(e, job, temperature=2.0)
    assert groups.chosen(e, job, g) is g
    assert groups.chosen(e, job, "student") == groups.student_group(e, job)
    assert groups.chosen(e, job, None) is None
    assert groups.chosen(e, study.jobs["beta"], "student_hard") is None
    teacher, baseline, student = groups.trio(e, job, g)
    assert sorted(teacher) == sorted(study.run_ids("alpha", "teacher"))
    assert sorted(baseline) == sorted(study.run_ids("alpha", "baseline")) and student is g
    assert groups.trio(e, study.jobs["beta"], "student_hard") is None
    assert groups.trio(e, job, None) is None


def test_classifier_table_for_the_hard_student(study):
    """classifier.target: student_hard reads the hard student's seeds as the positives."""
    f = features.features(study.engine, study.jobs["alpha"], role="student_hard")
    hard = study.run_ids("alpha", "student_hard")
    assert f.attrs["group"].run_ids == tuple(hard) and len(hard) == 2
    got = set(f.example_id[f.student_memorized].astype(int))
    assert got == study.union(hard) and len(got) > 0
    assert (f.n_student_runs == 2).all()


def venn_expected(study, a: list[int], b: list[int], c: list[int]) -> dict[str, int]:
    sa, sb, sc = study.union(a), study.union(b), study.union(c)
    return {
        "A": len(sa - sb - sc),
        "B": len(sb - sa - sc),
        "C": len(sc - sa - sb),
        "AB": len((sa & sb) - sc),
        "AC": len((sa & sc) - sb),
        "BC": len((sb & sc) - sa),
        "ABC": len(sa & sb & sc),
    }


def test_venn3_matches_sets(study):
    rng = np.random.default_rng(1)
    all_runs = [int(x) for x in study.runs.id]
    cases = [
        (
            study.run_ids("alpha", "teacher"),
            study.run_ids("alpha", "baseline"),
            study.run_ids("alpha", "student"),
        ),
        (
            study.run_ids("gamma", "baseline"),
            study.run_ids("alpha", "baseline")[:1],
            study.run_ids("beta", "student"),
        ),
    ]
    cases += [
        tuple(sorted(rng.choice(all_runs, size=k, replace=False).tolist()) for k in (1, 2, 3))
        for _ in range(5)
    ]
    for a, b, c in cases:
        v = overlap.venn3(study.engine, a, b, c)
        assert list(v.region) == list(overlap.REGIONS)
        assert dict(zip(v.region, v["count"], strict=True)) == venn_expected(study, a, b, c)
    v = overlap.venn3(study.engine, all_runs[0], all_runs[1], all_runs[2])
    assert dict(zip(v.region, v["count"], strict=True)) == venn_expected(study, *([r] for r in all_runs[:3]))


def test_job_venn_pooled_inheritance(study):
    g = groups.student_group(study.engine, study.jobs["alpha"], temperature=2.0)
    v = overlap.job_venn(study.engine, study.jobs["alpha"], g)
    t = study.union(study.run_ids("alpha", "teacher"))
    b = study.union(study.run_ids("alpha", "baseline"))
    s = study.union(study.run_ids("alpha", "student", "forward_kl", 2.0))
    assert v.n_inherited == len((t & s) - b) > 0
    assert v.n_teacher_not_baseline == len(t - b)
    assert v.n_student == len(s)
    assert v.n_easy == len(t & b)
    assert overlap.job_venn(study.engine, study.jobs["beta"], "student_hard") is None


def test_rates(study):
    df = rates.rates(study.engine, study.jobs["alpha"])
    assert list(df.role[:4]) == ["teacher", "baseline", "baseline", "baseline"]
    for r in df.itertuples():
        assert r.memorized == len(study.mem[r.run_id])
        assert r.rate_pct == pytest.approx(100 * len(study.mem[r.run_id]) / 240)
    summ = rates.rate_summary(study.engine, study.jobs["alpha"])
    base = summ[summ.role == "baseline"].iloc[0]
    baseline_rates = [100 * len(study.mem[r]) / 240 for r in study.run_ids("alpha", "baseline")]
    assert base.runs == 3
    assert base.rate_pct_mean == pytest.approx(np.mean(baseline_rates))
    assert base.rate_pct_std == pytest.approx(np.std(baseline_rates, ddof=1))


def test_soft_vs_hard(study):
    sh = compare.soft_vs_hard(study.engine, study.jobs["alpha"])
    t = study.union(study.run_ids("alpha", "teacher"))
    b = study.union(study.run_ids("alpha", "baseline"))
    s = study.union(study.run_ids("alpha", "student", "forward_kl", 1.0))
    h = study.union(study.run_ids("alpha", "student_hard"))
    assert (sh.n_soft, sh.n_hard, sh.n_both) == (len(s), len(h), len(s & h))
    assert sh.n_difficult == len(h - s - b)
    assert sh.n_difficult_teacher == len((h - s - b) & t)
    assert (sh.inherited_soft, sh.inherited_hard) == (len((t & s) - b), len((t & h) - b))
    assert sh.n_hard_easy == len(h & t & b)
    fig10 = dict(zip(sh.soft_hard_baseline.region, sh.soft_hard_baseline["count"], strict=True))
    assert fig10["B"] == sh.n_difficult
    assert compare.soft_vs_hard(study.engine, study.jobs["beta"]) is None


def test_cross_family(study):
    runs = [
        study.run_ids("alpha", "baseline")[0],
        study.run_ids("gamma", "baseline")[0],
        study.run_ids("beta", "student")[0],
    ]
    df = compare.cross_overlap(study.engine, runs)
    assert len(df) == 6
    for r in df.itertuples():
        sa, sb = study.mem[r.run_a], study.mem[r.run_b]
        assert (r.n_a, r.n_b, r.n_both) == (len(sa), len(sb), len(sa & sb))
        assert r.jaccard == pytest.approx(len(sa & sb) / len(sa | sb))
    ex = study.examples.pivot(index="example_id", columns="dataset_id", values="zlib_bits_per_token")
    r, n = compare.zlib_correlation(study.engine, 10, 11)
    assert n == 240 and r == pytest.approx(pearsonr(ex[10], ex[11]).statistic)
    mem = sorted(study.mem[runs[0]])
    r, n = compare.zlib_correlation(study.engine, 10, 11, memorized_by=runs[0])
    assert n == len(mem) and r == pytest.approx(pearsonr(ex.loc[mem, 10], ex.loc[mem, 11]).statistic)
    pp = compare.cross_ppl(study.engine, runs[0], runs[1])
    assert set(pp.example_id.astype(int)) == study.mem[runs[0]] | study.mem[runs[1]]


def test_mia_auc(study):
    f = features.features(study.engine, study.jobs["alpha"])
    auc = mia.mia(study.engine, study.jobs["alpha"]).set_index("feature")
    d_s = f.student_memorized.to_numpy()
    d_b = (f.n_baseline_memorized.to_numpy() > 0) & ~d_s
    keep = d_s | d_b
    for feat in ("teacher_ppl", "baseline_ppl", "teacher_student_kld"):
        want = roc_auc_score(d_s[keep], f[feat].to_numpy()[keep])
        assert auc.loc[feat, "auc"] == pytest.approx(want)
        assert auc.loc[feat, "auc_separation"] == pytest.approx(max(want, 1 - want))
        assert auc.loc[feat, "n_student"] == d_s.sum() and auc.loc[feat, "n_baseline_only"] == d_b.sum()
    assert mia.mia(study.engine, study.jobs["gamma"]).set_index("feature").auc.isna()["teacher_baseline_kld"]


def test_mechanism_points(study):
    pts = mia.mechanism_points(study.engine, study.jobs["alpha"])
    t = study.union(study.run_ids("alpha", "teacher"))
    b = study.union(study.run_ids("alpha", "baseline"))
    student = study.run_ids("alpha", "student", "forward_kl", 1.0)
    s = study.union(student)
    sub = pts[pts.subset == "teacher_baseline_not_student"]
    assert set(sub.example_id.astype(int)) == (t & b) - s
    assert set(pts[pts.subset == "student_memorized"].example_id.astype(int)) == s
    assert len(sub) == 3 * len((t & b) - s)
    sc = (
        study.scans[study.scans.run_id.isin(student)]
        .groupby("example_id")[["suffix_logprob", "suffix_entropy"]]
        .mean()
    )
    for r in pts[pts.model == "student"].head(20).itertuples():
        assert r.suffix_logprob == pytest.approx(sc.suffix_logprob[r.example_id])
        assert r.suffix_entropy == pytest.approx(sc.suffix_entropy[r.example_id])


def test_filtering_without_classifier(study):
    risk = pd.DataFrame({"example_id": [5, 3, 9, 1], "risk": [0.9, 0.5, np.nan, 0.2]})
    assert filtering.exclusion_set(risk, 0.5).tolist() == [3, 5]
    assert filtering.clean_mask(np.array([1, 3, 5, 9]), np.array([3, 5])).tolist() == [
        True,
        False,
        False,
        True,
    ]
    summ = filtering.filtering_summary(study.engine, study.jobs["alpha"])
    before = study.union(study.run_ids("alpha", "student", "forward_kl", 1.0))
    after = study.union(study.run_ids("alpha", "student_filtered"))
    assert (summ.n_before, summ.n_after, summ.n_new) == (len(before), len(after), len(after - before))
    assert filtering.filtering_summary(study.engine, study.jobs["beta"]) is None


def test_url_and_job_name(study):
    assert jobs.resolve_job(study.engine, "beta") == study.jobs["beta"]
    assert jobs.resolve_job(study.engine, str(study.jobs["beta"])) == study.jobs["beta"]
    with pytest.raises(ValueError, match="no job 'nope'"):
        jobs.resolve_job(study.engine, "nope")
    with study.engine.connect() as conn:
        assert len(rates.rates(conn, study.jobs["gamma"])) == 3
    url = study.engine.url.render_as_string(hide_password=False)
    v = overlap.venn3(url, *study.run_ids("gamma", "teacher"), *study.run_ids("gamma", "baseline"), 999_999)
    mt, mb = (study.union(study.run_ids("gamma", r)) for r in ("teacher", "baseline"))
    assert dict(zip(v.region, v["count"], strict=True)) == {
        "A": len(mt - mb),
        "B": len(mb - mt),
        "C": 0,
        "AB": len(mt & mb),
        "AC": 0,
        "BC": 0,
        "ABC": 0,
    }
