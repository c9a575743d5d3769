"""Per-example loss alone: the reference attack's calibration by a model that is not scanned (a base).

The reference attack (:mod:`.attacks`) subtracts a reference model's loss on the same example from the
scanned model's. A base needs nothing else from the scan, so its pass is a forward and one ``logsumexp``
per position (log p(x_t) = z_t - logsumexp(z)), chunked like the scan's vocabulary math so that memory
stays bounded whatever the vocabulary.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import PreTrainedModel

from kdplatform.memorization.scan import (
    _check_reads,
    _device,
    _logit_width,
    _validate,
    chunk_positions,
    default_batch_size,
)

__all__ = ["example_losses"]


def example_losses(
    model: PreTrainedModel,
    token_ids: torch.Tensor,
    *,
    batch_size: int | None = None,
    vocab_size: int | None = None,
) -> np.ndarray:
    """[N] float64 mean NLL (nats) over the L-1 predicted tokens of each row of ``token_ids`` [N, L]:
    the scan's ``loss``, with distributions over the first ``vocab_size`` logits (default: all of them)."""
    seq_len, _ = _validate(token_ids, 1)
    n = token_ids.shape[0]
    max_id = int(token_ids.max()) if n else -1
    _check_reads(model, "model", max_id)
    width = _logit_width(model)
    vocab_size = width if vocab_size is None else vocab_size
    if not max_id < vocab_size <= width:
        raise ValueError(f"vocab_size {vocab_size} must be in [{max_id + 1}, {width}] (the logit width)")
    device = _device(model)
    batch_size = batch_size or default_batch_size(device, seq_len, width)
    nll = torch.zeros(n, dtype=torch.float64, device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                batch = token_ids[start : start + batch_size].to(device=device, dtype=torch.long)
                logits = model(input_ids=batch[:, :-1], use_cache=False).logits
                targets = batch[:, 1:]
                chunk = chunk_positions(logits.device, batch.shape[0], vocab_size)
                for c0 in range(0, seq_len - 1, chunk):
                    z = logits[:, c0 : c0 + chunk, :vocab_size].float()
                    lp = z.gather(-1, targets[:, c0 : c0 + chunk, None]).squeeze(-1) - z.logsumexp(-1)
                    nll[start : start + batch.shape[0]] -= lp.double().sum(1)
    finally:
        model.train(was_training)
    return (nll / (seq_len - 1)).cpu().numpy()
