"""analysis views and classifier tables

The documented SQL surface of the analyses (README: "The SQL surface"), in plain SQL that runs unchanged
on DuckDB and PostgreSQL: no dialect functions, ratios cast to DOUBLE PRECISION before dividing (integer
division truncates on PostgreSQL), booleans from CASE. Views compare runs of one job on one scanned
dataset only; the library (kdplatform.analysis) adds the parametrised queries (venn3, pooled sets,
cross-family comparisons). Definitions are in kdplatform/analysis/__init__.py.

Revision ID: 0002
Revises: 0001

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ratio(num: str, den: str) -> str:
    return f"CAST({num} AS DOUBLE PRECISION) / NULLIF({den}, 0)"


# (teacher, student, baseline) triples of one job and scanned dataset: every student-like run (role
# student*) with the baseline of its own seed, or with every baseline when no baseline has that seed.
TRIPLES = """
    SELECT t.job_id, t.dataset_id, t.run_id AS teacher_run_id, s.run_id AS student_run_id,
           b.run_id AS baseline_run_id, s.role AS student_role, s.seed AS student_seed,
           s.objective AS student_objective, s.temperature AS student_temperature,
           b.seed AS baseline_seed, t.memorized AS n_teacher, s.memorized AS n_student,
           b.memorized AS n_baseline
    FROM scanned_runs t
    JOIN scanned_runs s ON s.job_id = t.job_id AND s.dataset_id = t.dataset_id AND s.role LIKE 'student%'
    JOIN scanned_runs b ON b.job_id = t.job_id AND b.dataset_id = t.dataset_id AND b.role = 'baseline'
    WHERE t.role = 'teacher'
      AND (b.seed = s.seed OR NOT EXISTS (
            SELECT 1 FROM scanned_runs b2
            WHERE b2.job_id = s.job_id AND b2.dataset_id = s.dataset_id AND b2.role = 'baseline'
              AND b2.seed = s.seed))
"""

# Per (job, dataset, example): the job's teacher run(s) and baseline runs (all seeds) on that example.
TEACHER = """
    SELECT r.job_id, s.dataset_id, s.example_id,
           MAX(CASE WHEN s.memorized THEN 1 ELSE 0 END) AS teacher_memorized,
           AVG(s.ppl) AS teacher_ppl
    FROM scan_results s JOIN runs r ON r.id = s.run_id
    WHERE r.role = 'teacher'
    GROUP BY r.job_id, s.dataset_id, s.example_id
"""
BASELINE = """
    SELECT r.job_id, s.dataset_id, s.example_id, COUNT(*) AS n_baseline_runs,
           CAST(SUM(CASE WHEN s.memorized THEN 1 ELSE 0 END) AS BIGINT) AS n_baseline_memorized,
           AVG(s.ppl) AS baseline_ppl
    FROM scan_results s JOIN runs r ON r.id = s.run_id
    WHERE r.role = 'baseline'
    GROUP BY r.job_id, s.dataset_id, s.example_id
"""
TEACHER_BASELINE_KLD = """
    SELECT r.job_id, k.dataset_id, k.example_id, AVG(k.kld) AS teacher_baseline_kld
    FROM example_kld k
    JOIN runs r ON r.id = k.run_id
    JOIN runs rt ON rt.id = k.reference_run_id AND rt.job_id = r.job_id
    WHERE r.role = 'baseline' AND rt.role = 'teacher'
    GROUP BY r.job_id, k.dataset_id, k.example_id
"""
# A student group is the runs of one job with one (role, objective, temperature): its seeds.
STUDENT = """
    SELECT r.job_id, s.dataset_id, s.example_id, r.role AS student_role, r.objective AS student_objective,
           r.temperature AS student_temperature, COUNT(*) AS n_student_runs,
           CAST(SUM(CASE WHEN s.memorized THEN 1 ELSE 0 END) AS BIGINT) AS n_student_memorized,
           AVG(s.ppl) AS student_ppl
    FROM scan_results s JOIN runs r ON r.id = s.run_id
    WHERE r.role LIKE 'student%'
    GROUP BY r.job_id, s.dataset_id, s.example_id, r.role, r.objective, r.temperature
"""
TEACHER_STUDENT_KLD = """
    SELECT r.job_id, k.dataset_id, k.example_id, r.role AS student_role, r.objective AS student_objective,
           r.temperature AS student_temperature, AVG(k.kld) AS teacher_student_kld
    FROM example_kld k
    JOIN runs r ON r.id = k.run_id
    JOIN runs rt ON rt.id = k.reference_run_id AND rt.job_id = r.job_id
    WHERE r.role LIKE 'student%' AND rt.role = 'teacher'
    GROUP BY r.job_id, k.dataset_id, k.example_id, r.role, r.objective, r.temperature
"""
SAME_GROUP = """
    {a}.job_id = {b}.job_id AND {a}.dataset_id = {b}.dataset_id AND {a}.example_id = {b}.example_id
    AND {a}.student_role = {b}.student_role
    AND {a}.student_objective IS NOT DISTINCT FROM {b}.student_objective
    AND {a}.student_temperature IS NOT DISTINCT FROM {b}.student_temperature
"""
SAME_EXAMPLE = (
    "{a}.job_id = {b}.job_id AND {a}.dataset_id = {b}.dataset_id AND {a}.example_id = {b}.example_id"
)

METRICS = ["accuracy", "precision", "recall", "f1", "roc_auc"]

VIEWS: list[tuple[str, str]] = [
    (
        "scanned_runs",
        """
        SELECT r.job_id, s.dataset_id, s.run_id, r.role, r.seed, r.temperature, r.objective,
               m.family AS model_family, m.name AS model_name, COUNT(*) AS examples,
               CAST(SUM(CASE WHEN s.memorized THEN 1 ELSE 0 END) AS BIGINT) AS memorized
        FROM scan_results s
        JOIN runs r ON r.id = s.run_id
        LEFT JOIN models m ON m.id = r.model_id
        GROUP BY r.job_id, s.dataset_id, s.run_id, r.role, r.seed, r.temperature, r.objective, m.family,
                 m.name
        """,
    ),
    (
        "run_overlap",
        f"""
        WITH inter AS (
            SELECT a.run_id AS run_a, b.run_id AS run_b, a.dataset_id, COUNT(*) AS n_both
            FROM memorized_examples a
            JOIN memorized_examples b
              ON b.dataset_id = a.dataset_id AND b.example_id = a.example_id AND b.run_id <> a.run_id
            GROUP BY a.run_id, b.run_id, a.dataset_id
        ), pairs AS (
            SELECT x.job_id, x.dataset_id, x.run_id AS run_a, y.run_id AS run_b,
                   x.role AS role_a, x.seed AS seed_a, x.objective AS objective_a,
                   x.temperature AS temperature_a, x.model_family AS model_family_a,
                   y.role AS role_b, y.seed AS seed_b, y.objective AS objective_b,
                   y.temperature AS temperature_b, y.model_family AS model_family_b,
                   x.memorized AS n_a, y.memorized AS n_b, COALESCE(i.n_both, 0) AS n_both
            FROM scanned_runs x
            JOIN scanned_runs y
              ON y.job_id = x.job_id AND y.dataset_id = x.dataset_id AND y.run_id <> x.run_id
            LEFT JOIN inter i ON i.run_a = x.run_id AND i.run_b = y.run_id AND i.dataset_id = x.dataset_id
        )
        SELECT pairs.*, n_a - n_both AS n_a_only, n_b - n_both AS n_b_only,
               {_ratio("n_both", "n_a + n_b - n_both")} AS jaccard,
               {_ratio("n_both", "n_a")} AS share_of_a_in_b
        FROM pairs
        """,
    ),
    (
        "inherited_examples",
        f"""
        WITH triples AS ({TRIPLES})
        SELECT tr.job_id, tr.dataset_id, tr.teacher_run_id, tr.student_run_id, tr.baseline_run_id,
               mt.example_id
        FROM triples tr
        JOIN memorized_examples mt ON mt.run_id = tr.teacher_run_id AND mt.dataset_id = tr.dataset_id
        JOIN memorized_examples ms
          ON ms.run_id = tr.student_run_id AND ms.dataset_id = tr.dataset_id AND ms.example_id = mt.example_id
        WHERE NOT EXISTS (
            SELECT 1 FROM memorized_examples mb
            WHERE mb.run_id = tr.baseline_run_id AND mb.dataset_id = tr.dataset_id
              AND mb.example_id = mt.example_id)
        """,
    ),
    (
        "inheritance",
        f"""
        WITH triples AS ({TRIPLES}),
        inherited AS (
            SELECT teacher_run_id, student_run_id, baseline_run_id, COUNT(*) AS n_inherited
            FROM inherited_examples
            GROUP BY teacher_run_id, student_run_id, baseline_run_id
        ),
        counted AS (
            SELECT tr.*, COALESCE(i.n_inherited, 0) AS n_inherited,
                   tr.n_teacher - COALESCE(o.n_both, 0) AS n_teacher_not_baseline
            FROM triples tr
            LEFT JOIN inherited i
              ON i.teacher_run_id = tr.teacher_run_id AND i.student_run_id = tr.student_run_id
             AND i.baseline_run_id = tr.baseline_run_id
            LEFT JOIN run_overlap o ON o.run_a = tr.teacher_run_id AND o.run_b = tr.baseline_run_id
        )
        SELECT counted.*,
               {_ratio("n_inherited", "n_student")} AS share_of_student,
               {_ratio("n_inherited", "n_teacher_not_baseline")} AS share_of_teacher_not_baseline
        FROM counted
        """,
    ),
    (
        "easy_examples",
        f"""
        WITH t AS ({TEACHER}), b AS ({BASELINE})
        SELECT b.job_id, b.dataset_id, b.example_id, e.zlib_entropy, e.zlib_bits_per_token, t.teacher_ppl,
               b.baseline_ppl, b.n_baseline_runs, b.n_baseline_memorized
        FROM b
        JOIN t ON {SAME_EXAMPLE.format(a="t", b="b")}
        LEFT JOIN examples e ON e.dataset_id = b.dataset_id AND e.example_id = b.example_id
        WHERE t.teacher_memorized = 1 AND b.n_baseline_memorized > 0
        """,
    ),
    (
        "seed_consistency",
        f"""
        WITH b AS ({BASELINE}), st AS ({STUDENT})
        SELECT b.job_id, b.dataset_id, b.example_id, st.student_role, st.student_objective,
               st.student_temperature, b.n_baseline_runs, b.n_baseline_memorized, st.n_student_runs,
               st.n_student_memorized
        FROM b JOIN st ON {SAME_EXAMPLE.format(a="st", b="b")}
        """,
    ),
    (
        "example_features",
        f"""
        WITH t AS ({TEACHER}), b AS ({BASELINE}), st AS ({STUDENT}),
        kb AS ({TEACHER_BASELINE_KLD}), ks AS ({TEACHER_STUDENT_KLD})
        SELECT b.job_id, b.dataset_id, b.example_id, st.student_role, st.student_objective,
               st.student_temperature, e.zlib_entropy, e.zlib_bits_per_token, t.teacher_ppl, b.baseline_ppl,
               kb.teacher_baseline_kld, st.student_ppl, ks.teacher_student_kld,
               (COALESCE(t.teacher_memorized, 0) = 1) AS teacher_memorized, b.n_baseline_runs,
               b.n_baseline_memorized,
               (COALESCE(t.teacher_memorized, 0) = 1 AND b.n_baseline_memorized > 0) AS easy,
               st.n_student_runs, st.n_student_memorized, (st.n_student_memorized > 0) AS student_memorized
        FROM b
        JOIN st ON {SAME_EXAMPLE.format(a="st", b="b")}
        LEFT JOIN t ON {SAME_EXAMPLE.format(a="t", b="b")}
        LEFT JOIN kb ON {SAME_EXAMPLE.format(a="kb", b="b")}
        LEFT JOIN ks ON {SAME_GROUP.format(a="ks", b="st")}
        LEFT JOIN examples e ON e.dataset_id = b.dataset_id AND e.example_id = b.example_id
        """,
    ),
    (
        "classifier_summary",
        """
        WITH m AS ("""
        + "\n            UNION ALL ".join(
            f"SELECT run_id, trial, 'metric' AS kind, '{name}' AS name, {name} AS value "
            "FROM classifier_trials"
            for name in METRICS
        )
        + """
            UNION ALL SELECT run_id, trial, 'coefficient' AS kind, feature AS name, value
            FROM classifier_coefficients
        )
        SELECT r.job_id, m.run_id, m.kind, m.name, AVG(m.value) AS mean, STDDEV_SAMP(m.value) AS std,
               COUNT(m.value) AS n_trials
        FROM m JOIN runs r ON r.id = m.run_id
        GROUP BY r.job_id, m.run_id, m.kind, m.name
        """,
    ),
]


def _fk(*args, **kwargs) -> list[sa.ForeignKeyConstraint]:
    """Foreign keys on PostgreSQL; none on DuckDB (see 0001: DuckDB forbids updating referenced rows)."""
    if op.get_bind().dialect.name == "duckdb":
        return []
    return [sa.ForeignKeyConstraint(*args, **kwargs)]


def upgrade() -> None:
    op.create_table(
        "classifier_trials",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("trial", sa.Integer(), nullable=False),
        sa.Column("n_train", sa.Integer(), nullable=False),
        sa.Column("n_test", sa.Integer(), nullable=False),
        sa.Column("n_positive", sa.Integer(), nullable=False),
        sa.Column("n_negative", sa.Integer(), nullable=False),
        sa.Column("accuracy", sa.Float(), nullable=False),
        sa.Column("precision", sa.Float(), nullable=False),
        sa.Column("recall", sa.Float(), nullable=False),
        sa.Column("f1", sa.Float(), nullable=False),
        sa.Column("roc_auc", sa.Float(), nullable=True),
        *_fk(["run_id"], ["runs.id"], name=op.f("fk_classifier_trials_run_id_runs")),
        sa.PrimaryKeyConstraint("run_id", "trial", name=op.f("pk_classifier_trials")),
    )
    op.create_table(
        "classifier_coefficients",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("trial", sa.Integer(), nullable=False),
        sa.Column("feature", sa.String(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        *_fk(["run_id"], ["runs.id"], name=op.f("fk_classifier_coefficients_run_id_runs")),
        sa.PrimaryKeyConstraint("run_id", "trial", "feature", name=op.f("pk_classifier_coefficients")),
    )
    op.create_table(
        "example_risk",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("example_id", sa.BigInteger(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("risk", sa.Float(), nullable=True),
        sa.Column("predicted", sa.Boolean(), nullable=False),
        *_fk(["dataset_id"], ["datasets.id"], name=op.f("fk_example_risk_dataset_id_datasets")),
        *_fk(["run_id"], ["runs.id"], name=op.f("fk_example_risk_run_id_runs")),
        sa.PrimaryKeyConstraint("run_id", "example_id", name=op.f("pk_example_risk")),
    )
    for name, sql in VIEWS:
        op.execute(f"CREATE VIEW {name} AS {sql}")


def downgrade() -> None:
    for name, _ in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.drop_table("example_risk")
    op.drop_table("classifier_coefficients")
    op.drop_table("classifier_trials")
