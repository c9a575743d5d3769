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


def _where(**filters: object) -> tuple[str, dict[str, object]]:
    """` WHERE a = :a AND ...` for the filters that are not None."""
    given = {k: v for k, v in filters.items() if v is not None}
    return (" WHERE " + " AND ".join(f"{k} = :{k}" for k in given) if given else ""), given


def text_overlap(db: Db, *, across_jobs: bool = True) -> pd.DataFrame:
    """Every ordered pair of scanned runs on shared texts (the view text_overlap) with both job names;
    only pairs of different jobs with `across_jobs`."""
    cond = " WHERE o.job_a <> o.job_b" if across_jobs else ""
    return read(
        db,
        f"""
        SELECT ja.name AS job_name_a, jb.name AS job_name_b, o.*
        FROM text_overlap o JOIN {_JOBS} ja ON ja.id = o.job_a JOIN {_JOBS} jb ON jb.id = o.job_b{cond}
        ORDER BY o.job_a, o.run_a, o.job_b, o.run_b
        """,
    )


def scale_hierarchy(db: Db, model_family: str | None = None) -> pd.DataFrame:
    """Smaller model first, larger second, of one family on shared texts: share_of_small_in_large (the
    paper's 96 % of Pythia-1B's memorized set in the 1.4B, 80 % of the 1.4B's in the 12B)."""
    where, params = _where(model_family=model_family)
    return read(
        db,
        f"""
        SELECT js.name AS job_name_small, jl.name AS job_name_large, h.*
        FROM (SELECT * FROM scale_hierarchy{where}) h
        JOIN {_JOBS} js ON js.id = h.job_small JOIN {_JOBS} jl ON jl.id = h.job_large
        ORDER BY h.model_family, h.params_small, h.params_large, h.run_small, h.run_large
        """,
        **params,
    )


def cross_scans(db: Db, job_id: int | None = None) -> pd.DataFrame:
    """One row per (cross-scan, scanned model of the other job): the memorized sets of two models on the
    same texts (the view cross_scan_overlap) with both job names; the cross-scans of `job_id` when given
    (the job whose model scanned), else all."""
    where, params = _where(job_id=job_id)
    return read(
        db,
        f"""
        SELECT j.name AS job_name, js.name AS source_job_name, o.*
        FROM (SELECT * FROM cross_scan_overlap{where}) o
        JOIN {_JOBS} j ON j.id = o.job_id JOIN {_JOBS} js ON js.id = o.source_job_id
        ORDER BY o.job_id, o.run_id, o.source_job_id, o.source_run_id
        """,
        **params,
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
    paper's 0.95-0.99), with the scanning job's name; those of `job_id` when given."""
    where, params = _where(job_id=job_id)
    return read(
        db,
        f"""
        SELECT j.name AS job_name, z.*
        FROM (SELECT * FROM zlib_correlation{where}) z JOIN {_JOBS} j ON j.id = z.job_id
        ORDER BY z.job_id, z.run_id, z.dataset_id
        """,
        **params,
    )
