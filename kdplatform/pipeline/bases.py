"""The bases' cache, shared by the jobs beside each other: tokenized pretraining windows and trained bases.

    <cache_dir>/corpus/<digest>/{train,val}.parquet   the corpus's windows, in D's tokenizer
    <cache_dir>/<stage hash>/                         a trained base (save_pretrained) and base.json

`base.json` is written last, inside the staging directory that is renamed into place, so a directory
holding it is a finished base. It records the tokenizer's digest: the stage hash names the data fields
the tokenizer is built from, but not the machine's corpus (another Python's standard library gives
another tokenizer), so a base is reused only by a job whose tokenizer files are the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kdplatform.pipeline.datasets import array_digest
from kdplatform.pipeline.errors import DataError
from kdplatform.pipeline.layout import Layout, building, publish
from kdplatform.spec import CorpusSpec, hash_config

BASE_FILE = "base.json"


def tokenizer_digest(tok_dir: Path) -> str:
    """A digest of a saved tokenizer's files (names and bytes)."""
    h = hashlib.sha256()
    for f in sorted(p for p in Path(tok_dir).iterdir() if p.is_file()):
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class CodeWindows:
    """The corpus's training and held-out windows [N, L], where they are stored, and their digest."""

    train: np.ndarray
    val: np.ndarray
    path: Path
    digest: str


def code_windows(
    layout: Layout, corpus: CorpusSpec, tok, tok_digest: str, seq_len: int, echo: Callable[[str], None]
) -> CodeWindows:
    """The corpus cut into windows of `seq_len` tokens of D's tokenizer: read from the cache, or built
    (the standard library's walk takes seconds) and cached for the other bases and jobs."""
    from kdplatform.data.code_corpus import code_documents, corpus_identity
    from kdplatform.data.examples import Examples, make_windows, split_examples

    n, v = corpus.num_windows, corpus.val_windows
    corpus_id = corpus_identity(corpus.model_dump(mode="json"))
    out = layout.corpus_dir(hash_config({"corpus": corpus_id, "tokenizer": tok_digest, "seq_len": seq_len}))
    if not (out / "val.parquet").exists():
        echo(f"       corpus {corpus.source}: {n}+{v} windows of {seq_len} tokens")
        try:
            with building(out) as tmp:
                docs = code_documents(
                    corpus.source,
                    hf_config=corpus.hf_config,
                    split=corpus.split,
                    text_field=corpus.text_field,
                    max_chars=corpus.max_chars,
                    seed=corpus.seed,
                )
                windows = make_windows(docs, tok, seq_len, n + v)
                if len(windows) < n + v:
                    raise ValueError(
                        f"the corpus gives only {len(windows)} distinct windows of {seq_len} tokens, but "
                        f"pretrain.corpus.num_windows + val_windows = {n + v}; lower them or raise max_chars"
                    )
                train, val = split_examples(windows, n, v)
                train.write(tmp / "train.parquet")
                val.write(tmp / "val.parquet")
        except (ValueError, KeyError, FileNotFoundError, OSError) as e:
            raise DataError(f"pretrain.corpus ({corpus.source}): {e}") from None
    train, val = (Examples.read(out / f"{s}.parquet").tokens for s in ("train", "val"))
    digest = hash_config({"train": array_digest(train), "val": array_digest(val), "tokenizer": tok_digest})
    return CodeWindows(train, val, out, digest)


def read_base(out: Path) -> dict[str, Any] | None:
    """The record of the finished base cached at `out`; None when there is none."""
    path = out / BASE_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def check_tokenizer(record: dict[str, Any], out: Path, tok_digest: str) -> None:
    """A cached base trained with another tokenizer than this job's cannot be reused: a clear error."""
    if record["tokenizer"] != tok_digest:
        raise DataError(
            f"the cached base {out} was trained with another tokenizer (digest {record['tokenizer']}) than "
            f"this job's data stage built ({tok_digest}), e.g. on another Python's standard library; set "
            "pretrain.cache_dir to another directory, or remove that one to retrain it"
        )


def publish_base(tmp: Path, out: Path, record: dict[str, Any]) -> None:
    """Write base.json into the staged base and move it into place, unless another job finished the
    same base first (the same content by construction: its copy is kept)."""
    (tmp / BASE_FILE).write_text(json.dumps(record, indent=1, sort_keys=True))
    if (out / BASE_FILE).is_file():
        shutil.rmtree(tmp, ignore_errors=True)
        return
    publish(tmp, out)
