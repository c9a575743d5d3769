"""Membership-inference attack scores from a scan's per-example columns, one convention for all.

Every score is member-likeness: higher means more likely a training member, so that members as the
positive class give ``roc_auc_score(is_member, score)`` directly. The attacks (Zhang et al. 2025 on KD):

- ``loss``: minus the mean NLL over the L-1 predicted tokens (Yeom et al. 2018);
- ``zlib``: minus the ratio of log-perplexity (that mean NLL) to the text's zlib entropy in bytes
  (Carlini et al. 2021), which discounts sequences that are merely compressible;
- ``min_k_20``, ``min_k_pp_20``: as the scan returns them (already higher = member-like);
- ``reference``: minus (loss - the reference model's loss on the same example), the reference being the
  base model or, without one, the baseline (Carlini et al. 2021's calibration).
"""

from __future__ import annotations

import numpy as np

ATTACKS = ("loss", "zlib", "min_k_20", "min_k_pp_20", "reference")


def attack_scores(
    loss: np.ndarray,
    zlib_entropy: np.ndarray,
    min_k_20: np.ndarray,
    min_k_pp_20: np.ndarray,
    reference_loss: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Each attack's member-likeness per example; ``reference`` only when ``reference_loss`` is given."""
    loss = np.asarray(loss, dtype=np.float64)
    zlib = np.asarray(zlib_entropy, dtype=np.float64)
    if (zlib <= 0).any():
        raise ValueError("zlib entropies must be positive byte counts")
    scores = {
        "loss": -loss,
        "zlib": -loss / zlib,
        "min_k_20": np.asarray(min_k_20, dtype=np.float64),
        "min_k_pp_20": np.asarray(min_k_pp_20, dtype=np.float64),
    }
    if reference_loss is not None:
        scores["reference"] = -(loss - np.asarray(reference_loss, dtype=np.float64))
    return scores
