-- One row per pair of scanned runs of one model family on shared texts, the smaller model first (fewer
-- parameters): the share of the smaller one's memorized set that the larger one also memorizes (the
-- paper's 96 % of Pythia-1B's set in the 1.4B baseline, 80 % of the baseline's in the 12B teacher).
--
-- job_small, run_small, role_small, seed_small, model_small, params_small: the smaller model's run.
-- job_large, run_large, role_large, seed_large, model_large, params_large: the larger model's run.
-- model_family: the family both belong to.
-- n_shared: texts of D both scanned.
-- n_small, n_large: their memorized texts among the shared ones.
-- n_both: texts both memorized.
-- share_of_small_in_large: n_both / n_small (NULL when the smaller memorized none).
SELECT o.job_a AS job_small, o.run_a AS run_small, o.role_a AS role_small, o.seed_a AS seed_small,
       o.model_name_a AS model_small, ma.n_params AS params_small,
       o.job_b AS job_large, o.run_b AS run_large, o.role_b AS role_large, o.seed_b AS seed_large,
       o.model_name_b AS model_large, mb.n_params AS params_large,
       o.model_family_a AS model_family, o.n_shared, o.n_a AS n_small, o.n_b AS n_large, o.n_both,
       o.share_of_a_in_b AS share_of_small_in_large
FROM text_overlap o
JOIN runs ra ON ra.id = o.run_a
JOIN models ma ON ma.id = ra.model_id
JOIN runs rb ON rb.id = o.run_b
JOIN models mb ON mb.id = rb.model_id
WHERE o.model_family_a = o.model_family_b AND ma.n_params < mb.n_params
