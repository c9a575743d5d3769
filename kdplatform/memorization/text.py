"""zlib entropy: how compressible an example's text is, the paper's strongest predictor of memorization.

The paper decodes the tokenized sequence back to text and takes the byte length of its zlib-compressed
form; because the text comes from a model-specific tokenizer, the measure is tokenizer-dependent.
Dividing by the token count gives bits per token, comparable across tokenizers.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np


def zlib_entropy(text: str) -> int:
    """Length in bytes of ``zlib.compress`` (default level) of the UTF-8 text."""
    return len(zlib.compress(text.encode("utf-8")))


def zlib_bits_per_token(text: str, n_tokens: int) -> float:
    """Compressed bits per token: ``8 * zlib_entropy(text) / n_tokens``."""
    if n_tokens <= 0:
        raise ValueError(f"n_tokens must be positive, got {n_tokens}")
    return 8.0 * zlib_entropy(text) / n_tokens


def zlib_entropies(texts: Sequence[str]) -> np.ndarray:
    """:func:`zlib_entropy` of each text, as an int64 array."""
    return np.fromiter((zlib_entropy(t) for t in texts), dtype=np.int64, count=len(texts))


def zlib_bits_per_token_many(texts: Sequence[str], n_tokens: Sequence[int] | np.ndarray | int) -> np.ndarray:
    """:func:`zlib_bits_per_token` of each text; ``n_tokens`` is one count per text or one for all."""
    counts = np.broadcast_to(np.asarray(n_tokens, dtype=np.int64), (len(texts),))
    if (counts <= 0).any():
        raise ValueError("n_tokens must be positive")
    return 8.0 * zlib_entropies(texts) / counts
