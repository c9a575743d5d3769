"""A job killed mid-training and rerun with another warm-up retrains that stage from scratch: the saved
training state belongs to the old config (its stage hash), so it is removed, not resumed."""

from __future__ import annotations

import yaml
from tiny_jobs import run_cli, tiny_data

TINY = {"num_hidden_layers": 1, "hidden_size": 16, "intermediate_size": 32}


def _job(warmup: float) -> dict:
    train = {"epochs": 2, "batch_size": 8, "lr": 3.0e-3, "checkpoint_every": 1, "warmup_ratio": warmup}
    role = {"model": {"preset": "tiny-student", "config": TINY}, "train": train}
    return {
        "name": "resume13",
        "data": tiny_data(),
        "teacher": role,
        "baseline": role,
        "student": role,
        "scan": {"shard_size": 16, "kld": False, "audit_sample": 0},
    }


def test_changed_warmup_after_a_kill_starts_fresh(tmp_path):
    path, work = tmp_path / "job.yaml", tmp_path / "work"
    path.write_text(yaml.safe_dump(_job(0.0)))
    killed = run_cli(path, work, kill_at="epoch:train/teacher:1")
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert list((work / "checkpoints" / "train-teacher.state").glob("step-*")), "a state was saved"
    path.write_text(yaml.safe_dump(_job(0.5)))
    rerun = run_cli(path, work)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    teacher = rerun.stdout.split("] train/teacher", 1)[1].split("\n[", 1)[0]  # [resume] or [run ]
    assert "starts fresh:" in teacher and "written for another stage" in teacher
    assert "epoch 1/2" in teacher, "retrained from its first epoch"
