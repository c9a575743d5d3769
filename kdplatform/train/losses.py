"""Distillation and language-modelling losses over logits ``[..., V]`` and a boolean mask ``[...]``.

Each public loss returns the mean over masked positions (True = counted) of a per-position
quantity. Per-position divergences are written separately from the masked reduction (as in TRL) so
that one helper, ``_masked_mean``, owns masking, float32 upcasting and chunking for every loss.

Divergences are computed from ``log_softmax`` (never exp-then-log) in at least float32, so bf16
logits are safe. ``-inf`` logits (banned tokens) are allowed: their log-probabilities are floored
to the dtype's most negative finite value, which keeps ``0 * log 0`` at 0 instead of NaN in both
the value and the gradient.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F

__all__ = ["KD_LOSSES", "cross_entropy", "forward_kl", "jsd", "kd_loss", "reverse_kl"]

PerRow = Callable[..., torch.Tensor]


# --- per-position quantities: [rows, V] -> [rows] ---------------------------------------------


def _log_probs(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """log softmax(logits / T), floored so -inf entries stay finite and 0 * log p stays 0."""
    logp = F.log_softmax(logits / temperature, dim=-1)
    return logp.clamp_min(torch.finfo(logp.dtype).min)


def _kl_rows(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """KL(p ‖ q) per row from log-probabilities, in the maths order (first argument is the target)."""
    return (logp.exp() * (logp - logq)).sum(-1)


def _forward_kl_rows(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    return _kl_rows(_log_probs(teacher, temperature), _log_probs(student, temperature))


def _reverse_kl_rows(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    return _kl_rows(_log_probs(student, temperature), _log_probs(teacher, temperature))


def _jsd_rows(student: torch.Tensor, teacher: torch.Tensor, temperature: float, beta: float) -> torch.Tensor:
    """beta · KL(P_t ‖ M) + (1 − beta) · KL(P_s ‖ M), with M = beta · P_t + (1 − beta) · P_s."""
    logp_t = _log_probs(teacher, temperature)
    logp_s = _log_probs(student, temperature)
    # log M = logsumexp(log beta + log P_t, log(1 - beta) + log P_s); a zero weight becomes -inf,
    # which logaddexp handles exactly (M is then the other distribution).
    log_beta = math.log(beta) if beta > 0 else -math.inf
    log_rest = math.log1p(-beta) if beta < 1 else -math.inf
    log_m = torch.logaddexp(logp_t + log_beta, logp_s + log_rest)
    # Zero-weight terms are skipped rather than multiplied by 0, since 0 * inf would be NaN.
    out = torch.zeros(logp_t.shape[:-1], dtype=logp_t.dtype, device=logp_t.device)
    if beta > 0:
        out = out + beta * _kl_rows(logp_t, log_m)
    if beta < 1:
        out = out + (1 - beta) * _kl_rows(logp_s, log_m)
    return out


def _nll_rows(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, labels, reduction="none")


# --- masked reduction with optional chunking ---------------------------------------------------


def _compute_dtype(t: torch.Tensor) -> torch.dtype:
    return torch.promote_types(t.dtype, torch.float32) if t.is_floating_point() else t.dtype


def _rows_of(flat: tuple[torch.Tensor, ...], rows: torch.Tensor) -> list[torch.Tensor]:
    return [t.index_select(0, rows) for t in flat]


def _upcast(parts: list[torch.Tensor]) -> list[torch.Tensor]:
    return [p.to(_compute_dtype(p)) for p in parts]


class _ChunkedSum(torch.autograd.Function):
    """Sum of ``per_row`` over ``rows``, differentiated chunk by chunk during the forward pass.

    Summing chunks under plain autograd would keep every chunk's float32 ``[chunk, V]``
    intermediates alive until backward, so peak memory would not drop. Here each chunk's graph is
    freed as soon as its gradient has been written into one buffer shaped like the input (the
    approach of Liger-Kernel's chunked losses); backward only scales that buffer. The values and
    gradients are the same per-row computations as the unchunked path. The buffer has the input's
    dtype, so for bf16 logits the gradient is rounded before scaling and may differ from the
    unchunked one by one bf16 step; a float32 buffer would cost the memory chunking saves.
    """

    @staticmethod
    def forward(ctx, per_row: PerRow, rows: torch.Tensor, chunk_size: int, *flat: torch.Tensor):
        wants = ctx.needs_input_grad[3:]
        ctx.wants = wants
        grads = [torch.zeros_like(t) if w else None for t, w in zip(flat, wants, strict=True)]
        total = None
        for start in range(0, rows.numel(), chunk_size):
            idx = rows[start : start + chunk_size]
            parts = [p.requires_grad_(w) for p, w in zip(_rows_of(flat, idx), wants, strict=True)]
            with torch.enable_grad():
                value = per_row(*_upcast(parts)).sum()
            leaves = [(buf, p) for buf, p in zip(grads, parts, strict=True) if buf is not None]
            chunk_grads = torch.autograd.grad(value, [p for _, p in leaves], allow_unused=True)
            for (buf, _), g in zip(leaves, chunk_grads, strict=True):
                if g is not None:
                    buf.index_copy_(0, idx, g)
            total = value.detach() if total is None else total + value.detach()
        ctx.save_for_backward(*[g for g in grads if g is not None])
        return total

    @staticmethod
    def backward(ctx, grad_total: torch.Tensor):
        saved = iter(ctx.saved_tensors)
        grads = []
        for w in ctx.wants:
            g = next(saved) if w else None
            grads.append(None if g is None else g * grad_total.to(g.dtype))
        return None, None, None, *grads


def _masked_mean(
    per_row: PerRow, tensors: tuple[torch.Tensor, ...], mask: torch.Tensor, chunk_size: int | None
) -> torch.Tensor:
    """Mean of ``per_row`` over masked positions; 0 (still differentiable) when none is counted.

    Only masked rows are ever gathered, so garbage in unmasked positions cannot leak NaN, and
    ``chunk_size`` bounds how many rows are upcast and processed at once.
    """
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor, got {mask.dtype}")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size}")
    n = mask.numel()
    flat = tuple(t.reshape(n, *t.shape[mask.dim() :]) for t in tensors)
    rows = mask.reshape(n).nonzero().squeeze(1)
    count = rows.numel()
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in flat)
    if needs_grad and chunk_size is not None and count > chunk_size:
        total = _ChunkedSum.apply(per_row, rows, chunk_size, *flat)
    else:
        # Without a graph to keep, chunks bound memory by themselves; with one, this is one chunk.
        step = chunk_size if chunk_size is not None and not needs_grad else max(count, 1)
        total = sum(
            per_row(*_upcast(_rows_of(flat, rows[i : i + step]))).sum() for i in range(0, max(count, 1), step)
        )
    return total / max(count, 1)


# --- public losses -----------------------------------------------------------------------------


def _check_pair(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    mask: torch.Tensor,
    temperature: float,
    vocab_size: int | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate shapes and slice both logits to the shared vocabulary (padding columns dropped)."""
    if student_logits.shape[:-1] != mask.shape or teacher_logits.shape[:-1] != mask.shape:
        raise ValueError(
            f"logits {tuple(student_logits.shape)} / {tuple(teacher_logits.shape)} "
            f"do not match mask {tuple(mask.shape)} on the leading dimensions"
        )
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    narrowest = min(student_logits.shape[-1], teacher_logits.shape[-1])
    v = narrowest if vocab_size is None else vocab_size
    if not 0 < v <= narrowest:
        raise ValueError(f"vocab_size {vocab_size} must be in [1, {narrowest}] (the narrower logits)")
    return student_logits[..., :v], teacher_logits[..., :v]


def _kd_mean(
    per_row: PerRow,
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    mask: torch.Tensor,
    temperature: float,
    vocab_size: int | None,
    chunk_size: int | None,
) -> torch.Tensor:
    """T² · the masked mean of ``per_row`` at ``temperature``, after the checks and vocabulary slice."""
    s, t = _check_pair(student_logits, teacher_logits, mask, temperature, vocab_size)
    rows = partial(per_row, temperature=temperature)
    return temperature**2 * _masked_mean(rows, (s, t), mask, chunk_size)


def _kd_divergence(per_row: PerRow, name: str, doc: str) -> Callable[..., torch.Tensor]:
    """The public loss of a per-row divergence that takes no option beyond the temperature."""

    def loss(
        student_logits: torch.Tensor,
        teacher_logits: torch.Tensor,
        mask: torch.Tensor,
        temperature: float,
        *,
        vocab_size: int | None = None,
        chunk_size: int | None = None,
    ) -> torch.Tensor:
        return _kd_mean(per_row, student_logits, teacher_logits, mask, temperature, vocab_size, chunk_size)

    loss.__name__ = loss.__qualname__ = name
    loss.__doc__ = doc
    return loss


forward_kl = _kd_divergence(
    _forward_kl_rows,
    "forward_kl",
    "T² · KL(P_t ‖ P_s) (paper eq. 1): mean-seeking, the standard Hinton distillation loss.",
)
reverse_kl = _kd_divergence(
    _reverse_kl_rows,
    "reverse_kl",
    "T² · KL(P_s ‖ P_t): mode-seeking, the student is penalised for mass the teacher lacks.",
)


def jsd(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    mask: torch.Tensor,
    temperature: float,
    beta: float = 0.5,
    *,
    vocab_size: int | None = None,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """T² · generalized JSD, interpolating the two KL directions; bounded, and 0 at beta 0 or 1."""
    if not 0 <= beta <= 1:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    rows = partial(_jsd_rows, beta=beta)
    return _kd_mean(rows, student_logits, teacher_logits, mask, temperature, vocab_size, chunk_size)


def cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, *, chunk_size: int | None = None
) -> torch.Tensor:
    """Mean NLL of ``labels`` over masked positions; labels are aligned with logits (caller shifts)."""
    if logits.shape[:-1] != mask.shape or labels.shape != mask.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} / labels {tuple(labels.shape)} "
            f"do not match mask {tuple(mask.shape)}"
        )
    return _masked_mean(_nll_rows, (logits, labels), mask, chunk_size)


KD_LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "forward_kl": forward_kl,
    "reverse_kl": reverse_kl,
    "jsd": jsd,
}


def kd_loss(
    name: str,
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    mask: torch.Tensor,
    temperature: float,
    **kw,
) -> torch.Tensor:
    """Dispatch on a config string so objectives are chosen by name in job files."""
    try:
        fn = KD_LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown KD loss {name!r}; valid choices: {', '.join(sorted(KD_LOSSES))}") from None
    return fn(student_logits, teacher_logits, mask, temperature, **kw)
