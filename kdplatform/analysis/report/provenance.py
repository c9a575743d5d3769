"""The results page's header: the job's description, the command that regenerates the page, the job's
wall time and the versions of the packages that wrote it (the database does not record the run's)."""

from __future__ import annotations

import platform
import shlex
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from kdplatform.analysis.jobs import job_info, job_timings
from kdplatform.analysis.reading import Db

VERSIONED = ("kdplatform", "torch", "transformers", "duckdb", "sqlalchemy", "mlflow", "scikit-learn")


def duration(seconds: float) -> str:
    """`12.3 s`, `4 min 05 s` or `2 h 07 min`."""
    s = round(seconds)
    if s < 60:
        return f"{seconds:.1f} s"
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {sec:02d} s"


def versions() -> dict[str, str]:
    """Versions of the environment writing the report (the database does not record the run's)."""
    out = {}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out | {"python": platform.python_version()}


def regenerate_command(job_yaml: str | Path, out: str | Path, options: Sequence[str] = ()) -> str:
    """The shell line that reruns the job (finished stages are skipped) and rewrites this report (`--force`:
    the page exists by then, and `report --out` replaces an existing file only when told to)."""
    run = shlex.join(["kdplatform", "run", str(job_yaml), *options])
    report = shlex.join(["kdplatform", "report", str(job_yaml), *options, "--out", str(out), "--force"])
    return f"{run} && {report}"


def header(db: Db, job_id: int, command: str | None) -> list[str]:
    """The header's Markdown lines; `command` is regenerate_command's line, or None for no such line."""
    info = job_info(db, job_id)
    out: list[str] = []
    description = info["spec"].get("description")
    if isinstance(description, str) and description.strip():
        out += [f"> {line}".rstrip() for line in description.strip().splitlines()] + [""]
    out.append(f"- Job: `{info['name']}` (job {job_id} in its database)")
    if command:
        out.append(f"- Regenerate: `{command}`")
    t = job_timings(db, job_id)
    if t is None:
        out.append("- Wall time: no finished stage has its start and finish stored")
    else:
        out.append(
            f"- Wall time: {duration(t.span_seconds)} from the first stage's start to the last stage's "
            f"finish ({t.first_start:%Y-%m-%d %H:%M} to {t.last_finish:%Y-%m-%d %H:%M} UTC); "
            f"the {t.stages} finished stages took {duration(t.stage_seconds)} in sum"
        )
    v = versions()
    out.append(
        "- Package versions (the environment that wrote this report): "
        + ", ".join(f"{k} {val}" for k, val in v.items())
    )
    return out + [""]
