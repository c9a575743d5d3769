"""The path a GPU user takes, on CPU: half-precision hub-style checkpoints of three architectures.

Each checkpoint is saved with save_pretrained in float16 or bfloat16 (its config then names that dtype,
as hub checkpoints do), the teacher's logit width is padded past the student's, and the fine-tune, soft and
hard distillation and the audited scan all run from those paths: finite, decreasing losses, float32 master
weights, and a scan that agrees with float32 generate() on every audited example.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from kdplatform.memorization import greedy_reference, scan
from kdplatform.models import load_pretrained
from kdplatform.spec import TrainSpec
from kdplatform.train.hard_data import generate_hard_data
from kdplatform.train.loop import KDConfig, evaluate, train

# New names are imported inside the tests that need them, so that on the original code the tests that
# can run fail on their assertions (half-precision weights, NaN losses) rather than all on an import.

sys.path.insert(0, str(Path(__file__).parent))
from tiny import ARCHS, HALF, PREFIX, STUDENT_VOCAB, TEACHER_VOCAB, data, save_half  # noqa: E402

CASES = [(a, d) for a in ARCHS for d in HALF]
IDS = [f"{a}-{d}" for a, d in CASES]
TRAIN, VAL = data(32), data(8, seed=1)
CFG = TrainSpec(epochs=3, batch_size=8, lr=1e-3, warmup_ratio=0.0, checkpoint_every=None)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("half")
    made: dict[tuple[str, str, str], Path] = {}

    def get(arch: str, dtype: str, role: str) -> Path:
        key = (arch, dtype, role)
        if key not in made:
            vocab, seed = (TEACHER_VOCAB, 1) if role == "teacher" else (STUDENT_VOCAB, 0)
            made[key] = save_half(arch, dtype, vocab, seed, root / f"{arch}-{dtype}-{role}")
        return made[key]

    return get


def weight_dtypes(model) -> set[torch.dtype]:
    return {p.dtype for p in model.parameters()}


def assert_trained_in_fp32(model, res, out: Path) -> None:
    assert weight_dtypes(model) == {torch.float32}, "trainable weights are float32 master weights"
    losses = [e.train_loss for e in res.epochs]
    assert all(np.isfinite(losses)) and all(np.isfinite(e.val_loss) for e in res.epochs), losses
    assert losses == sorted(losses, reverse=True) and losses[-1] < losses[0], losses
    saved = load_file(out / "model.safetensors")
    assert {t.dtype for t in saved.values()} == {torch.float32}
    assert all(torch.isfinite(t).all() for t in saved.values())


@pytest.mark.parametrize(("arch", "dtype"), CASES, ids=IDS)
def test_half_checkpoint_loads_as_fp32_master_weights(checkpoints, arch, dtype):
    path = checkpoints(arch, dtype, "student")
    assert weight_dtypes(load_pretrained(path)) == {torch.float32}
    from kdplatform.models import load_frozen

    frozen = load_frozen(path, dtype=HALF[dtype])
    assert weight_dtypes(frozen) == {HALF[dtype]} and not frozen.training
    assert not any(p.requires_grad for p in frozen.parameters())
    assert weight_dtypes(load_frozen(path)) == {torch.float32}  # CPU default: float32


@pytest.mark.parametrize(("arch", "dtype"), CASES, ids=IDS)
def test_finetune_from_half_checkpoint(checkpoints, tmp_path, arch, dtype):
    model = load_pretrained(checkpoints(arch, dtype, "student"))
    before = evaluate(model, VAL, 8, torch.device("cpu"))
    res = train(model, TRAIN, VAL, CFG, seed=0, out_dir=tmp_path / "m")
    assert_trained_in_fp32(model, res, tmp_path / "m")
    assert res.final.val_loss < before


def test_half_weights_given_to_train_become_fp32_and_train_at_low_lr(checkpoints, tmp_path):
    """The issue's case: fp16 weights, lr 5e-5. AdamW on fp16 weights divides by an eps that is 0 in fp16."""
    model = load_pretrained(checkpoints("gpt_neox", "float16", "student"), dtype=torch.float16)
    res = train(model, TRAIN, VAL, CFG.model_copy(update={"lr": 5e-5}), seed=0, out_dir=tmp_path / "m")
    assert_trained_in_fp32(model, res, tmp_path / "m")


@pytest.mark.parametrize(("arch", "dtype"), CASES, ids=IDS)
def test_soft_kd_from_half_checkpoints(checkpoints, tmp_path, arch, dtype):
    from kdplatform.models import load_frozen

    student = load_pretrained(checkpoints(arch, dtype, "student"))
    teacher = load_frozen(checkpoints(arch, dtype, "teacher"), dtype=HALF[dtype])  # frozen: may stay half
    kd = KDConfig(temperature=2.0, alpha=0.0)
    res = train(student, TRAIN, VAL, CFG, seed=0, out_dir=tmp_path / "m", teacher=teacher, kd=kd)
    assert_trained_in_fp32(student, res, tmp_path / "m")
    assert weight_dtypes(teacher) == {HALF[dtype]}


@pytest.mark.parametrize(("arch", "dtype"), CASES, ids=IDS)
def test_hard_kd_from_half_checkpoints(checkpoints, tmp_path, arch, dtype):
    from kdplatform.models import load_frozen
    from kdplatform.train.hard_data import check_hard_data

    teacher = load_frozen(checkpoints(arch, dtype, "teacher"), dtype=HALF[dtype])
    hard = generate_hard_data(teacher, torch.as_tensor(TRAIN), PREFIX, vocab_size=STUDENT_VOCAB)
    assert hard.max() < STUDENT_VOCAB and (hard[:, :PREFIX] == TRAIN[:, :PREFIX]).all()
    student = load_pretrained(checkpoints(arch, dtype, "student"))
    check_hard_data(hard, student, TEACHER_VOCAB)
    res = train(student, hard, VAL, CFG, seed=0, out_dir=tmp_path / "m")
    assert_trained_in_fp32(student, res, tmp_path / "m")


@pytest.mark.parametrize(("arch", "dtype"), CASES, ids=IDS)
def test_audited_half_scan_agrees_with_generate(checkpoints, arch, dtype):
    from kdplatform.memorization import AuditConfig, audit_scan, own_greedy_sequences
    from kdplatform.models import load_frozen

    path = checkpoints(arch, dtype, "student")
    fp32, half = load_frozen(path, dtype=torch.float32), load_frozen(path, dtype=HALF[dtype])
    x = own_greedy_sequences(fp32, 24, PREFIX, 24, seed=2)  # memorized by construction
    res = scan(half, x, PREFIX)
    assert res.min_margin is not None and res.min_margin.shape == (24,) and (res.min_margin >= 0).all()
    fixed, audit = audit_scan(half, x, PREFIX, res, config=AuditConfig(sample=4))
    assert len(audit.checked) > 0 and audit.scan_dtype == dtype
    ref = greedy_reference(fp32, x[audit.checked], PREFIX)
    np.testing.assert_array_equal(fixed.memorized[audit.checked], ref.memorized)
    np.testing.assert_array_equal(fixed.match_len[audit.checked], ref.match_len)
    assert fixed.memorized.all(), audit.record()  # every near-tie re-decided: the definition holds
    assert audit.memorized_after - audit.memorized_before == len(audit.disagreed)
