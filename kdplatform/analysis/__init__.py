"""Analyses of memorization as SQL views and small library functions over them.

The views are defined and documented in kdplatform/store/views/<view>.sql, one a file (its header comment
lists its columns; `kdplatform.store.views` loads them), portable between DuckDB and PostgreSQL, all keyed
by `runs.id` of the trained model (scan_results.run_id). Runs are compared only within one job and one
scanned dataset (scan_results.dataset_id). "Memorized" is scan_results.memorized; a *student group* is the
runs of one job with one (role, objective, temperature), that is, one student configuration over its
seeds; roles `student*` (student, student_hard, student_filtered, ...) are students.

Tables written by the classifier stage (run_id = the classifier stage's run): `classifier_trials`
(run_id, trial, n_train, n_test, n_positive, n_negative, accuracy, precision, recall, f1, roc_auc),
`classifier_coefficients` (run_id, trial, feature, value) and `example_risk` (run_id, example_id,
dataset_id, risk, predicted).

Modules: queries (read-only functions over the views, including `venn3` and pooled seeds), classifier,
filtering, mia, compare (soft vs hard, cross-family), verdicts, report, figures (the report's PNGs).
Import them directly; this package imports nothing so that the store's schema can import `tables` cheaply.
"""
