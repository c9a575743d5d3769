"""What stops a stage on purpose: data the spec cannot have, a stage that failed for a stated reason,
and the crash tests' injected kills."""

from __future__ import annotations

import os


class DataError(Exception):
    """The data a spec asks for cannot be built (too little text, a missing file or field)."""


class StageFailed(Exception):
    """A stage stopped for a reason its one-line message states in full (a non-finite training loss,
    naming the stage and the step); the stage is marked failed and `kdplatform run` exits 1 with it."""


def kill_point(name: str) -> None:
    """Fault injection for the crash tests: SIGKILL this process at the named point when
    KDP_KILL_AT names it (e.g. `ingest:scan/train/teacher`). A no-op otherwise."""
    if os.environ.get("KDP_KILL_AT") == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
