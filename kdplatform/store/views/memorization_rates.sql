-- One row per scanned run that is done: examples of D scanned, memorized and rate_pct (the paper's Table
-- 2; held-out non-members are left out).
--
-- job_id, run_id, role, seed, temperature, objective: the run's.
-- model_name: the run's model (NULL when the run has none).
-- examples: examples scanned.
-- memorized: how many of them the run memorized.
-- rate_pct: 100 * memorized / examples.
SELECT r.job_id, s.run_id, r.role, r.seed, r.temperature, r.objective, m.name AS model_name,
       COUNT(*) AS examples,
       SUM(CASE WHEN s.memorized THEN 1 ELSE 0 END) AS memorized,
       100.0 * SUM(CASE WHEN s.memorized THEN 1 ELSE 0 END) / COUNT(*) AS rate_pct
FROM (
    -- include parts/member_scan_results.sql
) s
JOIN runs r ON r.id = s.run_id
LEFT JOIN models m ON m.id = r.model_id
WHERE r.status = 'done'
GROUP BY r.job_id, s.run_id, r.role, r.seed, r.temperature, r.objective, m.name
