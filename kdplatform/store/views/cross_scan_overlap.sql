-- One row per (cross-scan, scanned model of the other job): on the other job's texts the cross-scan
-- covered, how many the other model memorized, the scanning model memorized, and both (the memorized
-- sets of two families on the same texts: Figure 13 across families, section 3.2.1).
--
-- cross_scan_run_id, job_id, run_id, role, seed, model_family, model_name: the scanning model's.
-- source_job_id, source_run_id, source_role, source_seed, source_family, source_model_name: the other's.
-- n_texts: texts scanned by both.
-- n_source, n_scanned: memorized by the other model (on its tokens), by the scanning model (on its own).
-- n_both: memorized by both.
-- share_of_source_in_scanned: n_both / n_source (NULL when n_source is 0).
-- jaccard: n_both / (n_source + n_scanned - n_both) (NULL when both are 0).
WITH counts AS (
    SELECT cross_scan_run_id, job_id, run_id, role, seed, model_family, model_name, source_job_id,
           source_run_id, source_role, source_seed, source_family, source_model_name, COUNT(*) AS n_texts,
           CAST(SUM(CASE WHEN source_memorized THEN 1 ELSE 0 END) AS BIGINT) AS n_source,
           CAST(SUM(CASE WHEN memorized THEN 1 ELSE 0 END) AS BIGINT) AS n_scanned,
           CAST(SUM(CASE WHEN memorized AND source_memorized THEN 1 ELSE 0 END) AS BIGINT) AS n_both
    FROM cross_scan_examples
    GROUP BY cross_scan_run_id, job_id, run_id, role, seed, model_family, model_name, source_job_id,
             source_run_id, source_role, source_seed, source_family, source_model_name
)
SELECT counts.*,
       CAST(n_both AS DOUBLE PRECISION) / NULLIF(n_source, 0) AS share_of_source_in_scanned,
       CAST(n_both AS DOUBLE PRECISION) / NULLIF(n_source + n_scanned - n_both, 0) AS jaccard
FROM counts
