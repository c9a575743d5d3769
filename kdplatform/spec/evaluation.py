"""The `eval:` section: utility of the trained models on lm-evaluation-harness tasks (the paper's section 6
measures LAMBADA and Winogrande for the hard-KD student and the baseline).

Absent, the job has no eval stage and its hashes are what they were. Task names are checked here for
form only; preflight (kdplatform.evaluation.tasks) checks them against lm-eval's registry and the local
`include_path` without downloading.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from kdplatform.spec.sections import PositiveInt, Strict

if TYPE_CHECKING:
    from kdplatform.spec import JobSpec

EvalRole = Literal["teacher", "baseline", "student", "student_converged", "student_hard", "student_filtered"]
"""The trained roles an eval stage can evaluate (store.schema.Role's, without `base`)."""

TASK_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$"
"""An lm-eval task, group or tag name (the registry's names are of these characters)."""


class EvalTaskSpec(Strict):
    """One lm-eval task (or group) and how it is run."""

    name: Annotated[str, Field(pattern=TASK_NAME)]
    """A task of lm-eval's registry (e.g. lambada_openai, winogrande) or of `eval.include_path`."""
    num_fewshot: Annotated[int, Field(ge=0)] = 0
    """Examples in the few-shot context (the paper's utility numbers are zero-shot)."""
    limit: PositiveInt | None = None
    """Evaluate only the first `limit` documents (None: all of them)."""


class EvalSpec(Strict):
    """One `eval/<train stage>` per trained model of `roles`, each running every task."""

    tasks: Annotated[list[EvalTaskSpec], Field(min_length=1)]
    """Tasks by name (`- lambada_openai`) or with settings (`- {name: winogrande, num_fewshot: 5}`)."""
    roles: list[EvalRole] | None = None
    """The roles whose trained models are evaluated (every seed, temperature and objective of each);
    None: every trained model of the job."""
    batch_size: PositiveInt = 16
    """Requests per forward pass."""
    include_path: str | None = None
    """A folder of local lm-eval task YAMLs (lm-eval's --include_path); relative to the directory the job
    runs in. Its files are part of the eval stages' identity: editing them reruns the evaluations."""
    bootstrap_iters: Annotated[int, Field(ge=0)] = 100_000
    """Bootstrap resamples for the stderr of metrics without a closed form (lm-eval's default; 0: none,
    those stderrs are NULL)."""

    @field_validator("tasks", mode="before")
    @classmethod
    def _names(cls, v: Any) -> Any:
        return [{"name": t} if isinstance(t, str) else t for t in v] if isinstance(v, list) else v

    @field_validator("roles")
    @classmethod
    def _roles(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and not v:
            raise ValueError("is empty; omit it to evaluate every trained model")
        if v is not None and len(set(v)) != len(v):
            raise ValueError("roles must be distinct")
        return v

    @model_validator(mode="after")
    def _distinct(self) -> EvalSpec:
        seen = set()
        for i, t in enumerate(self.tasks):
            if (t.name, t.num_fewshot) in seen:
                raise ValueError(
                    f"tasks.{i}: {t.name!r} with num_fewshot {t.num_fewshot} is listed twice; the results "
                    "of one would replace the other's"
                )
            seen.add((t.name, t.num_fewshot))
        return self


def trained_roles(job: JobSpec) -> set[str]:
    """The roles the job trains models of: teacher, baseline and student, and those of its optional
    sections."""
    given = {
        "student_converged": job.student.distill.converged_max_epochs is not None,
        "student_hard": job.hard_student is not None,
        "student_filtered": job.filtered_student is not None,
    }
    return {"teacher", "baseline", "student"} | {role for role, g in given.items() if g}


def roles_error(job: JobSpec) -> str | None:
    """Why `eval.roles` cannot be evaluated: roles the job trains no model of (None: it can)."""
    present = trained_roles(job)
    missing = [r for r in job.eval.roles or () if r not in present]
    if not missing:
        return None
    have = ", ".join(sorted(present))
    return f"eval.roles: the job trains no {', '.join(missing)} model (it trains: {have})"
