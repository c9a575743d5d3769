"""A scan decision that survives near-ties: re-decide the uncertain examples with float32 ``generate``.

The one-pass scan (:func:`~kdplatform.memorization.scan.scan`) decides memorization from teacher-forced
argmaxes. Where the top two logits of a deciding position are nearly equal, another kernel (KV-cached
decoding) or another precision (a bf16 scan) can pick the other token, and on a model's own greedy
continuations a bf16 scan misses a quarter of them. The audit re-decides, with KV-cached float32
``generate`` (the definition of discoverable memorization), every example whose ``min_margin`` is under a
threshold, plus a random sample of the rest (which estimates how many disagreements the threshold lets
through), and resolves every audited example to the ``generate`` outcome.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import numpy as np
import torch
from transformers import PreTrainedModel

from kdplatform.memorization.reference import greedy_reference
from kdplatform.memorization.scan import ScanResult

DEFAULT_THRESHOLDS: dict[torch.dtype, float] = {
    torch.float32: 1e-3,
    torch.float16: 0.1,
    torch.bfloat16: 0.5,
}
"""Logit margins under which a scan in that dtype may disagree with float32 decoding. bf16 and fp16 keep
8 and 11 significant bits: logits of magnitude ~10-30 carry absolute errors of ~0.05-0.2 (bf16) after a
few dozen layers, so a margin below a few of those is not a decision; float32 only differs between
kernels in the last bits."""


@dataclass(frozen=True)
class AuditConfig:
    threshold: float | None = None
    """Re-decide every example with ``min_margin`` below this; None: DEFAULT_THRESHOLDS[scan dtype]."""
    sample: int = 32
    """Examples at or above the threshold re-decided too, drawn at random (a check on the threshold)."""
    seed: int = 0
    """Seeds the sample (combine with a shard index for a different sample per shard)."""


@dataclass
class ScanAudit:
    """What the audit checked and changed; ``record()`` is the row to store with the scan."""

    n_examples: int
    threshold: float
    scan_dtype: str
    checked: np.ndarray
    """Row indices re-decided with generate(), ascending."""
    near_tie: np.ndarray
    """Per checked row: chosen for its margin (True) or in the random sample (False)."""
    disagreed: np.ndarray
    """Row indices whose ``memorized`` decision the scan got differently from generate()."""
    match_len_changed: int
    memorized_before: int
    memorized_after: int

    def record(self) -> dict[str, int | float | str]:
        """Summary for the database and the report (one row per scan, or per shard to be summed)."""
        near = int(self.near_tie.sum())
        sampled_disagreements = int(np.isin(self.disagreed, self.checked[~self.near_tie]).sum())
        return {
            "examples": self.n_examples,
            "checked": len(self.checked),
            "near_ties": near,
            "sampled": len(self.checked) - near,
            "disagreements": len(self.disagreed),
            "sampled_disagreements": sampled_disagreements,
            "match_len_changed": self.match_len_changed,
            "memorized_before": self.memorized_before,
            "memorized_after": self.memorized_after,
            "threshold": self.threshold,
            "scan_dtype": self.scan_dtype,
        }


def _model_dtype(model: PreTrainedModel) -> torch.dtype:
    return next(model.parameters()).dtype


def _choose(result: ScanResult, threshold: float, cfg: AuditConfig) -> tuple[np.ndarray, np.ndarray]:
    if result.min_margin is None:
        raise ValueError("the scan result has no min_margin (not from scan()): nothing to audit by")
    near = np.flatnonzero(result.min_margin < threshold)
    rest = np.flatnonzero(~(result.min_margin < threshold))
    rng = np.random.default_rng(cfg.seed)
    sampled = rng.choice(rest, size=min(cfg.sample, len(rest)), replace=False) if len(rest) else rest
    checked = np.concatenate([near, np.asarray(sampled, dtype=np.int64)])
    order = np.argsort(checked, kind="stable")
    return checked[order], np.concatenate([np.ones(len(near), bool), np.zeros(len(sampled), bool)])[order]


def audit_scan(
    model: PreTrainedModel,
    token_ids: torch.Tensor,
    prefix_len: int,
    result: ScanResult,
    *,
    config: AuditConfig = AuditConfig(),
    generator: PreTrainedModel | None = None,
    batch_size: int | None = None,
) -> tuple[ScanResult, ScanAudit]:
    """Re-decide near-ties and a sample of `result` (a :func:`scan` of `model` on `token_ids`).

    Returns the result with every checked example's ``memorized``, ``match_len`` (and ``greedy_tokens``,
    when present) set to the ``generate`` outcome, and the audit. Decoding runs in float32: `generator`
    when given, `model` itself when it is float32, else a float32 copy of `model` made for the audit and
    dropped after it. The copy decodes the half-precision weights exactly; when the checkpoint itself is
    float32 and was only loaded in half precision for speed, pass it loaded in float32 as `generator`,
    since that is the model whose memorization is being measured.
    """
    dtype = _model_dtype(model)
    threshold = config.threshold if config.threshold is not None else DEFAULT_THRESHOLDS.get(dtype, 0.5)
    checked, near_tie = _choose(result, threshold, config)
    fp32 = generator
    if fp32 is None:
        fp32 = model if dtype == torch.float32 else copy.deepcopy(model).float()
    if _model_dtype(fp32) != torch.float32:
        raise ValueError(f"the audit decodes in float32; the generator is {_model_dtype(fp32)}")
    memorized, match_len = result.memorized.copy(), result.match_len.copy()
    greedy = None if result.greedy_tokens is None else result.greedy_tokens.copy()
    if len(checked):
        ref = greedy_reference(fp32, torch.as_tensor(token_ids)[checked], prefix_len, batch_size=batch_size)
        memorized[checked], match_len[checked] = ref.memorized, ref.match_len
        if greedy is not None:
            greedy[checked] = ref.greedy_tokens
    disagreed = checked[memorized[checked] != result.memorized[checked]]
    audit = ScanAudit(
        n_examples=len(result),
        threshold=float(threshold),
        scan_dtype=str(dtype).removeprefix("torch."),
        checked=checked,
        near_tie=near_tie,
        disagreed=disagreed,
        match_len_changed=int((match_len[checked] != result.match_len[checked]).sum()),
        memorized_before=int(result.memorized.sum()),
        memorized_after=int(memorized.sum()),
    )
    memorized_at = result.memorized_at
    if memorized_at is not None and prefix_len in memorized_at:
        memorized_at = {**memorized_at, prefix_len: memorized}  # the other prefix lengths are not re-decided
    resolved = replace(
        result, memorized=memorized, match_len=match_len, greedy_tokens=greedy, memorized_at=memorized_at
    )
    return resolved, audit
