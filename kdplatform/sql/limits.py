"""The limits of one console query (rows, bytes, seconds, DuckDB memory and threads), validated, and the
collector that stops fetching when a limit is reached."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from kdplatform.sql.check import QueryRefused

MAX_ROWS = 10_000
MAX_BYTES = 50_000_000
TIMEOUT_S = 30.0
MEMORY_LIMIT_BYTES = 1 << 30
THREADS = 2


def positive_seconds(value: float, name: str = "timeout_s") -> float:
    """`value` as seconds, or QueryRefused: zero, negative, NaN or infinite would disable the limit."""
    try:
        s = float(value)
    except (TypeError, ValueError):
        raise QueryRefused(f"{name} must be a number of seconds, not {value!r}") from None
    if not math.isfinite(s) or s <= 0:
        raise QueryRefused(f"{name} must be a positive, finite number of seconds, not {value!r}")
    return s


def positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise QueryRefused(f"{name} must be a positive integer, not {value!r}")
    return value


@dataclass(frozen=True)
class Limits:
    """What one query may take. Validated on creation, so no caller can pass a limit that disables itself."""

    max_rows: int = MAX_ROWS
    max_bytes: int = MAX_BYTES
    timeout_s: float = TIMEOUT_S
    memory_limit_bytes: int = MEMORY_LIMIT_BYTES
    threads: int = THREADS

    def __post_init__(self) -> None:
        positive_int(self.max_rows, "max_rows")
        positive_int(self.max_bytes, "max_bytes")
        positive_int(self.memory_limit_bytes, "memory_limit_bytes")
        positive_int(self.threads, "threads")
        object.__setattr__(self, "timeout_s", positive_seconds(self.timeout_s))


@dataclass
class Collector:
    """Rows fetched so far; `add` says whether to fetch more. Stops at max_rows + 1 rows (so a cut is known),
    at max_bytes (the rows that fit are kept), or at the deadline (QueryRefused)."""

    limits: Limits
    rows: list = field(default_factory=list)
    nbytes: int = 0
    largest_row: int = 1
    truncated: str | None = None
    deadline: float = 0.0

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.limits.timeout_s

    def add(self, rows) -> bool:
        for row in rows:
            size = row_bytes(row)
            if self.nbytes + size > self.limits.max_bytes:
                self.truncated = "bytes"
                if not self.rows:
                    raise QueryRefused(self.too_big())
                return False
            if len(self.rows) == self.limits.max_rows:
                self.truncated = "rows"
                return False
            self.rows.append(tuple(row))
            self.nbytes += size
            self.largest_row = max(self.largest_row, size)
        self.check_time()
        return True

    def next_chunk(self) -> int:
        """How many rows to fetch next: fewer as rows grow, so one fetch cannot overshoot the byte cap far."""
        room = self.limits.max_bytes - self.nbytes
        return max(1, min(1024, room // (2 * self.largest_row), self.limits.max_rows + 1 - len(self.rows)))

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise QueryRefused(self.too_slow())

    def too_slow(self) -> str:
        return f"query ran longer than the {self.limits.timeout_s:g} s limit and was stopped"

    def too_big(self) -> str:
        return f"a result row is larger than the {self.limits.max_bytes:,}-byte result limit"


def row_bytes(row) -> int:
    """A row's size as the user receives it: text and bytes by length, lists and maps by their text, other
    values 8 bytes."""
    return sum(_value_bytes(v) for v in row)


def _value_bytes(v) -> int:
    if isinstance(v, (str, bytes, bytearray, memoryview)):
        return len(v)
    if isinstance(v, (list, tuple, dict)):
        return len(repr(v))
    return 8
