"""The sections of a job spec: data, models, training, distillation, classifier, scan.

Every section is strict (unknown keys are errors, no value coerced, floats finite) and frozen, so a spec
is a value that hashes stably. A preset's `config:` is checked against GPTNeoXConfig's fields here.
"""

from __future__ import annotations

import difflib
import math
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from kdplatform.spec.base import NonNegFloat, PositiveFloat, PositiveInt, Seed, SpecError, Strict
from kdplatform.spec.canaries import CanarySpec

__all__ = ["CanarySpec", "NonNegFloat", "PositiveFloat", "PositiveInt", "Seed", "SpecError", "Strict"]

# Presets: their shapes and the GPTNeoXConfig fields a spec's `config:` may override, checked without
# importing torch (transformers' config module imports it), so a typo or a bad size fails at validation.
# tests/unit/test_spec_hardening.py keeps CONFIG_FIELDS and PLATFORM_FIELDS in step with GPTNeoXConfig.
PRESET_CONFIGS: dict[str, dict[str, Any]] = {
    "tiny-teacher": dict(num_hidden_layers=4, hidden_size=192, num_attention_heads=4, intermediate_size=768),
    "tiny-student": dict(num_hidden_layers=3, hidden_size=160, num_attention_heads=4, intermediate_size=640),
}

SIZES = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size")
"""Positive integers."""
CONFIG_FIELDS: dict[str, str] = {
    **dict.fromkeys(SIZES, "size"),
    "hidden_act": "str",
    "attention_dropout": "fraction",
    "hidden_dropout": "fraction",
    "classifier_dropout": "fraction",
    "initializer_range": "positive",
    "layer_norm_eps": "positive",
    "use_cache": "bool",
    "attention_bias": "bool",
    "bos_token_id": "token",
    "eos_token_id": "token",
    "pad_token_id": "token",
    "rope_parameters": "mapping",
}
"""GPTNeoXConfig's architecture fields a preset may override, by the kind of value each takes."""
PLATFORM_FIELDS: dict[str, str] = {
    "vocab_size": "the tokenizer's size",
    "max_position_embeddings": "data.seq_len / train_len",
    "rotary_pct": "Pythia's fixed choice (a quarter of each head)",
    "use_parallel_residual": "Pythia's fixed choice",
    "tie_word_embeddings": "Pythia's fixed choice",
    "is_decoder": "a causal LM's fixed choice",
}
"""Fields the platform sets itself (models.build_neox), so a spec may not."""


def _kind_error(kind: str, v: Any) -> str | None:
    number = isinstance(v, int | float) and not isinstance(v, bool)
    if kind == "size":
        ok = isinstance(v, int) and not isinstance(v, bool) and v > 0
        return None if ok else "must be a positive integer"
    if kind == "fraction":
        return None if number and 0 <= v < 1 else "must be a number in [0, 1)"
    if kind == "positive":
        return None if number and math.isfinite(v) and v > 0 else "must be a positive finite number"
    if kind == "bool":
        return None if isinstance(v, bool) else "must be true or false"
    if kind == "str":
        return None if isinstance(v, str) and v else "must be a non-empty string"
    if kind == "token":
        ok = v is None or isinstance(v, int) and not isinstance(v, bool) and v >= 0
        return None if ok else "must be a non-negative integer token id, or null"
    if not isinstance(v, dict):
        return "must be a mapping"
    bad = [k for k, x in v.items() if isinstance(x, float) and not math.isfinite(x)]
    return f"must hold finite numbers ({', '.join(map(str, bad))} are not)" if bad else None


def config_errors(preset: str, config: dict[str, Any]) -> list[str]:
    """Why a preset's `config:` overrides cannot build a model: unknown or platform-set keys (naming the
    nearest valid key), bad values, heads that do not divide the hidden size. Empty when fine."""
    errors = []
    for key, v in config.items():
        if key in PLATFORM_FIELDS:
            errors.append(f"config.{key}: set by the platform ({PLATFORM_FIELDS[key]}); remove it")
        elif key not in CONFIG_FIELDS:
            near = difflib.get_close_matches(str(key), [*CONFIG_FIELDS, *PLATFORM_FIELDS], n=1)
            hint = f"did you mean {near[0]!r}?" if near else "valid keys: " + ", ".join(CONFIG_FIELDS)
            errors.append(f"config.{key}: not a GPTNeoXConfig field of a preset; {hint}")
        elif why := _kind_error(CONFIG_FIELDS[key], v):
            errors.append(f"config.{key}: {why}, got {v!r}")
    shape = PRESET_CONFIGS.get(preset, {}) | config
    hidden, heads = shape.get("hidden_size"), shape.get("num_attention_heads")
    if not errors and hidden % heads:
        errors.append(
            f"config: num_attention_heads ({heads}) must divide hidden_size ({hidden}) "
            f"(preset {preset!r}'s defaults: {PRESET_CONFIGS[preset]})"
        )
    return errors


PRESETS = tuple(PRESET_CONFIGS)
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
"""Job and base names: they become directory names and stage keys."""
Objective = Literal["forward_kl", "reverse_kl", "jsd"]


def text_source(v: str, offline: str) -> str:
    if v == offline or v.startswith(("hf:", "files:")) and len(v.split(":", 1)[1]) > 0:
        return v
    raise ValueError(f"must be `{offline}`, `hf:NAME` or `files:PATH`")


class TokenizerSpec(Strict):
    """Either a tokenizer by hub name / local path, or a byte-level BPE trained locally on the corpus."""

    name: str | None = None
    revision: str | None = None
    vocab_size: PositiveInt = 4096
    """Size of the locally trained BPE vocabulary (ignored when `name` is given)."""


HELDOUT_DEFAULT_CAP = 10_000
"""The default held-out split is as large as D up to this many examples: enough for TPR at 0.1 % FPR."""


class DataSpec(Strict):
    _omit_none = ("train_len", "canaries")
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
    """The memorization window L: memorization is tested on each example's first seq_len tokens."""
    prefix_len: PositiveInt = 50
    """Prefix tokens given to the model; the suffix is seq_len - prefix_len tokens."""
    train_len: PositiveInt | None = None
    """Tokens per training example (None: seq_len). The paper trains on 256-token sequences and tests
    memorization on their first 100 tokens: seq_len 100, train_len 256."""
    max_corpus_chars: PositiveInt = 20_000_000
    seed: Seed = 0
    """Fixes which documents are used and their order."""
    tokenizer: TokenizerSpec = TokenizerSpec()
    canaries: CanarySpec | None = None
    """Synthetic canaries inserted into the training data at controlled duplication counts (None: none)."""

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        return text_source(v, "builtin")

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
        if self.train_len is not None and self.train_len < self.seq_len:
            raise ValueError(
                f"train_len ({self.train_len}) must be at least seq_len ({self.seq_len}): memorization is "
                "tested on each training example's first seq_len tokens; raise train_len or omit it "
                "(it defaults to seq_len)"
            )
        c = self.canaries
        if c is not None and c.secret_len > self.seq_len - self.prefix_len:
            raise ValueError(
                f"canaries.secret_len ({c.secret_len}) must fit in the suffix "
                f"(seq_len - prefix_len = {self.seq_len - self.prefix_len})"
            )
        return self

    @property
    def training_len(self) -> int:
        """Tokens per training (and validation) example: train_len, else seq_len."""
        return self.seq_len if self.train_len is None else self.train_len


class ModelSpec(Strict):
    """A tiny preset built from GPTNeoXConfig (offline), any AutoModelForCausalLM name or local path, or
    a pretrained base of the job's `pretrain.bases` (`base: NAME`)."""

    _omit_none = ("base",)

    preset: str | None = None
    name: str | None = None
    base: str | None = None
    """A key of `pretrain.bases`: the model starts from that base's weights."""
    revision: str | None = None
    config: dict[str, Any] = {}
    """Overrides of the preset's GPTNeoXConfig fields (e.g. num_hidden_layers)."""

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        if sum(x is not None for x in (self.preset, self.name, self.base)) != 1:
            raise ValueError(
                "give exactly one of `preset` (one of: " + ", ".join(PRESETS) + "), `name` or `base`"
            )
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose one of: " + ", ".join(PRESETS))
        if self.base is not None and (self.revision is not None or self.config):
            raise ValueError("`base` takes no `revision` or `config`: set them on the base in pretrain.bases")
        if self.name is not None and self.config:
            raise ValueError("`config` overrides a preset's fields; a `name` model keeps its checkpoint's")
        if self.preset is not None and (errors := config_errors(self.preset, self.config)):
            raise ValueError("; ".join(errors))
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
    sweep_seeds: list[Seed] | None = None
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
    train: TrainSpec | None = TrainSpec()
    """`null` uses the checkpoint as it is, untrained (the continued-pre-training setup's teacher and
    baseline are published Pythia checkpoints): the stage saves it and records its validation loss."""


class TrainedRoleSpec(RoleSpec):
    """A role that is trained by definition (every student): `train` cannot be null."""

    train: TrainSpec = TrainSpec()


class StudentSpec(TrainedRoleSpec):
    distill: DistillSpec = DistillSpec()


class HardStudentSpec(TrainedRoleSpec):
    seeds: list[Seed] | None = None
    """A subset of the job's seeds to train this role for; default all of them."""


class ClassifierSpec(Strict):
    """The pre-distillation memorization classifier (section 4.1, A.4)."""

    _omit_none = ("fallback",)

    features: list[str] = ["teacher_ppl", "baseline_ppl", "zlib_entropy", "teacher_baseline_kld"]
    target: Literal["student", "student_hard"] = "student"
    """Whose memorization is the positive class: the soft student (the paper's Table 4, at the first
    objective and temperature) or the hard-KD student, for jobs whose soft students memorize too little
    to fit a classifier."""
    fallback: Literal["student_hard"] | None = None
    """Used instead of `target` when the target memorized fewer than `min_positives` examples (recorded
    as the classify run's role, and said in the report); None: the classifier is skipped then."""
    min_positives: PositiveInt = 10
    """Fewest memorized examples of `target` to fit on before `fallback` is used."""
    trials: PositiveInt = 100
    ratio: PositiveInt = 3
    """Negatives sampled per positive, afresh in each trial."""
    test_size: Annotated[float, Field(gt=0, lt=1)] = 0.3
    seed: Seed = 0
    threshold: Annotated[float, Field(ge=0, le=1)] = 0.5
    """Risk at or above which an example is predicted memorized (and filtered out)."""


class FilteredStudentSpec(StudentSpec):
    """Re-distillation on D minus an exclusion set (section 4.2); scanned on all of D."""

    seeds: list[Seed] | None = None
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
    approximate_min_match: Annotated[int, Field(ge=0)] | None = None
    """Approximate memorization (stage `approximate/...`, off by default): for every member whose greedy
    continuation reproduces at least this many leading suffix tokens, the token-match share and the
    normalized edit distance of the free greedy continuation against the true suffix. Not part of the
    scan's identity: turning it on adds stages and rescans nothing."""
