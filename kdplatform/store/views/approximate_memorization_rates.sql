-- One row per scanned run with approximate memorization (the optional approximate stage): how close the
-- greedy continuations of its long matches (members of D whose match_len reaches
-- scan.approximate_min_match) come to the true suffix; runs that are done.
--
-- job_id, run_id, role, seed, temperature, objective: the scanned run's.
-- model_name: the run's model (NULL when the run has none).
-- members: members of D the run's scan scored (scanned_runs.examples).
-- long_matches: members with a long match (rows of approximate_memorization; 0 when none).
-- exact: of them, reproduced exactly (token_match 1: the paper's memorized).
-- token_match_mean, edit_distance_mean: their mean token-match share and normalized edit distance
--     (NULL without long matches).
-- near_90: long matches with token_match >= 0.9 (at most a tenth of the suffix tokens wrong).
-- edit_10: long matches with edit_distance <= 0.1 (within a tenth of S insertions, deletions or
--     substitutions of the true suffix).
-- near_90_pct, edit_10_pct: 100 * near_90 / members and 100 * edit_10 / members, beside the exact rate.
WITH stages AS (
    SELECT ar.id AS stage_run_id, i.input_run_id AS run_id, ar.dataset_id
    FROM runs ar
    JOIN run_inputs i ON i.run_id = ar.id AND i.kind = 'model'
    WHERE ar.kind = 'approximate' AND ar.status = 'done'
)
SELECT r.job_id, g.run_id, r.role, r.seed, r.temperature, r.objective, m.name AS model_name,
       x.examples AS members, COUNT(a.example_id) AS long_matches,
       CAST(SUM(CASE WHEN a.token_match >= 1 THEN 1 ELSE 0 END) AS BIGINT) AS exact,
       AVG(a.token_match) AS token_match_mean, AVG(a.edit_distance) AS edit_distance_mean,
       CAST(SUM(CASE WHEN a.token_match >= 0.9 THEN 1 ELSE 0 END) AS BIGINT) AS near_90,
       CAST(SUM(CASE WHEN a.edit_distance <= 0.1 THEN 1 ELSE 0 END) AS BIGINT) AS edit_10,
       100.0 * CAST(SUM(CASE WHEN a.token_match >= 0.9 THEN 1 ELSE 0 END) AS DOUBLE PRECISION)
           / x.examples AS near_90_pct,
       100.0 * CAST(SUM(CASE WHEN a.edit_distance <= 0.1 THEN 1 ELSE 0 END) AS DOUBLE PRECISION)
           / x.examples AS edit_10_pct
FROM stages g
JOIN runs r ON r.id = g.run_id
JOIN scanned_runs x ON x.run_id = g.run_id AND x.dataset_id = g.dataset_id
LEFT JOIN models m ON m.id = r.model_id
LEFT JOIN approximate_memorization a ON a.scan_run_id = g.stage_run_id
WHERE r.status = 'done'
GROUP BY r.job_id, g.run_id, r.role, r.seed, r.temperature, r.objective, m.name, x.examples
