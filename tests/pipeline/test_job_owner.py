"""Issue 18 through `kdplatform run`: a workdir belongs to one job (job A, job B, job A again in one workdir
overwrote A's teacher and left the third run skipping everything), and one job runs once per database
whichever workdir it runs from (two workdirs on one database ran it twice at once)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from lock_holder import Holding
from sqlalchemy import text
from tiny_jobs import tiny_data

from kdplatform.cli import main
from kdplatform.store.db import make_engine

TINY = {"num_hidden_layers": 1, "hidden_size": 16, "intermediate_size": 32}
TRAIN = {"epochs": 1, "batch_size": 8, "lr": 3.0e-3, "checkpoint_every": None}


def job_file(tmp_path: Path, name: str, teacher_width: int = 16) -> Path:
    student = {"model": {"preset": "tiny-student", "config": TINY}, "train": TRAIN}
    doc = {
        "name": name,
        "seeds": [0],
        "data": tiny_data(),
        "teacher": {"model": {"preset": "tiny-teacher", "config": TINY | {"hidden_size": teacher_width}}},
        "baseline": student,
        "student": student,
        "scan": {"shard_size": 16, "kld": False, "audit_sample": 4},
    }
    doc["teacher"]["train"] = TRAIN
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def teacher_width(workdir: Path) -> int:
    return json.loads((workdir / "checkpoints" / "train-teacher" / "config.json").read_text())["hidden_size"]


def test_a_second_job_in_a_workdir_is_refused(tmp_path, capsys):
    a, b, work = job_file(tmp_path, "a"), job_file(tmp_path, "b", teacher_width=32), tmp_path / "w"
    assert main(["run", str(a), "--workdir", str(work)]) == 0
    capsys.readouterr()
    assert main(["run", str(b), "--workdir", str(work)]) == 2
    err = capsys.readouterr().err
    assert f"workdir {work} belongs to job 'a'" in err and "job 'b'" in err
    assert f"--workdir {tmp_path / 'b'}" in err, "the message names the fix"
    assert teacher_width(work) == 16, "job a's teacher is untouched"
    url = f"duckdb:///{work / 'kdp.duckdb'}"
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM jobs")).scalars().all() == ["a"]
    engine.dispose()
    assert main(["run", str(a), "--workdir", str(work)]) == 0


def test_one_job_runs_once_per_database_whatever_the_workdir(tmp_path, db_url, capsys):
    a = job_file(tmp_path, "a")
    other = Holding(db_url, "a")  # job a running from another workdir against the same database
    try:
        assert main(["run", str(a), "--workdir", str(tmp_path / "w2"), "--db", db_url]) == 2
        err = capsys.readouterr().err
        assert "job 'a' is already running against this database" in err
        assert f"pid {other.proc.pid}" in err
    finally:
        other.kill()
    assert main(["run", str(a), "--workdir", str(tmp_path / "w2"), "--db", db_url]) == 0, (
        "a killed holder does not block the next run"
    )
