"""The `files:PATH` source: .txt, .jsonl and .parquet files read as a stream that stops at the corpus
cap, so a huge file (or a `.txt` symlink to /dev/zero) costs at most `max_chars` characters of memory;
devices, FIFOs and sockets are refused by name, since reading one blocks or never ends.

When the files hold more than the cap, the documents are those read first (files in sorted order), as
for a hub dataset; the shuffle then picks from them.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

SUFFIXES = (".txt", ".jsonl", ".parquet")


def _regular(f: Path) -> Path:
    try:
        mode = f.stat().st_mode
    except OSError as e:
        raise FileNotFoundError(f"{f}: cannot read: {e.strerror or e}") from None
    if not stat.S_ISREG(mode):
        raise ValueError(f"{f}: not a regular file (a device, FIFO or socket); files: reads regular files")
    return f


def _files(path: Path) -> list[Path]:
    if not path.exists():
        raise FileNotFoundError(f"files:{path}: no such file or directory; fix data.source's path")
    if not path.is_dir():
        if path.suffix.lower() not in SUFFIXES:
            raise ValueError(f"{path}: unsupported file type {path.suffix!r}; use .txt, .jsonl or .parquet")
        return [_regular(path)]
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in SUFFIXES and not p.is_dir())
    if not files:
        raise FileNotFoundError(f"files:{path}: no .txt, .jsonl or .parquet files found")
    return [_regular(f) for f in files]


def _jsonl(f: Path, text_field: str) -> Iterator[str]:
    with f.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as e:
                raise ValueError(f"{f}:{lineno}: not a JSON line: {e}") from None
            if not isinstance(row, dict) or text_field not in row:
                raise KeyError(f"{f}:{lineno}: no field {text_field!r} (set data.text_field)")
            if not isinstance(row[text_field], str):
                raise ValueError(f"{f}:{lineno}: field {text_field!r} is not a string")
            yield row[text_field]


def _parquet(f: Path, text_field: str) -> Iterator[str]:
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(f).iter_batches(batch_size=1024, columns=[text_field]):
        yield from (str(t) for t in batch.column(0).to_pylist() if t)


def file_documents(path: Path, text_field: str, max_chars: int) -> list[str]:
    """The documents of `files:PATH`, read until about `max_chars` characters (a .txt file is one
    document, read at most up to what is left of the cap)."""
    docs: list[str] = []
    total = 0
    for f in _files(path):
        if total >= max_chars:
            break
        try:
            if f.suffix.lower() == ".txt":
                with f.open(encoding="utf-8") as fh:
                    stream: Iterator[str] = iter([fh.read(max_chars - total)])
            else:
                stream = _jsonl(f, text_field) if f.suffix.lower() == ".jsonl" else _parquet(f, text_field)
            for doc in stream:
                docs.append(doc)
                total += len(doc)
                if total >= max_chars:
                    break
        except UnicodeDecodeError as e:
            raise ValueError(f"{f}: not UTF-8 text (byte {e.start}); files: reads UTF-8") from None
    return docs
