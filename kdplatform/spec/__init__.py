"""The job spec: one YAML file describes a whole study (data, models by role, training, scans).

Validation happens before anything is written, and every error names the file, the field and the fix,
so a typo in a week-long job fails in a second instead of after the teacher has trained.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator, model_validator

from kdplatform.spec.pretrain import BaseSpec, CorpusSpec, PretrainSpec
from kdplatform.spec.sections import (
    HELDOUT_DEFAULT_CAP,
    NAME_PATTERN,
    PRESETS,
    ClassifierSpec,
    DataSpec,
    DistillSpec,
    FilteredStudentSpec,
    HardStudentSpec,
    ModelSpec,
    NonNegFloat,
    Objective,
    PositiveFloat,
    PositiveInt,
    RoleSpec,
    ScanSpec,
    Seed,
    SpecError,
    Strict,
    StudentSpec,
    TokenizerSpec,
    TrainedRoleSpec,
    TrainSpec,
)
from kdplatform.spec.yamlio import parse, read_text

__all__ = [
    "HELDOUT_DEFAULT_CAP",
    "NAME_PATTERN",
    "PRESETS",
    "BaseSpec",
    "ClassifierSpec",
    "CorpusSpec",
    "DataSpec",
    "DistillSpec",
    "FilteredStudentSpec",
    "HardStudentSpec",
    "JobSpec",
    "ModelSpec",
    "NonNegFloat",
    "Objective",
    "PositiveFloat",
    "PositiveInt",
    "PretrainSpec",
    "RoleSpec",
    "ScanSpec",
    "Seed",
    "SpecError",
    "Strict",
    "StudentSpec",
    "TokenizerSpec",
    "TrainSpec",
    "TrainedRoleSpec",
    "hash_config",
    "load_spec",
]


class JobSpec(Strict):
    _omit_none = ("pretrain",)

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    description: str | None = None
    """Free text shown at the top of the job's report: what the job is for, how it was calibrated."""
    workdir: str | None = None
    """Checkpoints, data and default stores; default runs/<name>, relative to the current directory."""
    database_url: str | None = None
    """Any SQLAlchemy URL; default duckdb:///<workdir>/kdp.duckdb."""
    mlflow_tracking_uri: str | None = None
    """Default: env MLFLOW_TRACKING_URI, else sqlite:///<workdir>/mlflow.db."""
    seeds: list[Seed] = [0]
    """Seeds for baselines and students (model init and data order); the teacher uses the first."""
    data: DataSpec = DataSpec()
    pretrain: PretrainSpec | None = None
    """Bases pretrained on a corpus disjoint from D, for roles whose model is `base: NAME`."""
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
        c = self.classifier
        for field in ("target", "fallback"):
            if c is not None and getattr(c, field) == "student_hard" and not self.hard_student:
                raise ValueError(
                    f"classifier.{field} is `student_hard` but the job has no `hard_student:` section"
                )
        if (
            self.classifier is not None
            and not self.scan.kld
            and "teacher_baseline_kld" in self.classifier.features
        ):
            raise ValueError("classifier.features uses teacher_baseline_kld, which needs scan.kld: true")
        return self

    def roles(self) -> dict[str, RoleSpec]:
        """The job's role sections by field name (optional ones only when given)."""
        out = {"teacher": self.teacher, "baseline": self.baseline, "student": self.student}
        for name in ("hard_student", "filtered_student"):
            if (rs := getattr(self, name)) is not None:
                out[name] = rs
        return out

    @model_validator(mode="after")
    def _bases_exist(self) -> JobSpec:
        names = sorted(self.pretrain.bases) if self.pretrain else []
        for field, rs in self.roles().items():
            base = rs.model.base
            if base is not None and base not in names:
                have = f"the bases are: {', '.join(names)}" if names else "the job has no `pretrain:` section"
                raise ValueError(f"{field}.model.base: unknown base {base!r}; {have}")
        return self

    def model_of(self, model: ModelSpec) -> ModelSpec:
        """The model a spec names: a `base: NAME` resolved to that base's own model (preset or name)."""
        return self.pretrain.bases[model.base].model if model.base is not None else model

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
        elif e["type"] == "value_error":
            msg = msg.removeprefix("Value error, ")
        lines.append(f"  - {loc}: {msg}")
    return "\n".join(lines)


def load_spec(path: str | Path) -> JobSpec:
    """Read and validate a job file; raises SpecError naming the file and field (spec.yamlio says what a
    file must be before its content is validated)."""
    path = Path(path)
    raw = parse(read_text(path), path)
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a job spec must be a YAML mapping (key: value), got {type(raw).__name__}")
    try:
        return JobSpec.model_validate(raw)
    except ValidationError as e:
        raise SpecError(_format_errors(path, e)) from None
