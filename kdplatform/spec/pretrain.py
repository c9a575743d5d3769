"""The `pretrain:` section: bases pretrained on a corpus disjoint from D, or hub checkpoints standing in."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator, model_validator

from kdplatform.spec.sections import (
    NAME_PATTERN,
    ModelSpec,
    PositiveInt,
    Seed,
    Strict,
    TrainSpec,
    text_source,
)


class CorpusSpec(Strict):
    """The bases' pretraining text: disjoint from D, and tokenized with D's tokenizer."""

    source: str = "stdlib-code"
    """`stdlib-code` (the standard library's source without its docstrings, which the builtin D is made
    of), `files:PATH` or `hf:NAME`."""
    hf_config: str | None = None
    split: str = "train"
    text_field: str = "text"
    max_chars: PositiveInt = 20_000_000
    num_windows: PositiveInt = 4000
    """Training windows (of the data's training length) the bases are pretrained on."""
    val_windows: PositiveInt = 200
    """Held-out windows of the corpus: each base's code validation loss."""
    seed: Seed = 0
    """Fixes which documents are used and their order."""

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        return text_source(v, "stdlib-code")


class BaseSpec(Strict):
    """A pretrained base: a preset trained on the corpus (`train` given), or a hub checkpoint or local
    path standing in for one (`train` null: used as it is)."""

    model: ModelSpec
    train: TrainSpec | None = None

    @model_validator(mode="after")
    def _trainable(self) -> BaseSpec:
        if self.model.base is not None:
            raise ValueError("a base cannot start from another base: give `preset` or `name`")
        if self.model.preset is not None and self.train is None:
            raise ValueError(
                f"a base of preset {self.model.preset!r} needs `train` (a preset is random weights)"
            )
        return self


class PretrainSpec(Strict):
    """Bases pretrained before the job's training stages, cached outside the workdir for other jobs."""

    corpus: CorpusSpec = CorpusSpec()
    cache_dir: str | None = None
    """Where trained bases are cached, one directory per base content hash; default <workdir>/../_bases
    (runs/_bases for the default workdirs), shared by the jobs beside it."""
    bases: Annotated[dict[Annotated[str, Field(pattern=NAME_PATTERN)], BaseSpec], Field(min_length=1)]
