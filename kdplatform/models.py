"""Models by role: tiny Pythia-architecture presets built offline, or any causal LM by name or path.

The presets keep Pythia's architecture (GPT-NeoX: parallel attention + MLP, rotary embeddings) at a size
that trains on two CPU cores, so the whole pipeline runs anywhere; real studies name hub models.

Precision policy (one place, applied wherever a model is loaded): hub checkpoints are stored in float16 or
bfloat16, and AdamW updating half-precision weights loses the update (bf16) or divides by an eps that
underflows to 0 (fp16: NaN). So a model that will be trained is always loaded as float32 master weights
(:func:`load_pretrained`, the default); ``bf16: true`` only adds autocast on CUDA. A frozen model (teacher,
scanned model) may run in half precision (:func:`load_frozen`); every consumer upcasts its logits to
float32 before a softmax, KL, log-probability or argmax.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from kdplatform.spec import ModelSpec
from kdplatform.spec.sections import PRESET_CONFIGS

MASTER_DTYPE = torch.float32
"""The dtype of every trainable weight, whatever the checkpoint was saved in."""


def build_neox(vocab_size: int, *, seed: int | None = None, **config: Any):
    """A randomly initialised GPTNeoXForCausalLM with Pythia's fixed choices (a quarter of each head
    rotary, parallel residual, untied embeddings); `config` gives the shape and any other GPTNeoXConfig
    field. Seeded here when `seed` is given, else by the caller: the one builder of presets, tests and
    benchmarks, so a tiny model means the same architecture everywhere."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    if seed is not None:
        torch.manual_seed(seed)
    return GPTNeoXForCausalLM(
        GPTNeoXConfig(
            vocab_size=vocab_size,
            rotary_pct=0.25,
            use_parallel_residual=True,
            tie_word_embeddings=False,
            **config,
        )
    )


def build_preset(preset: str, vocab_size: int, max_positions: int, overrides: dict[str, Any] | None = None):
    """A randomly initialised GPTNeoXForCausalLM of a preset's shape (seeded by the caller)."""
    cfg = dict(PRESET_CONFIGS[preset])
    cfg.update(overrides or {})
    return build_neox(vocab_size, max_position_embeddings=max(max_positions, 128), **cfg)


def model_family(model) -> str:
    return getattr(model.config, "model_type", "unknown")


def load_model(
    spec: ModelSpec,
    *,
    vocab_size: int,
    max_positions: int,
    seed: int,
    base: str | Path | None = None,
    base_revision: str | None = None,
):
    """Build a preset (random init under `seed`), or load pretrained weights by hub name / local path; a
    `base: NAME` model loads `base`, the checkpoint (path or hub name) that base's stage recorded."""
    if spec.base is not None:
        if base is None:
            raise ValueError(f"model `base: {spec.base}`: the base's checkpoint was not given")
        return load_pretrained(base, revision=base_revision)
    if spec.preset is not None:
        torch.manual_seed(seed)
        return build_preset(spec.preset, vocab_size, max_positions, spec.config)
    return load_pretrained(spec.name, revision=spec.revision)


def load_pretrained(
    name_or_path: str | Path, revision: str | None = None, *, dtype: torch.dtype = MASTER_DTYPE
):
    """Load a causal LM in `dtype` (float32 by default: weights that may be trained are master weights).

    transformers loads in the checkpoint's own dtype unless told otherwise, which is half precision for
    hub checkpoints; the dtype is therefore always passed explicitly.
    """
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one bar per checkpoint load drowns the job's own progress

    path = Path(str(name_or_path))
    if str(name_or_path).startswith((".", "/")) and not path.exists():
        raise FileNotFoundError(f"model path {path} does not exist")
    return AutoModelForCausalLM.from_pretrained(str(name_or_path), revision=revision, dtype=dtype)


def inference_dtype(device: torch.device | str, *, half: bool = True) -> torch.dtype:
    """The dtype a frozen model runs in: bf16 on a CUDA device that supports it (with `half`), else fp32."""
    device = torch.device(device)
    if half and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_frozen(
    name_or_path: str | Path,
    device: torch.device | str = "cpu",
    revision: str | None = None,
    *,
    dtype: torch.dtype | None = None,
):
    """A model that is only evaluated (teacher, scanned model): eval mode, no gradients, on `device`.

    `dtype` defaults to :func:`inference_dtype` (bf16 on CUDA, fp32 on CPU); callers upcast its logits.
    """
    model = load_pretrained(name_or_path, revision, dtype=dtype or inference_dtype(device))
    model.requires_grad_(False)
    return model.to(device).eval()


def logit_width(model) -> int:
    return model.get_output_embeddings().weight.shape[0]


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


@contextmanager
def plain_generation_config(model) -> Iterator[None]:
    """Hide the checkpoint's generation defaults (eos, repetition penalty, suppressed tokens, ...).

    ``generate`` fills every unset field of the passed config from ``model.generation_config``, so an
    ``eos_token_id=None`` would come back as the checkpoint's eos, and ``min_new_tokens`` would then mask
    that token: greedy decoding would no longer be the plain argmax of the logits.
    """
    from transformers import GenerationConfig

    saved = model.generation_config
    model.generation_config = GenerationConfig()
    try:
        yield
    finally:
        model.generation_config = saved
