"""The SQL schema: SQLAlchemy 2 typed ORM, portable between DuckDB and PostgreSQL.

Small tables (jobs, runs, lineage, checkpoints) go through the ORM; per-example tables (examples,
scan_results, example_kld) are filled in bulk from Arrow (see db.bulk_insert), never row by row.
Ids come from explicit sequences because DuckDB has no autoincrement.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    Sequence,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class StageKind(StrEnum):
    """What a stage (a `runs` row) does; `runs.kind`."""

    DATA = "data"
    PRETRAIN = "pretrain"
    GENERATE = "generate"
    TRAIN = "train"
    SCAN = "scan"
    CLASSIFY = "classify"
    APPROXIMATE = "approximate"
    """Approximate memorization of one scanned model's long matches (migration 0007; optional)."""


class Status(StrEnum):
    """`runs.status`: a stage is `done` only when its rows committed with it; `stale` when its stage left
    the job's plan (a seed or temperature removed from the spec): kept until `kdplatform prune`, but no
    view or group reads it."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    STALE = "stale"


class Role(StrEnum):
    """What a trained model is (`runs.role`); every role starting with `student` is a student."""

    TEACHER = "teacher"
    BASELINE = "baseline"
    STUDENT = "student"
    BASE = "base"
    """A pretrained base (or a hub checkpoint standing in for one) that fine-tuned roles start from."""
    STUDENT_CONVERGED = "student_converged"
    STUDENT_HARD = "student_hard"
    STUDENT_FILTERED = "student_filtered"

    @property
    def is_student(self) -> bool:
        return self.value.startswith("student")


class InputKind(StrEnum):
    """`run_inputs.kind`: what a run consumed."""

    DATASET = "dataset"
    TEACHER = "teacher"
    MODEL = "model"
    REFERENCE = "reference"
    EXCLUSION = "exclusion"
    SCAN = "scan"
    BASE = "base"
    """The pretrained base (its run and final checkpoint) a trained model's initial weights come from."""


RUN_OWNED_TABLES: dict[str, str] = {
    "scan_results": "scan_run_id",
    "example_kld": "scan_run_id",
    "greedy_continuations": "scan_run_id",
    "scan_audits": "scan_run_id",
    "extraction_scores": "scan_run_id",
    "prefix_memorization": "scan_run_id",
    "example_losses": "scan_run_id",
    "approximate_memorization": "scan_run_id",
    "checkpoints": "run_id",
    "run_inputs": "run_id",
    "classifier_trials": "run_id",
    "classifier_coefficients": "run_id",
    "example_risk": "run_id",
}
"""The tables whose rows belong to one run, and the column naming it: a stage that starts again clears
them, and export/import and snapshots copy them with their run."""


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {str: String(), datetime: DateTime(), int: Integer(), float: Float()}


def _id(name: str) -> Mapped[int]:
    return mapped_column(Integer, Sequence(f"{name}_id_seq"), primary_key=True)


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[int] = _id("jobs")
    name: Mapped[str] = mapped_column(unique=True)
    spec: Mapped[str] = mapped_column(Text)
    spec_hash: Mapped[str]
    workdir: Mapped[str]
    mlflow_run_id: Mapped[str | None]
    created_at: Mapped[datetime]


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


class ExtractionScore(Base):
    """Probabilistic extraction (migration 0005): the log-probability that one sample at `temperature`
    (from the `top_k` most likely tokens; 0 = the whole vocabulary, as in transformers) reproduces the
    example's suffix from its prefix."""

    __tablename__ = "extraction_scores"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    example_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    temperature: Mapped[float] = mapped_column(Float, primary_key=True)
    top_k: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    scan_run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    logprob: Mapped[float]
    """-inf where the suffix cannot be sampled (a true token outside the top k)."""


class PrefixMemorization(Base):
    """Memorization at another prefix length with the same suffix length S (migration 0005): greedy
    decoding from the first `prefix_len` tokens reproduces the S tokens after them. The scan's own prefix
    length (the dataset's) is scan_results.memorized and is not repeated here."""

    __tablename__ = "prefix_memorization"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    example_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    prefix_len: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    scan_run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    memorized: Mapped[bool] = mapped_column(Boolean)


class ExampleLoss(Base):
    """A model's loss on one example where the model is not scanned (migration 0007): a base's, the
    reference of the reference attack for the models fine-tuned from it. Written by the base's loss-only
    scan (stage `scan/pretrain/<name>`, scan_run_id), on the members of D and the held-out non-members."""

    __tablename__ = "example_losses"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    """The model's run (the base's pretrain stage)."""
    example_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    scan_run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    loss: Mapped[float]
    """Mean NLL (nats) over the L-1 predicted tokens, as scan_results.loss."""


class ApproximateMemorization(Base):
    """How close the free greedy continuation of an example with a long match comes to its true suffix
    (migration 0007; the optional approximate stage, for members whose match_len reaches
    scan.approximate_min_match)."""

    __tablename__ = "approximate_memorization"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    example_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    scan_run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    """The approximate stage's run."""
    match_len: Mapped[int]
    """Leading suffix tokens reproduced (scan_results.match_len of the same model)."""
    token_match: Mapped[float]
    """Share of the S suffix positions where the greedy continuation has the true token."""
    edit_distance: Mapped[float]
    """Levenshtein distance between the continuation's and the suffix's token ids, divided by S."""


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


# Analysis results (migration 0002), written in bulk from kdplatform.analysis.classifier.to_arrow.
class ClassifierTrial(Base):
    """Test-split metrics of one trial of the memorization classifier; run_id is the classifier stage."""

    __tablename__ = "classifier_trials"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    trial: Mapped[int] = mapped_column(primary_key=True)
    n_train: Mapped[int]
    n_test: Mapped[int]
    n_positive: Mapped[int]
    """Positives (student-memorized) in this trial's sample, train and test together."""
    n_negative: Mapped[int]
    accuracy: Mapped[float]
    precision: Mapped[float]
    recall: Mapped[float]
    f1: Mapped[float]
    roc_auc: Mapped[float | None]
    """None when the test split holds one class only."""


class ClassifierCoefficient(Base):
    """Logistic-regression coefficient of one standardized feature in one trial (Tables 4-7)."""

    __tablename__ = "classifier_coefficients"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    trial: Mapped[int] = mapped_column(primary_key=True)
    feature: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[float]


class ExampleRisk(Base):
    """Predicted probability that the student memorizes an example; `predicted` is risk >= threshold."""

    __tablename__ = "example_risk"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    example_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    risk: Mapped[float | None]
    """None when a feature of the example is missing."""
    predicted: Mapped[bool] = mapped_column(Boolean)
