"""Analyses of memorization as SQL views (migration 0002) and small library functions over them.

The views, all keyed by `runs.id` of the trained model (scan_results.run_id), portable between DuckDB and
PostgreSQL. Runs are compared only within one job and one scanned dataset (scan_results.dataset_id).
"Memorized" is scan_results.memorized; a *student group* is the runs of one job with one (role,
objective, temperature), that is, one student configuration over its seeds; roles `student*` (student,
student_hard, student_filtered, ...) are students.

- `scanned_runs`: one row per scanned model: job_id, dataset_id, run_id, role, seed, temperature,
  objective, model_family, model_name, examples, memorized.
- `run_overlap`: every ordered pair (run_a, run_b), run_a <> run_b, of one job and dataset: role, seed,
  objective, temperature, model_family of each; n_a, n_b, n_both = |A∩B|, n_a_only = |A∖B|,
  n_b_only = |B∖A|, jaccard = |A∩B| / |A∪B| (NULL when both are empty), share_of_a_in_b = |A∩B| / |A|.
- `inherited_examples`: (job_id, dataset_id, teacher_run_id, student_run_id, baseline_run_id, example_id)
  for each example memorized by the teacher run and the student run but not the baseline run.
- `inheritance`: one row per (teacher, student, baseline) triple: each teacher run of the job with each
  student-role run and the baseline run of the student's seed; a student whose seed no baseline has is
  paired with every baseline. Columns: the three run ids, student_role, student_seed,
  student_objective, student_temperature, baseline_seed, n_teacher, n_student, n_baseline,
  n_inherited = |T∩S∖B|, n_teacher_not_baseline = |T∖B|, share_of_student = n_inherited / n_student,
  share_of_teacher_not_baseline = n_inherited / n_teacher_not_baseline (the paper's 18 of 1,955).
- `easy_examples`: per (job, dataset, example) memorized by the job's teacher and by at least one
  baseline seed (Figure 5): zlib_entropy, zlib_bits_per_token, teacher_ppl, baseline_ppl (mean over the
  baseline seeds), n_baseline_runs, n_baseline_memorized (filter n_baseline_memorized = n_baseline_runs
  for "every seed").
- `seed_consistency`: per (job, dataset, example, student group): n_baseline_runs, n_baseline_memorized,
  n_student_runs, n_student_memorized. Figure 3 is `GROUP BY n_baseline_memorized,
  n_student_memorized` for one group; every scanned example has a row, so the (0, 0) cell is complete.
- `example_features`: the classifier's table, per (job, dataset, example, student group): zlib_entropy,
  zlib_bits_per_token, teacher_ppl, baseline_ppl (mean over baseline seeds), teacher_baseline_kld (mean
  over baseline seeds of example_kld with run_id = baseline run, reference_run_id = teacher run),
  student_ppl and teacher_student_kld (means over the group's seeds), teacher_memorized,
  n_baseline_runs, n_baseline_memorized, easy (teacher and a baseline seed), n_student_runs,
  n_student_memorized, student_memorized (any seed of the group: the paper pools its three students).
- `classifier_summary`: per classifier run: kind (metric | coefficient), name, mean, std (sample), n_trials
  over classifier_trials and classifier_coefficients.

Tables written by the classifier stage (run_id = the classifier stage's run): `classifier_trials`
(run_id, trial, n_train, n_test, n_positive, n_negative, accuracy, precision, recall, f1, roc_auc),
`classifier_coefficients` (run_id, trial, feature, value) and `example_risk` (run_id, example_id,
dataset_id, risk, predicted).

Modules: queries (read-only functions over the views, including `venn3` and pooled seeds), classifier,
filtering, mia, compare (soft vs hard, cross-family), verdicts, report, figures (the report's PNGs).
Import them directly; this package imports nothing so that the store's schema can import `tables` cheaply.
"""
