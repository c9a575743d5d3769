-- One row per (example, student group): the classifier's features (zlib entropy, teacher/baseline/student
-- perplexity, teacher-baseline and teacher-student KLD, easy) and student_memorized (any seed).
--
-- job_id, dataset_id, example_id: the example, in the job's scanned dataset.
-- student_role, student_objective, student_temperature: the student group: the job's runs with one
--     (role, objective, temperature) over their seeds; roles student* are students.
-- zlib_entropy, zlib_bits_per_token: the example's (from examples).
-- teacher_ppl: the teacher's perplexity (mean over teacher runs).
-- baseline_ppl: mean over the baseline seeds.
-- teacher_baseline_kld: mean over baseline seeds of example_kld with run_id = the baseline run and
--     reference_run_id = the teacher run.
-- student_ppl, teacher_student_kld: means over the group's seeds.
-- teacher_memorized: a teacher run memorized it.
-- n_baseline_runs, n_baseline_memorized: baseline runs that scanned it, and that memorized it.
-- easy: memorized by the teacher and a baseline seed.
-- n_student_runs, n_student_memorized: the group's runs that scanned it, and that memorized it.
-- student_memorized: any seed of the group memorized it (the paper pools its three students).
WITH t AS (
    -- include parts/teacher_examples.sql
), b AS (
    -- include parts/baseline_examples.sql
), st AS (
    -- include parts/student_group_examples.sql
),
kb AS (
    SELECT r.job_id, k.dataset_id, k.example_id, AVG(k.kld) AS teacher_baseline_kld
    FROM example_kld k
    JOIN runs r ON r.id = k.run_id
    JOIN runs rt ON rt.id = k.reference_run_id AND rt.job_id = r.job_id AND rt.status = 'done'
    WHERE r.role = 'baseline' AND rt.role = 'teacher' AND r.status = 'done'
    GROUP BY r.job_id, k.dataset_id, k.example_id
), ks AS (
    SELECT r.job_id, k.dataset_id, k.example_id, r.role AS student_role, r.objective AS student_objective,
           r.temperature AS student_temperature, AVG(k.kld) AS teacher_student_kld
    FROM example_kld k
    JOIN runs r ON r.id = k.run_id
    JOIN runs rt ON rt.id = k.reference_run_id AND rt.job_id = r.job_id AND rt.status = 'done'
    WHERE r.role LIKE 'student%' AND rt.role = 'teacher' AND r.status = 'done'
    GROUP BY r.job_id, k.dataset_id, k.example_id, r.role, r.objective, r.temperature
)
SELECT b.job_id, b.dataset_id, b.example_id, st.student_role, st.student_objective,
       st.student_temperature, e.zlib_entropy, e.zlib_bits_per_token, t.teacher_ppl, b.baseline_ppl,
       kb.teacher_baseline_kld, st.student_ppl, ks.teacher_student_kld,
       (COALESCE(t.teacher_memorized, 0) = 1) AS teacher_memorized, b.n_baseline_runs,
       b.n_baseline_memorized,
       (COALESCE(t.teacher_memorized, 0) = 1 AND b.n_baseline_memorized > 0) AS easy,
       st.n_student_runs, st.n_student_memorized, (st.n_student_memorized > 0) AS student_memorized
FROM b
JOIN st ON st.job_id = b.job_id AND st.dataset_id = b.dataset_id AND st.example_id = b.example_id
LEFT JOIN t ON t.job_id = b.job_id AND t.dataset_id = b.dataset_id AND t.example_id = b.example_id
LEFT JOIN kb ON kb.job_id = b.job_id AND kb.dataset_id = b.dataset_id AND kb.example_id = b.example_id
LEFT JOIN ks
  ON ks.job_id = st.job_id AND ks.dataset_id = st.dataset_id AND ks.example_id = st.example_id
 AND ks.student_role = st.student_role
 AND ks.student_objective IS NOT DISTINCT FROM st.student_objective
 AND ks.student_temperature IS NOT DISTINCT FROM st.student_temperature
LEFT JOIN examples e ON e.dataset_id = b.dataset_id AND e.example_id = b.example_id
