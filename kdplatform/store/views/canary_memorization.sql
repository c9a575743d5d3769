-- One row per (scanned run, duplication count) of a job with canaries (data.canaries): how many of the
-- canaries the training data held that many times the run's model reproduces by greedy decoding, and the
-- mean exposure of their secrets (Carlini et al. 2019); runs that are done. Canaries are never examples of
-- D in the other views (examples split canary; no scan_results rows).
--
-- job_id, run_id, role, seed, temperature, objective: the trained model's run (runs.id), as in
--     memorization_rates.
-- dataset_id: the dataset the canaries were inserted into.
-- copies: copies of each of these canaries in the training data.
-- n_canaries: canaries with that many copies.
-- n_memorized: of them, those whose suffix (the template and the secret) greedy decoding of the prefix
--     reproduces exactly.
-- rate: n_memorized / n_canaries.
-- mean_exposure: mean exposure of their secrets in bits, log2(R + 1) - log2(rank) of the true secret among
--     R random alternatives under the model's suffix log-likelihood.
-- max_exposure: log2(R + 1), the exposure of a secret ranked first.
SELECT r.job_id, c.run_id, r.role, r.seed, r.temperature, r.objective, c.dataset_id, k.copies,
       COUNT(*) AS n_canaries,
       SUM(CASE WHEN c.memorized THEN 1 ELSE 0 END) AS n_memorized,
       CAST(SUM(CASE WHEN c.memorized THEN 1 ELSE 0 END) AS DOUBLE PRECISION) / COUNT(*) AS rate,
       AVG(CAST(c.exposure AS DOUBLE PRECISION)) AS mean_exposure,
       MAX(LN(CAST(c.alternatives AS DOUBLE PRECISION) + 1) / LN(2.0)) AS max_exposure
FROM canary_results c
JOIN canaries k ON k.dataset_id = c.dataset_id AND k.example_id = c.example_id
JOIN runs r ON r.id = c.run_id
JOIN runs q ON q.id = c.scan_run_id
WHERE r.status = 'done' AND q.status = 'done'
GROUP BY r.job_id, c.run_id, r.role, r.seed, r.temperature, r.objective, c.dataset_id, k.copies
