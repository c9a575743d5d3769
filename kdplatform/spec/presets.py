"""The tiny presets' shapes and the GPTNeoXConfig fields a spec's `config:` may override, checked without
importing torch (transformers' config module imports it): a typo or a bad size fails at validation, not
after the database is written.

tests/unit/test_spec_hardening.py keeps CONFIG_FIELDS and PLATFORM_FIELDS in step with GPTNeoXConfig.
"""

from __future__ import annotations

import difflib
import math
from typing import Any

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
    return None if isinstance(v, dict) else "must be a mapping"


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
