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


def _named(
    db: Db, view: str, names: dict[str, str], order: str, job_id: int | None, cond: str
) -> pd.DataFrame:
    """The rows of `view` (alias v) with the name of each job column in `names` (column -> alias), those
    meeting `cond` (on `:j`) when `job_id` is given, ordered by `order`."""
    joins = " ".join(f"JOIN {_JOBS} {a} ON {a}.id = v.{c}" for c, a in names.items())
    cols = ", ".join(f"{a}.name AS {a}" for a in names.values())
    where = "" if job_id is None else f" WHERE {cond}"
    params = {} if job_id is None else {"j": job_id}
    return read(db, f"SELECT {cols}, v.* FROM {view} v {joins}{where} ORDER BY {order}", **params)


def text_overlap(db: Db, job_id: int | None = None, *, across_jobs: bool = True) -> pd.DataFrame:
    """Every ordered pair of scanned runs on shared texts (the view text_overlap) with both job names
    (job_name_a, job_name_b); only pairs of different jobs with `across_jobs`, only pairs with a run of
    `job_id` when given."""
    names = {"job_a": "job_name_a", "job_b": "job_name_b"}
    df = _named(
        db,
        "text_overlap",
        names,
        "v.job_a, v.run_a, v.job_b, v.run_b",
        job_id,
        "v.job_a = :j OR v.job_b = :j",
    )
    return df[df.job_a != df.job_b].reset_index(drop=True) if across_jobs else df


def scale_hierarchy(db: Db, job_id: int | None = None) -> pd.DataFrame:
    """Smaller model first, larger second, of one family on shared texts: share_of_small_in_large (the
    paper's 96 % of Pythia-1B's memorized set in the 1.4B, 80 % of the 1.4B's in the 12B), with
    job_name_small and job_name_large; the pairs with a run of `job_id` when given."""
    names = {"job_small": "job_name_small", "job_large": "job_name_large"}
    order = "v.model_family, v.params_small, v.params_large, v.run_small, v.run_large"
    return _named(db, "scale_hierarchy", names, order, job_id, "v.job_small = :j OR v.job_large = :j")


def cross_scans(db: Db, job_id: int | None = None) -> pd.DataFrame:
    """One row per (cross-scan, scanned model of the other job): the memorized sets of two models on the
    same texts (the view cross_scan_overlap) with job_name and source_job_name; those where `job_id`
    scanned or was scanned when given, else all."""
    names = {"job_id": "job_name", "source_job_id": "source_job_name"}
    order = "v.job_id, v.run_id, v.source_job_id, v.source_run_id"
    return _named(db, "cross_scan_overlap", names, order, job_id, "v.job_id = :j OR v.source_job_id = :j")


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
    paper's 0.95-0.99), with the scanning job's name (job_name); those of `job_id` (the scanning job)
    when given."""
    order = "v.job_id, v.run_id, v.dataset_id"
    return _named(db, "zlib_correlation", {"job_id": "job_name"}, order, job_id, "v.job_id = :j")
