-- One row per (scanned model, dataset): the run's job, role, seed, temperature, objective, model, examples
-- of D and memorized; only runs that are done (a stale run is in no comparison or group).
--
-- job_id, dataset_id: the job and the scanned dataset.
-- run_id, role, seed, temperature, objective: the trained run's.
-- model_family, model_name: the run's model (NULL when the run has none).
-- examples: examples scanned.
-- memorized: how many of them the run memorized.
WITH per_run AS (
    SELECT s.dataset_id, s.run_id, COUNT(*) AS examples,
           COUNT(*) FILTER (WHERE s.memorized) AS memorized
    FROM (
        -- include parts/member_scan_results.sql
    ) s
    GROUP BY s.dataset_id, s.run_id
)
SELECT r.job_id, s.dataset_id, s.run_id, r.role, r.seed, r.temperature, r.objective,
       m.family AS model_family, m.name AS model_name, s.examples, s.memorized
FROM per_run s
JOIN runs r ON r.id = s.run_id
LEFT JOIN models m ON m.id = r.model_id
WHERE r.status = 'done'
