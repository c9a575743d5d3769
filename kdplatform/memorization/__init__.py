"""Memorization measures: discoverable memorization, suffix log-probability and entropy, perplexity,
teacher-baseline KL divergence (one teacher-forced pass, :func:`scan`), its generate-based reference
(:func:`greedy_reference`) and the near-tie audit built on it (:func:`audit_scan`), and zlib entropy of the
text (:mod:`.text`)."""

from kdplatform.memorization.audit import AuditConfig, ScanAudit, audit_scan
from kdplatform.memorization.reference import greedy_reference, own_greedy_sequences
from kdplatform.memorization.scan import ScanResult, default_batch_size, scan
from kdplatform.memorization.text import (
    zlib_bits_per_token,
    zlib_bits_per_token_many,
    zlib_entropies,
    zlib_entropy,
)

__all__ = [
    "AuditConfig",
    "ScanAudit",
    "ScanResult",
    "audit_scan",
    "default_batch_size",
    "greedy_reference",
    "own_greedy_sequences",
    "scan",
    "zlib_bits_per_token",
    "zlib_bits_per_token_many",
    "zlib_entropies",
    "zlib_entropy",
]
