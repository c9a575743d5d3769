"""Audit path: discoverable memorization measured the literal way, with ``model.generate``.

:func:`kdplatform.memorization.scan` derives memorization from one teacher-forced pass; this module
decodes greedily, token by token, so that the shortcut can be checked against the definition. It is
slow (S sequential steps) and is not the production path.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import GenerationConfig, PreTrainedModel

from kdplatform.memorization.scan import (
    ScanResult,
    _check_reads,
    _device,
    _logit_width,
    _validate,
    default_batch_size,
)
from kdplatform.models import plain_generation_config


def greedy_reference(
    model: PreTrainedModel,
    token_ids: torch.Tensor,
    prefix_len: int = 50,
    *,
    batch_size: int | None = None,
) -> ScanResult:
    """Greedy-decode ``L - prefix_len`` tokens from each prefix with ``generate`` and compare to the suffix.

    Returns a :class:`ScanResult` in which ``memorized``, ``match_len`` and ``greedy_tokens`` (the free
    greedy continuation, [N, S]) are meaningful; ``suffix_logprob``, ``suffix_entropy`` and ``ppl`` are
    NaN and ``kld`` is None. No logits processor or eos stopping applies: exactly S argmax steps.
    """
    seq_len, suffix_len = _validate(token_ids, prefix_len)
    n = token_ids.shape[0]
    _check_reads(model, "model", int(token_ids.max()) if n else -1)
    device = _device(model)
    if batch_size is None:
        batch_size = default_batch_size(device, seq_len, _logit_width(model))
    config = GenerationConfig(
        do_sample=False,
        num_beams=1,
        max_new_tokens=suffix_len,
        min_new_tokens=suffix_len,
        eos_token_id=None,
        pad_token_id=0,  # never used: rows have no padding; set so generate does not warn
    )
    greedy = np.zeros((n, suffix_len), dtype=np.int32)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), plain_generation_config(model):
            for start in range(0, n, batch_size):
                prefix = token_ids[start : start + batch_size, :prefix_len].to(device, torch.long)
                out = model.generate(
                    input_ids=prefix, attention_mask=torch.ones_like(prefix), generation_config=config
                )
                greedy[start : start + prefix.shape[0]] = out[:, prefix_len:].cpu().numpy()
    finally:
        model.train(was_training)
    correct = greedy == token_ids[:, prefix_len:].cpu().numpy()
    match_len = np.cumprod(correct, axis=1).sum(axis=1)
    nan = np.full(n, np.nan)
    return ScanResult(
        memorized=match_len == suffix_len,
        match_len=match_len,
        suffix_logprob=nan,
        suffix_entropy=nan.copy(),
        ppl=nan.copy(),
        greedy_tokens=greedy,
    )


def own_greedy_sequences(
    model: PreTrainedModel,
    n: int,
    prefix_len: int,
    seq_len: int,
    *,
    seed: int = 0,
    batch_size: int | None = None,
) -> torch.Tensor:
    """[n, seq_len] sequences that `model` memorizes by construction: random prefixes + its own greedy suffix.

    A scan of `model` must call every one memorized, so they measure how often a scan's precision or
    kernels break a near-tie the other way (the calibration case of :mod:`kdplatform.memorization.audit`).
    """
    g = torch.Generator().manual_seed(seed)
    vocab = int(model.get_input_embeddings().weight.shape[0])
    prefixes = torch.randint(0, vocab, (n, seq_len), generator=g)
    return torch.as_tensor(
        np.concatenate(
            [
                prefixes[:, :prefix_len].numpy(),
                greedy_reference(model, prefixes, prefix_len, batch_size=batch_size).greedy_tokens,
            ],
            axis=1,
        ),
        dtype=torch.long,
    )
