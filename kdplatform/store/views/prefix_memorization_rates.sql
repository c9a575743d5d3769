-- One row per (scanned run, prefix length, member or not): examples and memorization rate with the
-- dataset's suffix length S after prefixes of every length the scan stored (the dataset's prefix_len,
-- the paper's 50, from scan_results; the others from prefix_memorization); runs that are done.
--
-- job_id, run_id, role, seed, temperature, objective: the scanned run's.
-- model_name: the run's model (NULL when the run has none).
-- prefix_len, suffix_len: greedy decoding from the first prefix_len tokens is checked against the
--     suffix_len tokens after them; suffix_len is the dataset's seq_len - prefix_len for every prefix_len.
-- member: the examples are members (of D); FALSE: held-out non-members (examples split heldout).
-- examples: examples scanned at that prefix length.
-- memorized: how many of them greedy decoding reproduced.
-- rate_pct: 100 * memorized / examples.
WITH flags AS (
    SELECT s.run_id, s.dataset_id, s.example_id, d.prefix_len, s.memorized
    FROM scan_results s JOIN datasets d ON d.id = s.dataset_id
    UNION ALL
    SELECT p.run_id, p.dataset_id, p.example_id, p.prefix_len, p.memorized
    FROM prefix_memorization p
), counted AS (
    SELECT f.run_id, f.dataset_id, f.prefix_len,
           CASE WHEN e.split = 'heldout' THEN FALSE ELSE TRUE END AS member, COUNT(*) AS examples,
           CAST(SUM(CASE WHEN f.memorized THEN 1 ELSE 0 END) AS BIGINT) AS memorized
    FROM flags f
    LEFT JOIN examples e ON e.dataset_id = f.dataset_id AND e.example_id = f.example_id
    GROUP BY f.run_id, f.dataset_id, f.prefix_len, CASE WHEN e.split = 'heldout' THEN FALSE ELSE TRUE END
)
SELECT r.job_id, c.run_id, r.role, r.seed, r.temperature, r.objective, m.name AS model_name,
       c.prefix_len, d.seq_len - d.prefix_len AS suffix_len, c.member, c.examples, c.memorized,
       100.0 * c.memorized / c.examples AS rate_pct
FROM counted c
JOIN runs r ON r.id = c.run_id
JOIN datasets d ON d.id = c.dataset_id
LEFT JOIN models m ON m.id = r.model_id
WHERE r.status = 'done'
