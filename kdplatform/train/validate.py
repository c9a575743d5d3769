"""Validation loss: summed next-token NLL over held-out rows, alone or split over processes."""

from __future__ import annotations

import numpy as np
import torch


@torch.inference_mode()
def _nll_sum(model, tokens: np.ndarray, batch_size: int, device: torch.device) -> tuple[float, int]:
    """Summed next-token NLL (float64 accumulation) and the number of predicted positions."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(tokens), batch_size):
        ids = torch.as_tensor(tokens[start : start + batch_size], device=device, dtype=torch.long)
        logits = model(input_ids=ids).logits[:, :-1].float()
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="sum")
        total += float(nll.double().item())
        count += ids[:, 1:].numel()
    model.train(was_training)
    return total, count


def evaluate(model, tokens: np.ndarray, batch_size: int, device: torch.device) -> float:
    """Mean next-token NLL over all positions of the held-out examples."""
    total, count = _nll_sum(model, tokens, batch_size, device)
    return total / max(count, 1)


@torch.no_grad()
def nll_sum_distributed(model, tokens: np.ndarray, batch_size: int, acc) -> tuple[float, int]:
    """This process's share of the summed validation NLL, through the prepared (wrapped) model.

    Every process runs the same number of forward passes, padding its last batches with rows that are
    masked out: under FSDP each forward is a collective (parameters are gathered), so a process with
    fewer rows would leave the others waiting; the unwrapped module would see only its own shard.
    """
    world, rank = acc.num_processes, acc.process_index
    shares = np.array_split(np.arange(len(tokens)), world)
    n_batches = -(-max(len(x) for x in shares) // batch_size) if len(tokens) else 0
    mine = shares[rank]
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for b in range(n_batches):
        rows = mine[b * batch_size : (b + 1) * batch_size]
        real = len(rows)
        feed = rows if real else np.zeros(1, dtype=np.int64)
        ids = torch.as_tensor(tokens[feed], device=acc.device, dtype=torch.long)
        logits = model(input_ids=ids).logits[:, :-1].float()
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
        if real:
            total += float(nll.double().sum().item())
            count += ids[:, 1:].numel()
    model.train(was_training)
    return total, count
