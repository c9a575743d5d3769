"""`kdplatform`: a thin command line over the library.

    kdplatform validate jobs/quickstart.yaml
    kdplatform plan jobs/quickstart.yaml
    kdplatform run jobs/quickstart.yaml [--workdir DIR]
    kdplatform status jobs/quickstart.yaml      (or: status JOB_NAME --db URL; status --db URL lists jobs)
    kdplatform prune jobs/quickstart.yaml [--dry-run]   (delete runs whose stage left the plan)
    kdplatform sql "select * from memorization_rates" [--job JOB | --db URL] [--format table|csv|parquet]
                   [--output FILE [--force]] [--timeout S] [--max-rows N] [--max-bytes N]
    kdplatform report jobs/quickstart.yaml [--out report.md [--force]]
    kdplatform venn3 RUN_A RUN_B RUN_C [--job JOB | --db URL]
    kdplatform export jobs/quickstart.yaml --to postgresql://host/db    (and: import ... --from URL)
    kdplatform db upgrade [--job JOB | --db URL]
    kdplatform dashboard [JOB]

Exit codes: 0 success, 1 a failure while running (a stage that failed for a stated reason, e.g. a
non-finite loss, prints one line), 2 bad input (spec, query, database URL).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import kdplatform  # noqa: F401  (sets thread policy before torch loads)
from kdplatform.cli_args import positive_int, scrub, seconds, urls_of
from kdplatform.spec import JobSpec, SpecError, load_spec


def _workdir(spec: JobSpec, override: str | None) -> Path:
    return Path(override or spec.workdir or Path("runs") / spec.name)


def _db_url(args) -> str:
    from kdplatform.store.db import default_url

    if getattr(args, "db", None):
        return args.db
    if not getattr(args, "job", None) and os.environ.get("KDP_DATABASE_URL"):
        return os.environ["KDP_DATABASE_URL"]
    job = getattr(args, "job", None) or "jobs/quickstart.yaml"
    spec = load_spec(job)
    return spec.database_url or default_url(_workdir(spec, getattr(args, "workdir", None)))


def cmd_validate(args) -> int:
    spec = load_spec(args.job)
    from kdplatform.pipeline import plan

    print(f"{args.job}: valid job spec {spec.name!r}, {len(plan(spec).stages)} stages")
    return 0


def cmd_plan(args) -> int:
    from kdplatform.pipeline import JobRunner

    spec = load_spec(args.job)
    runner = JobRunner(spec, _workdir(spec, args.workdir), database_url=args.db)
    for st, why in runner.would_run():
        print(f"{st.key:45s} {st.kind:8s} {runner.plan.hashes[st.key]}  {why}")
    return 0


def cmd_status(args) -> int:
    """Each stage's state, timings and what `run` would do, read-only; without a JOB, the jobs there."""
    from kdplatform.pipeline import JobRunner
    from kdplatform.pipeline.status import render, render_jobs, stored_jobs, stored_spec

    if args.job is None:
        print(render_jobs(stored_jobs(_db_url(args))))
        return 0
    if Path(args.job).is_file() or not args.db:
        spec = load_spec(args.job)
        workdir = _workdir(spec, args.workdir)
    else:  # a job name: the spec it was last run with, from the database
        found = stored_spec(args.db, args.job)
        if found is None:
            raise SpecError(f"{args.job}: no such job file, and no job of that name in {_masked(args.db)}")
        spec, workdir = found
        workdir = args.workdir or workdir
    runner = JobRunner(spec, Path(workdir), database_url=args.db)
    print(render(spec.name, runner.status()))
    stale_runs = runner.stale_runs()
    if stale_runs:
        from kdplatform.pipeline.stale import render as render_stale

        print("\n" + render_stale(stale_runs))
    return 0


def cmd_prune(args) -> int:
    """Delete the job's stale runs (their stage left the plan) and every row they own, in one transaction."""
    from kdplatform.pipeline import JobRunner
    from kdplatform.pipeline.stale import render

    spec = load_spec(args.job)
    runner = JobRunner(spec, _workdir(spec, args.workdir), database_url=args.db)
    print(render(runner.prune(dry_run=args.dry_run), removed=not args.dry_run))
    return 0


def cmd_run(args) -> int:
    from kdplatform.pipeline import JobRunner

    spec = load_spec(args.job)
    workdir = _workdir(spec, args.workdir)
    runner = JobRunner(spec, workdir, database_url=args.db)
    runner.run()
    rates = runner.rates()
    print(
        "\nMemorization rates (discoverable, "
        f"{spec.data.prefix_len}-token prefix, {spec.data.seq_len - spec.data.prefix_len}-token suffix):"
    )
    print(rates.to_string(index=False))
    from kdplatform.analysis.rates import base_losses

    bases = base_losses(runner.engine, runner.job_id)
    if len(bases):
        print(
            "Bases before fine-tuning, validation loss on D's validation split: "
            + ", ".join(f"{b.stage.removeprefix('pretrain/')} {b.val_loss:.3f}" for b in bases.itertuples())
        )
    if spec.eval is not None:
        from kdplatform.analysis.evaluation import eval_summary

        scores = eval_summary(runner.engine, runner.job_id)
        print("\nUtility (lm-evaluation-harness; mean and std over seeds; eval_scores):")
        print(scores.drop(columns=["stderr_mean"]).to_string(index=False))
    from kdplatform.analysis.verdicts import not_measured_line, verdicts

    print("\nThe paper's findings on this job:")
    found = verdicts(runner.engine, spec.name)
    for v in found:
        if v.measured:
            print(f"  {v.line()}")
    if line := not_measured_line(found):
        print(f"  {line}")
    print(f"\ndatabase: {runner.database_url}")
    print(f"mlflow:   {runner.tracking_uri}  (mlflow ui --backend-store-uri {runner.tracking_uri})")
    print(f'query:    kdplatform sql --job {args.job} "select * from memorization_rates"')
    return 0


def cmd_sql(args) -> int:
    from kdplatform.outfile import checked_output, database_file, write_atomically
    from kdplatform.sql import QueryRefused, run_readonly

    url = _db_url(args)
    if args.format == "parquet" and not args.output:
        print("--format parquet needs --output FILE", file=sys.stderr)
        return 2
    out = None
    if args.output:
        protected = {"database": database_file(url), "job spec": getattr(args, "job", None)}
        out = checked_output(args.output, force=args.force, protected=protected)
    try:
        df = run_readonly(
            url, args.query, max_rows=args.max_rows, timeout_s=args.timeout, max_bytes=args.max_bytes
        )
    except QueryRefused as e:
        print(f"refused: {scrub(str(e), url)}", file=sys.stderr)
        return 2
    if out is not None:
        write = {"parquet": df.to_parquet, "csv": df.to_csv}.get(args.format)
        if write is None:
            write_atomically(out, lambda tmp: tmp.write_text(_table(df) + "\n"))
        else:
            write_atomically(out, lambda tmp: write(tmp, index=False))
    elif args.format == "csv":
        df.to_csv(sys.stdout, index=False)
    else:
        print(_table(df))
    if df.attrs.get("truncated") == "rows":
        print(f"(showing the first {args.max_rows} rows; raise --max-rows for more)", file=sys.stderr)
    elif df.attrs.get("truncated") == "bytes":
        print(
            f"(showing the first {len(df)} rows: the result passed --max-bytes {args.max_bytes:,}; "
            "select fewer columns or rows, or raise --max-bytes)",
            file=sys.stderr,
        )
    return 0


def _table(df) -> str:
    return df.to_string(index=False) if len(df) else "(no rows)"


def _masked(url: str) -> str:
    """A database URL fit to print in a report: its password replaced by ***."""
    from kdplatform.store.db import masked_url

    return masked_url(url)


def cmd_report(args) -> int:
    from kdplatform.analysis.report import write_report
    from kdplatform.outfile import checked_output, database_file

    spec = load_spec(args.job)
    default = _workdir(spec, args.workdir) / "report.md"
    out = Path(args.out) if args.out else default
    # The default report is the command's own file (rewritten by each run); any other path is checked.
    protected = {"job spec": args.job, "database": database_file(_db_url(args))}
    checked_output(out, force=args.force or out == default, protected=protected, flag="--out")
    out.parent.mkdir(parents=True, exist_ok=True)
    options = ["--workdir", args.workdir] if args.workdir else []
    if args.db:
        options += ["--db", _masked(args.db)]
    write_report(_db_url(args), spec.name, out, job_yaml=args.job, options=options)
    print(f"report: {out}")
    return 0


def cmd_venn3(args) -> int:
    from kdplatform.analysis.overlap import venn3

    def ids(arg: str) -> list[int]:
        try:
            return [int(x) for x in arg.split(",") if x]
        except ValueError:
            raise SpecError(f"venn3: {arg!r} is not a comma-separated list of run ids") from None

    df = venn3(_db_url(args), ids(args.a), ids(args.b), ids(args.c))
    print(df.to_string(index=False))
    return 0


def cmd_transfer(args) -> int:
    """export: this job's database -> --to URL; import: --from URL -> this job's database."""
    from kdplatform.store.transfer import export_job

    spec = load_spec(args.job)
    here = _db_url(args)
    src, dst = (here, args.to) if args.command == "export" else (args.source, here)
    result = export_job(src, dst, spec.name, replace=args.replace)
    rows = sum(result.inserted.values())
    print(
        f"{args.command}: job {spec.name!r} from {_masked(src)} to {_masked(dst)}: {rows} rows written"
        + ("" if result.changed else " (already there, nothing changed)")
    )
    return 0


def cmd_db(args) -> int:
    from kdplatform.store import db

    engine = db.make_engine(_db_url(args))
    if args.action == "upgrade":
        db.upgrade(engine)
    try:
        current = db.current_revision(engine)
    except Exception as e:
        raise db.DatabaseError(f"cannot read {engine.url}: {e}") from None
    print(f"{engine.url}: schema revision {current} (head {db.head_revision()})")
    return 0


def cmd_dashboard(args) -> int:
    """Streamlit over the job's database; the URL goes to the app in $KDP_DATABASE_URL, never on a command
    line (where `ps` shows it, password and all). Without a JOB or --db, $KDP_DATABASE_URL is used."""
    import os
    import subprocess

    app = Path(__file__).resolve().parents[1] / "app" / "Home.py"
    env_url = os.environ.get("KDP_DATABASE_URL")
    url = env_url if env_url and not (args.db or args.job) else _db_url(args)
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.address",
        args.address,
        "--server.headless",
        "true",
    ]
    print(f"dashboard on http://{args.address}:8501 over {_masked(url)}")
    return subprocess.call(cmd, env={**os.environ, "KDP_DATABASE_URL": url})


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kdplatform", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name, fn, help_ in [
        ("validate", cmd_validate, "check a job spec"),
        ("plan", cmd_plan, "show stages"),
        ("run", cmd_run, "run a job (skips finished stages)"),
    ]:
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("job")
        sp.add_argument("--workdir", help="override the job's workdir")
        sp.add_argument("--db", help="override the job's database URL")
        sp.set_defaults(fn=fn)
    sp = sub.add_parser("status", help="each stage's state, timings and whether `run` would run it")
    sp.add_argument("job", nargs="?", help="job file, or a job's name with --db (none: list the jobs)")
    sp.add_argument("--workdir", help="override the job's workdir")
    sp.add_argument("--db", help="override the job's database URL")
    sp.set_defaults(fn=cmd_status)
    sp = sub.add_parser("prune", help="delete runs whose stage left the plan (stale) and their rows")
    sp.add_argument("job")
    sp.add_argument("--workdir", help="override the job's workdir")
    sp.add_argument("--db", help="override the job's database URL")
    sp.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    sp.set_defaults(fn=cmd_prune)
    sp = sub.add_parser("sql", help="run a read-only query")
    sp.add_argument("query")
    sp.add_argument("--job", help="job file whose database to query (default jobs/quickstart.yaml)")
    sp.add_argument("--workdir")
    sp.add_argument("--db", help="database URL")
    sp.add_argument("--format", choices=["table", "csv", "parquet"], default="table")
    sp.add_argument("--output", help="file to write (needed for --format parquet); never the database")
    sp.add_argument("--force", action="store_true", help="replace an existing --output file")
    sp.add_argument("--max-rows", type=positive_int, default=10_000)
    sp.add_argument("--max-bytes", type=positive_int, default=50_000_000, help="result size cap")
    sp.add_argument("--timeout", type=seconds, default=30.0, help="seconds (positive, finite)")
    sp.set_defaults(fn=cmd_sql)
    sp = sub.add_parser("report", help="write the job's Markdown report (the paper's tables, from SQL)")
    sp.add_argument("job")
    sp.add_argument("--workdir")
    sp.add_argument("--db")
    sp.add_argument("--out", help="output file (default <workdir>/report.md); never the spec or database")
    sp.add_argument("--force", action="store_true", help="replace an existing --out file")
    sp.set_defaults(fn=cmd_report)
    sp = sub.add_parser("venn3", help="the seven region counts of three runs' memorized sets")
    for name in ("a", "b", "c"):
        sp.add_argument(name, help="run id, or comma-separated run ids (their union)")
    sp.add_argument("--job")
    sp.add_argument("--workdir")
    sp.add_argument("--db")
    sp.set_defaults(fn=cmd_venn3)
    for name, flag, dest, help_ in [
        ("export", "--to", "to", "copy a job's rows to another database (e.g. the team PostgreSQL)"),
        ("import", "--from", "source", "copy a job's rows from another database into this job's"),
    ]:
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("job")
        sp.add_argument(flag, dest=dest, required=True, help="SQLAlchemy URL of the other database")
        sp.add_argument("--workdir")
        sp.add_argument("--db", help="this job's database (default: from the job spec)")
        sp.add_argument("--replace", action="store_true", help="replace the job's rows if they differ")
        sp.set_defaults(fn=cmd_transfer)
    sp = sub.add_parser("db", help="database schema")
    sp.add_argument("action", choices=["upgrade", "current"])
    sp.add_argument("--job")
    sp.add_argument("--workdir")
    sp.add_argument("--db")
    sp.set_defaults(fn=cmd_db)
    sp = sub.add_parser("dashboard", help="open the Streamlit dashboard")
    sp.add_argument("job", nargs="?")
    sp.add_argument("--workdir")
    sp.add_argument("--db")
    sp.add_argument("--address", default="localhost", help="bind address (a team server: 0.0.0.0)")
    sp.set_defaults(fn=cmd_dashboard)
    return p


def main(argv: list[str] | None = None) -> int:
    from kdplatform.joblock import JobLocked
    from kdplatform.pipeline import DataError, StageFailed
    from kdplatform.pipeline.stale import PruneBlocked
    from kdplatform.store.db import DatabaseError

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (SpecError, DatabaseError, DataError, JobLocked, PruneBlocked) as e:
        print(f"error: {scrub(str(e), *urls_of(args))}", file=sys.stderr)
        return 2
    except StageFailed as e:
        print(f"error: {scrub(str(e), *urls_of(args))}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
