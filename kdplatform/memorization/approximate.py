"""Approximate memorization: how close a greedy continuation comes to the true suffix when it is not
exact (Pythia's and llm-jp's partial matches).

Two measures per example, on token ids (decoded text would merge or split tokens differently per
tokenizer): the token-match share, the fraction of the S suffix positions whose continuation token is
the true one (Hamming similarity, normalized), and the normalized edit distance, the Levenshtein distance
between the two token sequences divided by S, which forgives a continuation that drifts by an insertion
or a deletion and then runs on in step. Both come from rapidfuzz, which compares sequences of hashables.
"""

from __future__ import annotations

import numpy as np
from rapidfuzz.distance import Hamming, Levenshtein
from rapidfuzz.process import cpdist


def approximate_match(continuation: np.ndarray, suffix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(token_match, edit_distance), float64 [N] each, of continuations [N, S] against suffixes [N, S]:
    1 and 0 for an exact match, 0 and 1 for one that shares no token in order."""
    continuation, suffix = np.asarray(continuation), np.asarray(suffix)
    if continuation.shape != suffix.shape or continuation.ndim != 2:
        raise ValueError(f"need two [N, S] arrays of one shape, got {continuation.shape} and {suffix.shape}")
    n, s = suffix.shape
    if n == 0:
        return np.zeros(0), np.zeros(0)
    if s == 0:
        return np.ones(n), np.zeros(n)
    a, b = continuation.tolist(), suffix.tolist()
    match = cpdist(a, b, scorer=Hamming.normalized_similarity, dtype=np.float64)
    edit = cpdist(a, b, scorer=Levenshtein.normalized_distance, dtype=np.float64)
    return np.asarray(match, dtype=np.float64), np.asarray(edit, dtype=np.float64)
