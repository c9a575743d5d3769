"""The enums of the schema's string columns (`runs.kind`, `runs.status`, `runs.role`, `run_inputs.kind`),
re-exported by `schema`: code names these, never string literals."""

from __future__ import annotations

from enum import StrEnum


class StageKind(StrEnum):
    """What a stage (a `runs` row) does; `runs.kind`."""

    DATA = "data"
    PRETRAIN = "pretrain"
    GENERATE = "generate"
    TRAIN = "train"
    SCAN = "scan"
    CLASSIFY = "classify"
    EVAL = "eval"
    """A trained model's lm-evaluation-harness scores (eval_results)."""
    CANARY = "canary"
    APPROXIMATE = "approximate"
    """Approximate memorization of one scanned model's long matches (migration 0011; optional)."""
    CROSS_SCAN = "cross_scan"
    """One of this job's models scanned on another job's examples (the `cross_scan:` section)."""


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
