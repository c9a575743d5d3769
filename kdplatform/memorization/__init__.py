"""Memorization measures: discoverable memorization, suffix log-probability and entropy, perplexity,
teacher-baseline KL divergence (one teacher-forced pass, :func:`scan`), its generate-based audit
(:func:`greedy_reference`) and zlib entropy of the text (:mod:`.text`)."""

from kdplatform.memorization.reference import greedy_reference
from kdplatform.memorization.scan import ScanResult, default_batch_size, scan
from kdplatform.memorization.text import (
    zlib_bits_per_token,
    zlib_bits_per_token_many,
    zlib_entropies,
    zlib_entropy,
)

__all__ = [
    "ScanResult",
    "default_batch_size",
    "greedy_reference",
    "scan",
    "zlib_bits_per_token",
    "zlib_bits_per_token_many",
    "zlib_entropies",
    "zlib_entropy",
]
