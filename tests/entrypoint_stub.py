"""docker/entrypoint.sh run outside Docker, with a stand-in `kdplatform` CLI that records its calls: shared by
tests/unit/test_docker_entrypoint.py and tests/store/test_deploy.py (a plain module: pytest puts tests/ on
sys.path, as for pg_server)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ENTRY = Path(__file__).resolve().parents[1] / "docker" / "entrypoint.sh"


def stand_in_cli(tmp_path: Path, then: str = "") -> tuple[dict[str, str], Path, Path]:
    """A stand-in CLI that appends its arguments to calls.txt and then runs the bash lines `then`.

    Returns the environment entrypoint.sh reads (that CLI, an empty jobs folder, a work dir, a PostgreSQL
    URL, no sleep between database tries), the jobs folder and the log."""
    log, jobs = tmp_path / "calls.txt", tmp_path / "jobs"
    jobs.mkdir()
    cli = tmp_path / "kdplatform"
    cli.write_text(f'#!/usr/bin/env bash\necho "$*" >> {log}\n{then}')
    cli.chmod(0o755)
    env = os.environ | {
        "KDP_CLI": str(cli),
        "KDP_JOBS_DIR": str(jobs),
        "KDP_WORK_DIR": str(tmp_path / "w"),
        "KDP_DATABASE_URL": "postgresql://db/kdp",
        "KDP_DB_SLEEP": "0",
    }
    return env, jobs, log


def entry(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """entrypoint.sh with `args`, as the container runs it."""
    return subprocess.run(["bash", str(ENTRY), *args], env=env, capture_output=True, text=True, timeout=30)
