"""Tokenizers and fixed-length training examples with stable ids.

Documents are tokenized, joined with the end-of-text token, and cut into windows of exactly the training
length (`data.train_len`, default `seq_len`; no padding, as the discoverable-memorization test needs prefix
+ suffix). Memorization is tested on each window's first `seq_len` tokens. Exact duplicate windows are
dropped; ids are the window's position in that stable order, so the same corpus, seed and tokenizer always
give the same ids.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from kdplatform.memorization.text import zlib_entropy

EOS = "<|endoftext|>"


def train_tokenizer(docs: list[str], vocab_size: int, out_dir: Path):
    """Train a byte-level BPE locally and save it as a `transformers` fast tokenizer."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        docs, vocab_size=vocab_size, min_frequency=2, special_tokens=[EOS], show_progress=False
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer, eos_token=EOS, bos_token=EOS, unk_token=EOS
    )
    tok.pad_token = EOS
    tok.save_pretrained(out_dir)
    return tok


def load_tokenizer(name_or_path: str | Path, revision: str | None = None):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(name_or_path), revision=revision)
    if tok.eos_token_id is None:
        raise ValueError(f"tokenizer {name_or_path}: has no end-of-text token; documents cannot be joined")
    return tok


@dataclass(frozen=True)
class Examples:
    """Token windows of one split: ids [N] and tokens [N, L]."""

    example_ids: np.ndarray
    tokens: np.ndarray

    def __len__(self) -> int:
        return len(self.example_ids)

    def to_arrow(self) -> pa.Table:
        flat = pa.array(self.tokens.reshape(-1), type=pa.int32())
        col = pa.FixedSizeListArray.from_arrays(flat, self.tokens.shape[1])
        return pa.table({"example_id": pa.array(self.example_ids, pa.int64()), "tokens": col})

    @classmethod
    def from_arrow(cls, table: pa.Table) -> Examples:
        ids = table.column("example_id").to_numpy()
        col = table.column("tokens").combine_chunks()
        width = col.type.list_size
        tokens = col.values.to_numpy(zero_copy_only=False).reshape(-1, width).astype(np.int64)
        return cls(ids, tokens)

    def write(self, path: Path) -> None:
        pq.write_table(self.to_arrow(), path)

    @classmethod
    def read(cls, path: Path) -> Examples:
        return cls.from_arrow(pq.read_table(path))


def make_windows(docs: list[str], tokenizer, seq_len: int, limit: int) -> np.ndarray:
    """Unique windows of `seq_len` tokens (the training length), in corpus order, at most `limit`."""
    eos = tokenizer.eos_token_id
    seen: set[bytes] = set()
    windows: list[np.ndarray] = []
    buf: list[int] = []
    for doc in tqdm(docs, desc="tokenize", unit="doc", leave=False, disable=None):
        buf.extend(tokenizer(doc, add_special_tokens=False)["input_ids"])
        buf.append(eos)
        while len(buf) >= seq_len:
            w = np.asarray(buf[:seq_len], dtype=np.int64)
            del buf[:seq_len]
            key = w.tobytes()
            if key not in seen:
                seen.add(key)
                windows.append(w)
                if len(windows) >= limit:
                    return np.stack(windows)
    if not windows:
        return np.zeros((0, seq_len), dtype=np.int64)
    return np.stack(windows)


def split_examples(windows: np.ndarray, n_train: int, n_val: int) -> tuple[Examples, Examples]:
    """First n_train windows train (ids 0..), the next n_val validation (ids continue)."""
    if len(windows) < n_train + n_val:
        raise ValueError(
            f"the corpus gives only {len(windows)} distinct windows, but data.num_examples + "
            f"data.val_examples = {n_train + n_val}; lower them, shorten seq_len / train_len, or add text"
        )
    ids = np.arange(n_train + n_val, dtype=np.int64)
    return (
        Examples(ids[:n_train], windows[:n_train]),
        Examples(ids[n_train : n_train + n_val], windows[n_train : n_train + n_val]),
    )


def heldout_split(windows: np.ndarray, n_train: int, n_val: int, n_heldout: int) -> Examples:
    """The `n_heldout` windows after D and the validation windows (ids continue): non-members from the
    same distribution, for membership inference."""
    start = n_train + n_val
    if len(windows) < start + n_heldout:
        raise ValueError(
            f"the corpus gives only {len(windows)} distinct windows, but data.num_examples + "
            f"data.val_examples + data.heldout_examples = {start + n_heldout} (heldout_examples defaults "
            "to num_examples); lower them, set heldout_examples, shorten seq_len, or add text"
        )
    ids = np.arange(start, start + n_heldout, dtype=np.int64)
    return Examples(ids, windows[start : start + n_heldout])


def text_hash(text: str) -> str:
    """An example's identity across datasets and tokenizers: the md5 (hex) of its UTF-8 text, which SQL's
    md5() gives too (DuckDB and PostgreSQL), so migration 0009 fills older rows the same way."""
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def example_texts(
    examples: Examples, tokenizer, prefix_len: int, split: str, seq_len: int | None = None
) -> pa.Table:
    """Decoded text, prefix/suffix text and zlib entropy for each example: the `examples` table rows.

    `text` and `n_tokens` describe the whole (training) window; prefix, suffix and zlib entropy describe
    the memorization sequence, its first `seq_len` tokens (None: the whole window), as the paper computes
    zlib over the tested 100 tokens. zlib_bits_per_token is therefore 8 * zlib_entropy / seq_len.
    """
    width = examples.tokens.shape[1]
    seq_len = width if seq_len is None else seq_len
    if not prefix_len < seq_len <= width:
        raise ValueError(f"need prefix_len ({prefix_len}) < seq_len ({seq_len}) <= window width ({width})")
    texts, prefixes, suffixes, zlib = [], [], [], []
    for row in examples.tokens:
        text = tokenizer.decode(row.tolist())
        texts.append(text)
        prefixes.append(tokenizer.decode(row[:prefix_len].tolist()))
        suffixes.append(tokenizer.decode(row[prefix_len:seq_len].tolist()))
        zlib.append(zlib_entropy(text if seq_len == width else tokenizer.decode(row[:seq_len].tolist())))
    zlib_arr = np.asarray(zlib, dtype=np.int64)
    return pa.table(
        {
            "example_id": pa.array(examples.example_ids, pa.int64()),
            "split": pa.array([split] * len(examples), pa.string()),
            "n_tokens": pa.array(np.full(len(examples), width), pa.int32()),
            "text": pa.array(texts, pa.string()),
            "prefix_text": pa.array(prefixes, pa.string()),
            "suffix_text": pa.array(suffixes, pa.string()),
            "zlib_entropy": pa.array(zlib_arr, pa.int64()),
            "zlib_bits_per_token": pa.array(8.0 * zlib_arr / seq_len, pa.float64()),
            "text_hash": pa.array([text_hash(t) for t in texts], pa.string()),
        }
    )
