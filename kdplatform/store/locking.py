"""Waiting for DuckDB's locks: the one retry helper every connection path uses, and the gate that
orders a process's page connections around console connections.

DuckDB lets one process write a file (or several read it), so a reader meets a running job's write lock
and a writer meets a reader's; both wait the lock out instead of failing. Within one process DuckDB keeps
one instance per file, shared by every connection opened with the same configuration.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from kdplatform.store.errors import DatabaseUnavailable

T = TypeVar("T")
MAX_DELAY_S = 0.5


class Transient(Exception):
    """A failure before the query ran that a retry may clear (raise it to make wait_out_lock retry)."""


def is_transient(e: BaseException) -> bool:
    """Another process's lock on the file, or another connection of this process opened with a different
    configuration: both go away when the other side closes."""
    if isinstance(e, Transient):
        return True
    msg = str(e).lower()
    return (
        ("lock" in msg and "conflict" in msg)
        or "could not set lock" in msg
        or "different configuration" in msg
    )


def wait_out_lock(fn: Callable[[], T], wait_s: float, what: str | None = None) -> T:
    """`fn()`, retried with backoff while it fails transiently (is_transient), for up to `wait_s` seconds.

    Past the wait it raises DatabaseUnavailable saying that `what` is busy, or, without `what`, the last
    error itself (a writer's caller sees DuckDB's own message)."""
    deadline, delay = time.monotonic() + wait_s, 0.05
    while True:
        try:
            return fn()
        except Exception as e:
            if not is_transient(e):
                raise
            if time.monotonic() + delay > deadline:
                if what is None:
                    raise
                raise DatabaseUnavailable(
                    f"{what} is busy: a job is writing to it. The page shows again once the write is done "
                    f"(DuckDB allows one writer); reload in a few seconds. ({e})"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, MAX_DELAY_S)


class Gate:
    """Orders a process's DuckDB connections to one file around the console.

    The console's connection runs `SET lock_configuration = true`; DuckDB keeps one instance per file while
    any connection is open, so that SET fails whenever another connection is open on an instance a console
    connection already locked. The console therefore opens its connection when no page connection is open
    (new ones wait meanwhile), and consoles run one at a time; page connections share freely. Waits are
    bounded by `wait_s`.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pages = 0
        self._console = False
        self._console_waiting = 0

    def page_open(self, wait_s: float, what: str) -> None:
        deadline = time.monotonic() + wait_s
        with self._cond:
            while self._console or self._console_waiting:
                if not self._cond.wait(timeout=max(0.0, deadline - time.monotonic())):
                    raise DatabaseUnavailable(f"{what} is busy with a console query; reload in a few seconds")
            self._pages += 1

    def page_close(self) -> None:
        with self._cond:
            self._pages -= 1
            self._cond.notify_all()

    @contextmanager
    def console(self, wait_s: float, what: str) -> Iterator[None]:
        deadline = time.monotonic() + wait_s
        with self._cond:
            self._console_waiting += 1
            try:
                while self._console or self._pages:
                    if not self._cond.wait(timeout=max(0.0, deadline - time.monotonic())):
                        raise DatabaseUnavailable(f"{what} is busy; run the query again in a few seconds")
                self._console = True
            finally:
                self._console_waiting -= 1
                self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                self._console = False
                self._cond.notify_all()


_gates: dict[str, Gate] = {}
_gates_lock = threading.Lock()


def gate(path: str | Path) -> Gate:
    """The process's gate for the DuckDB file at `path`."""
    key = str(Path(path).resolve())
    with _gates_lock:
        return _gates.setdefault(key, Gate())
