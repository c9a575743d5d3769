"""The tiny models and data of the training tests, shared by the test modules and by train_script.py.

A plain module beside them: pytest puts this folder on sys.path for the tests, and Python puts it there for
train_script.py when that runs as a script (alone or under ``accelerate launch``).
"""

from __future__ import annotations

import numpy as np

from kdplatform.models import build_neox

VOCAB, SEQ_LEN = 64, 16
SHAPE = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
"""2 layers, small enough that a CPU step takes milliseconds."""


def tiny_model(seed: int, dropout: float = 0.0):
    """The student (and the hard-data tests' teacher): 64 logits, 64 positions."""
    return build_neox(
        VOCAB,
        seed=seed,
        max_position_embeddings=64,
        hidden_dropout=dropout,
        attention_dropout=dropout,
        **SHAPE,
    )


def wide_teacher():
    """A teacher whose logit width (72) is padded past the student's (64), as Pythia-12B's is past 1.4B's."""
    return build_neox(VOCAB + 8, seed=7, **SHAPE)


def tiny_data(n: int, seed: int = 0) -> np.ndarray:
    """Arithmetic sequences mod VOCAB (start and stride vary): learnable, so the loss falls."""
    rng = np.random.default_rng(seed)
    start = rng.integers(0, VOCAB, size=(n, 1))
    stride = rng.integers(1, 4, size=(n, 1))
    return (start + stride * np.arange(SEQ_LEN)) % VOCAB
