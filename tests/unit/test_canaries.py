"""Canaries: the spec option and its hash, how many are made and how often the training data hold them,
determinism from the seed, disjointness from D's natural windows, the secret at the end of the suffix."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from kdplatform.data.canaries import DIGITS, Canaries, alternatives, digit_ids, make_canaries, with_copies
from kdplatform.data.examples import make_windows, train_tokenizer
from kdplatform.spec import CanarySpec, DataSpec, JobSpec

DOCS = [f"Document {i}: the quick brown fox {i * 7} jumps over the lazy dog {i % 5}." for i in range(300)]
W, P, L = 40, 16, 32


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return train_tokenizer(DOCS, 300, tmp_path_factory.mktemp("tok"))


def _make(tok, spec: CanarySpec, natural: np.ndarray) -> Canaries:
    return make_canaries(spec, tok, width=W, prefix_len=P, seq_len=L, first_id=500, natural=natural)


def test_counts_copies_and_determinism(tok, tmp_path):
    natural = make_windows(DOCS, tok, W, 50)
    spec = CanarySpec(counts=[1, 3, 5], per_count=4, secret_len=6, seed=7)
    c = _make(tok, spec, natural)
    assert len(c) == spec.n_canaries == 12
    assert c.examples.tokens.shape == (12, W)
    np.testing.assert_array_equal(c.examples.example_ids, np.arange(500, 512))
    assert sorted(np.unique(c.copies, return_counts=True)[1]) == [4, 4, 4]
    rows = with_copies(natural, c.examples, c.copies)
    assert len(rows) == len(natural) + spec.n_rows == 50 + 36
    for i, window in enumerate(c.examples.tokens):
        assert (rows == window).all(axis=1).sum() == c.copies[i]
    again = _make(tok, spec, natural)
    np.testing.assert_array_equal(again.examples.tokens, c.examples.tokens)
    assert again.secrets == c.secrets
    other = _make(tok, spec.model_copy(update={"seed": 8}), natural)
    assert other.secrets != c.secrets
    c.write(tmp_path / "c.parquet")
    back = Canaries.read(tmp_path / "c.parquet")
    np.testing.assert_array_equal(back.examples.tokens, c.examples.tokens)
    np.testing.assert_array_equal(back.copies, c.copies)
    assert back.secrets == c.secrets


def test_disjoint_from_natural_and_secret_ends_the_suffix(tok):
    natural = make_windows(DOCS, tok, W, 50)
    spec = CanarySpec(per_count=3, secret_len=5)
    c = _make(tok, spec, natural)
    prefixes = {w[:P].tobytes() for w in natural}
    own = [w[:P].tobytes() for w in c.examples.tokens]
    assert len(set(own)) == len(own) and not set(own) & prefixes
    digits = digit_ids(tok)
    for window, secret in zip(c.examples.tokens, c.secrets, strict=True):
        assert len(secret) == 5 and set(secret) <= set(DIGITS)
        np.testing.assert_array_equal(window[L - 5 : L], digits[[int(d) for d in secret]])
        assert tok.decode(window[P:L].tolist()).endswith(secret)
        assert (spec.template * 4).endswith(tok.decode(window[P : L - 5].tolist()))  # the template, cut


def test_alternatives_are_deterministic_and_never_the_secret():
    spec = CanarySpec(secret_len=2, alternatives=500, seed=1)
    alt = alternatives(spec, 42, "07")
    assert alt.shape == (500, 2) and not ((alt[:, 0] == 0) & (alt[:, 1] == 7)).any()
    np.testing.assert_array_equal(alt, alternatives(spec, 42, "07"))
    assert not np.array_equal(alt, alternatives(spec, 43, "07"))


def test_a_spec_without_canaries_keeps_its_hash():
    base = {"name": "j", "teacher": {"model": {"preset": "tiny-teacher"}}}
    base |= {
        "baseline": {"model": {"preset": "tiny-student"}},
        "student": {"model": {"preset": "tiny-student"}},
    }
    plain = JobSpec.model_validate(base)
    assert "canaries" not in plain.data.model_dump(mode="json")
    assert plain.content_hash() == JobSpec.model_validate(base | {"data": {"canaries": None}}).content_hash()
    with_c = JobSpec.model_validate(base | {"data": {"canaries": {}}})
    assert with_c.content_hash() != plain.content_hash()
    assert with_c.data.canaries.counts == [1, 2, 4, 8, 16]


def test_spec_refusals():
    with pytest.raises(ValidationError, match="secret_len"):
        DataSpec(seq_len=20, prefix_len=15, canaries=CanarySpec(secret_len=6))
    with pytest.raises(ValidationError, match="distinct"):
        CanarySpec(counts=[1, 1])
    with pytest.raises(ValidationError):
        CanarySpec(counts=[0])
