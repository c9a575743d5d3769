"""Tiny checkpoints of three architectures, saved locally in half precision as hub checkpoints are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

ARCHS = ("gpt_neox", "llama", "qwen2")
HALF = {"float16": torch.float16, "bfloat16": torch.bfloat16}
STUDENT_VOCAB, TEACHER_VOCAB = 64, 72  # the teacher's logit width is padded past the student's
SEQ_LEN, PREFIX = 16, 8


def build(arch: str, vocab: int, seed: int, hidden: int = 32):
    """A randomly initialised 2-layer causal LM of `arch` (no tokenizer needed)."""
    import transformers as tf

    common = dict(
        vocab_size=vocab,
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=2 * hidden,
        max_position_embeddings=64,
        tie_word_embeddings=False,
    )
    if arch == "gpt_neox":
        config = tf.GPTNeoXConfig(rotary_pct=0.25, **common)
        cls = tf.GPTNeoXForCausalLM
    elif arch == "llama":
        config, cls = tf.LlamaConfig(num_key_value_heads=2, **common), tf.LlamaForCausalLM
    elif arch == "qwen2":
        config, cls = tf.Qwen2Config(num_key_value_heads=2, **common), tf.Qwen2ForCausalLM
    else:
        raise ValueError(arch)
    torch.manual_seed(seed)
    return cls(config)


def save_half(arch: str, dtype: str, vocab: int, seed: int, out: Path) -> Path:
    """save_pretrained of a tiny model cast to `dtype`: the checkpoint's config then says that dtype."""
    build(arch, vocab, seed).to(HALF[dtype]).save_pretrained(out)
    return out


def data(n: int, seed: int = 0) -> np.ndarray:
    """Arithmetic sequences mod the student's vocabulary: learnable, so the loss falls."""
    rng = np.random.default_rng(seed)
    start = rng.integers(0, STUDENT_VOCAB, size=(n, 1))
    stride = rng.integers(1, 4, size=(n, 1))
    return (start + stride * np.arange(SEQ_LEN)) % STUDENT_VOCAB
