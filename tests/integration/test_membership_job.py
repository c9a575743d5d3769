"""Issue 15 end to end on a tiny job: the data stage writes the held-out split, every scan also scans it,
the scores reach SQL, and membership_inference has a row per attack for teacher, baseline and student with
the held-out split's size as n_nonmembers, while the older views still count D only."""

from __future__ import annotations

import pytest
import yaml
from sqlalchemy import text
from tiny_jobs import tiny_data

from kdplatform.cli import main
from kdplatform.memorization import ATTACKS
from kdplatform.store.db import make_engine

TINY = {"num_hidden_layers": 1, "hidden_size": 16, "intermediate_size": 32}
TRAIN = {"epochs": 2, "batch_size": 8, "lr": 3.0e-3, "checkpoint_every": None}
N_HELDOUT = 12


def _job() -> dict:
    return {
        "name": "mia15",
        "seeds": [0],
        "data": tiny_data(heldout_examples=N_HELDOUT),
        "teacher": {"model": {"preset": "tiny-teacher", "config": TINY}, "train": TRAIN},
        "baseline": {"model": {"preset": "tiny-student", "config": TINY}, "train": TRAIN},
        "student": {"model": {"preset": "tiny-student", "config": TINY}, "train": TRAIN},
        "scan": {"shard_size": 8, "kld": True, "audit_sample": 2, "approximate_min_match": 2},
    }


@pytest.fixture(scope="module")
def job_db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mia15")
    path, work = tmp / "job.yaml", tmp / "work"
    path.write_text(yaml.safe_dump(_job()))
    assert main(["run", str(path), "--workdir", str(work)]) == 0
    engine = make_engine(f"duckdb:///{work / 'kdp.duckdb'}", read_only=True)
    yield engine, work
    engine.dispose()


def q(engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql)).all()]


def test_heldout_split_is_written_and_scanned(job_db):
    engine, work = job_db
    n = tiny_data()["num_examples"]
    splits = dict(q(engine, "SELECT split, COUNT(*) FROM examples GROUP BY split"))
    assert splits == {"train": n, "val": tiny_data()["val_examples"], "heldout": N_HELDOUT}
    assert len(list((work / "data").glob("*/heldout.parquet"))) == 1
    per_run = q(
        engine,
        "SELECT s.run_id, e.split, COUNT(*), COUNT(s.loss), COUNT(s.min_k_pp_20) FROM scan_results s "
        "JOIN examples e ON e.dataset_id = s.dataset_id AND e.example_id = s.example_id "
        "GROUP BY s.run_id, e.split",
    )
    assert {(split, c, c1, c2) for _, split, c, c1, c2 in per_run} == {
        ("train", n, n, n),
        ("heldout", N_HELDOUT, N_HELDOUT, N_HELDOUT),
    }
    assert len(per_run) == 2 * 3  # teacher, baseline, student; no validation example scanned
    # Held-out rows carry no teacher KL, greedy continuation or audit; members' do.
    for table in ("example_kld", "greedy_continuations"):
        sql = f"SELECT COUNT(*) FROM {table} x JOIN examples e ON e.example_id = x.example_id "
        assert q(engine, sql + "WHERE e.split = 'heldout'") == [(0,)], table
    assert q(engine, "SELECT DISTINCT examples FROM scan_audits") == [(n,)]
    # Long tables: four extraction settings, and the prefix lengths other than 8 (none: 8 < 25).
    assert q(engine, "SELECT COUNT(*) FROM extraction_scores") == [(3 * 4 * (n + N_HELDOUT),)]
    assert q(engine, "SELECT DISTINCT top_k FROM extraction_scores ORDER BY 1") == [(0,), (40,)]


def test_membership_inference_rows_per_role(job_db):
    engine, _ = job_db
    rows = q(engine, "SELECT role, attack, n_members, n_nonmembers, auc FROM membership_inference")
    n = tiny_data()["num_examples"]
    attacks = {role: {a for r, a, *_ in rows if r == role} for role in ("teacher", "baseline", "student")}
    assert attacks["teacher"] == attacks["student"] == set(ATTACKS)
    assert attacks["baseline"] == set(ATTACKS) - {"reference"}  # no base model: no reference for it
    assert {(m, h) for _, _, m, h, _ in rows} == {(n, N_HELDOUT)}
    assert all(0.0 <= auc <= 1.0 for *_, auc in rows)


def test_older_views_count_d_only(job_db):
    engine, _ = job_db
    n = tiny_data()["num_examples"]
    assert {r[0] for r in q(engine, "SELECT examples FROM memorization_rates")} == {n}
    assert {r[0] for r in q(engine, "SELECT examples FROM scanned_runs")} == {n}
    assert q(engine, "SELECT COUNT(*) FROM memorization") == [(3 * n,)]
    rates = q(engine, "SELECT role, member, examples FROM prefix_memorization_rates ORDER BY role, member")
    assert {(m, e) for _, m, e in rates} == {(False, N_HELDOUT), (True, n)}
    ext = q(engine, "SELECT DISTINCT member, examples FROM extraction_rates")
    assert set(ext) == {(False, N_HELDOUT), (True, n)}


def test_library_report_and_attack_names(job_db):
    from kdplatform.analysis import membership
    from kdplatform.analysis.calls import CALLS
    from kdplatform.analysis.report import render_report

    engine, _ = job_db
    assert membership.ATTACKS == ATTACKS  # the dashboard's copy, kept without importing torch
    job_id = q(engine, "SELECT id FROM jobs")[0][0]
    summary = membership.membership_summary(engine, job_id)
    assert list(dict.fromkeys(summary.role)) == ["teacher", "baseline", "student"]
    assert set(summary.runs) == {1} and set(summary.n_nonmembers) == {N_HELDOUT}
    per_run = CALLS["membership_inference"](engine, job_id)
    assert len(per_run) == len(summary) == 3 * len(ATTACKS) - 1
    assert not CALLS["extraction_rates"](engine, job_id, member=True).member.eq(False).any()
    assert set(CALLS["prefix_rates"](engine, job_id).prefix_len) == {tiny_data()["prefix_len"]}
    md = render_report(engine, "mia15")
    section = md.split("## Membership inference", 1)[1].split("\n## ", 1)[0]
    assert f"{tiny_data()['num_examples']} members of D against {N_HELDOUT} held-out" in section
    assert "ROC AUC:" in section and "TPR at 1 % FPR" in section
    header = next(line for line in section.splitlines() if line.startswith("| model"))
    assert header == "| model | config | seeds | " + " | ".join(ATTACKS) + " |"
    roles = ("| teacher", "| baseline", "| student")
    rows = [line for line in section.splitlines() if line.startswith(roles)]
    assert len(rows) == 2 * 3 and all(line.count("–") <= 2 for line in rows)  # baseline: no reference


def test_approximate_memorization_reaches_the_view_and_the_report(job_db):
    """The approximate stage (on in this job) scores the members with match_len >= 2 of every model; the
    report's membership section quotes it per model group."""
    from kdplatform.analysis.membership import approximate_rates
    from kdplatform.analysis.report import render_report

    engine, _ = job_db
    job_id = q(engine, "SELECT id FROM jobs")[0][0]
    got = approximate_rates(engine, job_id)
    assert len(got) == 3 and set(got.members) == {tiny_data()["num_examples"]}
    # Held-out rows may match too, but only members are scored.
    members = q(
        engine,
        "SELECT s.run_id, COUNT(*) FROM scan_results s JOIN examples e ON e.example_id = s.example_id "
        "AND e.dataset_id = s.dataset_id WHERE s.match_len >= 2 AND e.split = 'train' GROUP BY s.run_id",
    )
    assert dict(zip(got.run_id, got.long_matches, strict=True)) == {
        r: dict(members).get(r, 0) for r in got.run_id
    }
    section = render_report(engine, "mia15").split("## Membership inference", 1)[1].split("\n## ", 1)[0]
    line = next(x for x in section.splitlines() if x.startswith("Approximate memorization"))
    assert "teacher: " in line and "baseline: " in line and "student forward_kl" in line
