"""Models by role: tiny Pythia-architecture presets built offline, or any causal LM by name or path.

The presets keep Pythia's architecture (GPT-NeoX: parallel attention + MLP, rotary embeddings) at a size
that trains on two CPU cores, so the whole pipeline runs anywhere; real studies name hub models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from kdplatform.spec import ModelSpec

PRESET_CONFIGS: dict[str, dict[str, Any]] = {
    "tiny-teacher": dict(num_hidden_layers=4, hidden_size=192, num_attention_heads=4, intermediate_size=768),
    "tiny-student": dict(num_hidden_layers=3, hidden_size=160, num_attention_heads=4, intermediate_size=640),
}


def build_preset(preset: str, vocab_size: int, max_positions: int, overrides: dict[str, Any] | None = None):
    """A randomly initialised GPTNeoXForCausalLM of a preset's shape (seeded by the caller)."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    cfg = dict(PRESET_CONFIGS[preset])
    cfg.update(overrides or {})
    config = GPTNeoXConfig(
        vocab_size=vocab_size,
        max_position_embeddings=max(max_positions, 128),
        rotary_pct=0.25,
        use_parallel_residual=True,
        tie_word_embeddings=False,
        **cfg,
    )
    return GPTNeoXForCausalLM(config)


def model_family(model) -> str:
    return getattr(model.config, "model_type", "unknown")


def load_model(spec: ModelSpec, *, vocab_size: int, max_positions: int, seed: int):
    """Build a preset (random init under `seed`) or load pretrained weights by hub name / local path."""
    if spec.preset is not None:
        torch.manual_seed(seed)
        return build_preset(spec.preset, vocab_size, max_positions, spec.config)
    return load_pretrained(spec.name, revision=spec.revision)


def load_pretrained(name_or_path: str | Path, revision: str | None = None):
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one bar per checkpoint load drowns the job's own progress

    path = Path(str(name_or_path))
    if str(name_or_path).startswith((".", "/")) and not path.exists():
        raise FileNotFoundError(f"model path {path} does not exist")
    return AutoModelForCausalLM.from_pretrained(str(name_or_path), revision=revision)


def logit_width(model) -> int:
    return model.get_output_embeddings().weight.shape[0]


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())
