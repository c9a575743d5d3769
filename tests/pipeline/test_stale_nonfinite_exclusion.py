"""Issue 13 at the pipeline level: a non-finite loss fails its stage loudly, an edited exclusion file
reruns the filtered student, and runs whose stage left the plan go stale, out of every view, until pruned."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from copies import assert_copies_fresh
from sqlalchemy import text
from tiny_jobs import tiny_data

from kdplatform.cli import main
from kdplatform.pipeline import JobRunner, plan
from kdplatform.spec import JobSpec
from kdplatform.store.db import make_engine

TINY = {"num_hidden_layers": 1, "hidden_size": 16, "intermediate_size": 32}
TRAIN = {"epochs": 1, "batch_size": 8, "lr": 3.0e-3, "checkpoint_every": None}


def job(**over) -> dict:
    doc = {
        "name": "p13",
        "seeds": [0],
        "data": tiny_data(),
        "teacher": {"model": {"preset": "tiny-teacher", "config": TINY}, "train": TRAIN},
        "baseline": {"model": {"preset": "tiny-student", "config": TINY}, "train": TRAIN},
        "student": {"model": {"preset": "tiny-student", "config": TINY}, "train": TRAIN},
        "scan": {"shard_size": 16, "kld": False, "audit_sample": 4},
    }
    doc.update(over)
    return doc


def write(tmp_path: Path, doc: dict) -> Path:
    p = tmp_path / "job.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


def q(url: str, sql: str) -> list[tuple]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql)).all()]
    finally:
        engine.dispose()


def fresh_after(url: str, job_id: int) -> None:
    engine = make_engine(url)
    try:
        assert_copies_fresh(engine, job_id)
    finally:
        engine.dispose()


def test_non_finite_loss_fails_the_stage_with_one_line(tmp_path, capsys):
    doc = job()
    doc["teacher"]["train"] = TRAIN | {"lr": 1.0e30, "epochs": 2}
    path, work = write(tmp_path, doc), tmp_path / "work"
    assert main(["run", str(path), "--workdir", str(work)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "train/teacher" in err and "step" in err and "non-finite" in err
    url = f"duckdb:///{work / 'kdp.duckdb'}"
    assert q(url, "SELECT stage_key, status FROM runs WHERE stage_key = 'train/teacher'") == [
        ("train/teacher", "failed")
    ]
    assert q(url, "SELECT COUNT(*) FROM checkpoints") == [(0,)]
    assert not (work / "checkpoints" / "train-teacher").exists()


def test_exclusion_file_contents_are_the_filtered_students_identity(tmp_path, capsys):
    ids = tmp_path / "exclude.txt"
    ids.write_text("1\n2\n")
    doc = job(
        filtered_student={"model": {"preset": "tiny-student", "config": TINY}, "exclude": f"file:{ids}"}
    )
    a = plan(JobSpec.model_validate(doc)).hashes
    ids.write_text("1\n2\n3\n")
    b = plan(JobSpec.model_validate(doc)).hashes
    assert {k for k in a if a[k] != b[k]} == {"train/student_filtered/s0", "scan/train/student_filtered/s0"}
    ids.unlink()
    path, work = write(tmp_path, doc), tmp_path / "work"
    for command in ("validate", "run"):
        assert main([command, str(path), "--workdir", str(work)]) == 2
        err = capsys.readouterr().err
        assert "filtered_student.exclude" in err and str(ids) in err
    assert not work.exists(), "nothing may be written for a missing exclusion file"
    ids.write_text("1\nnot-an-id\n")
    assert main(["run", str(path), "--workdir", str(work)]) == 2
    assert "filtered_student.exclude" in capsys.readouterr().err
    assert not work.exists()


def test_removed_seed_goes_stale_out_of_the_views_and_is_pruned(tmp_path, capsys):
    work = tmp_path / "work"
    url = f"duckdb:///{work / 'kdp.duckdb'}"
    two = job(seeds=[0, 1])
    JobRunner(JobSpec.model_validate(two), work, echo=lambda _: None).run()
    assert {r[0] for r in q(url, "SELECT seed FROM memorization_rates WHERE role = 'baseline'")} == {0, 1}
    job_id = q(url, "SELECT id FROM jobs")[0][0]
    fresh_after(url, job_id)
    audits = q(url, "SELECT COUNT(*), MIN(checked), SUM(disagreements) FROM scan_audits")
    assert audits[0][0] == 5 and audits[0][1] >= 4 and audits[0][2] == 0

    path = write(tmp_path, job(seeds=[0]))
    assert main(["status", str(path), "--workdir", str(work)]) == 0
    out = capsys.readouterr().out
    assert "stale runs" in out and "train/baseline/s1" in out
    assert q(url, "SELECT COUNT(*) FROM runs WHERE status = 'stale'") == [(0,)], "status writes nothing"

    said: list[str] = []
    JobRunner(JobSpec.model_validate(job(seeds=[0])), work, echo=said.append).run()
    stale = {"train/baseline/s1", "scan/train/baseline/s1", "train/student/s1/forward_kl/T2"}
    stale.add("scan/train/student/s1/forward_kl/T2")
    assert {r[0] for r in q(url, "SELECT stage_key FROM runs WHERE status = 'stale'")} == stale
    assert any(line.startswith("[stale] train/baseline/s1") for line in said)
    for view in ("memorization_rates", "scanned_runs", "memorization"):
        assert q(url, f"SELECT DISTINCT seed FROM {view} WHERE role <> 'teacher'") == [(0,)], view
    assert q(url, "SELECT COUNT(*) FROM seed_consistency WHERE n_baseline_runs <> 1") == [(0,)]
    fresh_after(url, job_id)  # `run` wrote the copies again without the stale runs

    assert main(["prune", str(path), "--workdir", str(work), "--dry-run"]) == 0
    assert "would prune 4" in capsys.readouterr().out
    assert len(q(url, "SELECT id FROM runs WHERE status = 'stale'")) == 4
    assert main(["prune", str(path), "--workdir", str(work)]) == 0
    out = capsys.readouterr().out
    assert "pruned 4" in out and "scan/train/baseline/s1" in out
    assert q(url, "SELECT COUNT(*) FROM runs WHERE status = 'stale'") == [(0,)]
    fresh_after(url, job_id)
    left = {r[0] for r in q(url, "SELECT id FROM runs")}
    for table, column in [
        ("scan_results", "scan_run_id"),
        ("scan_audits", "scan_run_id"),
        ("checkpoints", "run_id"),
    ]:
        owners = {r[0] for r in q(url, f"SELECT DISTINCT {column} FROM {table}")}
        assert owners <= left, table
    assert main(["prune", str(path), "--workdir", str(work)]) == 0
    assert "no stale runs" in capsys.readouterr().out

    from kdplatform.analysis.report.audit import scan_audit

    lines = scan_audit(url, q(url, "SELECT id FROM jobs")[0][0])
    assert lines[0] == "## Scan audit"
    rows = [line for line in "\n".join(lines).splitlines() if line.startswith("| ") and "float32" in line]
    assert [r.split(" | ")[0] for r in rows] == ["| teacher", "| baseline", "| student"]


@pytest.mark.parametrize("field, value", [("audit_threshold", -1.0), ("audit_sample", -1), ("audit", True)])
def test_scan_audit_options_are_strict(tmp_path, capsys, field, value):
    doc = job()
    doc["scan"][field] = value
    assert main(["validate", str(write(tmp_path, doc))]) == 2
    assert f"scan.{field}" in capsys.readouterr().err
