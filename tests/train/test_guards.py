"""A run that goes wrong stops loudly: non-finite loss (stage and step named, nothing saved) and token
ids the student cannot embed (both widths named, before the first forward)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from kdplatform.spec import TrainSpec
from kdplatform.train.hard_data import generate_hard_data
from kdplatform.train.loop import train

sys.path.insert(0, str(Path(__file__).parent))
from tiny_training import VOCAB, tiny_data, tiny_model, wide_teacher  # noqa: E402

TRAIN, VAL = tiny_data(44), tiny_data(12, seed=1)
CFG = TrainSpec(epochs=3, batch_size=8, lr=3e-3, warmup_ratio=0.1, grad_accum=2, checkpoint_every=2)


def nan_after(model, calls: int) -> None:
    """From the `calls`-th forward on, the logits are NaN (an overflow in half precision, say)."""
    seen = [0]

    def hook(_module, _inputs, output):
        seen[0] += 1
        if seen[0] >= calls:
            output.logits = output.logits * torch.nan
        return output

    model.register_forward_hook(hook)


def test_non_finite_loss_stops_naming_stage_and_step(tmp_path):
    model = tiny_model(0)
    nan_after(model, 9)  # epoch 1: 6 micro-batches (3 steps) + 2 validation forwards; 9 opens step 4
    state = tmp_path / "state"
    with pytest.raises(FloatingPointError, match=r"train/student/s0: .* epoch 2, optimizer step 4"):
        train(
            model, TRAIN, VAL, CFG, seed=0, out_dir=tmp_path / "m", desc="train/student/s0", state_dir=state
        )
    assert not (tmp_path / "m").exists(), "no checkpoint is recorded as done"
    assert [p.name for p in state.iterdir()] == ["step-000000002"], "no state after the bad step"
    assert all(torch.isfinite(p).all() for p in model.parameters()), "the bad update was never applied"


def test_non_finite_validation_loss_saves_nothing(tmp_path):
    model = tiny_model(0)
    nan_after(model, 7)  # epoch 1's validation (forwards 7 and 8)
    with pytest.raises(FloatingPointError, match="validation loss"):
        train(model, TRAIN, VAL, CFG, seed=0, out_dir=tmp_path / "m", desc="train/teacher")
    assert not (tmp_path / "m").exists()


def test_out_of_range_ids_are_refused_before_training(tmp_path):
    bad = TRAIN.copy()
    bad[3, 5] = VOCAB + 4
    model = tiny_model(0)
    with pytest.raises(ValueError, match=rf"token id {VOCAB + 4} .*{VOCAB} rows"):
        train(model, bad, VAL, CFG, seed=0, out_dir=tmp_path / "m", desc="train/student_hard/s0")


def test_non_finite_error_type():
    from kdplatform.train.checks import NonFiniteLossError

    assert issubclass(NonFiniteLossError, FloatingPointError)  # what the tests above catch


def test_hard_data_ids_checked_against_the_student_naming_both_widths():
    from kdplatform.train.hard_data import check_hard_data

    teacher = wide_teacher()  # 72 logits, the student has 64 embedding rows
    with torch.no_grad():  # make the padding columns win the argmax, as an untrained pad row may
        teacher.get_output_embeddings().weight[VOCAB:] *= 50
    x = torch.as_tensor(TRAIN[:6])
    hard = generate_hard_data(teacher, x, 8)
    assert hard.max() >= VOCAB, "the teacher's argmax runs over its padded width"
    with pytest.raises(ValueError, match=r"teacher logit width of 72\).* 64 rows"):
        check_hard_data(hard, tiny_model(0), 72)
    narrowed = generate_hard_data(teacher, x, 8, vocab_size=VOCAB)
    assert narrowed.max() < VOCAB
    check_hard_data(narrowed, tiny_model(0), 72)
    # argmax restricted to the first 64 columns, identical to the unrestricted one wherever it was < 64
    logits = teacher(input_ids=torch.as_tensor(narrowed)).logits[:, 7:-1, :VOCAB]
    np.testing.assert_array_equal(logits.argmax(-1).numpy(), narrowed[:, 8:])
