-- One row per (run, example) that the run memorized.
--
-- run_id: the trained model's run.
-- example_id, dataset_id: the memorized example.
SELECT run_id, example_id, dataset_id FROM scan_results WHERE memorized
