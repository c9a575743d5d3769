"""The smoke job end to end: data, three trained roles, scans, SQL rows, MLflow lineage, idempotent rerun."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from kdplatform.data.examples import Examples
from kdplatform.memorization import greedy_reference
from kdplatform.models import load_pretrained
from kdplatform.pipeline import JobRunner
from kdplatform.store.db import make_engine


def q(runner, sql, **params):
    with runner.engine.connect() as conn:
        return conn.execute(text(sql), params).all()


def test_every_stage_done_with_lineage(smoke):
    runs = q(smoke, "SELECT stage_key, status, mlflow_run_id FROM runs ORDER BY id")
    assert [r[0] for r in runs] == [s.key for s in smoke.plan.stages]
    assert all(r[1] == "done" and r[2] for r in runs)
    edges = q(
        smoke,
        "SELECT r.stage_key, t.stage_key FROM run_inputs i JOIN runs r ON r.id = i.run_id "
        "JOIN runs t ON t.id = i.input_run_id WHERE i.kind = 'teacher'",
    )
    assert sorted(edges) == [
        ("hard_data", "train/teacher"),
        ("train/student/s0/forward_kl/T1", "train/teacher"),
        ("train/student_filtered/s0", "train/teacher"),
    ]


def test_scan_rows_match_generate(smoke):
    """Stored outcomes equal an independent generate()-based check of the saved checkpoints."""
    ds = smoke.dataset()
    ex = Examples.read(Path(ds.path) / "train.parquet")
    n_examples = q(smoke, "SELECT COUNT(*) FROM examples WHERE dataset_id = :d AND split = 'train'", d=ds.id)
    assert n_examples[0][0] == len(ex) == smoke.spec.data.num_examples
    for key in ("train/teacher", "train/baseline/s0"):
        run_id = smoke.run_row(key).id
        rows = q(
            smoke,
            "SELECT s.example_id, s.memorized, s.match_len FROM scan_results s JOIN examples e "
            "ON e.dataset_id = s.dataset_id AND e.example_id = s.example_id "
            "WHERE s.run_id = :r AND e.split = 'train' ORDER BY s.example_id",
            r=run_id,
        )
        assert len(rows) == len(ex)
        model = load_pretrained(smoke.checkpoint_dir(key))
        import torch

        ref = greedy_reference(model, torch.as_tensor(ex.tokens), ds.prefix_len)
        assert np.array_equal(np.array([r[2] for r in rows]), ref.match_len)
        assert np.array_equal(np.array([r[1] for r in rows]), ref.memorized)


def test_rates_view_matches_rows(smoke):
    rates = smoke.rates()
    assert set(rates.role) == {"teacher", "baseline", "student", "student_filtered", "student_hard"}
    for _, r in rates.iterrows():
        n, m = q(
            smoke,
            "SELECT COUNT(*), SUM(CASE WHEN memorized THEN 1 ELSE 0 END) FROM scan_results s "
            "JOIN examples e ON e.dataset_id = s.dataset_id AND e.example_id = s.example_id "
            "WHERE s.run_id = :r AND e.split = 'train'",
            r=int(r.run_id),
        )[0]
        assert (r.examples, r.memorized) == (n, m)
        assert r.rate_pct == pytest.approx(100.0 * m / n)


def test_checkpoints_have_validation_per_epoch(smoke):
    rows = q(
        smoke,
        "SELECT r.stage_key, COUNT(*), SUM(CASE WHEN c.is_final THEN 1 ELSE 0 END), MIN(c.val_ppl) "
        "FROM checkpoints c JOIN runs r ON r.id = c.run_id GROUP BY r.stage_key",
    )
    assert len(rows) == 5
    for _key, n, finals, ppl in rows:
        assert n == smoke.spec.teacher.train.epochs and finals == 1 and ppl > 1


def test_mlflow_has_nested_stage_runs(smoke):
    import mlflow

    client = mlflow.MlflowClient(smoke.tracking_uri)
    parent = smoke.job_mlflow_id
    children = client.search_runs([smoke.tracker.experiment_id], f"tags.mlflow.parentRunId = '{parent}'")
    assert {c.data.tags["kdp.stage_key"] for c in children} == {s.key for s in smoke.plan.stages}
    student = next(c for c in children if c.data.tags["kdp.stage_key"] == "train/student/s0/forward_kl/T1")
    teacher = next(c for c in children if c.data.tags["kdp.stage_key"] == "train/teacher")
    assert student.data.tags["kdp.input.teacher"] == teacher.info.run_id
    assert "val_loss" in teacher.data.metrics and "memorization_rate_pct" in teacher.data.metrics
    data_run = next(c for c in children if c.data.tags["kdp.stage_key"] == "data")
    assert data_run.inputs.dataset_inputs, "the dataset is logged as an MLflow input"


def test_rerun_does_no_work(smoke):
    before = q(smoke, "SELECT id, status, finished_at FROM runs ORDER BY id")
    said = []
    JobRunner(smoke.spec, smoke.workdir, echo=said.append).run()
    assert all(s.startswith("[skip]") for s in said)
    assert q(smoke, "SELECT id, status, finished_at FROM runs ORDER BY id") == before


def test_cli_sql_reads_the_job_database(smoke):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "kdplatform.cli",
            "sql",
            "--db",
            smoke.database_url,
            "--format",
            "csv",
            "select role, memorized from memorization_rates order by run_id",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.splitlines()[0] == "role,memorized"
    roles = [line.split(",")[0] for line in out.stdout.splitlines()[1:]]
    assert roles == ["teacher", "baseline", "student", "student_hard", "student_filtered"]


def test_classifier_and_filtered_student(smoke):
    trials = q(
        smoke,
        "SELECT COUNT(*), MIN(n_positive) FROM classifier_trials t JOIN runs r ON r.id = t.run_id "
        "WHERE r.stage_key = 'classify'",
    )[0]
    assert trials[0] == smoke.spec.classifier.trials and trials[1] > 0
    excluded = q(smoke, "SELECT COUNT(*) FROM example_risk WHERE predicted")[0][0]
    filtered = smoke.run_row("train/student_filtered/s0")
    edge = q(
        smoke, "SELECT input_run_id FROM run_inputs WHERE run_id = :r AND kind = 'exclusion'", r=filtered.id
    )
    assert edge == [(smoke.run_row("classify").id,)]
    assert f"({excluded} excluded)" in " ".join(smoke.said)


def test_hard_data_is_true_prefix_plus_teacher_greedy(smoke):
    import torch

    d, hard = smoke.dataset(), smoke.dataset("hard_data")
    assert hard.parent_dataset_id == d.id
    orig = Examples.read(Path(d.path) / "train.parquet")
    gen = Examples.read(Path(hard.path) / "train.parquet")
    assert np.array_equal(orig.example_ids, gen.example_ids)
    assert np.array_equal(orig.tokens[:, : d.prefix_len], gen.tokens[:, : d.prefix_len])
    teacher = load_pretrained(smoke.checkpoint_dir("train/teacher"))
    ref = greedy_reference(teacher, torch.as_tensor(gen.tokens), d.prefix_len)
    assert ref.memorized.all(), "each generated suffix is the teacher's own greedy continuation"


def test_greedy_continuations_match_generate(smoke):
    import torch

    ds = smoke.dataset()
    ex = Examples.read(Path(ds.path) / "train.parquet")
    run_id = smoke.run_row("train/baseline/s0").id
    rows = q(
        smoke,
        "SELECT g.example_id, g.tokens, s.match_len FROM greedy_continuations g JOIN scan_results s "
        "ON s.run_id = g.run_id AND s.example_id = g.example_id WHERE g.run_id = :r",
        r=run_id,
    )
    assert rows and all(m >= smoke.spec.scan.store_greedy_min_match for _, _, m in rows)
    model = load_pretrained(smoke.checkpoint_dir("train/baseline/s0"))
    idx = {int(e): i for i, e in enumerate(ex.example_ids)}
    prompts = torch.as_tensor(ex.tokens[[idx[r[0]] for r in rows], : ds.prefix_len])
    out = model.generate(
        prompts,
        attention_mask=torch.ones_like(prompts),
        do_sample=False,
        max_new_tokens=ds.seq_len - ds.prefix_len,
        min_new_tokens=ds.seq_len - ds.prefix_len,
        pad_token_id=0,
        eos_token_id=None,
    )[:, ds.prefix_len :]
    for (_, toks, match), gen in zip(rows, out.tolist(), strict=True):
        stored = [int(t) for t in toks.split()]
        exact = min(match + 1, len(stored))
        assert stored[:exact] == gen[:exact]


def test_report_has_the_papers_tables(smoke, tmp_path):
    from kdplatform.analysis.report import write_report

    text_ = write_report(smoke.engine, smoke.spec.name, tmp_path / "r.md")
    for heading in ("Table 2", "Figure 4", "Inheritance", "classifier"):
        assert heading in text_


def test_plan_says_what_would_run_and_why(smoke):
    assert {why for _, why in smoke.would_run()} == {"skip: done"}
    changed = smoke.spec.model_copy(
        update={
            "baseline": smoke.spec.baseline.model_copy(
                update={"train": smoke.spec.baseline.train.model_copy(update={"lr": 1e-4})}
            )
        }
    )
    plan = dict((st.key, why) for st, why in JobRunner(changed, smoke.workdir).would_run())
    assert plan["train/baseline/s0"] == "run: its config or an input changed"
    assert plan["train/teacher"] == "skip: done"


def test_cli_export_is_idempotent(smoke, tmp_path, capsys):
    from kdplatform.cli import main

    dst = f"duckdb:///{tmp_path / 'copy.duckdb'}"
    job = str(Path(__file__).resolve().parents[2] / "jobs" / "smoke.yaml")
    assert main(["export", job, "--db", smoke.database_url, "--to", dst]) == 0
    first = capsys.readouterr().out
    assert main(["export", job, "--db", smoke.database_url, "--to", dst]) == 0
    assert "nothing changed" in capsys.readouterr().out and "rows written" in first
    with make_engine(dst).connect() as conn:
        n = conn.execute(text("SELECT COUNT(*) FROM scan_results")).scalar()
    assert n == q(smoke, "SELECT COUNT(*) FROM scan_results")[0][0]


def test_classifier_falls_back_to_the_hard_student_when_the_target_memorized_too_few(smoke, tmp_path):
    """A copy of the smoke job whose classifier asks for more soft-student positives than D has: the
    classify stage reruns on the hard student's positives, records that role, and the verdict says so;
    the smoke job itself (no fallback) records its target."""
    import shutil

    from kdplatform.analysis.classifier_results import classifier_run
    from kdplatform.analysis.verdicts import verdicts

    assert q(smoke, "SELECT role FROM runs WHERE stage_key = 'classify'") == [("student",)]
    work = tmp_path / "w"
    shutil.copytree(smoke.workdir, work, ignore=shutil.ignore_patterns("*.lock"))
    cls = smoke.spec.classifier.model_copy(update={"fallback": "student_hard", "min_positives": 10_000})
    said: list[str] = []
    runner = JobRunner(smoke.spec.model_copy(update={"classifier": cls}), work, echo=said.append)
    runner.run()
    assert [line for line in said if line.startswith("[run ]")] == [
        "[run ] classify",
        "[run ] train/student_filtered/s0",
        "[run ] scan/train/student_filtered/s0",
    ]
    assert "positives from the student_hard instead (classifier.fallback)" in " ".join(said)
    assert q(runner, "SELECT role FROM runs WHERE stage_key = 'classify'") == [("student_hard",)]
    hard_memorized = q(
        runner,
        "SELECT COUNT(*) FROM memorized_examples m JOIN runs r ON r.id = m.run_id "
        "WHERE r.stage_key = 'train/student_hard/s0'",
    )[0][0]
    positives = q(runner, "SELECT MAX(n_positive) FROM classifier_trials")[0][0]
    assert 0 < positives <= hard_memorized
    assert classifier_run(runner.engine, runner.job_id)["group"].role == "student_hard"
    line = next(v.line() for v in verdicts(runner.engine, runner.spec.name) if "predictable" in v.finding)
    assert "(student_hard positives)" in line
