-- One row per ordered pair of scanned runs, of any jobs, whose datasets share texts of D (example
-- identity is the text, examples.text_hash, so datasets of other tokenizers join): n_shared, n_a, n_b,
-- n_both, jaccard, share_of_a_in_b over the shared texts.
--
-- job_a, run_a, role_a, seed_a, model_family_a, model_name_a, dataset_a: run_a's; A is its memorized set.
-- job_b, run_b, role_b, seed_b, model_family_b, model_name_b, dataset_b: run_b's (run_b <> run_a).
-- n_shared: texts of D in both datasets.
-- n_a, n_b: |A|, |B| among the shared texts.
-- n_both: texts both memorized.
-- jaccard: n_both / (n_a + n_b - n_both) (NULL when both are empty).
-- share_of_a_in_b: n_both / n_a (NULL when A is empty).
WITH texts AS (
    SELECT DISTINCT e.dataset_id, e.text_hash
    FROM examples e
    WHERE e.split = 'train' AND e.dataset_id IN (SELECT dataset_id FROM scanned_runs)
), mem AS (
    SELECT DISTINCT m.run_id, e.text_hash
    FROM memorized_examples m
    JOIN examples e ON e.dataset_id = m.dataset_id AND e.example_id = m.example_id
), shared AS (
    SELECT x.dataset_id AS dataset_a, y.dataset_id AS dataset_b, COUNT(*) AS n_shared
    FROM texts x JOIN texts y ON y.text_hash = x.text_hash
    GROUP BY x.dataset_id, y.dataset_id
), mem_in AS (
    SELECT m.run_id, t.dataset_id, COUNT(*) AS n
    FROM mem m JOIN texts t ON t.text_hash = m.text_hash
    GROUP BY m.run_id, t.dataset_id
), inter AS (
    SELECT a.run_id AS run_a, b.run_id AS run_b, COUNT(*) AS n_both
    FROM mem a JOIN mem b ON b.text_hash = a.text_hash AND b.run_id <> a.run_id
    GROUP BY a.run_id, b.run_id
), pairs AS (
    SELECT x.job_id AS job_a, x.run_id AS run_a, x.role AS role_a, x.seed AS seed_a,
           x.model_family AS model_family_a, x.model_name AS model_name_a, x.dataset_id AS dataset_a,
           y.job_id AS job_b, y.run_id AS run_b, y.role AS role_b, y.seed AS seed_b,
           y.model_family AS model_family_b, y.model_name AS model_name_b, y.dataset_id AS dataset_b,
           s.n_shared, COALESCE(ma.n, 0) AS n_a, COALESCE(mb.n, 0) AS n_b, COALESCE(i.n_both, 0) AS n_both
    FROM scanned_runs x
    JOIN scanned_runs y ON y.run_id <> x.run_id
    JOIN shared s ON s.dataset_a = x.dataset_id AND s.dataset_b = y.dataset_id
    LEFT JOIN mem_in ma ON ma.run_id = x.run_id AND ma.dataset_id = y.dataset_id
    LEFT JOIN mem_in mb ON mb.run_id = y.run_id AND mb.dataset_id = x.dataset_id
    LEFT JOIN inter i ON i.run_a = x.run_id AND i.run_b = y.run_id
)
SELECT pairs.*,
       CAST(n_both AS DOUBLE PRECISION) / NULLIF(n_a + n_b - n_both, 0) AS jaccard,
       CAST(n_both AS DOUBLE PRECISION) / NULLIF(n_a, 0) AS share_of_a_in_b
FROM pairs
