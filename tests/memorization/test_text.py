"""zlib entropy against zlib itself, plus the property the paper relies on."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from kdplatform.memorization import (
    zlib_bits_per_token,
    zlib_bits_per_token_many,
    zlib_entropies,
    zlib_entropy,
)

TEXTS = ["", "hello world", "naïve café — Ünïcödé 🙂", "The quick brown fox jumps over the lazy dog. " * 3]


@pytest.mark.parametrize("text", TEXTS)
def test_zlib_entropy_is_compressed_byte_length(text):
    assert zlib_entropy(text) == len(zlib.compress(text.encode("utf-8")))
    assert zlib_bits_per_token(text, 7) == pytest.approx(8 * len(zlib.compress(text.encode("utf-8"))) / 7)


def test_repetitive_text_compresses_smaller():
    rng = np.random.default_rng(0)
    varied = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz "), size=400))
    repetitive = ("abc " * 100)[:400]
    assert zlib_entropy(repetitive) < zlib_entropy(varied) / 4
    assert zlib_bits_per_token(repetitive, 100) < zlib_bits_per_token(varied, 100)


def test_vectorised_helpers_match_scalar():
    counts = [1, 3, 5, 9]
    np.testing.assert_array_equal(zlib_entropies(TEXTS), [zlib_entropy(t) for t in TEXTS])
    assert zlib_entropies(TEXTS).dtype == np.int64
    np.testing.assert_allclose(
        zlib_bits_per_token_many(TEXTS, counts),
        [zlib_bits_per_token(t, c) for t, c in zip(TEXTS, counts, strict=True)],
    )
    np.testing.assert_allclose(zlib_bits_per_token_many(TEXTS, 4), [zlib_bits_per_token(t, 4) for t in TEXTS])
    assert zlib_entropies([]).shape == (0,)


def test_rejects_nonpositive_token_counts():
    with pytest.raises(ValueError):
        zlib_bits_per_token("abc", 0)
    with pytest.raises(ValueError):
        zlib_bits_per_token_many(["a", "b"], [1, 0])
