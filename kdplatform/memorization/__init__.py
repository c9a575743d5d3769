"""Memorization measures: discoverable memorization, suffix log-probability and entropy, perplexity,
teacher-baseline KL divergence, membership-inference scores, probabilistic extraction and other prefix
lengths (one teacher-forced pass, :func:`scan`; the scores in :mod:`.scores`), its generate-based reference
(:func:`greedy_reference`) and the near-tie audit built on it (:func:`audit_scan`), the loss-only pass of a
reference model (:func:`example_losses`), approximate memorization (:func:`approximate_match`), and zlib
entropy of the text (:mod:`.text`)."""

from kdplatform.memorization.approximate import approximate_match
from kdplatform.memorization.attacks import ATTACKS, attack_scores
from kdplatform.memorization.audit import AuditConfig, ScanAudit, audit_scan
from kdplatform.memorization.losses import example_losses
from kdplatform.memorization.reference import greedy_reference, own_greedy_sequences
from kdplatform.memorization.result import ScanResult
from kdplatform.memorization.scan import ScanOptions, default_batch_size, scan, scan_with
from kdplatform.memorization.scores import EXTRACTION_SETTINGS, extraction_column, extraction_rate
from kdplatform.memorization.text import (
    zlib_bits_per_token,
    zlib_bits_per_token_many,
    zlib_entropies,
    zlib_entropy,
)

__all__ = [
    "ATTACKS",
    "AuditConfig",
    "EXTRACTION_SETTINGS",
    "ScanOptions",
    "ScanAudit",
    "ScanResult",
    "approximate_match",
    "attack_scores",
    "audit_scan",
    "default_batch_size",
    "example_losses",
    "extraction_column",
    "extraction_rate",
    "greedy_reference",
    "own_greedy_sequences",
    "scan",
    "scan_with",
    "zlib_bits_per_token",
    "zlib_bits_per_token_many",
    "zlib_entropies",
    "zlib_entropy",
]
