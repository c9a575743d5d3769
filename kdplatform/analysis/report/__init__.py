"""The Markdown report of one job: the paper's tables and counts with this job's numbers, all read from SQL
through the analysis modules (sections). Sections whose runs are missing (no hard student, no classifier
run) say so instead of failing.

    kdplatform report JOB --out report.md

`render_report` returns the text alone. `write_report` makes a self-contained results page: a provenance
header (how to regenerate it, package versions, the job's wall time, its description) and PNG figures in
`<stem>-figures/` next to the file (figures), linked relatively.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from kdplatform.analysis.jobs import resolve_job
from kdplatform.analysis.reading import Db, connect
from kdplatform.analysis.report.figures import write_figures
from kdplatform.analysis.report.provenance import header, regenerate_command
from kdplatform.analysis.report.sections import body, title


def _figure_links(figures: list[tuple[str, Path]], base: Path) -> list[str]:
    if not figures:
        return []
    out = ["## Figures", ""]
    for caption, path in figures:
        link = quote(path.relative_to(base).as_posix())
        alt = caption.replace("[", "(").replace("]", ")")
        out += [f"![{alt}]({link})", "", caption, ""]
    return out


def render_report(db: Db, job: int | str) -> str:
    """The report's text alone: no provenance header and no figures, for callers that want the tables."""
    if isinstance(db, str):  # one connection for the report's few dozen queries
        with connect(db) as conn:
            return render_report(conn, job)
    job_id = resolve_job(db, job)
    return "\n".join(title(db, job_id) + body(db, job_id)).rstrip() + "\n"


def write_report(
    db: Db,
    job: int | str,
    path: str | Path,
    *,
    job_yaml: str | Path | None = None,
    options: Sequence[str] = (),
) -> str:
    """Write the results page to `path` and its figures to `<stem>-figures/` beside it; returns the Markdown.

    `job_yaml` (and the CLI `options` it was given, e.g. --workdir) go into the header's regenerate
    command; without it the header has no command.
    """
    if isinstance(db, str):  # one connection for the report's and the figures' queries
        with connect(db) as conn:
            return write_report(conn, job, path, job_yaml=job_yaml, options=options)
    path = Path(path)
    job_id = resolve_job(db, job)
    command = regenerate_command(job_yaml, path, options) if job_yaml is not None else None
    figures = write_figures(db, job_id, path.parent / f"{path.stem}-figures")
    lines = title(db, job_id) + header(db, job_id, command) + body(db, job_id)
    md = "\n".join(lines + _figure_links(figures, path.parent)).rstrip() + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(md)
    return md
