"""Output files the CLI writes for the user: never the database or a job spec, never an existing file
unless asked (`--force`), and always written under a temporary name and renamed, so a failed or
interrupted write leaves the old file (or none) rather than half a file."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from kdplatform.spec import SpecError


def checked_output(
    path: str | Path,
    *,
    force: bool = False,
    protected: Mapping[str, str | Path | None] = {},
    flag: str = "--output",
) -> Path:
    """`path`, or SpecError (exit 2) when it is one of the `protected` files ({"database": file, ...}:
    refused even with --force), a directory, or an existing file without `force`."""
    out = Path(path)
    for what, p in protected.items():
        if p is not None and out.exists() and Path(p).exists() and os.path.samefile(out, p):
            raise SpecError(f"{flag} {out} is the {what}; refusing to overwrite it")
    if out.is_dir():
        raise SpecError(f"{flag} {out} is a directory; name a file")
    if out.exists() and not force:
        raise SpecError(f"{flag} {out} exists; refusing to overwrite it (pass --force to replace it)")
    return out


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Call write(tmp) on a temporary name beside `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def database_file(url: str) -> Path | None:
    """The file a DuckDB or SQLite URL names (None for servers and in-memory databases)."""
    from sqlalchemy.engine import make_url

    try:
        u = make_url(url)
    except Exception:
        return None
    if u.get_backend_name() in ("duckdb", "sqlite") and u.database and u.database != ":memory:":
        return Path(u.database)
    return None
