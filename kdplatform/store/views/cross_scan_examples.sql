-- One row per (cross-scan, finished scan of the other job it read, example it scanned): a model of one
-- job on another job's text (re-tokenized by its own tokenizer) beside the other job's model on its own
-- tokens (Figure 6: each family's perplexity on the examples the others memorized).
--
-- cross_scan_run_id: the cross_scan run (runs.kind cross_scan); only runs that are done.
-- job_id, run_id, role, seed, model_family, model_name: the scanning model's job and run.
-- source_job_id, source_run_id, source_role, source_seed, source_family, source_model_name: the other
--     job's scanned model (a `scan` input of the cross-scan).
-- dataset_id, example_id, text_hash: the other job's example.
-- source_memorized, source_ppl: the other model on its own tokens (scan_results).
-- source_zlib_bits_per_token: zlib bits per token of the example's memorization text, its own tokenizer.
-- memorized, ppl: the scanning model on this text's first seq_len tokens of its own tokenizer.
-- zlib_bits_per_token: the same bytes' zlib bits per token under the scanning model's tokenizer.
SELECT c.scan_run_id AS cross_scan_run_id, r.job_id, c.run_id, r.role, r.seed, m.family AS model_family,
       m.name AS model_name, sr.job_id AS source_job_id, s.run_id AS source_run_id,
       sr.role AS source_role, sr.seed AS source_seed, sm.family AS source_family,
       sm.name AS source_model_name, c.dataset_id, c.example_id, c.text_hash,
       s.memorized AS source_memorized, s.ppl AS source_ppl,
       e.zlib_bits_per_token AS source_zlib_bits_per_token, c.memorized, c.ppl, c.zlib_bits_per_token
FROM cross_scan_results c
JOIN runs cr ON cr.id = c.scan_run_id
JOIN runs r ON r.id = c.run_id
LEFT JOIN models m ON m.id = r.model_id
JOIN run_inputs i ON i.run_id = c.scan_run_id AND i.kind = 'scan'
JOIN runs ss ON ss.id = i.input_run_id
JOIN scan_results s ON s.scan_run_id = ss.id AND s.dataset_id = c.dataset_id AND s.example_id = c.example_id
JOIN runs sr ON sr.id = s.run_id
LEFT JOIN models sm ON sm.id = sr.model_id
JOIN examples e ON e.dataset_id = c.dataset_id AND e.example_id = c.example_id
WHERE cr.status = 'done' AND ss.status = 'done' AND sr.status = 'done'
