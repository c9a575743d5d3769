"""The job spec: one YAML file describes a whole study (data, models by role, training, scans).

Validation happens before anything is written, and every error names the file, the field and the fix,
so a typo in a week-long job fails in a second instead of after the teacher has trained.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]

PRESETS = ("tiny-teacher", "tiny-student")
Objective = Literal["forward_kl", "reverse_kl", "jsd"]


class SpecError(Exception):
    """A job spec that cannot run; the message says where and how to fix it."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TokenizerSpec(Strict):
    """Either a tokenizer by hub name / local path, or a byte-level BPE trained locally on the corpus."""

    name: str | None = None
    revision: str | None = None
    vocab_size: PositiveInt = 4096
    """Size of the locally trained BPE vocabulary (ignored when `name` is given)."""


HELDOUT_DEFAULT_CAP = 10_000
"""The default held-out split is as large as D up to this many examples: enough for TPR at 0.1 % FPR."""


class DataSpec(Strict):
    source: str = "builtin"
    """`builtin` (offline English corpus), `hf:NAME` (datasets.load_dataset) or `files:PATH`."""
    hf_config: str | None = None
    split: str = "train"
    text_field: str = "text"
    num_examples: PositiveInt = 300
    """Training examples D (after exact-duplicate removal)."""
    val_examples: PositiveInt = 64
    """Held-out examples for validation loss and perplexity."""
    heldout_examples: Annotated[int, Field(ge=0)] | None = None
    """Held-out non-members scanned beside D for membership inference (examples split `heldout`): windows
    of the same corpus after D and the validation examples. None: as many as D, at most
    HELDOUT_DEFAULT_CAP; 0: none (the membership-inference views then have no rows)."""
    skip_examples: Annotated[int, Field(ge=0)] = 0
    """Windows skipped before D starts: picks an example range of a corpus (the continued-pre-training
    setup trains on a range the base checkpoints have not seen)."""
    seq_len: PositiveInt = 100
    prefix_len: PositiveInt = 50
    """Prefix tokens given to the model; the suffix is seq_len - prefix_len tokens."""
    max_corpus_chars: PositiveInt = 20_000_000
    seed: int = 0
    """Fixes which documents are used and their order."""
    tokenizer: TokenizerSpec = TokenizerSpec()

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        if v == "builtin" or v.startswith(("hf:", "files:")) and len(v.split(":", 1)[1]) > 0:
            return v
        raise ValueError("must be `builtin`, `hf:NAME` or `files:PATH`")

    @property
    def num_heldout(self) -> int:
        """The held-out split's size: `heldout_examples`, or its default."""
        if self.heldout_examples is not None:
            return self.heldout_examples
        return min(self.num_examples, HELDOUT_DEFAULT_CAP)

    @model_validator(mode="after")
    def _lengths(self) -> DataSpec:
        if self.prefix_len >= self.seq_len:
            raise ValueError(
                f"prefix_len ({self.prefix_len}) must be shorter than seq_len ({self.seq_len}): "
                "the suffix is seq_len - prefix_len tokens"
            )
        return self


class ModelSpec(Strict):
    """A tiny preset built from GPTNeoXConfig (offline), or any AutoModelForCausalLM name or local path."""

    preset: str | None = None
    name: str | None = None
    revision: str | None = None
    config: dict[str, Any] = {}
    """Overrides of the preset's GPTNeoXConfig fields (e.g. num_hidden_layers)."""

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        if (self.preset is None) == (self.name is None):
            raise ValueError("give exactly one of `preset` (one of: " + ", ".join(PRESETS) + ") or `name`")
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose one of: " + ", ".join(PRESETS))
        return self


class TrainSpec(Strict):
    epochs: PositiveInt = 10
    batch_size: PositiveInt = 16
    lr: PositiveFloat = 1e-3
    weight_decay: NonNegFloat = 0.0
    warmup_ratio: Annotated[float, Field(ge=0, lt=1)] = 0.05
    grad_accum: PositiveInt = 1
    max_grad_norm: PositiveFloat = 1.0
    bf16: bool = True
    """bf16 autocast where the hardware supports it (CUDA); ignored on CPU."""
    max_tokens: PositiveInt | None = None
    """Stop after this many training tokens (the 'same compute budget' option)."""
    checkpoint_every: PositiveInt | None = 200
    """Save the full training state (optimizer, scheduler, RNG, data position) every N optimizer steps,
    so a killed job resumes where it was cut; None saves only the final model."""


class DistillSpec(Strict):
    objective: list[Objective] = ["forward_kl"]
    temperature: list[PositiveFloat] = [2.0]
    """Distillation temperatures T; more than one is a sweep."""
    alpha: Annotated[float, Field(ge=0, le=1)] = 0.0
    """Weight of cross-entropy mixed into the KD loss: (1 - alpha) * KD + alpha * CE."""
    converged_max_epochs: PositiveInt | None = None
    """Also train, per seed, a `student_converged` at the first temperature and objective: the paper's
    rule, trained until its validation loss beats the same seed's baseline, for at most this many epochs.
    The `student` runs keep `train.epochs` (the equal-compute variant)."""
    sweep_seeds: list[int] | None = None
    """Seeds that train every (objective, temperature) pair; the job's other seeds train only the first
    pair. Default: all of the job's seeds (a sweep on one seed keeps a CPU-sized study affordable)."""

    @field_validator("objective", "temperature")
    @classmethod
    def _nonempty(cls, v: list) -> list:
        if not v:
            raise ValueError("needs at least one value")
        return v


class RoleSpec(Strict):
    model: ModelSpec
    train: TrainSpec = TrainSpec()


class StudentSpec(RoleSpec):
    distill: DistillSpec = DistillSpec()


class HardStudentSpec(RoleSpec):
    seeds: list[int] | None = None
    """A subset of the job's seeds to train this role for; default all of them."""


class ClassifierSpec(Strict):
    """The pre-distillation memorization classifier (section 4.1, A.4)."""

    features: list[str] = ["teacher_ppl", "baseline_ppl", "zlib_entropy", "teacher_baseline_kld"]
    target: Literal["student", "student_hard"] = "student"
    """Whose memorization is the positive class: the soft student (the paper's Table 4, at the first
    objective and temperature) or the hard-KD student, for jobs whose soft students memorize too little
    to fit a classifier."""
    trials: PositiveInt = 100
    ratio: PositiveInt = 3
    """Negatives sampled per positive, afresh in each trial."""
    test_size: Annotated[float, Field(gt=0, lt=1)] = 0.3
    seed: int = 0
    threshold: Annotated[float, Field(ge=0, le=1)] = 0.5
    """Risk at or above which an example is predicted memorized (and filtered out)."""


class FilteredStudentSpec(StudentSpec):
    """Re-distillation on D minus an exclusion set (section 4.2); scanned on all of D."""

    seeds: list[int] | None = None
    """A subset of the job's seeds to train this role for; default all of them."""

    exclude: str = "classifier"
    """`classifier` (examples the job's classifier predicts memorized) or `file:PATH` (one id per line)."""

    @field_validator("exclude")
    @classmethod
    def _exclude(cls, v: str) -> str:
        if v == "classifier" or v.startswith("file:") and len(v) > 5:
            return v
        raise ValueError("must be `classifier` or `file:PATH`")


class ScanSpec(Strict):
    batch_size: PositiveInt | None = None
    """Sequences per forward pass (default: chosen from the device and vocabulary)."""
    shard_size: PositiveInt = 50_000
    """Examples per Parquet shard: bounds memory and is the unit of resume."""
    kld: bool = True
    """Also compute each non-teacher model's mean suffix KL(P_teacher || P_model) in the same pass."""
    store_greedy_min_match: Annotated[int, Field(ge=0)] | None = 25
    """Store greedy continuations of examples with match_len >= this (None: store none)."""
    audit_threshold: NonNegFloat | None = None
    """Re-decide with float32 generate() every example whose smallest top-1/top-2 logit margin is below
    this (None: the library's default for the scan's dtype, memorization.audit.DEFAULT_THRESHOLDS)."""
    audit_sample: Annotated[int, Field(ge=0)] = 32
    """Examples above the threshold re-decided too, drawn at random per shard (a check on the threshold);
    with audit_threshold: 0 and audit_sample: 0 nothing is re-decided."""


class JobSpec(Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    description: str | None = None
    """Free text shown at the top of the job's report: what the job is for, how it was calibrated."""
    workdir: str | None = None
    """Checkpoints, data and default stores; default runs/<name>, relative to the current directory."""
    database_url: str | None = None
    """Any SQLAlchemy URL; default duckdb:///<workdir>/kdp.duckdb."""
    mlflow_tracking_uri: str | None = None
    """Default: env MLFLOW_TRACKING_URI, else sqlite:///<workdir>/mlflow.db."""
    seeds: list[int] = [0]
    """Seeds for baselines and students (model init and data order); the teacher uses the first."""
    data: DataSpec = DataSpec()
    teacher: RoleSpec
    baseline: RoleSpec
    student: StudentSpec
    hard_student: HardStudentSpec | None = None
    """Sequence-level (hard) KD: trained with CE on the teacher's greedy continuations of each prefix."""
    classifier: ClassifierSpec | None = None
    filtered_student: FilteredStudentSpec | None = None
    scan: ScanSpec = ScanSpec()

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("needs at least one seed")
        if len(set(v)) != len(v):
            raise ValueError("seeds must be distinct")
        return v

    @model_validator(mode="after")
    def _seed_subsets(self) -> JobSpec:
        subsets = {
            "student.distill.sweep_seeds": self.student.distill.sweep_seeds,
            "hard_student.seeds": self.hard_student and self.hard_student.seeds,
            "filtered_student.seeds": self.filtered_student and self.filtered_student.seeds,
        }
        for name, got in subsets.items():
            if got is None:
                continue
            if not got:
                raise ValueError(f"{name} is empty; omit it to use all of the job's seeds")
            if extra := sorted(set(got) - set(self.seeds)):
                raise ValueError(f"{name} has {extra}, which are not in the job's seeds {self.seeds}")
        return self

    @model_validator(mode="after")
    def _filter_needs_classifier(self) -> JobSpec:
        fs = self.filtered_student
        if fs is not None and fs.exclude == "classifier" and self.classifier is None:
            raise ValueError(
                "filtered_student.exclude is `classifier` but the job has no `classifier:` section"
            )
        if self.classifier is not None and self.classifier.target == "student_hard" and not self.hard_student:
            raise ValueError("classifier.target is `student_hard` but the job has no `hard_student:` section")
        if (
            self.classifier is not None
            and not self.scan.kld
            and "teacher_baseline_kld" in self.classifier.features
        ):
            raise ValueError("classifier.features uses teacher_baseline_kld, which needs scan.kld: true")
        return self

    def content_hash(self) -> str:
        return hash_config(self.model_dump(mode="json"))


def hash_config(obj: Any) -> str:
    """Stable short hash of a JSON-able object: the identity of a stage's config."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _format_errors(path: Path, err: ValidationError) -> str:
    lines = [f"{path}: invalid job spec ({err.error_count()} problem(s)):"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key; check its spelling against the README's job spec section"
        elif e["type"] == "missing":
            msg = "required field is missing"
        lines.append(f"  - {loc}: {msg}")
    return "\n".join(lines)


def load_spec(path: str | Path) -> JobSpec:
    """Read and validate a job file; raises SpecError naming the file and field."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such job file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise SpecError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a job spec must be a YAML mapping (key: value), got {type(raw).__name__}")
    try:
        return JobSpec.model_validate(raw)
    except ValidationError as e:
        raise SpecError(_format_errors(path, e)) from None
