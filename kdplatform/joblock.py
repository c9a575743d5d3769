"""One writer per job: an exclusive lock on a file in the job's workdir.

`fcntl.flock` is released by the kernel when the holder dies, so a killed job never blocks the next run;
the file's text names the holder for the error message.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import socket
from pathlib import Path


class JobLocked(Exception):
    """Another live process is running this job."""


class JobLock:
    def __init__(self, workdir: Path, job: str):
        self.path = Path(workdir) / ".kdp-job.lock"
        self.job = job
        self._fh = None

    def __enter__(self) -> JobLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise JobLocked(
                f"job {self.job!r} is already running ({holder}); wait for it to finish, or stop that "
                f"process. The lock ({self.path}) is released automatically when it exits."
            ) from None
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
