"""Time every dashboard page's library queries on a generated study: 1M examples × 10 trained runs.

    .venv/bin/python bench/dashboard.py                      # 1M examples, a fresh DuckDB under /tmp
    .venv/bin/python bench/dashboard.py --examples 20000     # quicker
    .venv/bin/python bench/dashboard.py --db /tmp/b.duckdb --keep   # reuse it next time (skips generation)

The study is kdplatform.testing's `bench_design`, shaped like the paper's: one job with a teacher, three
baseline seeds, three soft students at T=2, one each at T=1 and T=4, and a hard student (10 trained
runs), each scanned on every example, with teacher KLDs, greedy continuations of near-misses,
checkpoints, lineage and a classifier run. Memorization follows a latent difficulty per example, so sets
overlap as they do in the paper. Rows go in through kdplatform.store.db.bulk_insert from Arrow, chunk by
chunk, as the pipeline writes them, and the job's copies of the slow views are written at the end, as
`kdplatform run` ends (kdplatform/store/materialized.py); a database reused with --db is first brought to
the current schema (migration 0013 writes the copies of one made before it).

Each page's queries are the calls its view makes (uncached); the table prints seconds per call and per
page, slowest page last, each beside its ratio to a plain `SELECT run_id, COUNT(*) FROM scan_results
GROUP BY run_id` over every scan row (10M at the default size), timed in the same run through the same
read path: the ratio is what to compare across machines and loads (the target: every page at most 10x and
1 s). `generate()` is also what tests/app uses for its small synthetic database.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kdplatform.testing import bench_design, build_study  # noqa: E402


def generate(url: str, n_examples: int, *, log: Callable[[str], None] = lambda _: None, **options) -> dict:
    """Fill a fresh database at `url` with the bench study (`options`: those of
    kdplatform.testing.bench_design: seed, workdir, rate_scale, filtered, second_family, write_files);
    return what was written: job ids by name, train run ids by (job, role, objective, temperature,
    seed), the classifier run, the workdir."""
    options["workdir"] = Path(options.get("workdir") or tempfile.mkdtemp(prefix="kdp-bench-"))
    study = build_study(url, bench_design(n_examples, **options), log=log)
    return {
        "jobs": study.jobs,
        "runs": study.trained,
        "workdir": str(study.workdir),
        "classifier_run": study.classifier_runs["bench"],
        "examples": n_examples,
    }


# ---------------------------------------------------------------------------------------------- pages
def page_calls(url: str, job: str = "bench") -> dict[str, list[tuple[str, Callable[[], object]]]]:
    """Each page's library calls, by the names its view in app/views loads them under
    (kdplatform.analysis.calls) and with the arguments it passes (no cache)."""
    from kdplatform import sql
    from kdplatform.analysis import reading
    from kdplatform.analysis.calls import CALLS
    from kdplatform.analysis.jobs import resolve_job

    e = reading.engine(url)
    j = resolve_job(e, job)

    def call(name: str, *args: object, **kwargs: object) -> tuple[str, Callable[[], object]]:
        return name, lambda: CALLS[name](e, *args, **kwargs)

    group = CALLS["student_group"](e, j)
    runs = CALLS["scanned_runs"](e, j)
    three = [int(x) for x in runs["run_id"][:3]]
    cl = CALLS["classifier_run"](e, j)
    example = int(CALLS["search_examples"](e, j, limit=1)["example_id"].iloc[0])
    search = CALLS["search_examples"]
    return {
        "runs & lineage": [call("jobs"), call("runs", j), call("lineage", j), call("datasets", j)]
        + [call("checkpoints", j)],
        "memorization": [call("rates", j), call("rate_summary", j), call("soft_vs_hard", j)],
        "overlap": [call("run_sets", j), call("venn3", *three), call("overlap_matrix", j)]
        + [call("inheritance", j), call("consistency_matrix", j)],
        "easy examples": [call("easy_scatter", j), call("cross_ppl", three[0], three[1])],
        "classifier": [
            call("feature_sample", j, group),
            call("classifier_summary", j),
            ("risk_counts", lambda: CALLS["risk_counts"](e, cl["run_id"], cl["group"]) if cl else None),
            call("filtering_summary", j),
        ],
        "mechanism": [call("mechanism_points", j), call("kld_categories", j, group)],
        "example browser": [
            ("search (most memorized)", lambda: search(e, j)),
            ("search text", lambda: search(e, j, text="kalo")),
            ("search id", lambda: search(e, j, example_id=example)),
            call("example_detail", j, example),
        ],
        "sql console": [
            (
                "rates query",
                lambda: sql.console(url, sql.EXAMPLE_QUERIES["Memorization rate per run (Table 2)"]),
            ),
            ("overlap query", lambda: sql.console(url, sql.EXAMPLE_QUERIES["Pairwise overlap"])),
        ],
    }


GROUP_BY = "SELECT run_id, COUNT(*) AS n FROM scan_results GROUP BY run_id"
"""The yardstick: one pass over every scan row, grouped on the run."""


def group_by_seconds(url: str, repeat: int) -> tuple[float, int]:
    """Best of `repeat` runs of GROUP_BY through the pages' read path (a fresh read-only connection each
    time, as a page's call gets), and the rows it grouped."""
    from kdplatform.analysis import reading

    e = reading.engine(url)
    rows = int(reading.read(e, GROUP_BY)["n"].sum())
    return min(_timed(lambda: reading.read(e, GROUP_BY)) for _ in range(max(repeat, 3))), rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--examples", type=int, default=1_000_000, help="examples in the study (20000: a quick run)"
    )
    p.add_argument("--db", help="DuckDB file (default: a fresh one under /tmp)")
    p.add_argument("--keep", action="store_true", help="keep the database; reuse it when it exists")
    p.add_argument("--repeat", type=int, default=2, help="runs per call; the best is reported")
    args = p.parse_args()
    path = Path(args.db or Path(tempfile.mkdtemp(prefix="kdp-bench-")) / "bench.duckdb")
    url = f"duckdb:///{path}"
    if not path.exists():
        t = time.perf_counter()
        generate(url, args.examples, workdir=path.parent, log=lambda m: print(f"  {m}", flush=True))
        print(f"generated {args.examples:,} examples × 10 runs in {time.perf_counter() - t:.1f} s: {path}")
    else:
        from kdplatform.store import db

        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()
        print(f"reusing {path}")
    print(f"database size {path.stat().st_size / 2**20:.0f} MiB")
    page_totals = []
    base, n_rows = group_by_seconds(url, args.repeat)
    print(f"plain GROUP BY run_id over {n_rows:,} scan rows: {base:.3f} s (ratio 1)")
    print(f"\n{'page':<18} {'query':<26} {'seconds':>8} {'ratio':>7}")
    for page, calls in page_calls(url).items():
        total = 0.0
        for name, fn in calls:
            best = min(_timed(fn) for _ in range(args.repeat))
            total += best
            print(f"{page:<18} {name:<26} {best:8.3f} {best / base:7.1f}")
        page_totals.append((total, page))
    after, _ = group_by_seconds(url, args.repeat)
    print(f"\nplain GROUP BY run_id again: {after:.3f} s (the ratios use the first, {base:.3f} s)")
    print("page totals (uncached, one load):")
    for total, page in sorted(page_totals):
        print(f"  {page:<18} {total:8.3f} s {total / base:7.1f}x")
    total, page = max(page_totals)
    print(
        f"\nslowest page: {page} ({total:.2f} s, {total / base:.1f}x the GROUP BY, for its queries on "
        f"{args.examples:,} examples × 10 runs)"
    )
    if not args.keep and not args.db:
        path.unlink(missing_ok=True)


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    sys.exit(main())
