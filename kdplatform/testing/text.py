"""Synthetic token windows and their texts, computed in Arrow (no Python loop over examples)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Texts that break naive CSV/COPY or encoding paths.
AWKWARD = [
    "",
    "plain",
    'quote " and "" doubled',
    "comma, separated, text",
    "line one\nline two\r\nline three",
    "tab\there",
    "backslash \\ and \\N and \\.",
    "\\.",
    "NULL",
    "unicode: naïve café – 数据 – 🙂",
    "  leading and trailing spaces  ",
]
EASY = 0.05
"""Examples with a latent difficulty below this repeat a dozen words (low zlib entropy)."""


def words(rng: np.random.Generator, vocab: int) -> list[str]:
    """`vocab` distinct pronounceable words, sorted (word i is token id i)."""
    syll = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "si", "de", "pa", "zu", "ber", "tor", "lin", "gas"]
    out: set[str] = set()
    while len(out) < vocab:
        out.add("".join(rng.choice(syll, size=int(rng.integers(1, 4)))))
    return sorted(out)


def tokens(rng: np.random.Generator, z: np.ndarray, width: int, vocab: int) -> np.ndarray:
    """Token windows [len(z), width]; easy (low z) examples repeat a few words."""
    out = rng.integers(0, vocab, size=(len(z), width), dtype=np.int32)
    easy = z < EASY
    out[easy] = rng.integers(0, 12, size=(int(easy.sum()), width), dtype=np.int32)
    return out


def join(vocab: pa.Array, toks: np.ndarray) -> pa.Array:
    """Space-joined words of each row of token ids."""
    w = vocab.take(pa.array(toks.reshape(-1), pa.int32()))
    rows = pa.FixedSizeListArray.from_arrays(w, toks.shape[1])
    return pc.binary_join(rows.cast(pa.list_(pa.string())), " ")


def join_ids(toks: np.ndarray) -> pa.Array:
    """Space-joined token ids of each row (greedy_continuations.tokens)."""
    rows = pa.FixedSizeListArray.from_arrays(pa.array(toks.reshape(-1).astype(str)), toks.shape[1])
    return pc.binary_join(rows.cast(pa.list_(pa.string())), " ")


def awkward(index: np.ndarray, texts: pa.Array) -> pa.Array:
    """Each text prefixed with an AWKWARD string (chosen by example index); the empty one adds nothing."""
    pre = pa.array(np.array(AWKWARD, dtype=object)[index % len(AWKWARD)], pa.string())
    joined = pc.binary_join_element_wise(pre, texts, " ")
    return pc.if_else(pc.equal(pre, ""), texts, joined)


def greedy_tokens(rng: np.random.Generator, suffix: np.ndarray, match: np.ndarray, vocab: int) -> np.ndarray:
    """What greedy decoding produced: the true suffix up to `match`, then a wrong token and noise."""
    col = np.arange(suffix.shape[1])[None, :]
    m = match[:, None]
    wrong = (suffix + 1 + rng.integers(0, vocab - 1, suffix.shape)) % vocab
    noise = rng.integers(0, vocab, suffix.shape, dtype=np.int32)
    return np.where(col < m, suffix, np.where(col == m, wrong, noise)).astype(np.int32)


def write_tokenizer(vocab: list[str], out: Path) -> None:
    """A word-level tokenizer (token i is word i) so the example browser can split texts on tokens."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit

    tok = Tokenizer(WordLevel({w: i for i, w in enumerate(vocab)} | {"<unk>": len(vocab)}, unk_token="<unk>"))
    tok.pre_tokenizer = WhitespaceSplit()
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))


def token_table(ids: np.ndarray, toks: np.ndarray) -> pa.Table:
    """train.parquet's rows: example_id and the fixed-size token window."""
    flat = pa.array(toks.reshape(-1), pa.int32())
    return pa.table(
        {
            "example_id": pa.array(ids, pa.int64()),
            "tokens": pa.FixedSizeListArray.from_arrays(flat, toks.shape[1]),
        }
    )
