"""The SQL views, one a file: `<name>.sql` in this folder is the view's definition and its documentation.

Each file starts with a header of `--` lines: a summary paragraph (what one row is, rendered as one
line), a blank `--` line, then one entry per column or group of columns, in the view's column order:

    -- job_id, run_id: the run's.
    -- rate_pct: 100 * memorized / examples; a longer entry goes on
    --     on lines indented by four spaces.

The rest is the view's SELECT, in plain SQL that runs unchanged on DuckDB and PostgreSQL (no dialect
functions, ratios cast to DOUBLE PRECISION before dividing, booleans from CASE). A subquery that several
views share is written once in `parts/<part>.sql` (its own `--` header, then its SELECT) and stands in a
view as the line `-- include parts/<part>.sql`, which the loader replaces by the part's SELECT. The
migrations, the README's view table, the console's list of views and the dashboard all read the views
from here.

A new view is a new file plus its name in `ORDER` (after the views it reads) and a migration that calls
`recreate`, then `materialized.rebuild` (the per-job copies take the views' new columns); changing a view
is an edit to its file and such a migration. A view with a job_id column that groups every scan row may
get a copy: its name in `materialized.MATERIALIZED`, and its readers call `reading.read_job`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from sqlalchemy import Connection, inspect, text

FOLDER = Path(__file__).resolve().parent

# Creation order: every view comes after the views it reads (checked by `load`).
ORDER = (
    "memorization",
    "memorized_examples",
    "memorization_rates",
    "scanned_runs",
    "run_overlap",
    "inherited_examples",
    "inheritance",
    "easy_examples",
    "seed_consistency",
    "example_features",
    "classifier_summary",
    "membership_inference",
    "extraction_rates",
    "prefix_memorization_rates",
    "eval_scores",
    "canary_memorization",
    "text_overlap",
    "scale_hierarchy",
    "cross_scan_examples",
    "cross_scan_overlap",
    "zlib_correlation",
    "approximate_memorization_rates",
    "example_memorization",
    "mechanism_examples",
)

COLUMNS_READ: dict[str, tuple[tuple[str, str], ...]] = {
    "membership_inference": (("scan_results", "loss"),),
    "text_overlap": (("examples", "text_hash"),),
}
"""(table, column) pairs a view reads that a migration added to an existing table: the view is made only
where they exist, as a view over a table that a later migration adds is left out until then."""

_ENTRY = re.compile(r"^([a-z_][a-z0-9_]*(?:, [a-z_][a-z0-9_]*)*): (.+)$")
_RELATION = re.compile(r"(?<!DISTINCT )\b(?:FROM|JOIN)\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)
_INCLUDE = re.compile(r"^( *)-- include (parts/[a-z_]+\.sql) *$", re.MULTILINE)
_CTE = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s+AS\s+(?:NOT\s+)?(?:MATERIALIZED\s*)?\(", re.IGNORECASE)


class ViewFileError(ValueError):
    """A view file whose header does not follow the format above, or an ORDER that does not fit."""


@dataclass(frozen=True)
class Columns:
    """One header entry: the columns it names and what they hold."""

    names: tuple[str, ...]
    doc: str


@dataclass(frozen=True)
class View:
    name: str
    summary: str
    columns: tuple[Columns, ...]
    body: str
    """The SELECT, without the header."""

    @property
    def column_names(self) -> list[str]:
        return [n for c in self.columns for n in c.names]

    @property
    def relations(self) -> frozenset[str]:
        """Tables and views the body reads (its own CTEs left out)."""
        return frozenset(_RELATION.findall(self.body)) - frozenset(_CTE.findall(self.body))


def parse(name: str, source: str) -> View:
    """Split a view file (its includes expanded) into its summary, column entries and body."""
    lines = source.splitlines()
    header: list[str] = []
    while lines and lines[0].startswith("--"):
        header.append(lines.pop(0)[2:])
    body = "\n".join(lines).strip()
    if "" not in header or not body:
        raise ViewFileError(f"{name}.sql: needs a `--` summary, a blank `--` line, column entries and a body")
    blank = header.index("")
    summary = " ".join(line.strip() for line in header[:blank])
    entries: list[list] = []
    for line in header[blank + 1 :]:
        if line.startswith("     ") and entries:
            entries[-1][1] += " " + line.strip()
        elif m := _ENTRY.match(line.removeprefix(" ")):
            entries.append([tuple(m.group(1).split(", ")), m.group(2)])
        else:
            raise ViewFileError(f"{name}.sql: header line {line!r} is not `-- column[, column]: what`")
    if not summary or not entries:
        raise ViewFileError(f"{name}.sql: the header needs a summary and at least one column entry")
    return View(name, summary, tuple(Columns(n, d) for n, d in entries), body)


def expand(source: str) -> str:
    """`source` with each `-- include parts/<part>.sql` line replaced by that part's SELECT (its header
    left out, its own includes expanded), indented as the include line is."""

    def part(m: re.Match) -> str:
        path = FOLDER / m.group(2)
        if not path.is_file():
            raise ViewFileError(f"include of {m.group(2)}: no such file in {FOLDER}")
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("--")]
        lines = expand("\n".join(lines)).splitlines()  # a part may include another part
        return "\n".join(
            m.group(1) + line if line else line for line in "\n".join(lines).strip().splitlines()
        )

    return _INCLUDE.sub(part, source)


def part(name: str) -> str:
    """The SELECT of `parts/<name>.sql` (header left out, includes expanded), for queries outside the
    views that must mean what the views mean (e.g. member_scan_results: scan rows of D only)."""
    return expand(f"-- include parts/{name}.sql")


@cache
def load() -> tuple[View, ...]:
    """Every view, in creation order (each after the views it reads)."""
    files = sorted(p.stem for p in FOLDER.glob("*.sql"))
    if sorted(ORDER) != files:
        raise ViewFileError(f"views.ORDER {sorted(ORDER)} does not list the view files {files}")
    views: list[View] = []
    for name in ORDER:
        view = parse(name, expand((FOLDER / f"{name}.sql").read_text(encoding="utf-8")))
        later = view.relations & (set(ORDER) - {v.name for v in views})
        if later:
            raise ViewFileError(f"{name} reads {sorted(later)}: list it after them in views.ORDER")
        views.append(view)
    return tuple(views)


def names() -> list[str]:
    return [v.name for v in load()]


def get(name: str) -> View:
    return next(v for v in load() if v.name == name)


def drop_all(conn: Connection) -> None:
    """Drop every view of this folder that exists, dependents first (PostgreSQL refuses otherwise)."""
    for view in reversed(load()):
        conn.exec_driver_sql(f"DROP VIEW IF EXISTS {view.name}")


def create_all(conn: Connection) -> list[str]:
    """Create every view whose tables and `COLUMNS_READ` exist (a migration may run before a later one
    adds a table or column that a view reads; that later migration calls `recreate` again). Returns the
    names created."""
    schema = inspect(conn)
    available = set(schema.get_table_names())
    read = {t for pairs in COLUMNS_READ.values() for t, _ in pairs} & available
    columns = {t: {c["name"] for c in schema.get_columns(t)} for t in read}
    created = []
    for view in load():
        missing = [c for t, c in COLUMNS_READ.get(view.name, ()) if c not in columns.get(t, set())]
        if view.relations <= available and not missing:
            conn.execute(text(f"CREATE VIEW {view.name} AS\n{view.body}"))  # text(): escapes % for psycopg
            available.add(view.name)
            created.append(view.name)
    return created


def recreate(conn: Connection) -> list[str]:
    """Bring the database's views to this folder's definitions, in the caller's transaction."""
    drop_all(conn)
    return create_all(conn)


def markdown_table() -> str:
    """The README's view table: each view linked to its file (where its columns are documented)."""
    rows = ["| view | what |", "| --- | --- |"]
    for v in load():
        summary = v.summary.replace("|", "\\|")
        rows.append(f"| [`{v.name}`](kdplatform/store/views/{v.name}.sql) | {summary} |")
    return "\n".join(rows) + "\n"
