-- One row per (example, student group) in one of Figure 8's two subsets: memorized by a seed of the group
-- (student_memorized), or by the teacher and a baseline seed but no seed of the group
-- (teacher_baseline_not_student); with each model's mean suffix log-probability and entropy on it.
--
-- job_id, dataset_id, example_id: the example, in the job's scanned dataset (one the group scanned).
-- student_role, student_objective, student_temperature: the student group: the job's runs with one
--     (role, objective, temperature) over their seeds; roles student* are students.
-- subset: student_memorized or teacher_baseline_not_student.
-- teacher_suffix_logprob, teacher_suffix_entropy: means over the teacher runs (NULL: none scanned it).
-- baseline_suffix_logprob, baseline_suffix_entropy: means over the baseline seeds (NULL: none scanned it).
-- student_suffix_logprob, student_suffix_entropy: means over the group's seeds.
WITH t AS (
    -- include parts/teacher_examples.sql
), b AS (
    -- include parts/baseline_examples.sql
), st AS (
    -- include parts/student_group_examples.sql
)
SELECT st.job_id, st.dataset_id, st.example_id, st.student_role, st.student_objective,
       st.student_temperature,
       CASE WHEN st.n_student_memorized > 0 THEN 'student_memorized'
            ELSE 'teacher_baseline_not_student' END AS subset,
       t.teacher_suffix_logprob, t.teacher_suffix_entropy, b.baseline_suffix_logprob,
       b.baseline_suffix_entropy, st.student_suffix_logprob, st.student_suffix_entropy
FROM st
LEFT JOIN b ON b.job_id = st.job_id AND b.dataset_id = st.dataset_id AND b.example_id = st.example_id
LEFT JOIN t ON t.job_id = st.job_id AND t.dataset_id = st.dataset_id AND t.example_id = st.example_id
WHERE st.n_student_memorized > 0 OR (t.teacher_memorized = 1 AND b.n_baseline_memorized > 0)
