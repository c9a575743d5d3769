-- Per (job, dataset, example): the job's baseline runs (all seeds) on that example.
SELECT r.job_id, s.dataset_id, s.example_id, COUNT(*) AS n_baseline_runs,
       CAST(SUM(CASE WHEN s.memorized THEN 1 ELSE 0 END) AS BIGINT) AS n_baseline_memorized,
       AVG(s.ppl) AS baseline_ppl, AVG(s.suffix_logprob) AS baseline_suffix_logprob,
       AVG(s.suffix_entropy) AS baseline_suffix_entropy
FROM (
    -- include parts/member_scan_results.sql
) s JOIN runs r ON r.id = s.run_id
WHERE r.role = 'baseline' AND r.status = 'done'
GROUP BY r.job_id, s.dataset_id, s.example_id
