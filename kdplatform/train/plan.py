"""The data plan: which rows each micro-batch and optimizer step takes, a pure function of the settings.

Data order is a function of (seed, epoch) only, so a resumed run skips exactly the batches already consumed
without replaying a data loader's generator.
"""

from __future__ import annotations

import numpy as np

from kdplatform.spec import TrainSpec


def permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """This epoch's example order: a function of (seed, epoch) only, so resume needs no loader state."""
    return np.random.default_rng([seed % 2**63, epoch]).permutation(n)


def epoch_plan(
    n: int, batch_size: int, grad_accum: int, seq_tokens: int, tokens_before: int, budget: int | None
) -> list[list[tuple[int, int]]]:
    """Optimizer steps of one epoch, each a list of micro-batch (start, end) slices of the permutation.

    The last micro-batch is smaller when `n` is not a multiple of `batch_size` (nothing is dropped). The
    epoch ends early, closing its step, at the micro-batch that brings the run to the token `budget`.
    """
    steps: list[list[tuple[int, int]]] = []
    tokens = tokens_before
    for start in range(0, n, batch_size):
        if not steps or len(steps[-1]) == grad_accum:
            steps.append([])
        end = min(start + batch_size, n)
        steps[-1].append((start, end))
        tokens += (end - start) * seq_tokens
        if budget is not None and tokens >= budget:
            break
    return steps


def total_steps(n: int, cfg: TrainSpec, seq_tokens: int) -> int:
    """Scheduler length: all epochs, or fewer when the token budget ends the run first."""
    total, tokens = 0, 0
    for _ in range(cfg.epochs):
        plan = epoch_plan(n, cfg.batch_size, cfg.grad_accum, seq_tokens, tokens, cfg.max_tokens)
        total += len(plan)
        tokens += sum(e - s for step in plan for s, e in step) * seq_tokens
        if cfg.max_tokens is not None and tokens >= cfg.max_tokens:
            break
    return total
