"""The SQL schema: SQLAlchemy 2 typed ORM, portable between DuckDB and PostgreSQL.

Small tables (jobs, runs, lineage, checkpoints) go through the ORM; per-example tables (examples,
scan_results, example_kld) are filled in bulk from Arrow (see db.bulk_insert), never row by row.
Ids come from explicit sequences because DuckDB has no autoincrement.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from kdplatform.store.base import NAMING, Base, _id  # noqa: F401  (re-exported)
from kdplatform.store.enums import InputKind, Role, StageKind, Status  # noqa: F401  (re-exported)
from kdplatform.store.materialized import MaterializedView  # noqa: F401  (re-exported)
from kdplatform.store.results import (  # noqa: F401  (re-exported: every table is in schema)
    ApproximateMemorization,
    Canary,
    CanaryResult,
    ClassifierCoefficient,
    ClassifierTrial,
    CrossScanResult,
    EvalResult,
    ExampleLoss,
    ExampleRisk,
    ExtractionScore,
    PrefixMemorization,
)

RUN_OWNED_TABLES: dict[str, str] = {
    "scan_results": "scan_run_id",
    "example_kld": "scan_run_id",
    "greedy_continuations": "scan_run_id",
    "scan_audits": "scan_run_id",
    "extraction_scores": "scan_run_id",
    "prefix_memorization": "scan_run_id",
    "canary_results": "scan_run_id",
    "cross_scan_results": "scan_run_id",
    "example_losses": "scan_run_id",
    "approximate_memorization": "scan_run_id",
    "checkpoints": "run_id",
    "run_inputs": "run_id",
    "classifier_trials": "run_id",
    "classifier_coefficients": "run_id",
    "example_risk": "run_id",
    "eval_results": "eval_run_id",
}
"""The tables whose rows belong to one run, and the column naming it: a stage that starts again clears
them, and export/import and snapshots copy them with their run."""


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[int] = _id("jobs")
    name: Mapped[str] = mapped_column(unique=True)
    spec: Mapped[str] = mapped_column(Text)
    spec_hash: Mapped[str]
    workdir: Mapped[str]
    mlflow_run_id: Mapped[str | None]
    created_at: Mapped[datetime]
    mlflow_tracking_uri: Mapped[str | None]
    """The MLflow store the job's runs are in (migration 0006): the dashboard links to its UI."""
    mlflow_experiment_id: Mapped[str | None]


class Dataset(Base):
    """Tokenized fixed-length examples; `digest` identifies content (corpus, tokenizer, lengths)."""

    __tablename__ = "datasets"
    id: Mapped[int] = _id("datasets")
    name: Mapped[str]
    digest: Mapped[str] = mapped_column(unique=True)
    source: Mapped[str]
    tokenizer: Mapped[str]
    vocab_size: Mapped[int]
    seq_len: Mapped[int]
    prefix_len: Mapped[int]
    num_train: Mapped[int]
    num_val: Mapped[int]
    path: Mapped[str]
    parent_dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"))
    """Set for derived data (a filtered subset, the teacher's hard-KD generations)."""
    created_at: Mapped[datetime]


class Example(Base):
    __tablename__ = "examples"
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), primary_key=True)
    example_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    split: Mapped[str]
    n_tokens: Mapped[int]
    text: Mapped[str] = mapped_column(Text)
    prefix_text: Mapped[str] = mapped_column(Text)
    suffix_text: Mapped[str] = mapped_column(Text)
    zlib_entropy: Mapped[int]
    zlib_bits_per_token: Mapped[float]
    text_hash: Mapped[str | None]
    """md5 (hex) of `text` (migration 0009; filled for older rows): an example's identity across datasets,
    so the same text joins across jobs whatever their tokenizers."""


class Model(Base):
    __tablename__ = "models"
    id: Mapped[int] = _id("models")
    name: Mapped[str]
    """Preset name, hub name or local path."""
    revision: Mapped[str | None]
    family: Mapped[str]
    n_params: Mapped[int] = mapped_column(BigInteger)
    logit_width: Mapped[int]
    config: Mapped[str] = mapped_column(Text)


class Run(Base):
    """One stage of a job: a training run, a scan, a data build. Roles name what a trained model is."""

    __tablename__ = "runs"
    __table_args__ = (UniqueConstraint("job_id", "stage_key"),)
    id: Mapped[int] = _id("runs")
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    stage_key: Mapped[str]
    kind: Mapped[str]
    """a StageKind"""
    role: Mapped[str | None]
    """a Role; null for the data and classify stages (hard_data carries the teacher's)"""
    seed: Mapped[int | None]
    temperature: Mapped[float | None]
    objective: Mapped[str | None]
    status: Mapped[str]
    """a Status"""
    config: Mapped[str] = mapped_column(Text)
    config_hash: Mapped[str]
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id"))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"))
    mlflow_run_id: Mapped[str | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    seconds: Mapped[float | None]
    error: Mapped[str | None] = mapped_column(Text)


class RunInput(Base):
    """Lineage edges: which dataset, checkpoint or run a run consumed."""

    __tablename__ = "run_inputs"
    id: Mapped[int] = _id("run_inputs")
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    kind: Mapped[str]
    """an InputKind"""
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"))
    input_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    checkpoint_id: Mapped[int | None] = mapped_column(ForeignKey("checkpoints.id"))


class Checkpoint(Base):
    __tablename__ = "checkpoints"
    id: Mapped[int] = _id("checkpoints")
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    path: Mapped[str | None]
    epoch: Mapped[int]
    step: Mapped[int]
    tokens: Mapped[int] = mapped_column(BigInteger)
    train_loss: Mapped[float]
    val_loss: Mapped[float]
    val_ppl: Mapped[float]
    is_final: Mapped[bool] = mapped_column(Boolean)
    mlflow_model_id: Mapped[str | None]
    """The final checkpoint's MLflow LoggedModel (migration 0006), which refers to `path`."""


class ScanResult(Base):
    """Discoverable memorization, features and membership-inference scores of one trained model (run_id)
    on one example: a member (of D, split `train`) or a held-out non-member (split `heldout`, migration
    0005); the examples row's split tells which."""

    __tablename__ = "scan_results"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    example_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    scan_run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    memorized: Mapped[bool] = mapped_column(Boolean)
    match_len: Mapped[int]
    suffix_logprob: Mapped[float]
    suffix_entropy: Mapped[float]
    ppl: Mapped[float]
    min_margin: Mapped[float | None]
    """Smallest top-1 minus top-2 logit gap over the positions deciding the outcome (migration 0004;
    NULL for scans stored before it): near-ties are re-decided by the scan audit."""
    loss: Mapped[float | None]
    """Mean NLL (nats) over the L-1 predicted tokens (migration 0005, as the other scores; NULL for scans
    stored before it). The zlib-ratio attack is loss / examples.zlib_entropy, derived in SQL."""
    min_k_20: Mapped[float | None]
    """Mean of the lowest 20 % of log p(x_t | x_<t) over the predicted tokens (higher = member-like)."""
    min_k_pp_20: Mapped[float | None]
    """The same over the standardized z_t of min-k %++ (higher = member-like)."""


class ScanAudit(Base):
    """One scan's audit (migration 0004): its near-ties and a random sample re-decided with float32
    generate(); the stored decisions are generate()'s for every audited example."""

    __tablename__ = "scan_audits"
    scan_run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    """The scanned model's run."""
    examples: Mapped[int]
    checked: Mapped[int]
    """Examples re-decided: near_ties + sampled."""
    near_ties: Mapped[int]
    """Examples whose min_margin was under the threshold."""
    sampled: Mapped[int]
    """Examples at or above the threshold, drawn at random (a check on the threshold)."""
    disagreements: Mapped[int]
    """Audited examples whose `memorized` the one-pass scan had decided differently."""
    sampled_disagreements: Mapped[int]
    match_len_changed: Mapped[int]
    memorized_before: Mapped[int]
    """Memorized by the one-pass scan alone."""
    memorized_after: Mapped[int]
    """Memorized after the audit (what scan_results holds)."""
    threshold: Mapped[float]
    scan_dtype: Mapped[str]


class ExampleKLD(Base):
    """Mean suffix KL(P_reference || P_model) per example, e.g. teacher-baseline (the paper's KLD)."""

    __tablename__ = "example_kld"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    reference_run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    example_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    scan_run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    kld: Mapped[float]


class GreedyContinuation(Base):
    """The model's greedy suffix for (near-)memorized examples, for the example browser."""

    __tablename__ = "greedy_continuations"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    example_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    scan_run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    tokens: Mapped[str] = mapped_column(Text)
    """Space-separated token ids."""
    text: Mapped[str] = mapped_column(Text)


class JobLockRow(Base):
    """Who runs a job against this database now (store.job_locks): one row per running job, removed when
    it ends. On DuckDB the lock itself (a row whose process is gone is stale); on PostgreSQL, where an
    advisory lock is the lock, it names the holder."""

    __tablename__ = "job_locks"
    job: Mapped[str] = mapped_column(String, primary_key=True)
    host: Mapped[str]
    pid: Mapped[int]
    started_at: Mapped[datetime]
    """The holder's start, UTC without a zone (as the `runs` timestamps)."""
