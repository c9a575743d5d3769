-- One row per (evaluated run, task, few-shot setting, metric): the trained model's lm-evaluation-harness
-- score with its role, seed, temperature and objective (the paper's section 6 compares the hard-KD
-- student's LAMBADA and Winogrande scores with the baseline's); models and eval stages that are done.
--
-- job_id, run_id, stage_key, role, seed, temperature, objective: the evaluated (trained) run's.
-- model_name: the run's model (NULL when the run has none).
-- task, num_fewshot: lm-eval's task name and the examples in its few-shot context.
-- metric: lm-eval's metric (acc, perplexity, ...; `metric,filter` for a filter other than none).
-- value, stderr: the score and lm-eval's standard error of it (NULL where lm-eval gives none).
-- n_samples: documents evaluated (NULL for a group's aggregate).
-- eval_run_id: the eval stage's run.
SELECT r.job_id, e.run_id, r.stage_key, r.role, r.seed, r.temperature, r.objective, m.name AS model_name,
       e.task, e.num_fewshot, e.metric, e.value, e.stderr, e.n_samples, e.eval_run_id
FROM eval_results e
JOIN runs r ON r.id = e.run_id
JOIN runs x ON x.id = e.eval_run_id
LEFT JOIN models m ON m.id = r.model_id
WHERE r.status = 'done' AND x.status = 'done'
