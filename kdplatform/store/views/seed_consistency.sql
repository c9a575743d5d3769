-- One row per (example, student group): how many baseline seeds and student seeds memorized it (Figure 3
-- is one GROUP BY).
--
-- job_id, dataset_id, example_id: the example, in the job's scanned dataset.
-- student_role, student_objective, student_temperature: the student group: the job's runs with one
--     (role, objective, temperature) over their seeds; roles student* are students.
-- n_baseline_runs, n_baseline_memorized: baseline runs that scanned it, and that memorized it.
-- n_student_runs, n_student_memorized: the group's runs that scanned it, and that memorized it. Figure 3
--     is GROUP BY n_baseline_memorized, n_student_memorized for one group; every scanned example has a
--     row, so the (0, 0) cell is complete.
WITH b AS (
    -- include parts/baseline_examples.sql
), st AS (
    -- include parts/student_group_examples.sql
)
SELECT b.job_id, b.dataset_id, b.example_id, st.student_role, st.student_objective,
       st.student_temperature, b.n_baseline_runs, b.n_baseline_memorized, st.n_student_runs,
       st.n_student_memorized
FROM b JOIN st ON st.job_id = b.job_id AND st.dataset_id = b.dataset_id AND st.example_id = b.example_id
