"""The trainer's half of the precision policy: whatever dtype a model arrives in, it trains in float32.

AdamW on half-precision weights loses small updates (bf16) or divides by an eps that is 0 in fp16 (NaN), and
autocast does not create float32 master weights; so the trainable model is cast to float32 before the
optimizer sees it, and ``bf16: true`` stays what it means: autocast on CUDA. (Loading, the other half, is
:mod:`kdplatform.models`; the two packages are independent layers.)
"""

from __future__ import annotations

import torch

MASTER_DTYPE = torch.float32


def as_master_weights(model):
    """Cast a model's floating-point weights and buffers to float32 in place, if any are narrower."""
    tensors = [*model.parameters(), *model.buffers()]
    if any(t.is_floating_point() and t.dtype != MASTER_DTYPE for t in tensors):
        model.to(MASTER_DTYPE)
    return model


def weight_dtypes(model) -> set[torch.dtype]:
    """The dtypes of a model's floating-point parameters (one element for a model in one precision)."""
    return {p.dtype for p in model.parameters() if p.is_floating_point()}
