-- (triple, example) memorized by the teacher and the student but not the baseline. Reads the including
-- view's CTEs `triples` (parts/triples.sql) and `m AS MATERIALIZED (SELECT run_id, dataset_id, example_id
-- FROM memorized_examples)`: one filtered pass over scan_results for the three memorized sets.
SELECT tr.job_id, tr.dataset_id, tr.teacher_run_id, tr.student_run_id, tr.baseline_run_id, mt.example_id
FROM triples tr
JOIN m mt ON mt.run_id = tr.teacher_run_id AND mt.dataset_id = tr.dataset_id
JOIN m ms ON ms.run_id = tr.student_run_id AND ms.dataset_id = tr.dataset_id AND ms.example_id = mt.example_id
LEFT JOIN m mb
  ON mb.run_id = tr.baseline_run_id AND mb.dataset_id = tr.dataset_id AND mb.example_id = mt.example_id
WHERE mb.example_id IS NULL
