"""The `data:` section of the tiny pipeline jobs the integration tests write: 16 training windows of 16
tokens from the builtin corpus, a 260-token BPE vocabulary, so a whole job runs in seconds."""

from __future__ import annotations

from typing import Any


def tiny_data(**over: Any) -> dict[str, Any]:
    """A fresh copy of the tiny data section, with `over` replacing its keys."""
    return {
        "num_examples": 16,
        "val_examples": 8,
        "seq_len": 16,
        "prefix_len": 8,
        "max_corpus_chars": 60000,
        "tokenizer": {"vocab_size": 260},
    } | over
