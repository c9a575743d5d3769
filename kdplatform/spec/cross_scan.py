"""The `cross_scan:` section: this job's models scanned on the examples of other jobs in the same database.

The paper's Figure 6 compares each family's perplexity on the examples another family memorized. Those
examples are another job's rows, so the scan is a stage of the scanning job (its lineage and its rerun
rules are the job's), named by the other job; the other job must have finished its scans first.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from kdplatform.spec.sections import NAME_PATTERN, PositiveInt, Strict

ScannedRole = Literal[
    "teacher", "baseline", "student", "student_converged", "student_hard", "student_filtered"
]


class CrossScanSpec(Strict):
    """Which of this job's models scan which other jobs' examples."""

    jobs: Annotated[list[Annotated[str, Field(pattern=NAME_PATTERN)]], Field(min_length=1)]
    """Other jobs (by name) in this job's database whose examples of D are scanned."""
    roles: Annotated[list[ScannedRole], Field(min_length=1)] = ["baseline"]
    """This job's trained roles whose models scan them (every seed, objective and temperature)."""
    examples: Literal["memorized", "all"] = "memorized"
    """`memorized`: the other job's examples of D that any of its finished scans memorized (the paper's
    Figure 6); `all`: every example of its D (overlaps and correlations over the whole pool)."""
    batch_size: PositiveInt | None = None
    """Sequences per forward pass (default: from the device and vocabulary, as `scan`)."""

    @field_validator("jobs", "roles")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("must be distinct")
        return v
