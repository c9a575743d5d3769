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
WITH sr AS MATERIALIZED (
    SELECT * FROM scanned_runs
), triples AS (
    -- include parts/triples.sql
),
inherited AS (
    SELECT teacher_run_id, student_run_id, baseline_run_id, COUNT(*) AS n_inherited
    FROM inherited_examples
    GROUP BY teacher_run_id, student_run_id, baseline_run_id
),
counted AS (
    SELECT tr.*, COALESCE(i.n_inherited, 0) AS n_inherited,
           tr.n_teacher - COALESCE(o.n_both, 0) AS n_teacher_not_baseline
    FROM triples tr
    LEFT JOIN inherited i
      ON i.teacher_run_id = tr.teacher_run_id AND i.student_run_id = tr.student_run_id
     AND i.baseline_run_id = tr.baseline_run_id
    LEFT JOIN run_overlap o ON o.run_a = tr.teacher_run_id AND o.run_b = tr.baseline_run_id
)
SELECT counted.*,
       CAST(n_inherited AS DOUBLE PRECISION) / NULLIF(n_student, 0) AS share_of_student,
       CAST(n_inherited AS DOUBLE PRECISION) / NULLIF(n_teacher_not_baseline, 0)
           AS share_of_teacher_not_baseline
FROM counted
