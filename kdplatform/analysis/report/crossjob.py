"""The report's "Across jobs" section: this job's runs beside other jobs' on the same texts (issue 19):
the scale hierarchy (section 3.2), the memorized sets of other families on the same texts by cross-scan
(section 3.2.1, Figures 6 and 13) and the zlib bits-per-token correlation between tokenizers."""

from __future__ import annotations

import pandas as pd

from kdplatform.analysis.crossjob import cross_scans, scale_hierarchy, zlib_correlations
from kdplatform.analysis.reading import Db
from kdplatform.analysis.report.markdown import num, share_pct, table


def _hierarchy(db: Db, job_id: int) -> list[str]:
    h = scale_hierarchy(db, job_id)
    if h.empty:
        return []
    rows = [
        [
            f"{r.job_name_small}: {r.role_small} s{r.seed_small}",
            num(r.params_small),
            f"{r.job_name_large}: {r.role_large} s{r.seed_large}",
            num(r.params_large),
            int(r.n_small),
            int(r.n_both),
            share_pct(r.share_of_small_in_large),
        ]
        for r in h.itertuples()
    ]
    head = ["smaller", "parameters", "larger", "parameters", "memorized (smaller)", "also by larger", "share"]
    return [
        "### Scale hierarchy",
        "",
        "Share of the smaller model's memorized set (on the texts both "
        "scanned) that the larger one of the same family also memorized (the paper: 96 % of "
        "Pythia-1B's in the 1.4B baseline, 80 % of the baseline's in the 12B teacher).",
        "",
        table(head, rows),
        "",
    ]


def _cross(db: Db, job_id: int) -> list[str]:
    c = cross_scans(db, job_id)
    if c.empty:
        return []
    rows = [
        [
            f"{r.job_name}: {r.role} s{r.seed} ({r.model_family})",
            f"{r.source_job_name}: {r.source_role} s{r.source_seed} ({r.source_family})",
            int(r.n_texts),
            int(r.n_source),
            int(r.n_scanned),
            int(r.n_both),
            share_pct(r.share_of_source_in_scanned),
        ]
        for r in c.itertuples()
    ]
    head = [
        "scanning model",
        "other job's model",
        "texts",
        "memorized (other)",
        "memorized (scanning)",
        "both",
        "share of other's",
    ]
    return [
        "### Other families on the same texts (cross-scans)",
        "",
        "A cross-scan runs one job's model "
        "on another job's texts, re-tokenized by its own tokenizer: how many of the other model's "
        "memorized texts it memorizes too (the paper: none across Pythia, OLMo-2 and Qwen-3).",
        "",
        table(head, rows),
        "",
    ]


def _zlib(db: Db, job_id: int) -> list[str]:
    z = zlib_correlations(db, job_id)
    if z.empty:
        return []
    rows = [
        [
            f"{r.role} s{r.seed} ({r.model_family})",
            r.source_tokenizer,
            r.tokenizer,
            int(r.n_texts),
            num(r.source_mean_bits),
            num(r.mean_bits),
            "–" if pd.isna(r.pearson_r) else f"{r.pearson_r:.3f}",
        ]
        for r in z.itertuples()
    ]
    head = [
        "cross-scan of",
        "other tokenizer",
        "this tokenizer",
        "texts",
        "bits/token (other)",
        "bits/token (this)",
        "Pearson r",
    ]
    return [
        "### zlib bits per token under two tokenizers",
        "",
        "The same bytes of each scanned text, "
        "compressed once, per token of either tokenizer (the paper: r = 0.95-0.99).",
        "",
        table(head, rows),
        "",
    ]


def crossjob_section(db: Db, job_id: int) -> list[str]:
    """The section's lines; none for a job that shares no texts with another job and has no cross-scan."""
    parts = _hierarchy(db, job_id) + _cross(db, job_id) + _zlib(db, job_id)
    return ["## Across jobs on the same texts", "", *parts] if parts else []
