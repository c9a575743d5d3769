"""initial schema

Revision ID: 0001
Revises:

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# DuckDB has no autoincrement and alembic does not autogenerate sequences: create them here.
SEQUENCES = [
    "jobs_id_seq",
    "datasets_id_seq",
    "models_id_seq",
    "runs_id_seq",
    "run_inputs_id_seq",
    "checkpoints_id_seq",
]

VIEW_NAMES = ["memorization", "memorized_examples", "memorization_rates"]
VIEWS = [
    """
    CREATE VIEW memorization AS
    SELECT s.run_id, s.example_id, s.dataset_id, s.memorized, s.match_len, s.suffix_logprob,
           s.suffix_entropy, s.ppl, r.job_id, r.role, r.seed, r.temperature, r.objective,
           m.family AS model_family, m.name AS model_name
    FROM scan_results s
    JOIN runs r ON r.id = s.run_id
    LEFT JOIN models m ON m.id = r.model_id
    """,
    """
    CREATE VIEW memorized_examples AS
    SELECT run_id, example_id, dataset_id FROM scan_results WHERE memorized
    """,
    """
    CREATE VIEW memorization_rates AS
    SELECT r.job_id, s.run_id, r.role, r.seed, r.temperature, r.objective, m.name AS model_name,
           COUNT(*) AS examples,
           SUM(CASE WHEN s.memorized THEN 1 ELSE 0 END) AS memorized,
           100.0 * SUM(CASE WHEN s.memorized THEN 1 ELSE 0 END) / COUNT(*) AS rate_pct
    FROM scan_results s
    JOIN runs r ON r.id = s.run_id
    LEFT JOIN models m ON m.id = r.model_id
    GROUP BY r.job_id, s.run_id, r.role, r.seed, r.temperature, r.objective, m.name
    """,
]


def _fk(*args, **kwargs) -> list[sa.ForeignKeyConstraint]:
    """Foreign keys on PostgreSQL; none on DuckDB, whose foreign keys forbid updating a referenced row
    (a run's status) in the transaction that inserts its referencing rows (its checkpoints)."""
    if op.get_bind().dialect.name == "duckdb":
        return []
    return [sa.ForeignKeyConstraint(*args, **kwargs)]


def upgrade() -> None:
    """Upgrade schema."""
    for seq in SEQUENCES:
        op.execute(sa.schema.CreateSequence(sa.Sequence(seq)))
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("tokenizer", sa.String(), nullable=False),
        sa.Column("vocab_size", sa.Integer(), nullable=False),
        sa.Column("seq_len", sa.Integer(), nullable=False),
        sa.Column("prefix_len", sa.Integer(), nullable=False),
        sa.Column("num_train", sa.Integer(), nullable=False),
        sa.Column("num_val", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("parent_dataset_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        *_fk(["parent_dataset_id"], ["datasets.id"], name=op.f("fk_datasets_parent_dataset_id_datasets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        sa.UniqueConstraint("digest", name=op.f("uq_datasets_digest")),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("spec_hash", sa.String(), nullable=False),
        sa.Column("workdir", sa.String(), nullable=False),
        sa.Column("mlflow_run_id", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("name", name=op.f("uq_jobs_name")),
    )
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("revision", sa.String(), nullable=True),
        sa.Column("family", sa.String(), nullable=False),
        sa.Column("n_params", sa.BigInteger(), nullable=False),
        sa.Column("logit_width", sa.Integer(), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
    )
    op.create_table(
        "examples",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("example_id", sa.BigInteger(), nullable=False),
        sa.Column("split", sa.String(), nullable=False),
        sa.Column("n_tokens", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("prefix_text", sa.Text(), nullable=False),
        sa.Column("suffix_text", sa.Text(), nullable=False),
        sa.Column("zlib_entropy", sa.Integer(), nullable=False),
        sa.Column("zlib_bits_per_token", sa.Float(), nullable=False),
        *_fk(["dataset_id"], ["datasets.id"], name=op.f("fk_examples_dataset_id_datasets")),
        sa.PrimaryKeyConstraint("dataset_id", "example_id", name=op.f("pk_examples")),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("stage_key", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=True),
        sa.Column("seed", sa.Integer(), nullable=True),
        sa.Column("temperature", sa.Float(), nullable=True),
        sa.Column("objective", sa.String(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("config_hash", sa.String(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.Column("dataset_id", sa.Integer(), nullable=True),
        sa.Column("mlflow_run_id", sa.String(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        *_fk(["dataset_id"], ["datasets.id"], name=op.f("fk_runs_dataset_id_datasets")),
        *_fk(["job_id"], ["jobs.id"], name=op.f("fk_runs_job_id_jobs")),
        *_fk(["model_id"], ["models.id"], name=op.f("fk_runs_model_id_models")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sa.UniqueConstraint("job_id", "stage_key", name=op.f("uq_runs_job_id")),
    )
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(), nullable=True),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("train_loss", sa.Float(), nullable=False),
        sa.Column("val_loss", sa.Float(), nullable=False),
        sa.Column("val_ppl", sa.Float(), nullable=False),
        sa.Column("is_final", sa.Boolean(), nullable=False),
        *_fk(["run_id"], ["runs.id"], name=op.f("fk_checkpoints_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkpoints")),
    )
    op.create_table(
        "example_kld",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("reference_run_id", sa.Integer(), nullable=False),
        sa.Column("example_id", sa.BigInteger(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("scan_run_id", sa.Integer(), nullable=False),
        sa.Column("kld", sa.Float(), nullable=False),
        *_fk(["dataset_id"], ["datasets.id"], name=op.f("fk_example_kld_dataset_id_datasets")),
        *_fk(["reference_run_id"], ["runs.id"], name=op.f("fk_example_kld_reference_run_id_runs")),
        *_fk(["run_id"], ["runs.id"], name=op.f("fk_example_kld_run_id_runs")),
        *_fk(["scan_run_id"], ["runs.id"], name=op.f("fk_example_kld_scan_run_id_runs")),
        sa.PrimaryKeyConstraint("run_id", "reference_run_id", "example_id", name=op.f("pk_example_kld")),
    )
    op.create_table(
        "greedy_continuations",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("example_id", sa.BigInteger(), nullable=False),
        sa.Column("scan_run_id", sa.Integer(), nullable=False),
        sa.Column("tokens", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        *_fk(["run_id"], ["runs.id"], name=op.f("fk_greedy_continuations_run_id_runs")),
        *_fk(["scan_run_id"], ["runs.id"], name=op.f("fk_greedy_continuations_scan_run_id_runs")),
        sa.PrimaryKeyConstraint("run_id", "example_id", name=op.f("pk_greedy_continuations")),
    )
    op.create_table(
        "scan_results",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("example_id", sa.BigInteger(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("scan_run_id", sa.Integer(), nullable=False),
        sa.Column("memorized", sa.Boolean(), nullable=False),
        sa.Column("match_len", sa.Integer(), nullable=False),
        sa.Column("suffix_logprob", sa.Float(), nullable=False),
        sa.Column("suffix_entropy", sa.Float(), nullable=False),
        sa.Column("ppl", sa.Float(), nullable=False),
        *_fk(["dataset_id"], ["datasets.id"], name=op.f("fk_scan_results_dataset_id_datasets")),
        *_fk(["run_id"], ["runs.id"], name=op.f("fk_scan_results_run_id_runs")),
        *_fk(["scan_run_id"], ["runs.id"], name=op.f("fk_scan_results_scan_run_id_runs")),
        sa.PrimaryKeyConstraint("run_id", "example_id", name=op.f("pk_scan_results")),
    )
    op.create_table(
        "run_inputs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=True),
        sa.Column("input_run_id", sa.Integer(), nullable=True),
        sa.Column("checkpoint_id", sa.Integer(), nullable=True),
        *_fk(["checkpoint_id"], ["checkpoints.id"], name=op.f("fk_run_inputs_checkpoint_id_checkpoints")),
        *_fk(["dataset_id"], ["datasets.id"], name=op.f("fk_run_inputs_dataset_id_datasets")),
        *_fk(["input_run_id"], ["runs.id"], name=op.f("fk_run_inputs_input_run_id_runs")),
        *_fk(["run_id"], ["runs.id"], name=op.f("fk_run_inputs_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_inputs")),
    )
    for sql in VIEWS:
        op.execute(sql)


def downgrade() -> None:
    """Downgrade schema."""
    for name in reversed(VIEW_NAMES):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.drop_table("run_inputs")
    op.drop_table("scan_results")
    op.drop_table("greedy_continuations")
    op.drop_table("example_kld")
    op.drop_table("checkpoints")
    op.drop_table("runs")
    op.drop_table("examples")
    op.drop_table("models")
    op.drop_table("jobs")
    op.drop_table("datasets")
    for seq in SEQUENCES:
        op.execute(sa.schema.DropSequence(sa.Sequence(seq)))
