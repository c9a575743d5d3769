"""Time every dashboard page's library queries on a generated study: 1M examples × 10 trained runs.

    .venv/bin/python bench/dashboard.py                      # 1M examples, a fresh DuckDB under /tmp
    .venv/bin/python bench/dashboard.py --examples 20000     # quicker
    .venv/bin/python bench/dashboard.py --db /tmp/b.duckdb --keep   # reuse it next time (skips generation)

The study is kdplatform.testing's `bench_design`, shaped like the paper's: one job with a teacher, three
baseline seeds, three soft students at T=2, one each at T=1 and T=4, and a hard student (10 trained
runs), each scanned on every example, with teacher KLDs, greedy continuations of near-misses,
checkpoints, lineage and a classifier run. Memorization follows a latent difficulty per example, so sets
overlap as they do in the paper. Rows go in through kdplatform.store.db.bulk_insert from Arrow, chunk by
chunk, as the pipeline writes them.

Each page's queries are the calls its view makes (uncached); the table prints seconds per call and per
page, slowest page last. `generate()` is also what tests/app uses for its small synthetic database.
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
    """Each page's library calls, as its view in app/views makes them (no cache)."""
    from kdplatform import sql
    from kdplatform.analysis import (
        browser,
        classifier_results,
        compare,
        features,
        filtering,
        groups,
        jobs,
        lineage,
        mia,
        overlap,
        rates,
        reading,
    )

    e = reading.engine(url)
    j = jobs.resolve_job(e, job)
    group = groups.student_group(e, j)
    runs = groups.scanned_runs(e, j)
    three = [int(x) for x in runs["run_id"][:3]]
    cl = classifier_results.classifier_run(e, j)
    example = int(browser.search_examples(e, j, limit=1)["example_id"].iloc[0])
    return {
        "runs & lineage": [
            ("jobs", lambda: jobs.jobs(e)),
            ("runs", lambda: jobs.runs(e, j)),
            ("lineage", lambda: lineage.lineage(e, j)),
            ("datasets", lambda: lineage.datasets(e, j)),
            ("checkpoints", lambda: lineage.checkpoints(e, j)),
        ],
        "memorization": [
            ("rates", lambda: rates.rates(e, j)),
            ("rate_summary", lambda: rates.rate_summary(e, j)),
            ("soft_vs_hard", lambda: compare.soft_vs_hard(e, j)),
        ],
        "overlap": [
            ("run_sets", lambda: overlap.run_sets(e, j)),
            ("venn3", lambda: overlap.venn3(e, *three)),
            ("overlap_matrix", lambda: overlap.overlap_matrix(e, j)),
            ("inheritance", lambda: overlap.inheritance(e, j)),
            ("consistency_matrix", lambda: overlap.consistency_matrix(e, j)),
        ],
        "easy examples": [
            ("easy_scatter", lambda: features.easy_scatter(e, j)),
            ("cross_ppl", lambda: compare.cross_ppl(e, three[0], three[1])),
        ],
        "classifier": [
            ("feature_sample", lambda: features.feature_sample(e, j, group)),
            ("classifier_summary", lambda: classifier_results.classifier_summary(e, j)),
            (
                "risk_counts",
                lambda: classifier_results.risk_counts(e, cl["run_id"], cl["group"]) if cl else None,
            ),
            ("filtering_summary", lambda: filtering.filtering_summary(e, j)),
        ],
        "mechanism": [
            ("mechanism_points", lambda: mia.mechanism_points(e, j)),
            ("kld_categories", lambda: features.kld_categories(e, j, group)),
        ],
        "example browser": [
            ("search (most memorized)", lambda: browser.search_examples(e, j)),
            ("search text", lambda: browser.search_examples(e, j, text="kalo")),
            ("search id", lambda: browser.search_examples(e, j, example_id=example)),
            ("example_detail", lambda: browser.example_detail(e, j, example)),
        ],
        "sql console": [
            (
                "rates query",
                lambda: sql.console(url, sql.EXAMPLE_QUERIES["Memorization rate per run (Table 2)"]),
            ),
            ("overlap query", lambda: sql.console(url, sql.EXAMPLE_QUERIES["Pairwise overlap"])),
        ],
    }


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
        print(f"reusing {path}")
    print(f"database size {path.stat().st_size / 2**20:.0f} MiB")
    page_totals = []
    print(f"\n{'page':<18} {'query':<26} {'seconds':>8}")
    for page, calls in page_calls(url).items():
        total = 0.0
        for name, fn in calls:
            best = min(_timed(fn) for _ in range(args.repeat))
            total += best
            print(f"{page:<18} {name:<26} {best:8.3f}")
        page_totals.append((total, page))
    print("\npage totals (uncached, one load):")
    for total, page in sorted(page_totals):
        print(f"  {page:<18} {total:8.3f} s")
    total, page = max(page_totals)
    print(f"\nslowest page: {page} ({total:.2f} s for its queries on {args.examples:,} examples × 10 runs)")
    if not args.keep and not args.db:
        path.unlink(missing_ok=True)


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    sys.exit(main())
