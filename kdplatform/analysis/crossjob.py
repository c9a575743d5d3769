"""Analyses across jobs on the same texts (issue 19): the paper's cross-family comparisons (section 3.2.1,
Figures 6 and 13) and its scale hierarchy (section 3.2), read from the views `text_overlap`,
`scale_hierarchy`, `cross_scan_examples`, `cross_scan_overlap` and `zlib_correlation`.

Example identity across jobs is the text (examples.text_hash). Jobs of one tokenizer and data section
share their dataset, so their runs compare directly (`text_overlap`, `scale_hierarchy`); a job of another
tokenizer cuts other windows of the same documents, so its models are compared on the first job's texts
by a cross-scan (`cross_scan:` in its spec), which re-tokenizes those texts for it.
"""

from __future__ import annotations

import pandas as pd

from kdplatform.analysis.reading import Db, read

_JOBS = "(SELECT id, name FROM jobs)"


def text_overlap(db: Db, job_id: int | None = None, *, across_jobs: bool = True) -> pd.DataFrame:
    """Every ordered pair of scanned runs on shared texts (the view text_overlap) with both job names;
    only pairs of different jobs with `across_jobs`, only pairs with a run of `job_id` when given."""
    conds = ["o.job_a <> o.job_b"] if across_jobs else []
    conds += ["(o.job_a = :j OR o.job_b = :j)"] if job_id is not None else []
    where = " WHERE " + " AND ".join(conds) if conds else ""
    return read(
        db,
        f"""
        SELECT ja.name AS job_name_a, jb.name AS job_name_b, o.*
        FROM text_overlap o JOIN {_JOBS} ja ON ja.id = o.job_a JOIN {_JOBS} jb ON jb.id = o.job_b{where}
        ORDER BY o.job_a, o.run_a, o.job_b, o.run_b
        """,
        **({} if job_id is None else {"j": job_id}),
    )


def scale_hierarchy(db: Db, job_id: int | None = None) -> pd.DataFrame:
    """Smaller model first, larger second, of one family on shared texts: share_of_small_in_large (the
    paper's 96 % of Pythia-1B's memorized set in the 1.4B, 80 % of the 1.4B's in the 12B); the pairs with
    a run of `job_id` when given."""
    where = "" if job_id is None else " WHERE h.job_small = :j OR h.job_large = :j"
    return read(
        db,
        f"""
        SELECT js.name AS job_name_small, jl.name AS job_name_large, h.*
        FROM scale_hierarchy h
        JOIN {_JOBS} js ON js.id = h.job_small JOIN {_JOBS} jl ON jl.id = h.job_large{where}
        ORDER BY h.model_family, h.params_small, h.params_large, h.run_small, h.run_large
        """,
        **({} if job_id is None else {"j": job_id}),
    )


def cross_scans(db: Db, job_id: int | None = None) -> pd.DataFrame:
    """One row per (cross-scan, scanned model of the other job): the memorized sets of two models on the
    same texts (the view cross_scan_overlap) with both job names; those where `job_id` scanned or was
    scanned when given, else all."""
    where = "" if job_id is None else " WHERE o.job_id = :j OR o.source_job_id = :j"
    return read(
        db,
        f"""
        SELECT j.name AS job_name, js.name AS source_job_name, o.*
        FROM cross_scan_overlap o
        JOIN {_JOBS} j ON j.id = o.job_id JOIN {_JOBS} js ON js.id = o.source_job_id{where}
        ORDER BY o.job_id, o.run_id, o.source_job_id, o.source_run_id
        """,
        **({} if job_id is None else {"j": job_id}),
    )


def cross_ppl_points(db: Db, cross_scan_run_id: int, source_run_id: int) -> pd.DataFrame:
    """Figure 6's points for one cross-scan and one model of the other job: per example either memorized,
    the other model's perplexity (source_ppl), the scanning model's (ppl) and who memorized it
    (`source`, `scanning` or `both`)."""
    df = read(
        db,
        """
        SELECT example_id, text_hash, source_ppl, ppl, source_memorized, memorized,
               source_zlib_bits_per_token, zlib_bits_per_token
        FROM cross_scan_examples
        WHERE cross_scan_run_id = :c AND source_run_id = :s AND (source_memorized OR memorized)
        ORDER BY example_id
        """,
        c=cross_scan_run_id,
        s=source_run_id,
    )
    both = df["source_memorized"].astype(bool) & df["memorized"].astype(bool)
    who = df["source_memorized"].astype(bool).map({True: "source", False: "scanning"})
    return df.assign(memorized_by=who.where(~both, "both"))


def zlib_correlations(db: Db, job_id: int | None = None) -> pd.DataFrame:
    """Per cross-scan: the Pearson r of zlib bits per token under the two tokenizers on its texts (the
    paper's 0.95-0.99), with the scanning job's name; those of `job_id` (the scanning job) when given."""
    where = "" if job_id is None else " WHERE z.job_id = :j"
    return read(
        db,
        f"""
        SELECT j.name AS job_name, z.*
        FROM zlib_correlation z JOIN {_JOBS} j ON j.id = z.job_id{where}
        ORDER BY z.job_id, z.run_id, z.dataset_id
        """,
        **({} if job_id is None else {"j": job_id}),
    )
