"""models.build_neox: Pythia's fixed choices, a seed that makes it reproducible, the presets built by it."""

from __future__ import annotations

import pytest
import torch

from kdplatform.models import build_neox, build_preset

SHAPE = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)


def test_pythia_choices_and_shape():
    cfg = build_neox(64, seed=0, max_position_embeddings=64, **SHAPE).config
    sizes = (cfg.vocab_size, cfg.hidden_size, cfg.num_hidden_layers, cfg.max_position_embeddings)
    assert sizes == (64, 32, 2, 64)
    assert cfg.use_parallel_residual and not cfg.tie_word_embeddings
    assert cfg.to_dict()["rope_parameters"]["partial_rotary_factor"] == 0.25


def test_seed_makes_equal_weights_and_different_seeds_differ():
    a, b, c = (build_neox(64, seed=s, **SHAPE) for s in (0, 0, 1))
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k
    assert any(not torch.equal(va, vc) for va, vc in zip(a.parameters(), c.parameters(), strict=True))


def test_preset_is_build_neox_of_its_shape():
    torch.manual_seed(3)
    preset = build_preset("tiny-student", 300, 64, {"num_hidden_layers": 1})
    direct = build_neox(
        300,
        seed=3,
        max_position_embeddings=128,
        hidden_size=160,
        num_attention_heads=4,
        intermediate_size=640,
        num_hidden_layers=1,
    )
    assert preset.config.to_dict() == direct.config.to_dict()
    for va, vb in zip(preset.state_dict().values(), direct.state_dict().values(), strict=True):
        assert torch.equal(va, vb)


def test_fixed_choices_are_not_overridden_silently():
    with pytest.raises(TypeError):
        build_neox(64, tie_word_embeddings=True, **SHAPE)
