"""Approximate memorization (rapidfuzz on token ids) against hand cases and an independent dynamic-
programming edit distance on fresh random inputs."""

from __future__ import annotations

import numpy as np
import pytest

from kdplatform.memorization import approximate_match


def _levenshtein(a: list[int], b: list[int]) -> int:
    """Wagner-Fischer, unit costs: the test's own reference."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def test_hand_cases():
    suffix = np.array([[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4]])
    cont = np.array([[1, 2, 3, 4], [2, 3, 4, 9], [1, 2, 9, 4], [5, 6, 7, 8]])
    match, edit = approximate_match(cont, suffix)
    # exact; shifted by one (no position in step, but one deletion and one insertion); one substitution;
    # nothing shared
    np.testing.assert_array_equal(match, [1.0, 0.0, 0.75, 0.0])
    np.testing.assert_array_equal(edit, [0.0, 0.5, 0.25, 1.0])


def test_random_against_dynamic_programming():
    rng = np.random.default_rng()
    n, s = 60, int(rng.integers(5, 30))
    suffix = rng.integers(0, 6, (n, s))
    cont = suffix.copy()
    edits = rng.random((n, s)) < rng.uniform(0, 0.6, (n, 1))
    cont[edits] = rng.integers(0, 6, edits.sum())
    shift = rng.random(n) < 0.3  # drift: drop a token and run on in step
    cont[shift] = np.concatenate([cont[shift, 1:], rng.integers(0, 6, (shift.sum(), 1))], 1)
    cont += 50_000 * (rng.random((n, s)) < 0.05)  # large ids, as real vocabularies have
    match, edit = approximate_match(cont, suffix)
    for i in range(n):
        assert match[i] == pytest.approx(np.mean(cont[i] == suffix[i]), abs=1e-12)
        assert edit[i] == pytest.approx(_levenshtein(list(cont[i]), list(suffix[i])) / s, abs=1e-12)


def test_shapes():
    assert [len(v) for v in approximate_match(np.zeros((0, 4), int), np.zeros((0, 4), int))] == [0, 0]
    match, edit = approximate_match(np.zeros((3, 0), int), np.zeros((3, 0), int))
    assert list(match) == [1, 1, 1] and list(edit) == [0, 0, 0]
    with pytest.raises(ValueError, match="one shape"):
        approximate_match(np.zeros((2, 3), int), np.zeros((2, 4), int))
