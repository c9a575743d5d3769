-- One row per (scanned run, sampling setting, n, p, member or not): the (n, p)-extraction rate, the share
-- of examples that n samples from the prefix reproduce (at least once) with probability at least p
-- (Hayes et al. 2024), for n in 1, 10, 100, 1000 and p in 0.1, 0.5, 0.9; runs that are done.
--
-- job_id, run_id, role, seed, temperature, objective: the scanned run's (temperature: its distillation's).
-- model_name: the run's model (NULL when the run has none).
-- sample_temperature, top_k: the sampling setting (extraction_scores'; top_k 0 samples from the whole
--     vocabulary).
-- n, p: samples drawn, and the probability asked of at least one of them reproducing the suffix.
-- member: the examples are members (of D); FALSE: held-out non-members (examples split heldout), the
--     rate of text the model never trained on.
-- examples: examples with an extraction score.
-- extracted: examples with 1 - (1 - p_ex)^n >= p, p_ex = exp(logprob) the probability that one sample
--     reproduces the suffix; decided as logprob >= ln(1 - (1 - p)^(1/n)).
-- rate: extracted / examples.
WITH grid AS (
    SELECT ns.n, ps.p
    FROM (VALUES (1), (10), (100), (1000)) AS ns(n)
    CROSS JOIN (VALUES (CAST(0.1 AS DOUBLE PRECISION)), (CAST(0.5 AS DOUBLE PRECISION)),
                       (CAST(0.9 AS DOUBLE PRECISION))) AS ps(p)
), scored AS (
    SELECT x.run_id, x.temperature AS sample_temperature, x.top_k, x.logprob,
           CASE WHEN e.split = 'heldout' THEN FALSE ELSE TRUE END AS member
    FROM extraction_scores x
    JOIN runs r ON r.id = x.run_id
    LEFT JOIN examples e ON e.dataset_id = x.dataset_id AND e.example_id = x.example_id
    WHERE r.status = 'done'
), counted AS (
    SELECT x.run_id, x.sample_temperature, x.top_k, g.n, g.p, x.member, COUNT(*) AS examples,
           SUM(CASE WHEN x.logprob >= LN(1 - POWER(1 - g.p, CAST(1 AS DOUBLE PRECISION) / g.n)) THEN 1
                    ELSE 0 END) AS extracted
    FROM scored x CROSS JOIN grid g
    GROUP BY x.run_id, x.sample_temperature, x.top_k, g.n, g.p, x.member
)
SELECT r.job_id, c.run_id, r.role, r.seed, r.temperature, r.objective, m.name AS model_name,
       c.sample_temperature, c.top_k, c.n, c.p, c.member, c.examples,
       CAST(c.extracted AS BIGINT) AS extracted,
       CAST(c.extracted AS DOUBLE PRECISION) / c.examples AS rate
FROM counted c
JOIN runs r ON r.id = c.run_id
LEFT JOIN models m ON m.id = r.model_id
