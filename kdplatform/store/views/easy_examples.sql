-- One row per example memorized by the job's teacher and a baseline seed (Figure 5): zlib entropy,
-- bits/token, teacher and baseline perplexity.
--
-- job_id, dataset_id, example_id: the example, in the job's scanned dataset.
-- zlib_entropy, zlib_bits_per_token: the example's (from examples).
-- teacher_ppl: the teacher's perplexity on it (mean over teacher runs).
-- baseline_ppl: mean over the baseline seeds.
-- n_baseline_runs: baseline runs that scanned it.
-- n_baseline_memorized: baseline runs that memorized it (filter n_baseline_memorized = n_baseline_runs for
--     "every seed").
WITH t AS (
    -- include parts/teacher_examples.sql
), b AS (
    -- include parts/baseline_examples.sql
)
SELECT b.job_id, b.dataset_id, b.example_id, e.zlib_entropy, e.zlib_bits_per_token, t.teacher_ppl,
       b.baseline_ppl, b.n_baseline_runs, b.n_baseline_memorized
FROM b
JOIN t ON t.job_id = b.job_id AND t.dataset_id = b.dataset_id AND t.example_id = b.example_id
LEFT JOIN examples e ON e.dataset_id = b.dataset_id AND e.example_id = b.example_id
WHERE t.teacher_memorized = 1 AND b.n_baseline_memorized > 0
