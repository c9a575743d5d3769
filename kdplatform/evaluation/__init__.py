"""lm-evaluation-harness on the platform's models (the optional `eval` extra): `tasks` finds a job's
task names in lm-eval's registry and its local task folder without downloading, `harness` runs them on a
loaded model and returns lm-eval's scores as rows of eval_results."""
