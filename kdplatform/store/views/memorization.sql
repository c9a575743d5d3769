-- One row per (scanned run, example of D): its scan_results row with the run's job, role, seed,
-- temperature, objective and model; held-out non-members and runs that are not done (stale ones: no
-- longer in their job's plan) are left out.
--
-- run_id: the trained model's run (runs.id), as in scan_results.
-- example_id, dataset_id: the scanned example.
-- memorized: greedy decoding of the prefix reproduces the true suffix exactly.
-- match_len: length of the suffix's longest matched run of greedy tokens.
-- suffix_logprob: log-probability of the true suffix under the model.
-- suffix_entropy: mean Shannon entropy of the model's distribution over the suffix positions.
-- ppl: perplexity of the suffix.
-- job_id, role, seed, temperature, objective: the run's.
-- model_family, model_name: the run's model (NULL when the run has none).
SELECT s.run_id, s.example_id, s.dataset_id, s.memorized, s.match_len, s.suffix_logprob,
       s.suffix_entropy, s.ppl, r.job_id, r.role, r.seed, r.temperature, r.objective,
       m.family AS model_family, m.name AS model_name
FROM (
    -- include parts/member_scan_results.sql
) s
JOIN runs r ON r.id = s.run_id
LEFT JOIN models m ON m.id = r.model_id
WHERE r.status = 'done'
