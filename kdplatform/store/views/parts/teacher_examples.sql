-- Per (job, dataset, example): the job's teacher run(s) on that example.
SELECT r.job_id, s.dataset_id, s.example_id,
       MAX(CASE WHEN s.memorized THEN 1 ELSE 0 END) AS teacher_memorized,
       AVG(s.ppl) AS teacher_ppl, AVG(s.suffix_logprob) AS teacher_suffix_logprob,
       AVG(s.suffix_entropy) AS teacher_suffix_entropy
FROM (
    -- include parts/member_scan_results.sql
) s JOIN runs r ON r.id = s.run_id
WHERE r.role = 'teacher' AND r.status = 'done'
GROUP BY r.job_id, s.dataset_id, s.example_id
