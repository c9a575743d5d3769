"""The base's loss-only pass (the reference attack's calibration) against an independent float64
log-softmax on fresh random inputs, a logit width padded past the vocabulary included, and against the
scan's own ``loss``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_scores import padded, tiny

from kdplatform.memorization import example_losses, scan


def _reference(model, tokens: torch.Tensor, vocab: int) -> np.ndarray:
    with torch.no_grad():
        z = model(input_ids=tokens[:, :-1]).logits.double()[..., :vocab]
    lp = torch.log_softmax(z, -1).gather(-1, tokens[:, 1:, None]).squeeze(-1)
    return (-lp.mean(1)).numpy()


def test_losses_match_float64_and_the_scan():
    seed = int(np.random.default_rng().integers(1 << 20))
    g = torch.Generator().manual_seed(seed)
    model = tiny(97, seed)
    tokens = torch.randint(0, 97, (13, 20), generator=g)
    got = example_losses(model, tokens, batch_size=5)
    np.testing.assert_allclose(got, _reference(model, tokens, 97), rtol=1e-6, err_msg=str(seed))
    np.testing.assert_allclose(got, scan(model, tokens, 8).loss, rtol=1e-6)


def test_padded_logits_are_renormalized_over_the_vocabulary():
    seed = int(np.random.default_rng().integers(1 << 20))
    model = padded(50, 64, seed)
    tokens = torch.randint(0, 50, (9, 16), generator=torch.Generator().manual_seed(seed))
    got = example_losses(model, tokens, vocab_size=50)
    np.testing.assert_allclose(got, _reference(model, tokens, 50), rtol=1e-6, err_msg=str(seed))
    assert not np.allclose(got, _reference(model, tokens, 64), rtol=1e-3)
    with pytest.raises(ValueError, match="vocab_size"):
        example_losses(model, tokens, vocab_size=65)
    with pytest.raises(ValueError, match="vocab_size"):
        example_losses(model, torch.full((2, 16), 55), vocab_size=50)
