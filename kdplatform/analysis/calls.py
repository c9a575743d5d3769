"""The library calls the dashboard makes, by name: its pages ask `common.load("name", ...)` for them and
bench/dashboard.py times the same names, so both read this one table.

Each takes the read-only engine first, then what the page passes, and makes all its reads in one
connection (`one_connection`): opening a read-only DuckDB file costs tens of milliseconds, paid once per
call instead of once per query.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from kdplatform.analysis import (
    browser,
    canaries,
    classifier_results,
    compare,
    crossjob,
    evaluation,
    features,
    filtering,
    groups,
    jobs,
    lineage,
    membership,
    mia,
    mlflow_links,
    overlap,
    rates,
)
from kdplatform.analysis.reading import Db, connect


def one_connection(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` with its database argument opened once for the whole call (a Connection passes through)."""

    @functools.wraps(fn)
    def call(db: Db, *args: Any, **kwargs: Any) -> Any:
        with connect(db) as conn:
            return fn(conn, *args, **kwargs)

    return call


_CALLS: dict[str, Callable[..., Any]] = {
    "jobs": jobs.jobs,
    "schema_ready": jobs.schema_ready,
    "runs": jobs.runs,
    "lineage": lineage.lineage,
    "datasets": lineage.datasets,
    "checkpoints": lineage.checkpoints,
    "mlflow_links": mlflow_links.mlflow_links,
    "run_sets": overlap.run_sets,
    "overlap_matrix": overlap.overlap_matrix,
    "easy_scatter": features.easy_scatter,
    "feature_sample": features.feature_sample,
    "classifier_run": classifier_results.classifier_run,
    "risk_counts": classifier_results.risk_counts,
    "kld_categories": features.kld_categories,
    "search_examples": browser.search_examples,
    "example_detail": browser.example_detail,
    "scanned_runs": groups.scanned_runs,
    "scanned": groups.scanned,
    "rates": rates.rates,
    "rate_summary": rates.rate_summary,
    "overlap": overlap.overlap,
    "venn3": overlap.venn3,
    "job_venn": overlap.job_venn,
    "inheritance": overlap.inheritance,
    "consistency_matrix": overlap.consistency_matrix,
    "groups": groups.groups,
    "student_group": groups.student_group,
    "classifier_summary": classifier_results.classifier_summary,
    "soft_vs_hard": compare.soft_vs_hard,
    "cross_ppl": compare.cross_ppl,
    "zlib_correlation": compare.zlib_correlation,
    "filtering_summary": filtering.filtering_summary,
    "mechanism_points": mia.mechanism_points,
    "mia": mia.mia,
    "membership_inference": membership.membership_inference,
    "membership_summary": membership.membership_summary,
    "extraction_rates": membership.extraction_rates,
    "prefix_rates": membership.prefix_rates,
    "approximate_rates": membership.approximate_rates,
    "eval_scores": evaluation.eval_scores,
    "eval_summary": evaluation.eval_summary,
    "hard_vs_baseline": evaluation.hard_vs_baseline,
    "canary_memorization": canaries.canary_memorization,
    "canary_summary": canaries.canary_summary,
    "canary_inheritance": canaries.canary_inheritance,
    "text_overlap": crossjob.text_overlap,
    "scale_hierarchy": crossjob.scale_hierarchy,
    "cross_scans": crossjob.cross_scans,
    "cross_ppl_points": crossjob.cross_ppl_points,
    "zlib_correlations": crossjob.zlib_correlations,
}

CALLS: dict[str, Callable[..., Any]] = {name: one_connection(fn) for name, fn in _CALLS.items()}
