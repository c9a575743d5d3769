"""Text sources: the offline built-in corpus, a hub dataset, or local files.

The built-in corpus is real human-written English that every fresh machine has without downloads: the
docstrings of the Python standard library (read with `ast`, so nothing is imported) and the licence texts
Debian ships in /usr/share/common-licenses. Its exact content depends on the Python version, which the
dataset row records through its digest.
"""

from __future__ import annotations

import ast
import json
import random
import stat
import sysconfig
from collections.abc import Iterator
from pathlib import Path

MIN_DOC_CHARS = 200
LICENSE_DIR = Path("/usr/share/common-licenses")
_SKIP_PARTS = {"test", "tests", "idlelib", "site-packages", "lib2to3", "turtledemo", "__pycache__"}


def stdlib_files() -> Iterator[Path]:
    """The standard library's source files the offline corpora read (tests, IDLE, demos skipped), in a
    stable order: D takes their docstrings, the bases' `stdlib-code` corpus the rest."""
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(root.rglob("*.py")):
        if not _SKIP_PARTS.intersection(path.relative_to(root).parts):
            yield path


def _stdlib_docstrings() -> Iterator[str]:
    for path in stdlib_files():
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc and len(doc) >= MIN_DOC_CHARS:
                    yield doc


def _license_texts() -> Iterator[str]:
    if not LICENSE_DIR.is_dir():
        return
    for path in sorted(LICENSE_DIR.iterdir()):
        if path.is_file() and not path.is_symlink():
            try:
                yield path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue


def builtin_documents() -> list[str]:
    """Every document of the offline corpus, in a stable order, exact duplicates removed."""
    seen: set[str] = set()
    docs = []
    for doc in (*_stdlib_docstrings(), *_license_texts()):
        if doc not in seen:
            seen.add(doc)
            docs.append(doc)
    return docs


# `files:PATH`: .txt, .jsonl and .parquet read as a stream that stops at the corpus cap, so a huge file (or
# a `.txt` symlink to /dev/zero) costs at most `max_chars` characters; devices, FIFOs and sockets are
# refused by name. Past the cap the documents are those read first (files in sorted order), as for a hub
# dataset; the shuffle then picks from them.
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


def _hf_documents(name: str, config: str | None, split: str, text_field: str, max_chars: int) -> list[str]:
    from datasets import load_dataset

    ds = load_dataset(name, config, split=split, streaming=True)
    docs, total = [], 0
    for row in ds:
        text = row[text_field]
        docs.append(text)
        total += len(text)
        if total >= max_chars:
            break
    return docs


def load_documents(
    source: str,
    *,
    hf_config: str | None = None,
    split: str = "train",
    text_field: str = "text",
    max_chars: int = 20_000_000,
    seed: int = 0,
) -> list[str]:
    """The documents of a source, shuffled by `seed`, capped at about `max_chars` characters."""
    if source == "builtin":
        docs = builtin_documents()
    elif source.startswith("files:"):
        docs = file_documents(Path(source.removeprefix("files:")), text_field, max_chars)
    elif source.startswith("hf:"):
        docs = _hf_documents(source.removeprefix("hf:"), hf_config, split, text_field, max_chars)
    else:
        raise ValueError(f"unknown data source {source!r}")
    return shuffled_prefix(docs, seed, max_chars)


def shuffled_prefix(docs: list[str], seed: int, max_chars: int) -> list[str]:
    """`docs` shuffled by `seed` (in place), then the first ones up to about `max_chars` characters."""
    random.Random(seed).shuffle(docs)
    out, total = [], 0
    for d in docs:
        if total >= max_chars:
            break
        out.append(d)
        total += len(d)
    return out
