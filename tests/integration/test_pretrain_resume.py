"""A job killed while pretraining a base resumes it from its saved training state (train.loop's state_dir,
as the train stages do), publishes the base to the cache, and leaves no staging directory behind."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from tiny_jobs import run_cli, tiny_data

TINY = {"num_hidden_layers": 1, "hidden_size": 16, "intermediate_size": 32}


def _job(tmp_path: Path) -> dict:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "json.txt").write_text(Path(json.__file__).read_text())
    train = {"epochs": 2, "batch_size": 8, "lr": 3.0e-3, "checkpoint_every": 1}
    role = {"model": {"base": "student"}, "train": {**train, "epochs": 1}}
    return {
        "name": "pretrain-resume",
        "data": tiny_data(),
        "pretrain": {
            "corpus": {"source": f"files:{code}", "num_windows": 32, "val_windows": 8},
            "bases": {"student": {"model": {"preset": "tiny-student", "config": TINY}, "train": train}},
        },
        "teacher": role,
        "baseline": role,
        "student": role,
        "scan": {"shard_size": 16, "kld": False, "audit_sample": 0},
    }


def test_a_killed_pretraining_resumes_from_its_state(tmp_path):
    path, work = tmp_path / "job.yaml", tmp_path / "work"
    path.write_text(yaml.safe_dump(_job(tmp_path)))
    killed = run_cli(path, work, kill_at="epoch:pretrain/student:1")
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert list((work / "checkpoints" / "pretrain-student.state").glob("step-*")), "a state was saved"
    assert not (tmp_path / "_bases").exists() or [p.name for p in (tmp_path / "_bases").iterdir()] == [
        "corpus"
    ]
    rerun = run_cli(path, work)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    block = rerun.stdout.split("] pretrain/student", 1)[1].split("\n[", 1)[0]
    assert rerun.stdout.count("[resume] pretrain/student") == 1
    assert "epoch 2/2" in block and "starts fresh" not in block, block
    cached = [p for p in (tmp_path / "_bases").iterdir() if p.name != "corpus"]
    assert len(cached) == 1 and (cached[0] / "base.json").is_file(), cached  # no staging directory left
    assert not (work / "checkpoints" / "pretrain-student.state").exists()
    # Resumed, not retrained: the base equals an uninterrupted run's (bit for bit on CPU, float32).
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "job.yaml").write_text(yaml.safe_dump(_job(tmp_path)))
    assert run_cli(ref / "job.yaml", ref / "work").returncode == 0
    (want,) = [p for p in (ref / "_bases").iterdir() if p.name != "corpus"]
    assert want.name == cached[0].name
    assert (want / "model.safetensors").read_bytes() == (cached[0] / "model.safetensors").read_bytes()
    epochs = [json.loads((d / "base.json").read_text())["epochs"] for d in (want, cached[0])]
    assert [e["train_loss"] for e in epochs[0]] == [e["train_loss"] for e in epochs[1]]
