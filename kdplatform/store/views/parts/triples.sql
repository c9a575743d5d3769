-- (teacher, student, baseline) triples of one job and scanned dataset: every student-role run (role
-- student*) with the baseline of its own seed, or with every baseline when no baseline has that seed. Reads
-- `sr`, the including view's CTE `sr AS MATERIALIZED (SELECT * FROM scanned_runs)`: one pass over
-- scan_results for the four references.
SELECT t.job_id, t.dataset_id, t.run_id AS teacher_run_id, s.run_id AS student_run_id,
       b.run_id AS baseline_run_id, s.role AS student_role, s.seed AS student_seed,
       s.objective AS student_objective, s.temperature AS student_temperature,
       b.seed AS baseline_seed, t.memorized AS n_teacher, s.memorized AS n_student,
       b.memorized AS n_baseline
FROM sr t
JOIN sr s ON s.job_id = t.job_id AND s.dataset_id = t.dataset_id AND s.role LIKE 'student%'
JOIN sr b ON b.job_id = t.job_id AND b.dataset_id = t.dataset_id AND b.role = 'baseline'
WHERE t.role = 'teacher'
  AND (b.seed = s.seed OR NOT EXISTS (
        SELECT 1 FROM sr b2
        WHERE b2.job_id = s.job_id AND b2.dataset_id = s.dataset_id AND b2.role = 'baseline'
          AND b2.seed = s.seed))
