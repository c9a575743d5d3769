"""The job spec: one YAML file describes a whole study (data, models by role, training, scans).

Validation happens before anything is written, and every error names the file, the field and the fix,
so a typo in a week-long job fails in a second instead of after the teacher has trained. The file itself
is untrusted input: a regular UTF-8 file, YAML without repeated keys, bounded in size after aliases.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from kdplatform.spec.canaries import CanarySpec
from kdplatform.spec.cross_scan import CrossScanSpec
from kdplatform.spec.evaluation import EvalSpec, EvalTaskSpec, roles_error
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

__all__ = [
    "HELDOUT_DEFAULT_CAP",
    "MAX_SPEC_BYTES",
    "NAME_PATTERN",
    "PRESETS",
    "BaseSpec",
    "CanarySpec",
    "ClassifierSpec",
    "CorpusSpec",
    "CrossScanSpec",
    "DataSpec",
    "DistillSpec",
    "EvalSpec",
    "EvalTaskSpec",
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
    _omit_none = ("pretrain", "eval", "cross_scan")

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
    eval: EvalSpec | None = None
    """lm-evaluation-harness tasks run on trained models (spec.evaluation); none when absent."""
    cross_scan: CrossScanSpec | None = None
    """This job's models scanned on other jobs' examples (the cross-family comparisons)."""

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

    @model_validator(mode="after")
    def _eval_roles(self) -> JobSpec:
        if self.eval is not None and (why := roles_error(self)):
            raise ValueError(why)
        return self

    @model_validator(mode="after")
    def _cross_scan_of_others(self) -> JobSpec:
        cs = self.cross_scan
        if cs is not None and self.name in cs.jobs:
            raise ValueError(f"cross_scan.jobs names this job ({self.name!r}); its own scans are `scan`")
        optional = {"student_hard": self.hard_student, "student_filtered": self.filtered_student}
        for role in cs.roles if cs is not None else ():
            if role in optional and optional[role] is None:
                raise ValueError(f"cross_scan.roles has {role!r}, but the job trains no {role}")
            if role == "student_converged" and self.student.distill.converged_max_epochs is None:
                raise ValueError("cross_scan.roles has 'student_converged', but the job trains none")
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


# Reading a job file as untrusted input: a regular, readable, UTF-8 file of bounded size, YAML without
# repeated keys, bounded after alias expansion: a hostile file is refused in milliseconds with a message.
MAX_SPEC_BYTES = 1_000_000
"""The largest job file read, and the largest it may grow to as JSON once YAML aliases are expanded."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping key given twice (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if first is None:
                seen[key] = key_node.start_mark.line + 1
            else:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} given twice (first on line {first}); a repeated key would silently "
                    "replace the first",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def _read_text(path: Path) -> str:
    """The file's text; SpecError for a missing, non-regular, unreadable, too large or non-UTF-8 file."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise SpecError(f"{path}: no such job file") from None
    except OSError as e:
        raise SpecError(f"{path}: cannot read the job file: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file (a device, FIFO or socket)"
        raise SpecError(f"{path}: a job file must be a regular file; this is {kind}")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(MAX_SPEC_BYTES + 1)
    except OSError as e:
        raise SpecError(f"{path}: cannot read the job file: {e.strerror or e}") from None
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(f"{path}: larger than the {MAX_SPEC_BYTES:,}-byte limit of a job file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise SpecError(
            f"{path}: not UTF-8 text (byte {e.start}, line {line}: {data[e.start : e.start + 1]!r}); "
            "save the job file as UTF-8"
        ) from None


def _expanded_size(obj: Any, limit: int) -> int:
    """About how many bytes `obj` takes as JSON with every shared (aliased) node written out, counted
    in time linear in the distinct nodes and stopped past `limit`; ValueError for a recursive alias."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()

    def size(o: Any) -> int:
        if not isinstance(o, dict | list):
            return len(json.dumps(o, default=str))
        if id(o) in sizes:
            return sizes[id(o)]
        if id(o) in open_:
            raise ValueError("a recursive alias (a node that contains itself)")
        open_.add(id(o))
        items = [*o.keys(), *o.values()] if isinstance(o, dict) else o
        total = 2
        for item in items:
            total += size(item) + 1
            if total > limit:
                break
        open_.discard(id(o))
        sizes[id(o)] = total
        return total

    return size(obj)


def _parse(text: str, path: Path) -> Any:
    """The YAML document of a job file; SpecError naming the file for invalid YAML, a repeated key, a
    recursive alias, or a document that expands past MAX_SPEC_BYTES."""
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as e:
        raise SpecError(f"{path}: not valid YAML: {e}") from None
    except RecursionError:
        raise SpecError(f"{path}: not valid YAML: nested too deeply") from None
    try:
        n = _expanded_size(raw, MAX_SPEC_BYTES)
    except (ValueError, RecursionError) as e:
        msg = str(e) if isinstance(e, ValueError) else "nested too deeply"
        raise SpecError(f"{path}: not a valid job spec: {msg}") from None
    if n > MAX_SPEC_BYTES:
        raise SpecError(
            f"{path}: the spec expands (YAML aliases written out) past the {MAX_SPEC_BYTES:,}-byte limit "
            "of a job spec; a real job is a few kilobytes"
        )
    return raw


def load_spec(path: str | Path) -> JobSpec:
    """Read and validate a job file; raises SpecError naming the file and field (spec.yamlio says what a
    file must be before its content is validated)."""
    path = Path(path)
    raw = _parse(_read_text(path), path)
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a job spec must be a YAML mapping (key: value), got {type(raw).__name__}")
    try:
        return JobSpec.model_validate(raw)
    except ValidationError as e:
        raise SpecError(_format_errors(path, e)) from None
