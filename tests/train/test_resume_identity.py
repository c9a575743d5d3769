"""Resume only from a state written for the same run; any other state is removed and the run starts fresh.

A state records the model (config, initial-weights digest), the teacher (config, weights), the data
(digest of the training and validation tokens), every training option, the KD settings, the seed, the
world size and the caller's stage hash. Changing any one of them must not continue the old run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from kdplatform.spec import TrainSpec
from kdplatform.train.loop import KDConfig, train

sys.path.insert(0, str(Path(__file__).parent))
from test_loop import Crash, crash_after  # noqa: E402
from tiny_training import tiny_data, tiny_model, wide_teacher  # noqa: E402

TRAIN, VAL = tiny_data(44), tiny_data(12, seed=1)
CFG = TrainSpec(epochs=2, batch_size=8, lr=3e-3, warmup_ratio=0.1, grad_accum=2, checkpoint_every=1)


def run(tmp_path, name, *, crash_at=None, model_seed, teacher_seed, train_tokens, cfg, stage_hash):
    model = tiny_model(model_seed)
    if crash_at is not None:
        crash_after(model, crash_at)
    teacher = wide_teacher()
    if teacher_seed != 7:
        for p in teacher.parameters():
            p.data.mul_(1.01)
    kw = dict(teacher=teacher, kd=KDConfig(temperature=2.0), state_dir=tmp_path / "st")
    if stage_hash is not None:  # only that case passes one, so the others also run on the original code
        kw["stage_hash"] = stage_hash
    return train(model, train_tokens, VAL, cfg, seed=0, out_dir=tmp_path / name, desc=name, **kw)


def crashed_state(tmp_path) -> None:
    with pytest.raises(Crash):
        run(
            tmp_path,
            "a",
            crash_at=5,
            model_seed=0,
            teacher_seed=7,
            train_tokens=TRAIN,
            cfg=CFG,
            stage_hash=None,
        )
    saved = json.loads(next((tmp_path / "st").glob("step-*/progress_0.json")).read_text())
    assert saved["steps"] == 2


def changed_data():
    d = TRAIN.copy()
    d[0, 3] = (d[0, 3] + 1) % 64
    return d


CHANGES = {
    "same_run_resumes": ({}, None),
    "initial_weights": ({"model_seed": 1}, "model"),
    "teacher_weights": ({"teacher_seed": 8}, "teacher"),
    "data": ({"train_tokens": changed_data()}, "data"),
    "warmup": ({"cfg": CFG.model_copy(update={"warmup_ratio": 0.3})}, "train"),
    "weight_decay": ({"cfg": CFG.model_copy(update={"weight_decay": 0.1})}, "train"),
    "grad_clip": ({"cfg": CFG.model_copy(update={"max_grad_norm": 0.5})}, "train"),
    "bf16": ({"cfg": CFG.model_copy(update={"bf16": False})}, "train"),
    "stage_hash": ({"stage_hash": "h2"}, "stage_hash"),
}


@pytest.mark.parametrize("case", list(CHANGES))
def test_resume_only_for_the_same_run(tmp_path, case):
    change, differs = CHANGES[case]
    crashed_state(tmp_path)
    args = dict(model_seed=0, teacher_seed=7, train_tokens=TRAIN, cfg=CFG, stage_hash=None) | change
    got = run(tmp_path, "b", **args)
    if differs is None:
        assert got.resumed_from == 2 and got.discarded_state is None
        return
    assert got.resumed_from is None, "a state of another run must not be continued"
    assert "removed, starting fresh" in got.discarded_state and differs in got.discarded_state
    fresh = run(tmp_path, "c", **args)  # the state dir is empty now: an uninterrupted run
    assert fresh.resumed_from is None and fresh.discarded_state is None
    assert [e.val_loss for e in got.epochs] == pytest.approx([e.val_loss for e in fresh.epochs], abs=1e-6)
    assert not (tmp_path / "st").exists()


def test_state_from_an_older_version_is_discarded(tmp_path):
    crashed_state(tmp_path)
    for f in (tmp_path / "st").glob("step-*/progress_0.json"):
        p = json.loads(f.read_text())
        p["fingerprint"] = {"n_train": 44, "lr": 3e-3}  # the old, partial fingerprint
        f.write_text(json.dumps(p))
    got = run(tmp_path, "b", model_seed=0, teacher_seed=7, train_tokens=TRAIN, cfg=CFG, stage_hash=None)
    assert got.resumed_from is None and "starting fresh" in got.discarded_state
