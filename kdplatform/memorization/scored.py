"""The scan's batch with every score: the paper's measures and the scores beyond exact match, in one pass.

:func:`scored_batch` walks the logits of one batch in chunks of positions, as the scan always has, and
adds per position what :mod:`kdplatform.memorization.scores` reduces: the argmax agreement at every
position of a prefix window (not only the suffix), log p of the true token, its standardized z_t, and the
extraction settings' log-probabilities. The argmax is decided from one ``amax`` with the target masked
(:func:`~.scores.argmax_is_target`); the top-1 minus top-2 margin then comes free at the matched positions,
and one ``topk`` per row gives it at the first mismatch. Results equal the plain path's exactly
(decisions) or to float32 rounding (sums).
"""

from __future__ import annotations

from typing import Any

import torch

from kdplatform.memorization import scores as sc


def finite_(logp: torch.Tensor) -> torch.Tensor:
    """Make -inf log-probabilities (masked logits) finite in place, so that 0 * log 0 counts 0, not NaN."""
    return logp.clamp_min_(torch.finfo(logp.dtype).min)


def _bounded(logits: torch.Tensor) -> bool:
    """Whether every log-softmax of these logits is finite, so that no clamp is needed: no -inf (a masked
    logit) and no spread wide enough to overflow z - max. Decided from one min/max pass on CPU; CUDA
    always clamps (a check would synchronize)."""
    if logits.is_cuda or logits.numel() == 0:
        return False
    low, high = torch.aminmax(logits)
    return bool(torch.isfinite(high.float() - low.float()))


def scored_batch(
    logits: torch.Tensor,
    ref_logits: torch.Tensor | None,
    targets: torch.Tensor,
    first_suffix: int,
    vocab_size: int,
    chunk: int,
    acc: Any,
    rows: slice,
) -> None:
    """Add one batch to the scan's accumulators ``acc``: ``logits`` [b, L-1, width] predict ``targets``;
    ``ref_logits`` [b, S, width'] are the reference's at the suffix positions."""
    b, n_pred = targets.shape
    suffix_len, options = acc.suffix_len, acc.options
    bounded = _bounded(logits[..., :vocab_size])
    pos = sc.PositionScores(b, n_pred, suffix_len, logits.device, options.extraction)
    window_from = min(options.prefix_lens) - 1  # argmax agreement is read from here on
    c1 = 0
    while c1 < n_pred:  # chunks end at the first suffix position, so each lies in the prefix or the suffix
        c0, c1 = c1, min(c1 + chunk, n_pred if c1 >= first_suffix else first_suffix)
        t = targets[:, c0:c1]
        z = logits[:, c0:c1].float()  # full width, as generate() picks; float32 whatever the model's dtype
        suffix = c0 >= first_suffix
        suf = slice(c0 - first_suffix, c1 - first_suffix)
        if c1 > window_from:
            correct, gap = sc.argmax_is_target(z, t)
            if suffix and acc.greedy is not None:
                pred = z.argmax(-1)
                acc.greedy[rows, suf] = pred.int()
            pos.correct[:, c0:c1] = correct
            if suffix:
                pos.gap[:, suf] = gap
        zv = z[..., :vocab_size]
        lp = zv.log_softmax(-1)
        lp_true = lp.gather(-1, t.unsqueeze(-1)).squeeze(-1)
        if not bounded:
            lp = finite_(lp)
        if suffix:
            pos.add_extraction(suf, zv, lp, t, lp_true)
            if ref_logits is not None:
                lr = finite_(ref_logits[:, suf, :vocab_size].float().log_softmax(-1))
                acc.kld_sum[rows] += torch.linalg.vecdot(lr.exp(), lr - lp).double().sum(1)
        pos.add(c0, c1, lp, lp_true)  # last: it overwrites lp
    lp_true = pos.lp_true.double()
    acc.nll_sum[rows] -= lp_true.sum(1)
    acc.suffix_logprob[rows] += lp_true[:, first_suffix:].sum(1)
    acc.entropy_sum[rows] -= pos.mu[:, first_suffix:].double().sum(1)
    acc.extraction[rows] += pos.extraction_lp.double().sum(-1)
    acc.min_k[rows], acc.min_k_pp[rows] = sc.min_k_mean(pos.lp_true), sc.min_k_mean(pos.z)
    acc.memorized_at[rows] = sc.window_memorized(pos.correct, suffix_len, options.prefix_lens)
    _decide(logits, pos, first_suffix, acc, rows)


def _decide(logits: torch.Tensor, pos: sc.PositionScores, first_suffix: int, acc: Any, rows: slice) -> None:
    """match_len and min_margin: the margin is the gap at the matched positions and top-1 minus top-2 of
    the full-width logits at the first mismatch (the deciding positions 0..match_len)."""
    suffix_len = acc.suffix_len
    if suffix_len == 0:
        acc.min_margin[rows] = torch.inf
        return
    matched = pos.correct[:, first_suffix:].long().cumprod(1)
    match_len = matched.sum(1)
    acc.match_len[rows] = match_len
    margin = pos.gap.masked_fill(~matched.bool(), torch.inf).amin(1)
    if logits.shape[-1] > 1:
        at = first_suffix + match_len.clamp_max(suffix_len - 1)
        top = logits[torch.arange(len(at), device=at.device), at].float().topk(2, dim=-1).values
        missed = torch.where(match_len < suffix_len, top[:, 0] - top[:, 1], torch.inf)
        margin = torch.minimum(margin, missed)
    acc.min_margin[rows] = margin
