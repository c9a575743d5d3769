"""One run of a job per database: the job lock on (database, job), whichever workdir the run is in.

The workdir's `flock` (kdplatform.joblock) keeps two processes out of one workdir; two workdirs on one
database would still run one job twice and interleave its rows. So a run also holds the job here:
- PostgreSQL: the session advisory lock `job:<name>` (store.postgres.session_lock: `pg_try_advisory_lock`
  held by a dedicated connection for the whole run; the server releases it when that connection or its
  process dies), and a `job_locks` row naming the holder for the message of a run refused meanwhile;
- DuckDB: one process writes the file at a time, so the `job_locks` row, checked and written in one
  transaction, is the lock. A killed run cannot remove its row: a row whose process is gone from this
  host (or whose pid now belongs to a process started later) is stale and taken over.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from kdplatform.store.errors import DatabaseError
from kdplatform.store.postgres import Locked, session_lock

CLOCK_SLACK_S = 2.0
"""How much later than the lock row's start a live holder's process may seem to have started."""


class JobHeld(DatabaseError):
    """The job is running against this database already (from this or another workdir)."""


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    started_at: dt.datetime

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host} since {self.started_at:%Y-%m-%d %H:%M:%S} UTC"

    @property
    def stale(self) -> bool:
        """The holder is gone: a process on this host that no longer runs, or whose pid was reused."""
        if self.host != socket.gethostname():
            return False
        if self.pid == os.getpid():
            return True
        started = process_start(self.pid)
        if started is None:
            return not pid_alive(self.pid)
        return started > self.started_at.replace(tzinfo=dt.UTC).timestamp() + CLOCK_SLACK_S


def me() -> Holder:
    return Holder(socket.gethostname(), os.getpid(), dt.datetime.now(dt.UTC).replace(tzinfo=None))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def process_start(pid: int) -> float | None:
    """When process `pid` started (epoch seconds), from Linux's /proc; None if gone or not Linux."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(ln for ln in Path("/proc/stat").read_text().splitlines() if ln.startswith("btime "))
    except (OSError, StopIteration):
        return None
    ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, counted after the command's ")"
    return int(boot.split()[1]) + ticks / os.sysconf("SC_CLK_TCK")


def _held_message(job: str, holder: Holder | str) -> str:
    return (
        f"job {job!r} is already running against this database ({holder}), from this or another "
        "workdir; wait for it to finish, or stop that process. The lock is released when it exits"
    )


@contextmanager
def hold_job(engine: Engine, job: str) -> Iterator[None]:
    """Hold `job` on `engine`'s database for the block; JobHeld (naming the holder) if a live process does.
    The database must be migrated (its `job_locks` table)."""
    with ExitStack() as held:
        if engine.dialect.name == "postgresql":
            try:
                held.enter_context(session_lock(engine, f"job:{job}"))
            except Locked as e:
                with engine.connect() as conn:
                    holder = _row(conn, job)
                raise JobHeld(_held_message(job, holder or e)) from None
            with engine.begin() as conn:
                _write(conn, job)
        else:
            _claim(engine, job)
        try:
            yield
        finally:
            _release(engine, job)


def _claim(engine: Engine, job: str) -> None:
    with engine.begin() as conn:
        holder = _row(conn, job)
        if holder is not None and not holder.stale:
            msg = _held_message(job, holder)
            if holder.host != socket.gethostname():  # its process cannot be checked from here
                msg += f"; if that process is gone, delete its row: DELETE FROM job_locks WHERE job = '{job}'"
            raise JobHeld(msg)
        _write(conn, job)


def _release(engine: Engine, job: str) -> None:
    """Remove the row if it is still this process's (a run that found it stale may have taken it)."""
    mine = me()
    with engine.begin() as conn:
        holder = _row(conn, job)
        if holder is not None and (holder.host, holder.pid) == (mine.host, mine.pid):
            _delete(conn, job)


def _row(conn: Connection, job: str) -> Holder | None:
    r = conn.execute(text("SELECT host, pid, started_at FROM job_locks WHERE job = :j"), {"j": job}).first()
    return Holder(r.host, r.pid, r.started_at) if r else None


def _write(conn: Connection, job: str) -> None:
    h = me()
    _delete(conn, job)
    conn.execute(
        text("INSERT INTO job_locks (job, host, pid, started_at) VALUES (:j, :h, :p, :s)"),
        {"j": job, "h": h.host, "p": h.pid, "s": h.started_at},
    )


def _delete(conn: Connection, job: str) -> None:
    conn.execute(text("DELETE FROM job_locks WHERE job = :j"), {"j": job})
