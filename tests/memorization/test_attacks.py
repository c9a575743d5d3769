"""Attack scores: the formulas, and the convention that members score higher (AUC above one half)."""

from __future__ import annotations

import numpy as np
import pytest

from kdplatform.memorization.attacks import ATTACKS, attack_scores


def test_attack_scores_follow_their_formulas_and_rank_members_high():
    rng = np.random.default_rng(0)
    n = 400
    member = np.arange(n) < n // 2
    loss = rng.normal(3.0, 0.5, n) - 0.8 * member  # members fit better
    zlib = rng.integers(80, 200, n)
    ref = loss + 0.8 * member + rng.normal(0, 0.1, n)  # the reference never saw them
    min_k, min_k_pp = -loss - 2.0, rng.normal(0, 1, n) + member
    got = attack_scores(loss, zlib, min_k, min_k_pp, reference_loss=ref)
    assert tuple(got) == ATTACKS
    np.testing.assert_allclose(got["loss"], -loss)
    np.testing.assert_allclose(got["zlib"], -(loss / zlib))
    np.testing.assert_allclose(got["reference"], ref - loss)
    np.testing.assert_array_equal(got["min_k_pp_20"], min_k_pp)
    roc_auc_score = pytest.importorskip("sklearn.metrics").roc_auc_score
    for name, score in got.items():
        assert roc_auc_score(member, score) > 0.7, name
    assert "reference" not in attack_scores(loss, zlib, min_k, min_k_pp)
    with pytest.raises(ValueError, match="zlib"):
        attack_scores(loss, np.zeros(n), min_k, min_k_pp)
