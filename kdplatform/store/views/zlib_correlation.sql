-- One row per cross-scan that is done: the Pearson correlation, over the texts it scanned, of zlib bits
-- per token under the other job's tokenizer and under the scanning job's (section 3.2.1: 0.95-0.99 across
-- Pythia, OLMo-2 and Qwen-3 on the examples Pythia memorized).
--
-- cross_scan_run_id, job_id, run_id, role, seed, model_family: the scanning model's.
-- dataset_id: the other job's dataset.
-- source_tokenizer, tokenizer: the two datasets' tokenizers.
-- n_texts: texts scanned.
-- source_mean_bits, mean_bits: mean zlib bits per token under each tokenizer.
-- pearson_r: their Pearson correlation (NULL for fewer than two texts or a constant column).
SELECT c.scan_run_id AS cross_scan_run_id, r.job_id, c.run_id, r.role, r.seed, m.family AS model_family,
       c.dataset_id, d.tokenizer AS source_tokenizer,
       own.tokenizer AS tokenizer, COUNT(*) AS n_texts,
       AVG(e.zlib_bits_per_token) AS source_mean_bits, AVG(c.zlib_bits_per_token) AS mean_bits,
       CORR(c.zlib_bits_per_token, e.zlib_bits_per_token) AS pearson_r
FROM cross_scan_results c
JOIN runs cr ON cr.id = c.scan_run_id
JOIN runs r ON r.id = c.run_id
LEFT JOIN models m ON m.id = r.model_id
JOIN examples e ON e.dataset_id = c.dataset_id AND e.example_id = c.example_id
JOIN datasets d ON d.id = c.dataset_id
JOIN runs od ON od.job_id = r.job_id AND od.kind = 'data'
JOIN datasets own ON own.id = od.dataset_id
WHERE cr.status = 'done'
GROUP BY c.scan_run_id, r.job_id, c.run_id, r.role, r.seed, m.family, c.dataset_id,
         d.tokenizer, own.tokenizer
