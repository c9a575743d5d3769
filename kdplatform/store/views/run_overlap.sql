-- One row per ordered pair of scanned runs of one job and dataset: n_a, n_b, n_both, n_a_only, n_b_only,
-- jaccard, share_of_a_in_b.
--
-- job_id, dataset_id: the job and the scanned dataset.
-- run_a, run_b: the two runs, run_a <> run_b; A and B are their memorized sets.
-- role_a, seed_a, objective_a, temperature_a, model_family_a: run_a's.
-- role_b, seed_b, objective_b, temperature_b, model_family_b: run_b's.
-- n_a, n_b: |A|, |B|.
-- n_both: |A∩B|.
-- n_a_only, n_b_only: |A∖B|, |B∖A|.
-- jaccard: |A∩B| / |A∪B| (NULL when both are empty).
-- share_of_a_in_b: |A∩B| / |A| (NULL when A is empty).
WITH sr AS MATERIALIZED (
    SELECT * FROM scanned_runs
), m AS MATERIALIZED (
    SELECT run_id, dataset_id, example_id FROM memorized_examples
), inter AS (
    SELECT a.run_id AS run_a, b.run_id AS run_b, a.dataset_id, COUNT(*) AS n_both
    FROM m a
    JOIN m b
      ON b.dataset_id = a.dataset_id AND b.example_id = a.example_id AND b.run_id <> a.run_id
    GROUP BY a.run_id, b.run_id, a.dataset_id
), pairs AS (
    SELECT x.job_id, x.dataset_id, x.run_id AS run_a, y.run_id AS run_b,
           x.role AS role_a, x.seed AS seed_a, x.objective AS objective_a,
           x.temperature AS temperature_a, x.model_family AS model_family_a,
           y.role AS role_b, y.seed AS seed_b, y.objective AS objective_b,
           y.temperature AS temperature_b, y.model_family AS model_family_b,
           x.memorized AS n_a, y.memorized AS n_b, COALESCE(i.n_both, 0) AS n_both
    FROM sr x
    JOIN sr y
      ON y.job_id = x.job_id AND y.dataset_id = x.dataset_id AND y.run_id <> x.run_id
    LEFT JOIN inter i ON i.run_a = x.run_id AND i.run_b = y.run_id AND i.dataset_id = x.dataset_id
)
SELECT pairs.*, n_a - n_both AS n_a_only, n_b - n_both AS n_b_only,
       CAST(n_both AS DOUBLE PRECISION) / NULLIF(n_a + n_b - n_both, 0) AS jaccard,
       CAST(n_both AS DOUBLE PRECISION) / NULLIF(n_a, 0) AS share_of_a_in_b
FROM pairs
