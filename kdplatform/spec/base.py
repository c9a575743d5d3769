"""The spec's building blocks: the strict, frozen model every section derives from and its number types."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
Seed = Annotated[int, Field(ge=0, lt=2**32)]
"""A seed numpy, torch and Python's random all take: [0, 2**32)."""


class SpecError(Exception):
    """A job spec that cannot run; the message says where and how to fix it."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
    """Strict: no bool or str is coerced to a number (`seeds: [true]` is an error, not seed 1), an int is
    still a valid float; only finite floats (`lr: .inf` is an error, not a job of NaN losses)."""

    _omit_none: ClassVar[tuple[str, ...]] = ()
    """Optional fields left out of the dump while None: a field added later leaves the stage and job
    hashes of a spec that does not set it as they were (existing workdirs resume)."""

    @model_serializer(mode="wrap")
    def _without_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        out = handler(self)
        for name in self._omit_none:
            if getattr(self, name) is None:
                out.pop(name, None)
        return out
