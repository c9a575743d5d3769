"""Synthetic canaries (Carlini et al. 2019): examples of a known secret, inserted into D at controlled
duplication counts, so that memorization and exposure can be measured against how often a model saw them.

A canary is a window of the dataset's example length, built on tokens: a random prefix of `prefix_len`
tokens (unique per canary, so no two canaries or natural examples share a prefix), then the spec's
template repeated to fill the suffix up to the secret, then the secret, `secret_len` single-digit tokens
that end the memorization window; a longer training window continues with the template. Everything is a
function of the spec's seed. The alternatives a secret is ranked among are other digit strings of its
length, drawn from the seed and the canary's id.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kdplatform.data.examples import Examples
from kdplatform.spec import CanarySpec

CANARY_SPLIT = "canary"
"""examples.split of the canaries: recorded once each, never counted as natural examples of D."""
CANARY_FILE = "canaries.parquet"
"""The canaries of a dataset directory (one row each, with its copies and secret), beside train.parquet."""
DIGITS = "0123456789"


@dataclass(frozen=True)
class Canaries:
    """One row per canary: its window, how many copies the training data hold, and its secret."""

    examples: Examples
    copies: np.ndarray
    secrets: list[str]

    def __len__(self) -> int:
        return len(self.examples)

    def write(self, path: Path) -> None:
        t = self.examples.to_arrow()
        t = t.append_column("copies", pa.array(self.copies, pa.int32()))
        pq.write_table(t.append_column("secret", pa.array(self.secrets, pa.string())), path)

    @classmethod
    def read(cls, path: Path) -> Canaries:
        t = pq.read_table(path)
        ex = Examples.from_arrow(t.select(["example_id", "tokens"]))
        return cls(ex, t.column("copies").to_numpy().astype(np.int64), t.column("secret").to_pylist())

    def rows(self) -> pa.Table:
        """The `canaries` table's rows (without dataset_id)."""
        return pa.table(
            {
                "example_id": pa.array(self.examples.example_ids, pa.int64()),
                "copies": pa.array(self.copies, pa.int32()),
                "secret": pa.array(self.secrets, pa.string()),
            }
        )


def digit_ids(tokenizer) -> np.ndarray:
    """The token id of each digit 0-9; ValueError when a digit is not one token of its own."""
    ids = []
    for d in DIGITS:
        got = tokenizer(d, add_special_tokens=False)["input_ids"]
        if len(got) != 1:
            raise ValueError(f"canaries: the digit {d!r} is not a single token of the tokenizer ({got})")
        ids.append(got[0])
    if len(set(ids)) != len(ids):
        raise ValueError("canaries: the tokenizer maps two digits to one token")
    return np.asarray(ids, dtype=np.int64)


def _fill(pattern: np.ndarray, n: int, *, end: bool) -> np.ndarray:
    """`n` tokens of the pattern repeated: ending with a whole pattern (end) or starting with one."""
    if n == 0:
        return pattern[:0]
    reps = np.tile(pattern, -(-n // len(pattern)))
    return reps[len(reps) - n :] if end else reps[:n]


def make_canaries(
    spec: CanarySpec,
    tokenizer,
    *,
    width: int,
    prefix_len: int,
    seq_len: int,
    first_id: int,
    natural: np.ndarray,
) -> Canaries:
    """The spec's canaries, ids from `first_id` on, none sharing a prefix with another or with a window
    of `natural` (D's train, validation and held-out windows, [N, width])."""
    k = spec.secret_len
    if not prefix_len + k <= seq_len <= width:
        raise ValueError(
            f"canaries: need prefix_len ({prefix_len}) + secret_len ({k}) <= seq_len ({seq_len}) <= width"
        )
    template = np.asarray(tokenizer(spec.template, add_special_tokens=False)["input_ids"], dtype=np.int64)
    digits = digit_ids(tokenizer)
    special = set(tokenizer.all_special_ids)
    pool = np.asarray([i for i in range(len(tokenizer)) if i not in special], dtype=np.int64)
    rng = np.random.default_rng([spec.seed, 0xCA7A])
    taken = {w[:prefix_len].tobytes() for w in np.asarray(natural, dtype=np.int64)}
    rows, secrets = [], []
    middle = _fill(template, seq_len - prefix_len - k, end=True)
    tail = _fill(template, width - seq_len, end=False)
    for _ in range(spec.n_canaries):
        prefix = rng.choice(pool, prefix_len)
        while prefix.tobytes() in taken:
            prefix = rng.choice(pool, prefix_len)
        taken.add(prefix.tobytes())
        secret = rng.integers(0, 10, k)
        secrets.append("".join(DIGITS[d] for d in secret))
        rows.append(np.concatenate([prefix, middle, digits[secret], tail]))
    ids = np.arange(first_id, first_id + spec.n_canaries, dtype=np.int64)
    copies = np.repeat(np.asarray(spec.counts, dtype=np.int64), spec.per_count)
    return Canaries(Examples(ids, np.stack(rows)), copies, secrets)


def alternatives(spec: CanarySpec, example_id: int, secret: str) -> np.ndarray:
    """`spec.alternatives` random digit strings of the secret's length, none equal to it, as digit values
    [R, secret_len]: the same for a canary in every model, so exposures compare across models."""
    rng = np.random.default_rng([spec.seed, int(example_id), 0xA17])
    true = np.asarray([DIGITS.index(c) for c in secret])
    alt = rng.integers(0, 10, (spec.alternatives, len(secret)))
    while (same := (alt == true).all(axis=1)).any():
        alt[same] = rng.integers(0, 10, (int(same.sum()), len(secret)))
    return alt


def with_copies(tokens: np.ndarray, canaries: Examples | None, copies: np.ndarray | None) -> np.ndarray:
    """Training rows: the natural windows, then `copies[i]` copies of canary window i (the training loop
    shuffles them each epoch)."""
    if canaries is None or copies is None or not len(canaries):
        return tokens
    return np.concatenate([tokens, np.repeat(canaries.tokens, copies, axis=0)])
