"""D_hard for sequence-level (hard) distillation (paper section 6): the teacher's greedy continuations.

Each row keeps the example's true first ``prefix_len`` tokens and continues with the teacher's greedy
(argmax) tokens up to the example's full length, the training length (the paper: 206 tokens after a
50-token prefix of a 256-token sequence, though memorization is tested on the first 100). Decoding is
plain argmax at every step: the end-of-text token is an ordinary token here (generation neither stops at
it nor suppresses it), and none of the checkpoint's generation defaults (repetition penalty, suppressed
tokens, ...) apply, so every row has the full length and is exactly the teacher's greedy chain.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from kdplatform.models import plain_generation_config
from kdplatform.train.checks import check_token_ids


def default_batch_size(model, seq_len: int) -> int:
    """Rows decoded together: 32 on CPU; on CUDA what half the free memory holds as KV cache (<= 256)."""
    device = next(model.parameters()).device
    if device.type != "cuda":
        return 32
    cfg = model.config.get_text_config()
    elem = next(model.parameters()).element_size()
    kv_per_row = 2 * cfg.num_hidden_layers * cfg.hidden_size * elem * seq_len
    logits_per_row = model.get_output_embeddings().weight.shape[0] * 4
    free, _ = torch.cuda.mem_get_info(device)
    return max(1, min(256, int(free * 0.5) // (kv_per_row + logits_per_row)))


class _FirstColumns:
    """Logits processor: the argmax runs over the first `width` columns only (the student's vocabulary)."""

    def __init__(self, width: int):
        self.width = width

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        scores = scores.float()  # argmax on float32 logits, whatever the teacher's precision
        scores[:, self.width :] = -torch.inf
        return scores


def check_hard_data(tokens: np.ndarray, student, teacher_width: int) -> None:
    """Refuse D_hard whose ids the student cannot embed, naming both widths (call before training)."""
    check_token_ids(tokens, student, "hard-KD data", source_width=teacher_width)


def generate_hard_data(
    teacher,
    token_ids: torch.Tensor,
    prefix_len: int,
    *,
    batch_size: int | None = None,
    vocab_size: int | None = None,
) -> np.ndarray:
    """Rows [N, L] (int64): each example's true prefix + the teacher's greedy continuation to length L.

    Batched with a KV cache through `generate`; all prefixes have the same length, so no padding is
    needed. The teacher is evaluated in eval mode on its own device and its mode is restored afterwards.
    With `vocab_size` (the student's embedding rows or the tokenizer's size), the argmax skips the
    teacher's padding columns beyond it, so that every generated id is one the student can read.
    """
    from transformers import GenerationConfig, LogitsProcessorList

    token_ids = torch.as_tensor(token_ids)
    if token_ids.ndim != 2 or token_ids.dtype.is_floating_point or token_ids.dtype == torch.bool:
        raise ValueError(
            f"token_ids must be an integer [N, L] tensor, got {token_ids.dtype} {tuple(token_ids.shape)}"
        )
    n, seq_len = token_ids.shape
    if not 1 <= prefix_len < seq_len:
        raise ValueError(f"prefix_len must be in [1, L-1] = [1, {seq_len - 1}], got {prefix_len}")
    rows = teacher.get_input_embeddings().weight.shape[0]
    if n and not 0 <= int(token_ids.min()) <= int(token_ids.max()) < rows:
        raise ValueError(f"token ids must lie in [0, {rows}) (the teacher's embedding rows)")
    width = teacher.get_output_embeddings().weight.shape[0]
    if vocab_size is not None and not 0 < vocab_size <= width:
        raise ValueError(f"vocab_size must be in [1, {width}] (the teacher's logit width), got {vocab_size}")
    processors = LogitsProcessorList([_FirstColumns(vocab_size)] if vocab_size is not None else [])
    batch_size = batch_size or default_batch_size(teacher, seq_len)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")

    new = seq_len - prefix_len
    config = GenerationConfig(
        do_sample=False,
        num_beams=1,
        max_new_tokens=new,
        min_new_tokens=new,
        eos_token_id=None,
        pad_token_id=0,  # never used: rows are unpadded; set so that generate does not warn
    )
    device = next(teacher.parameters()).device
    out = np.empty((n, seq_len), dtype=np.int64)
    out[:, :prefix_len] = token_ids[:, :prefix_len].cpu().numpy()
    was_training = teacher.training
    teacher.eval()
    try:
        with torch.inference_mode(), plain_generation_config(teacher):
            for start in tqdm(range(0, n, batch_size), desc="hard data", unit="batch", disable=None):
                prefix = token_ids[start : start + batch_size, :prefix_len].to(device, torch.long)
                gen = teacher.generate(
                    input_ids=prefix,
                    attention_mask=torch.ones_like(prefix),
                    generation_config=config,
                    logits_processor=processors,
                )
                if gen.shape[1] != seq_len:
                    raise RuntimeError(f"generate returned {gen.shape[1]} tokens per row, expected {seq_len}")
                out[start : start + prefix.shape[0], prefix_len:] = gen[:, prefix_len:].cpu().numpy()
    finally:
        teacher.train(was_training)
    return out
