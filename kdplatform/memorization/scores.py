"""Per-position reductions of one teacher-forced pass beyond exact match: pure functions over tensors.

The scan (:mod:`kdplatform.memorization.scan`) calls these on each chunk of positions of its batch, so
membership-inference scores, probabilistic extraction and every prefix length come from the pass that
already decides memorization. Inputs are float32 ``[b, c, V]`` log-probabilities ``lp`` (renormalized
over the first ``vocab_size`` logits, made finite) or logits ``z`` sliced to ``vocab_size``, and
``[b, c]`` targets; outputs are ``[b, c]`` per position or ``[b]`` per example.

- min-k % (Shi et al. 2024): the mean of the lowest k % of log p(x_t | x_<t) over the L-1 predicted tokens.
- min-k %++ (Zhang et al. 2024): the same over z_t = (log p(x_t) - mu_t) / sigma_t, mu_t and sigma_t the
  mean and standard deviation of log p under the model's own distribution at position t.
- Probabilistic extraction (Hayes et al. 2024): the log-probability that sampling at temperature tau
  (optionally from the top-k only) reproduces the suffix, which under teacher forcing is the sum over the
  suffix positions of the true token's log-probability under the tempered (truncated) distribution.
- Every prefix length: with per-position argmax agreement, greedy decoding from prefix k reproduces the
  S tokens after it iff every argmax in that window is correct (see the scan's module docstring).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import torch

MIN_K_PERCENT = 20
"""The k of ``min_k_20`` and ``min_k_pp_20``: the lowest floor(20 % of n) values (at least one)."""

EXTRACTION_SETTINGS: tuple[tuple[float, int | None], ...] = ((1.0, None), (0.7, None), (1.0, 40), (0.7, 40))
"""(temperature, top_k) pairs of probabilistic extraction; top_k None samples from the whole vocabulary."""

PREFIX_STEP = 25
"""Prefix lengths reported beside the scan's own: multiples of this (Hubble's 25/50/75/100) that fit."""


def extraction_column(temperature: float, top_k: int | None) -> str:
    """Column name of one setting: ``pex_t070_k40`` is tau 0.70 with top-40 (tau in hundredths)."""
    name = f"pex_t{round(temperature * 100):03d}"
    return name if top_k is None else f"{name}_k{top_k}"


def prefix_column(prefix_len: int) -> str:
    return f"memorized_p{prefix_len}"


def default_prefix_lens(prefix_len: int, seq_len: int) -> tuple[int, ...]:
    """The scan's prefix length and every multiple of PREFIX_STEP whose window of S tokens fits in L.

    The suffix length stays S = L - prefix_len, so a prefix k fits when k + S <= L, i.e. k <= prefix_len.
    """
    if not 1 <= prefix_len < seq_len:
        raise ValueError(f"prefix_len must be in [1, L-1] = [1, {seq_len - 1}], got {prefix_len}")
    return tuple(sorted({*range(PREFIX_STEP, prefix_len + 1, PREFIX_STEP), prefix_len}))


def check_prefix_lens(prefix_lens: Iterable[int], suffix_len: int, seq_len: int) -> tuple[int, ...]:
    lens = tuple(sorted(set(prefix_lens)))
    bad = [k for k in lens if not 1 <= k <= seq_len - suffix_len]
    if bad:
        raise ValueError(f"prefix lengths {bad} leave no room for a {suffix_len}-token suffix in {seq_len}")
    return lens


def check_extraction(settings: Iterable[tuple[float, int | None]]) -> tuple[tuple[float, int | None], ...]:
    settings = tuple((float(t), k) for t, k in settings)
    bad = [(t, k) for t, k in settings if not t > 0 or (k is not None and k < 1)]
    if bad:
        raise ValueError(f"extraction settings {bad}: temperatures must be > 0 and top_k >= 1 or None")
    return settings


def moments(lp: torch.Tensor, *, consume: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, sigma) of the log-probability under its own distribution, over the last axis.

    mu = sum_v p_v log p_v (minus the entropy); sigma^2 = sum_v p_v (log p_v - mu)^2, centred rather than
    E[(log p)^2] - mu^2, which cancels in float32 on near-uniform distributions (sigma^2 << mu^2).
    ``lp`` must be finite (masked logits clamped); ``consume`` overwrites it rather than allocating the
    centred copy (the same arithmetic), for a caller that reads it no more.
    """
    p = lp.exp()
    mu = torch.linalg.vecdot(p, lp)
    centred = lp.sub_(mu.unsqueeze(-1)) if consume else lp - mu.unsqueeze(-1)
    var = centred.square_().mul_(p).sum(-1)
    return mu, var.clamp_min_(0).sqrt_()


def argmax_is_target(z: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(argmax(z) == targets, z_target - the largest other logit), exactly, without an argmax pass on CPU.

    The largest other logit comes from one ``amax`` with the target masked (in place, then restored), which
    on CPU is an order of magnitude faster than ``argmax`` or ``topk``. The target is the argmax when it
    beats every other logit; on an exact tie ``argmax`` (first index) decides, for the tied rows only. When
    the target is the argmax the gap is the top-1 minus top-2 margin.
    """
    index = targets.unsqueeze(-1)
    z_t = z.gather(-1, index)
    z.scatter_(-1, index, -torch.inf)
    other = z.amax(-1)
    z.scatter_(-1, index, z_t)
    z_t = z_t.squeeze(-1)
    if z.is_cuda:  # argmax is cheap there, and a tie check would synchronize
        return z.argmax(-1) == targets, z_t - other
    correct = z_t > other
    tie = z_t == other
    if tie.any():
        correct[tie] = z[tie].argmax(-1) == targets[tie]
    return correct, z_t - other


def top_values(z: torch.Tensor, k: int) -> torch.Tensor:
    """The k largest values over the last axis, descending: ``z.topk(k).values`` exactly, faster on CPU.

    On CPU, torch's ``topk`` is a large part of a scan's vocabulary math, so the selection is numpy's
    introselect (``partition``), after a cut of the candidates: the last axis is split into w strided
    groups (the remainder kept aside), and the k groups with the largest maxima each hold a value at least
    as large as anything in any other group, so the k largest values lie among those k groups and the
    remainder (ties give the same values either way). CUDA keeps ``topk``.
    """
    if z.is_cuda:
        return z.topk(k, dim=-1).values
    v = z.shape[-1]
    w = max(8, v // 1536)
    groups = v // w
    candidates = z
    if groups > 2 * k:
        tiled = z[..., : groups * w].unflatten(-1, (w, groups))
        maxima = tiled.amax(-2).numpy()
        best = torch.from_numpy(np.argpartition(maxima, groups - k, axis=-1)[..., groups - k :])
        candidates = tiled.gather(-1, best.unsqueeze(-2).expand(*best.shape[:-1], w, k)).flatten(-2)
        if groups * w < v:
            candidates = torch.cat([candidates, z[..., groups * w :]], -1)
    a = candidates.numpy()
    top = np.partition(a, a.shape[-1] - k, axis=-1)[..., a.shape[-1] - k :]
    return torch.from_numpy(np.sort(top, axis=-1)[..., ::-1].copy())


def standardized(lp_true: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """z_t = (log p(x_t) - mu_t) / sigma_t; 0 where the distribution is a point mass (sigma 0)."""
    safe = torch.where(sigma > 0, sigma, torch.ones_like(sigma))
    return torch.where(sigma > 0, (lp_true - mu) / safe, torch.zeros_like(mu))


def tempered_logprob(
    z: torch.Tensor,
    targets: torch.Tensor,
    temperature: float,
    top_k: int | None = None,
    top_values: torch.Tensor | None = None,
) -> torch.Tensor:
    """log P(x_t) when sampling from softmax(z / temperature), restricted to the top_k logits if given.

    A true token outside the top-k has probability 0 (-inf); one tied with the k-th value counts as inside,
    as ``generate``'s top-k warper keeps ties (the normalization here sums the k largest only).
    ``top_values`` (the k largest of z, descending, from one ``topk`` shared by every temperature) saves
    the selection when given.
    """
    z_true = z.gather(-1, targets.unsqueeze(-1)).squeeze(-1)

    def scaled(t: torch.Tensor) -> torch.Tensor:
        return t if temperature == 1 else t / temperature

    if top_k is None or top_k >= z.shape[-1]:
        return scaled(z_true) - scaled(z).logsumexp(-1)
    if top_values is None:
        top_values = z.topk(top_k, dim=-1).values
    top_values = top_values[..., :top_k]
    lp = scaled(z_true) - scaled(top_values).logsumexp(-1)
    return lp.masked_fill(z_true < top_values[..., -1], -torch.inf)


def tempered_from_logprobs(lp: torch.Tensor, lp_true: torch.Tensor, temperature: float) -> torch.Tensor:
    """log P(x_t) under softmax(z / temperature), from finite log-probabilities ``lp`` = log_softmax(z).

    Shift invariance gives log softmax(lp / tau); lp <= 0 and max lp >= -log V, so the plain sum of exp
    cannot overflow and, while log V / tau stays under 60, cannot underflow to 0: no max pass is needed.
    """
    if temperature == 1:
        return lp_true
    if math.log(lp.shape[-1]) / temperature >= 60:
        return lp_true / temperature - (lp / temperature).logsumexp(-1)
    return lp_true / temperature - (lp * (1 / temperature)).exp_().sum(-1).log_()


def min_k_mean(values: torch.Tensor, percent: int = MIN_K_PERCENT) -> torch.Tensor:
    """[b] mean of the lowest floor(percent % of n) values of each row of [b, n] (at least one), float64."""
    n = values.shape[-1]
    k = max(1, n * percent // 100)
    return values.double().topk(k, dim=-1, largest=False).values.mean(-1)


def window_memorized(correct: torch.Tensor, suffix_len: int, prefix_lens: Sequence[int]) -> torch.Tensor:
    """[b, len(prefix_lens)]: greedy decoding from prefix k reproduces tokens k..k+S-1 of the sequence.

    ``correct`` is [b, L-1], whether the argmax at logit position j (predicting token j+1) is the true
    token; the window for prefix k is logit positions k-1 .. k+S-2.
    """
    b = correct.shape[0]
    if suffix_len == 0:
        return torch.ones(b, len(prefix_lens), dtype=torch.bool, device=correct.device)
    # A window is all correct iff its count of mistakes is 0: one cumulative sum serves every k.
    wrong = torch.zeros(b, correct.shape[1] + 1, dtype=torch.int32, device=correct.device)
    wrong[:, 1:] = (~correct).int().cumsum(1)
    starts = torch.as_tensor([k - 1 for k in prefix_lens], device=correct.device)
    return (wrong[:, starts + suffix_len] - wrong[:, starts]) == 0


def extraction_rate(log_p_extract: np.ndarray, n: int, p: float) -> float:
    """(n, p)-discoverable extraction rate: the share of examples with 1 - (1 - p_ex)^n >= p.

    ``log_p_extract`` is each example's log-probability that one sample reproduces its suffix; the
    probability that at least one of n independent samples does is computed as -expm1(n log1p(-p_ex)).
    """
    if n < 1 or not 0 < p <= 1:
        raise ValueError(f"need n >= 1 and 0 < p <= 1, got n={n}, p={p}")
    log_p = np.asarray(log_p_extract, dtype=np.float64)
    if log_p.size == 0:
        return float("nan")
    with np.errstate(divide="ignore"):
        at_least_once = -np.expm1(n * np.log1p(-np.exp(log_p)))
    return float(np.mean(at_least_once >= p))


class PositionScores:
    """One batch's per-position values, filled chunk by chunk and reduced once every chunk is in.

    [b, L-1] each: whether the argmax is the true token (read from the first window position on),
    log p(true token), mu_t, z_t; [b, settings, S] the true token's log-probability under each extraction
    setting at the suffix positions.
    """

    def __init__(
        self,
        b: int,
        n_pred: int,
        suffix_len: int,
        device: torch.device,
        extraction: Sequence[tuple[float, int | None]],
    ):
        def empty(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
            return torch.empty(*shape, dtype=dtype, device=device)

        self.extraction = tuple(extraction)
        self.top_k = max((k for _, k in self.extraction if k), default=0)
        self.correct = torch.ones(b, n_pred, dtype=torch.bool, device=device)
        self.lp_true, self.mu, self.z = empty(b, n_pred), empty(b, n_pred), empty(b, n_pred)
        self.gap = empty(b, suffix_len)
        self.extraction_lp = empty(b, len(self.extraction), suffix_len)

    def add(self, c0: int, c1: int, lp: torch.Tensor, lp_true: torch.Tensor) -> None:
        """The moments of one chunk's finite log-probabilities ``lp`` and z_t of its true tokens; ``lp``
        is overwritten (its last use)."""
        mu, sigma = moments(lp, consume=True)
        self.lp_true[:, c0:c1], self.mu[:, c0:c1] = lp_true, mu
        self.z[:, c0:c1] = standardized(lp_true, mu, sigma)

    def add_extraction(
        self, suf: slice, z: torch.Tensor, lp: torch.Tensor, targets: torch.Tensor, lp_true: torch.Tensor
    ) -> None:
        """Each setting's log P(true token) at suffix positions ``suf``; ``z`` sliced to the vocabulary."""
        top = top_values(z, min(self.top_k, z.shape[-1])) if self.top_k else None
        for i, (temperature, top_k) in enumerate(self.extraction):
            if top_k is None:
                value = tempered_from_logprobs(lp, lp_true, temperature)
            else:
                value = tempered_logprob(z, targets, temperature, top_k, top)
            self.extraction_lp[:, i, suf] = value
