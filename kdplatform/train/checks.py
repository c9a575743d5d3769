"""Checks that stop a training run early and loudly instead of letting it finish wrong.

A non-finite loss must end the job with an error naming the stage and step (before the optimizer step,
so no NaN weights are ever saved or recorded as done), and token ids must fit the student's embedding
table before the first forward (on CUDA an out-of-range id is a device-side assert, not a message).
"""

from __future__ import annotations

import math

import numpy as np
import torch


class NonFiniteLossError(FloatingPointError):
    """The training loss or gradient norm became NaN or infinite; the run saved nothing for that step."""


def embedding_rows(model) -> int:
    """Rows of the input embedding (the ids a model can read); read before any sharding wrapper."""
    return int(model.get_input_embeddings().weight.shape[0])


def logit_width(model) -> int:
    """Columns of the output head (padded vocabulary); read before any sharding wrapper."""
    head = model.get_output_embeddings()
    if head is not None and getattr(head, "weight", None) is not None:
        return int(head.weight.shape[0])
    return int(model.config.get_text_config().vocab_size)


def check_token_ids(tokens: np.ndarray, model, what: str, *, source_width: int | None = None) -> None:
    """Refuse ids outside [0, embedding rows of `model`); `source_width` names who produced them."""
    tokens = np.asarray(tokens)
    if tokens.size == 0:
        return
    lo, hi, rows = int(tokens.min()), int(tokens.max()), embedding_rows(model)
    if lo >= 0 and hi < rows:
        return
    source = "" if source_width is None else f" (produced over a teacher logit width of {source_width})"
    raise ValueError(
        f"{what}: token id {hi if hi >= rows else lo}{source} is outside the student's input embedding of "
        f"{rows} rows; restrict the teacher's argmax to the student's vocabulary or use a wider student"
    )


def raise_if_non_finite(
    acc, loss_sum: float, grad_norm: torch.Tensor | float, *, desc: str, epoch: int, step: int
):
    """Stop every process together when this step's loss or gradient norm is not finite on any of them."""
    norm = float(grad_norm)
    bad = not (math.isfinite(loss_sum) and math.isfinite(norm))
    if acc.num_processes > 1:
        flag = torch.tensor([float(bad)], device=acc.device)
        bad = bool(acc.reduce(flag, reduction="sum").item() > 0)
    if bad:
        raise NonFiniteLossError(
            f"{desc}: the training loss became non-finite (loss {loss_sum:.4g}, gradient norm {norm:.4g}) at "
            f"epoch {epoch}, optimizer step {step}; stopped before the update, nothing was saved for it. "
            "Half-precision weights or a too-high learning rate are the usual causes"
        )


def raise_if_non_finite_val(val_loss: float, *, desc: str, epoch: int, step: int) -> None:
    if not math.isfinite(val_loss):
        raise NonFiniteLossError(
            f"{desc}: the validation loss is {val_loss} after epoch {epoch} (optimizer step {step}); "
            "the checkpoint is not saved"
        )
