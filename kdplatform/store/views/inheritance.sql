-- One row per (teacher, student, baseline of the student's seed) triple: n_inherited = |T∩S∖B|,
-- n_teacher_not_baseline, share_of_student, share_of_teacher_not_baseline.
--
-- job_id, dataset_id: the job and the scanned dataset.
-- teacher_run_id, student_run_id, baseline_run_id: each teacher run of the job with each student-role run
--     (role student*) and the baseline run of the student's seed; a student whose seed no baseline has is
--     paired with every baseline. T, S and B are their memorized sets.
-- student_role, student_seed, student_objective, student_temperature: the student run's.
-- baseline_seed: the baseline run's seed.
-- n_teacher, n_student, n_baseline: |T|, |S|, |B|.
-- n_inherited: |T∩S∖B|.
-- n_teacher_not_baseline: |T∖B|.
-- share_of_student: n_inherited / n_student (NULL when S is empty).
-- share_of_teacher_not_baseline: n_inherited / n_teacher_not_baseline (the paper's 18 of 1,955).
WITH o AS MATERIALIZED (
    SELECT * FROM run_overlap
), tb AS (
    SELECT job_id, dataset_id, run_a AS teacher_run_id, run_b AS baseline_run_id, seed_b AS baseline_seed,
           n_a AS n_teacher, n_b AS n_baseline, n_both
    FROM o
    WHERE role_a = 'teacher' AND role_b = 'baseline'
), ts AS (
    SELECT job_id, dataset_id, run_a AS teacher_run_id, run_b AS student_run_id, role_b AS student_role,
           seed_b AS student_seed, objective_b AS student_objective, temperature_b AS student_temperature,
           n_b AS n_student
    FROM o
    WHERE role_a = 'teacher' AND role_b LIKE 'student%'
), triples AS (
    -- parts/triples.sql, built on the pairs: a teacher has a pair with every baseline of its job and dataset
    SELECT ts.job_id, ts.dataset_id, ts.teacher_run_id, ts.student_run_id, tb.baseline_run_id,
           ts.student_role, ts.student_seed, ts.student_objective, ts.student_temperature, tb.baseline_seed,
           tb.n_teacher, ts.n_student, tb.n_baseline, tb.n_both
    FROM ts
    JOIN tb
      ON tb.job_id = ts.job_id AND tb.dataset_id = ts.dataset_id AND tb.teacher_run_id = ts.teacher_run_id
    WHERE tb.baseline_seed = ts.student_seed OR NOT EXISTS (
        SELECT 1 FROM tb b2
        WHERE b2.teacher_run_id = ts.teacher_run_id AND b2.dataset_id = ts.dataset_id
          AND b2.baseline_seed = ts.student_seed)
), inherited AS (
    SELECT teacher_run_id, student_run_id, baseline_run_id, COUNT(*) AS n_inherited
    FROM inherited_examples
    GROUP BY teacher_run_id, student_run_id, baseline_run_id
)
SELECT tr.job_id, tr.dataset_id, tr.teacher_run_id, tr.student_run_id, tr.baseline_run_id, tr.student_role,
       tr.student_seed, tr.student_objective, tr.student_temperature, tr.baseline_seed, tr.n_teacher,
       tr.n_student, tr.n_baseline, COALESCE(i.n_inherited, 0) AS n_inherited,
       tr.n_teacher - tr.n_both AS n_teacher_not_baseline,
       CAST(COALESCE(i.n_inherited, 0) AS DOUBLE PRECISION) / NULLIF(tr.n_student, 0) AS share_of_student,
       CAST(COALESCE(i.n_inherited, 0) AS DOUBLE PRECISION) / NULLIF(tr.n_teacher - tr.n_both, 0)
           AS share_of_teacher_not_baseline
FROM triples tr
LEFT JOIN inherited i
  ON i.teacher_run_id = tr.teacher_run_id AND i.student_run_id = tr.student_run_id
 AND i.baseline_run_id = tr.baseline_run_id
