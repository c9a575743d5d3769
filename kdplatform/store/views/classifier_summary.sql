-- One row per (classifier run, metric or coefficient): mean ± std over trials of accuracy, precision,
-- recall, F1, ROC-AUC and of each standardized coefficient (Tables 4-7).
--
-- job_id, run_id: the classifier stage's run and its job.
-- kind: metric (from classifier_trials) or coefficient (from classifier_coefficients).
-- name: the metric (accuracy, precision, recall, f1, roc_auc) or the coefficient's feature.
-- mean, std: mean and sample standard deviation over the trials.
-- n_trials: trials with a non-NULL value.
WITH m AS (
    SELECT run_id, trial, 'metric' AS kind, 'accuracy' AS name, accuracy AS value FROM classifier_trials
    UNION ALL
    SELECT run_id, trial, 'metric' AS kind, 'precision' AS name, precision AS value FROM classifier_trials
    UNION ALL
    SELECT run_id, trial, 'metric' AS kind, 'recall' AS name, recall AS value FROM classifier_trials
    UNION ALL
    SELECT run_id, trial, 'metric' AS kind, 'f1' AS name, f1 AS value FROM classifier_trials
    UNION ALL
    SELECT run_id, trial, 'metric' AS kind, 'roc_auc' AS name, roc_auc AS value FROM classifier_trials
    UNION ALL
    SELECT run_id, trial, 'coefficient' AS kind, feature AS name, value FROM classifier_coefficients
)
SELECT r.job_id, m.run_id, m.kind, m.name, AVG(m.value) AS mean, STDDEV_SAMP(m.value) AS std,
       COUNT(m.value) AS n_trials
FROM m JOIN runs r ON r.id = m.run_id
WHERE r.status = 'done'
GROUP BY r.job_id, m.run_id, m.kind, m.name
