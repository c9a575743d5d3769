-- One row per (run, example of D) that the run memorized (runs that are done; held-out non-members are
-- left out).
--
-- run_id: the trained model's run.
-- example_id, dataset_id: the memorized example.
SELECT s.run_id, s.example_id, s.dataset_id
FROM (
    -- include parts/member_scan_results.sql
) s JOIN runs r ON r.id = s.run_id
WHERE s.memorized AND r.status = 'done'
