"""One writer per workdir, and one job per workdir: an exclusive lock on a file in the workdir, and the
name of the job the workdir belongs to.

`fcntl.flock` is released by the kernel when the holder dies, so a killed job never blocks the next run;
the file's text names the holder for the error message. A workdir's checkpoints, training states and scan
shards are named by stage key (`checkpoints/train-teacher-seed0`), not by job, so a second job there would
overwrite the first one's weights under rows that still point at them: the first job to run in a workdir
claims it (`.kdp-job`, its name) and any other job is refused there. Bases are cached outside the workdir
(`_bases` beside it), so jobs in sibling workdirs still share them. The same job against one database from
two workdirs is kept out by store.job_locks.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import socket
from pathlib import Path

OWNER_FILE = ".kdp-job"
"""The workdir's owner: the name of the one job that writes there."""


class JobLocked(Exception):
    """Another live process is running this job."""


class WorkdirTaken(JobLocked):
    """The workdir belongs to another job."""


def owner_of(workdir: Path) -> str | None:
    """The job the workdir belongs to; None for a workdir no job has claimed yet."""
    try:
        return (Path(workdir) / OWNER_FILE).read_text(encoding="utf-8").strip() or None
    except (FileNotFoundError, NotADirectoryError):
        return None


def check_owner(workdir: Path, job: str) -> None:
    """WorkdirTaken naming the workdir, both jobs and the fix when the workdir belongs to another job."""
    owner = owner_of(workdir)
    if owner is None or owner == job:
        return
    workdir = Path(workdir)
    raise WorkdirTaken(
        f"workdir {workdir} belongs to job {owner!r}: job {job!r} there would overwrite its checkpoints "
        f"(they are named by stage, not by job). Give job {job!r} its own workdir: --workdir "
        f"{workdir.parent / job} (or `workdir:` in its spec; without either a job runs in runs/<name>); "
        f"bases are cached beside the workdirs ({workdir.parent / '_bases'}) and stay shared"
    )


def claim(workdir: Path, job: str) -> None:
    """Record `job` as the workdir's owner (written under a temporary name and renamed)."""
    path = Path(workdir) / OWNER_FILE
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(job + "\n", encoding="utf-8")
    tmp.replace(path)


class JobLock:
    """The workdir's writer lock for `job`, refused (WorkdirTaken) when the workdir is another job's."""

    def __init__(self, workdir: Path, job: str):
        self.path = Path(workdir) / ".kdp-job.lock"
        self.job = job
        self._fh = None

    def __enter__(self) -> JobLock:
        workdir = self.path.parent
        check_owner(workdir, self.job)
        workdir.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            check_owner(workdir, self.job)
            raise JobLocked(
                f"job {self.job!r} is already running ({holder}); wait for it to finish, or stop that "
                f"process. The lock ({self.path}) is released automatically when it exits."
            ) from None
        try:
            check_owner(workdir, self.job)  # again, now that no other writer can claim it meanwhile
            claim(workdir, self.job)
        except BaseException:
            fh.close()
            raise
        fh.seek(0)
        fh.truncate()
        now = dt.datetime.now().isoformat(timespec="seconds")
        fh.write(f"pid {os.getpid()} on {socket.gethostname()} since {now}")
        fh.flush()
        self._fh = fh
        return self

    def __exit__(self, *exc) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None
