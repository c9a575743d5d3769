"""Exposure of a canary's secret (Carlini et al. 2019, "The Secret Sharer").

A canary's secret is ranked among R random alternative secrets by the model's log-likelihood of the
suffix: rank 1 is the most likely, and exposure = log2(R + 1) - log2(rank), from 0 (the true secret is the
least likely) to log2(R + 1) (the most likely). The secret ends the memorization window, so the suffix
tokens before it are the same for every alternative: their log-probability is a constant that cancels
from the ranking, which therefore needs only the secret's own tokens. One forward pass of the context
(prefix and the suffix up to the secret) fills a KV cache that every candidate continues from.

Distributions are log-softmax over the first `vocab_size` logits in float32, as in the scan, so a logit
width padded past the tokenizer's vocabulary gives the padding no probability.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import torch
from transformers import PreTrainedModel

__all__ = ["exposure", "secret_logprobs"]


def _cache_kwarg(model: PreTrainedModel) -> str:
    """The forward keyword that takes a KV cache: `cache` in newer transformers, `past_key_values` before."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _log_softmax(logits: torch.Tensor, vocab_size: int) -> torch.Tensor:
    return torch.log_softmax(logits[..., :vocab_size].float(), dim=-1)


@torch.no_grad()
def secret_logprobs(
    model: PreTrainedModel,
    context: torch.Tensor,
    candidates: torch.Tensor,
    *,
    vocab_size: int | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """log p(candidate | context) for each row of `candidates` [R, k] after the 1-D `context`: the sum of
    the k tokens' log-probabilities, each given the context and the candidate's tokens before it."""
    device = next(model.parameters()).device
    width = int(model.get_output_embeddings().weight.shape[0])
    vocab_size = width if vocab_size is None else vocab_size
    if not 0 < vocab_size <= width:
        raise ValueError(f"vocab_size {vocab_size} must be in [1, {width}] (the model's logit width)")
    if int(candidates.max()) >= vocab_size or int(context.max()) >= vocab_size:
        raise ValueError(f"vocab_size {vocab_size} excludes a token of the context or the candidates")
    ctx = context.to(device).reshape(1, -1)
    key, out = _cache_kwarg(model), []
    for chunk in candidates.to(device).split(batch_size):
        first = model(input_ids=ctx, use_cache=True)
        lp = _log_softmax(first.logits[0, -1], vocab_size)[chunk[:, 0]]
        if chunk.shape[1] > 1:
            n, cache = chunk.shape[0], getattr(first, key, None)
            if hasattr(cache, "batch_repeat_interleave"):
                cache.batch_repeat_interleave(n)
                logits = model(input_ids=chunk[:, :-1], use_cache=True, **{key: cache}).logits
            else:  # a model without a repeatable cache: the whole sequence again
                full = torch.cat([ctx.expand(n, -1), chunk[:, :-1]], dim=1)
                logits = model(input_ids=full).logits[:, ctx.shape[1] :]
            rest = _log_softmax(logits, vocab_size).gather(-1, chunk[:, 1:, None]).squeeze(-1)
            lp = lp + rest.sum(-1)
        out.append(lp.double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def exposure(true_logprob: float, alternative_logprobs: np.ndarray) -> tuple[int, float]:
    """(rank, exposure) of the true secret among the alternatives: rank 1 + the alternatives strictly
    more likely, exposure log2(R + 1) - log2(rank)."""
    alt = np.asarray(alternative_logprobs, dtype=np.float64)
    rank = 1 + int((alt > true_logprob).sum())
    return rank, math.log2(len(alt) + 1) - math.log2(rank)
