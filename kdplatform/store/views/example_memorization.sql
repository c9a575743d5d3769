-- One row per (job, example) that a done run of the job scanned: how many of those runs memorized it and
-- its longest match (the example browser's lists). Held-out non-members are included, as the browser
-- shows them; filter on examples.split to leave them out.
--
-- job_id, dataset_id, example_id: the example, in a dataset the job scanned.
-- n_runs: the job's done runs that scanned it.
-- models_memorized: those of them that memorized it.
-- max_match_len: the longest match of its true suffix among them.
SELECT r.job_id, s.dataset_id, s.example_id, COUNT(*) AS n_runs,
       CAST(SUM(CASE WHEN s.memorized THEN 1 ELSE 0 END) AS BIGINT) AS models_memorized,
       MAX(s.match_len) AS max_match_len
FROM scan_results s
JOIN runs r ON r.id = s.run_id
WHERE r.status = 'done'
GROUP BY r.job_id, s.dataset_id, s.example_id
