-- One row per (teacher, student, baseline, example) memorized by the teacher and the student but not the
-- baseline.
--
-- job_id, dataset_id: the job and the scanned dataset.
-- teacher_run_id, student_run_id, baseline_run_id: a triple of the job's runs: each teacher run with each
--     student-role run (role student*) and the baseline run of the student's seed, or every baseline run
--     when no baseline has that seed.
-- example_id: memorized by the teacher run and the student run, not by the baseline run.
WITH sr AS MATERIALIZED (
    SELECT * FROM scanned_runs
), m AS MATERIALIZED (
    SELECT run_id, dataset_id, example_id FROM memorized_examples
), triples AS (
    -- include parts/triples.sql
)
SELECT tr.job_id, tr.dataset_id, tr.teacher_run_id, tr.student_run_id, tr.baseline_run_id, mt.example_id
FROM triples tr
JOIN m mt ON mt.run_id = tr.teacher_run_id AND mt.dataset_id = tr.dataset_id
JOIN m ms ON ms.run_id = tr.student_run_id AND ms.dataset_id = tr.dataset_id AND ms.example_id = mt.example_id
LEFT JOIN m mb
  ON mb.run_id = tr.baseline_run_id AND mb.dataset_id = tr.dataset_id AND mb.example_id = mt.example_id
WHERE mb.example_id IS NULL
