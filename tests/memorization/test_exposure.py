"""Exposure against an independent float64 computation: the whole suffix's log-likelihood of each
candidate secret from a plain forward pass of the full sequence (no KV cache), on fresh random models
and inputs, with a logit width padded past the vocabulary."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

from kdplatform.memorization.exposure import exposure, secret_logprobs

VOCAB, PREFIX, SEQ, K = 50, 10, 24, 5


def _model(width: int, seed: int) -> GPTNeoXForCausalLM:
    torch.manual_seed(seed)
    config = GPTNeoXConfig(
        vocab_size=width,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        initializer_range=0.2,
        tie_word_embeddings=False,
    )
    model = GPTNeoXForCausalLM(config).eval()
    with torch.no_grad():
        model.get_output_embeddings().weight[VOCAB:] *= 6  # padding that a wrong support would read
    return model


def _suffix_logprob64(model, seqs: np.ndarray) -> np.ndarray:
    """Sum of log p(x_t | x_<t) over the suffix positions, in float64 numpy over the first VOCAB logits."""
    m64 = _model(model.config.vocab_size, 0)
    m64.load_state_dict(model.state_dict())
    m64 = m64.double()
    with torch.no_grad():
        logits = m64(input_ids=torch.as_tensor(seqs)).logits.numpy().astype(np.float64)[..., :VOCAB]
    logits -= logits.max(-1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    pos = np.arange(PREFIX, SEQ)
    return logp[:, pos - 1, :][np.arange(len(seqs))[:, None], np.arange(len(pos)), seqs[:, pos]].sum(-1)


def _reference_exposure(true: float, alts: np.ndarray) -> tuple[int, float]:
    """The true secret's place when all R + 1 candidates are sorted most likely first (ties: true first)."""
    scores = np.r_[true, alts]
    order = np.lexsort((np.r_[0, np.ones(len(alts))], -scores))
    rank = int(np.flatnonzero(order == 0)[0]) + 1
    return rank, math.log2(len(alts) + 1) - math.log2(rank)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("width", [VOCAB, VOCAB + 14])
def test_exposure_matches_float64_full_sequences(seed: int, width: int) -> None:
    rng = np.random.default_rng(seed)
    model = _model(width, seed + 10)
    context = rng.integers(0, VOCAB, SEQ - K)
    secrets = rng.integers(0, VOCAB, (40, K))
    got = secret_logprobs(
        model, torch.as_tensor(context), torch.as_tensor(secrets), vocab_size=VOCAB, batch_size=16
    )
    seqs = np.concatenate([np.broadcast_to(context, (len(secrets), SEQ - K)), secrets], axis=1)
    want_suffix = _suffix_logprob64(model, seqs)
    shared = want_suffix - got  # the suffix tokens before the secret: one constant for every candidate
    np.testing.assert_allclose(shared, shared[0], atol=2e-4)
    for i in range(len(secrets)):
        true, alts = got[i], np.delete(got, i)
        ref_true, ref_alts = want_suffix[i], np.delete(want_suffix, i)
        rank, exp = exposure(true, alts)
        ref_rank, ref_exp = _reference_exposure(ref_true, ref_alts)
        assert rank == ref_rank
        assert exp == pytest.approx(ref_exp)


def test_exposure_bounds() -> None:
    alts = np.array([-5.0, -4.0, -3.0])
    assert exposure(-1.0, alts) == (1, pytest.approx(2.0))
    assert exposure(-9.0, alts) == (4, pytest.approx(0.0))
    assert exposure(-4.0, alts) == (2, pytest.approx(1.0))  # a tie is not ranked above


def test_vocab_must_cover_the_tokens() -> None:
    model = _model(VOCAB + 14, 0)
    with pytest.raises(ValueError, match="excludes"):
        secret_logprobs(model, torch.tensor([1, 2, VOCAB + 3]), torch.tensor([[1, 2]]), vocab_size=VOCAB)


def test_without_a_repeatable_cache_the_whole_sequence_gives_the_same(monkeypatch) -> None:
    from kdplatform.memorization import exposure as module

    rng = np.random.default_rng(5)
    model = _model(VOCAB + 14, 3)
    context, secrets = (
        torch.as_tensor(rng.integers(0, VOCAB, 12)),
        torch.as_tensor(rng.integers(0, VOCAB, (9, K))),
    )
    cached = secret_logprobs(model, context, secrets, vocab_size=VOCAB, batch_size=4)
    monkeypatch.setattr(module, "_cache_kwarg", lambda m: "no_such_cache")
    np.testing.assert_allclose(secret_logprobs(model, context, secrets, vocab_size=VOCAB), cached, atol=1e-4)
