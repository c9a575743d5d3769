-- Per (job, dataset, example, student group): the group's runs (its seeds) on that example.
SELECT r.job_id, s.dataset_id, s.example_id, r.role AS student_role, r.objective AS student_objective,
       r.temperature AS student_temperature, COUNT(*) AS n_student_runs,
       CAST(SUM(CASE WHEN s.memorized THEN 1 ELSE 0 END) AS BIGINT) AS n_student_memorized,
       AVG(s.ppl) AS student_ppl, AVG(s.suffix_logprob) AS student_suffix_logprob,
       AVG(s.suffix_entropy) AS student_suffix_entropy
FROM (
    -- include parts/member_scan_results.sql
) s JOIN runs r ON r.id = s.run_id
WHERE r.role LIKE 'student%' AND r.status = 'done'
GROUP BY r.job_id, s.dataset_id, s.example_id, r.role, r.objective, r.temperature
