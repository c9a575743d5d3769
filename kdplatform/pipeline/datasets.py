"""Dataset rows shared by the stages that make data (`data`, `generate`): content digests, the
find-or-make of a `datasets` row, and the bulk insert of its examples' texts."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kdplatform.pipeline.arrow import with_ids
from kdplatform.store import db
from kdplatform.store.schema import Dataset

HELDOUT_SPLIT = "heldout"
"""examples.split of the held-out non-members scanned for membership inference (D is `train`, the
validation examples `val`); the views tell members from non-members by it."""
HELDOUT_FILE = f"{HELDOUT_SPLIT}.parquet"
"""The held-out split's file in a dataset directory, beside train.parquet and val.parquet."""


def array_digest(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def dataset_row(
    s: Session, digest: str, fill: Callable[[Dataset], None], make: Callable[[], Dataset]
) -> Dataset:
    """The dataset with this content digest: found, or made and filled. Jobs sharing a database may make
    the same dataset at once: the loser of the unique-digest race takes the winner's row."""
    ds = s.scalar(select(Dataset).where(Dataset.digest == digest))
    if ds is not None:
        return ds
    if s.get_bind().dialect.name == "duckdb":  # one writer at a time, and no savepoints
        ds = make()
        s.add(ds)
        s.flush()
        fill(ds)
        return ds
    try:
        with s.begin_nested():
            ds = make()
            s.add(ds)
            s.flush()
            fill(ds)
        return ds
    except IntegrityError:
        return s.scalar(select(Dataset).where(Dataset.digest == digest))


def insert_examples(
    s: Session, ds_id: int, path: Path, tok, prefix_len: int, split: str, seq_len: int | None = None
) -> None:
    """Decoded texts and zlib entropy of an examples file, inserted in bounded chunks; prefix, suffix and
    zlib are of each window's first `seq_len` tokens, the memorization sequence (None: the whole window)."""
    from kdplatform.data.examples import Examples, example_texts

    for batch in pq.ParquetFile(path).iter_batches(batch_size=20_000):
        ex = Examples.from_arrow(pa.Table.from_batches([batch]))
        rows = example_texts(ex, tok, prefix_len, split, seq_len)
        db.bulk_insert(s.connection(), "examples", with_ids(rows, dataset_id=ds_id))
