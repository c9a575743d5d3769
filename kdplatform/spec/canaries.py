"""The `data.canaries:` section: synthetic canaries inserted into D at controlled duplication counts.

A canary is an example like any other, of the dataset's example length: a unique random prefix, then a
fixed template and a random secret of digits that ends the memorization window (so the suffix holds the
secret). Training data hold `copies` copies of each; the examples table records it once (split `canary`).
Unset, the section is left out of the data stage's hash: jobs without canaries keep theirs.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from kdplatform.spec.base import PositiveInt, Seed, Strict


class CanarySpec(Strict):
    counts: list[PositiveInt] = [1, 2, 4, 8, 16]
    """Duplication counts: each canary is in the training data this many times."""
    per_count: PositiveInt = 2
    """Distinct canaries per count (sum(counts) * per_count training rows in all)."""
    secret_len: Annotated[int, Field(gt=0, le=30)] = 10
    """Digits of the secret: the last secret_len tokens of each canary's memorization window."""
    alternatives: PositiveInt = 1000
    """R, the random alternative secrets each canary's true secret is ranked among (exposure is at most
    log2(R + 1) bits)."""
    template: str = " The secret number is"
    """The fixed text before the secret, repeated to fill the suffix up to it."""
    seed: Seed = 0
    """Fixes the canaries' prefixes, secrets and alternatives."""

    @field_validator("counts")
    @classmethod
    def _counts(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("needs at least one count")
        if len(set(v)) != len(v):
            raise ValueError("counts must be distinct")
        return v

    @field_validator("template")
    @classmethod
    def _template(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must hold some text")
        return v

    @property
    def n_canaries(self) -> int:
        return len(self.counts) * self.per_count

    @property
    def n_rows(self) -> int:
        """Training rows the canaries add: every copy of every canary."""
        return sum(self.counts) * self.per_count
