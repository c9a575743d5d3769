"""D_hard rows: the true prefix, then exactly the teacher's step-by-step argmax continuation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_training import VOCAB, tiny_model

from kdplatform.train.hard_data import generate_hard_data

SEQ_LEN, PREFIX = 20, 8


@pytest.fixture(scope="module")
def teacher():
    return tiny_model(0).eval()


@pytest.fixture(scope="module")
def tokens() -> torch.Tensor:
    return torch.as_tensor(np.random.default_rng(0).integers(0, VOCAB, size=(11, SEQ_LEN)))


@torch.inference_mode()
def argmax_continuation(model, prefix: torch.Tensor, n_new: int) -> list[int]:
    """Greedy decoding the literal way: a full forward pass per step, no cache, no generate()."""
    ids = prefix[None].clone()
    for _ in range(n_new):
        nxt = model(input_ids=ids).logits[0, -1].argmax()
        ids = torch.cat([ids, nxt.view(1, 1)], dim=1)
    return ids[0, prefix.numel() :].tolist()


def test_shape_dtype_and_true_prefix(teacher, tokens):
    hard = generate_hard_data(teacher, tokens, PREFIX, batch_size=4)
    assert isinstance(hard, np.ndarray) and hard.dtype == np.int64 and hard.shape == (11, SEQ_LEN)
    np.testing.assert_array_equal(hard[:, :PREFIX], tokens[:, :PREFIX].numpy())
    assert hard.min() >= 0 and hard.max() < VOCAB


def test_continuation_is_teacher_argmax_even_through_eos(teacher, tokens):
    """Equal to an independent argmax loop, with eos set to a token the teacher emits mid-row, so an
    eos stop or an eos ban (min_new_tokens) would show."""
    rows = [0, 5, 10]
    expected = {r: argmax_continuation(teacher, tokens[r, :PREFIX], SEQ_LEN - PREFIX) for r in rows}
    eos = expected[0][2]
    saved = (teacher.generation_config.eos_token_id, teacher.config.eos_token_id)
    teacher.generation_config.eos_token_id = teacher.config.eos_token_id = eos
    try:
        hard = generate_hard_data(teacher, tokens, PREFIX, batch_size=3)
    finally:
        teacher.generation_config.eos_token_id, teacher.config.eos_token_id = saved
    for r in rows:
        assert hard[r, PREFIX:].tolist() == expected[r], f"row {r}"


def test_batch_size_does_not_change_rows(teacher, tokens):
    np.testing.assert_array_equal(
        generate_hard_data(teacher, tokens, PREFIX, batch_size=1),
        generate_hard_data(teacher, tokens, PREFIX),
    )


def test_restores_training_mode_and_rejects_bad_inputs(teacher, tokens):
    teacher.train()
    try:
        generate_hard_data(teacher, tokens[:2], PREFIX)
        assert teacher.training
    finally:
        teacher.eval()
    with pytest.raises(ValueError, match="prefix_len"):
        generate_hard_data(teacher, tokens, SEQ_LEN)
    with pytest.raises(ValueError, match="token ids"):
        generate_hard_data(teacher, tokens + VOCAB, PREFIX)
    with pytest.raises(ValueError, match="integer"):
        generate_hard_data(teacher, tokens.float(), PREFIX)
