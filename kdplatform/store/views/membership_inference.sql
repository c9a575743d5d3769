-- One row per (scanned run, attack): membership-inference ROC AUC and TPR at 1 % and 0.1 % FPR of the
-- run's members (examples of D) against its held-out non-members (examples split heldout); runs that are
-- done, with members and non-members scored by that attack.
--
-- job_id, run_id, role, seed, temperature, objective: the scanned run's.
-- model_name: the run's model (NULL when the run has none).
-- attack: loss, zlib, min_k_20, min_k_pp_20 or reference (kdplatform.memorization.ATTACKS). Each score is
--     member-likeness, higher = member, as kdplatform.memorization.attack_scores computes it: -loss,
--     -loss / zlib_entropy, min_k_20, min_k_pp_20, and -(loss - reference loss). The reference is the
--     run's own base (its train run's `base` input) when it has one: its loss on the same example from
--     the base's loss-only scan (example_losses; no reference row until that scan is done). A run without
--     a base is referenced to the job's baseline runs of its seed (their mean loss; every baseline run
--     when none has that seed); a baseline without a base has no reference row.
-- auc: the Mann-Whitney probability that a member scores above a non-member, ties counted one half
--     (sklearn's roc_auc_score with members as the positive class).
-- tpr_at_1pct_fpr, tpr_at_01pct_fpr: the largest share of members scoring >= t over the thresholds t
--     (every score value, and +inf) that flag at most 1 % (0.1 %) of the non-members: the largest tpr
--     with fpr <= 0.01 (0.001) on sklearn's roc_curve(drop_intermediate=False).
-- n_members, n_nonmembers: members and non-members with a score (loss stored: scans since migration 0005).
WITH labeled AS (
    SELECT s.run_id, s.dataset_id, s.example_id, s.loss, s.min_k_20, s.min_k_pp_20, e.zlib_entropy,
           CASE WHEN e.split = 'heldout' THEN 0 ELSE 1 END AS member
    FROM scan_results s
    JOIN runs r ON r.id = s.run_id
    LEFT JOIN examples e ON e.dataset_id = s.dataset_id AND e.example_id = s.example_id
    WHERE r.status = 'done' AND s.loss IS NOT NULL
), based AS (
    SELECT i.run_id, MIN(i.input_run_id) AS base_run_id
    FROM run_inputs i
    WHERE i.kind = 'base'
    GROUP BY i.run_id
), reference_runs AS (
    SELECT x.run_id, b.run_id AS reference_run_id
    FROM scanned_runs x
    JOIN scanned_runs b ON b.job_id = x.job_id AND b.dataset_id = x.dataset_id AND b.role = 'baseline'
    WHERE x.role <> 'baseline' AND x.run_id NOT IN (SELECT run_id FROM based)
      AND (b.seed = x.seed OR NOT EXISTS (
            SELECT 1 FROM scanned_runs b2
            WHERE b2.job_id = x.job_id AND b2.dataset_id = x.dataset_id AND b2.role = 'baseline'
              AND b2.seed = x.seed))
), reference_loss AS (
    SELECT f.run_id, s.dataset_id, s.example_id, AVG(s.loss) AS loss
    FROM reference_runs f JOIN scan_results s ON s.run_id = f.reference_run_id
    WHERE s.loss IS NOT NULL
    GROUP BY f.run_id, s.dataset_id, s.example_id
    UNION ALL
    SELECT o.run_id, x.dataset_id, x.example_id, x.loss
    FROM based o
    JOIN example_losses x ON x.run_id = o.base_run_id
    JOIN runs lr ON lr.id = x.scan_run_id
    WHERE lr.status = 'done'
), scores AS (
    SELECT run_id, 'loss' AS attack, member, -loss AS score FROM labeled
    UNION ALL
    SELECT run_id, 'zlib' AS attack, member, -loss / zlib_entropy AS score FROM labeled
    WHERE zlib_entropy > 0
    UNION ALL
    SELECT run_id, 'min_k_20' AS attack, member, min_k_20 AS score FROM labeled WHERE min_k_20 IS NOT NULL
    UNION ALL
    SELECT run_id, 'min_k_pp_20' AS attack, member, min_k_pp_20 AS score FROM labeled
    WHERE min_k_pp_20 IS NOT NULL
    UNION ALL
    SELECT l.run_id, 'reference' AS attack, l.member, -(l.loss - f.loss) AS score
    FROM labeled l
    JOIN reference_loss f ON f.run_id = l.run_id AND f.dataset_id = l.dataset_id
                         AND f.example_id = l.example_id
), grouped AS (
    SELECT run_id, attack, score, CAST(SUM(member) AS BIGINT) AS pos, CAST(SUM(1 - member) AS BIGINT) AS neg
    FROM scores
    GROUP BY run_id, attack, score
), cumulative AS (
    SELECT run_id, attack, pos, neg,
           CAST(SUM(pos) OVER upto AS BIGINT) AS pos_le, CAST(SUM(neg) OVER upto AS BIGINT) AS neg_le,
           CAST(SUM(pos) OVER whole AS BIGINT) AS n_pos, CAST(SUM(neg) OVER whole AS BIGINT) AS n_neg
    FROM grouped
    WINDOW upto AS (PARTITION BY run_id, attack ORDER BY score
                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
           whole AS (PARTITION BY run_id, attack)
), curve AS (
    SELECT run_id, attack, n_pos, n_neg,
           pos * (2 * (neg_le - neg) + neg) AS twice_wins,
           n_pos - pos_le + pos AS pos_at_or_above,
           CAST(n_neg - neg_le + neg AS DOUBLE PRECISION) / n_neg AS fpr
    FROM cumulative
    WHERE n_pos > 0 AND n_neg > 0
)
SELECT r.job_id, c.run_id, r.role, r.seed, r.temperature, r.objective, m.name AS model_name, c.attack,
       CAST(SUM(c.twice_wins) AS DOUBLE PRECISION) / (CAST(2 * c.n_pos AS DOUBLE PRECISION) * c.n_neg)
           AS auc,
       CAST(COALESCE(MAX(CASE WHEN c.fpr <= CAST(0.01 AS DOUBLE PRECISION) THEN c.pos_at_or_above END), 0)
            AS DOUBLE PRECISION) / c.n_pos AS tpr_at_1pct_fpr,
       CAST(COALESCE(MAX(CASE WHEN c.fpr <= CAST(0.001 AS DOUBLE PRECISION) THEN c.pos_at_or_above END), 0)
            AS DOUBLE PRECISION) / c.n_pos AS tpr_at_01pct_fpr,
       c.n_pos AS n_members, c.n_neg AS n_nonmembers
FROM curve c
JOIN runs r ON r.id = c.run_id
LEFT JOIN models m ON m.id = r.model_id
GROUP BY r.job_id, c.run_id, r.role, r.seed, r.temperature, r.objective, m.name, c.attack, c.n_pos, c.n_neg
