-- One row per scanned run that is done: examples of D scanned, memorized and rate_pct (the paper's Table
-- 2; held-out non-members are left out).
--
-- job_id, run_id, role, seed, temperature, objective: the run's.
-- model_name: the run's model (NULL when the run has none).
-- examples: examples scanned.
-- memorized: how many of them the run memorized.
-- rate_pct: 100 * memorized / examples.
WITH per_run AS (
    SELECT s.run_id, COUNT(*) AS examples, COUNT(*) FILTER (WHERE s.memorized) AS memorized
    FROM (
        -- include parts/member_scan_results.sql
    ) s
    GROUP BY s.run_id
)
SELECT r.job_id, s.run_id, r.role, r.seed, r.temperature, r.objective, m.name AS model_name,
       s.examples, s.memorized, 100.0 * s.memorized / s.examples AS rate_pct
FROM per_run s
JOIN runs r ON r.id = s.run_id
LEFT JOIN models m ON m.id = r.model_id
WHERE r.status = 'done'
