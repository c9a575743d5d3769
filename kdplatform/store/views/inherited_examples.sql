-- One row per (teacher, student, baseline, example) memorized by the teacher and the student but not the
-- baseline.
--
-- job_id, dataset_id: the job and the scanned dataset.
-- teacher_run_id, student_run_id, baseline_run_id: a triple of the job's runs: each teacher run with each
--     student-role run (role student*) and the baseline run of the student's seed, or every baseline run
--     when no baseline has that seed.
-- example_id: memorized by the teacher run and the student run, not by the baseline run.
WITH triples AS (
    SELECT t.job_id, t.dataset_id, t.run_id AS teacher_run_id, s.run_id AS student_run_id,
           b.run_id AS baseline_run_id, s.role AS student_role, s.seed AS student_seed,
           s.objective AS student_objective, s.temperature AS student_temperature,
           b.seed AS baseline_seed, t.memorized AS n_teacher, s.memorized AS n_student,
           b.memorized AS n_baseline
    FROM scanned_runs t
    JOIN scanned_runs s ON s.job_id = t.job_id AND s.dataset_id = t.dataset_id AND s.role LIKE 'student%'
    JOIN scanned_runs b ON b.job_id = t.job_id AND b.dataset_id = t.dataset_id AND b.role = 'baseline'
    WHERE t.role = 'teacher'
      AND (b.seed = s.seed OR NOT EXISTS (
            SELECT 1 FROM scanned_runs b2
            WHERE b2.job_id = s.job_id AND b2.dataset_id = s.dataset_id AND b2.role = 'baseline'
              AND b2.seed = s.seed))
)
SELECT tr.job_id, tr.dataset_id, tr.teacher_run_id, tr.student_run_id, tr.baseline_run_id,
       mt.example_id
FROM triples tr
JOIN memorized_examples mt ON mt.run_id = tr.teacher_run_id AND mt.dataset_id = tr.dataset_id
JOIN memorized_examples ms
  ON ms.run_id = tr.student_run_id AND ms.dataset_id = tr.dataset_id AND ms.example_id = mt.example_id
WHERE NOT EXISTS (
    SELECT 1 FROM memorized_examples mb
    WHERE mb.run_id = tr.baseline_run_id AND mb.dataset_id = tr.dataset_id
      AND mb.example_id = mt.example_id)
