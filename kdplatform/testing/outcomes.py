"""Per-example rows of one chunk of examples: what a scan, a KLD pass and a classifier would store.

Memorization follows a latent difficulty `z` per example (shared by every run, so memorized sets
overlap as in the paper); students also inherit part of their teacher's set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from kdplatform.store.schema import Role
from kdplatform.testing import text
from kdplatform.testing.design import Design

FEATURES = ("teacher_ppl", "baseline_ppl", "zlib_entropy", "teacher_baseline_kld")
METRIC_MEANS = {"accuracy": 0.91, "precision": 0.83, "recall": 0.8, "f1": 0.81, "roc_auc": 0.95}
TRIALS = 20


@dataclass
class Chunk:
    """A slice of the study's examples: positions, stable ids, latent difficulty, token windows."""

    index: np.ndarray
    ids: np.ndarray
    z: np.ndarray
    tokens: np.ndarray
    zlib: np.ndarray
    """zlib entropy of the text (rising with difficulty), before a dataset's tokenizer jitter."""

    def __len__(self) -> int:
        return len(self.ids)


def _full(n: int, value: int) -> pa.Array:
    return pa.array(np.full(n, value, np.int32))


def scan(
    rng: np.random.Generator,
    d: Design,
    chunk: Chunk,
    role: Role,
    capacity: float,
    teacher_mem: np.ndarray | None,
    ids: dict[str, int],
) -> tuple[np.ndarray, np.ndarray, pa.Table]:
    """(memorized, match length, scan_results rows) of one trained run; `ids` holds run_id,
    dataset_id and scan_run_id."""
    n, z, s, how = len(chunk), chunk.z, d.suffix_len, d.memorization
    cap = capacity * how.rate_scale
    mem = (z + rng.normal(0, how.noise * cap, n) < cap) | (rng.random(n) < how.spontaneous * how.rate_scale)
    if teacher_mem is not None and role.is_student:
        mem |= teacher_mem & (rng.random(n) < how.inherit)
    near = ~mem & (z < 3 * cap)
    match = np.minimum(s - 1, rng.geometric(0.5, n) - 1)
    match[near] = rng.integers(s // 2, s, int(near.sum()))
    match[mem] = s
    offset = 0.2 if role == Role.TEACHER else 0.6
    ppl = np.exp(np.clip(offset + 3.5 * z + rng.normal(0, 0.3, n) - 1.5 * mem, 0.01, None))
    rows = pa.table(
        {
            "run_id": _full(n, ids["run_id"]),
            "example_id": pa.array(chunk.ids, pa.int64()),
            "dataset_id": _full(n, ids["dataset_id"]),
            "scan_run_id": _full(n, ids["scan_run_id"]),
            "memorized": pa.array(mem),
            "match_len": pa.array(match.astype(np.int32)),
            "suffix_logprob": pa.array(np.where(mem, -0.02, -(0.05 + 3 * z)) * s * rng.random(n)),
            "suffix_entropy": pa.array(np.clip(0.3 + 4 * z + rng.normal(0, 0.3, n) - mem, 0, None)),
            "ppl": pa.array(ppl),
            # No random draw (the later columns' data stay as they were): wide margins far from the
            # memorization boundary, near-ties close to it.
            "min_margin": pa.array(np.abs(cap - z) + 0.01),
            # Migration 0005's scores, again without a draw: loss is log ppl, min-k lower than -loss.
            "loss": pa.array(np.log(ppl)),
            "min_k_20": pa.array(-np.log(ppl) - 1.0 - z),
            "min_k_pp_20": pa.array(1.0 - 2.0 * z + 0.5 * mem),
        }
    )
    return mem, match, rows


def kld(rng: np.random.Generator, chunk: Chunk, ids: dict[str, int], reference: int) -> pa.Table:
    """example_kld rows of one run against its teacher."""
    n = len(chunk)
    return pa.table(
        {
            "run_id": _full(n, ids["run_id"]),
            "reference_run_id": _full(n, reference),
            "example_id": pa.array(chunk.ids, pa.int64()),
            "dataset_id": _full(n, ids["dataset_id"]),
            "scan_run_id": _full(n, ids["scan_run_id"]),
            "kld": pa.array(np.abs(0.05 + 1.5 * chunk.z + rng.normal(0, 0.1, n))),
        }
    )


def greedy(
    rng: np.random.Generator, d: Design, chunk: Chunk, match: np.ndarray, ids: dict[str, int], vocab: pa.Array
) -> pa.Table:
    """greedy_continuations rows of memorized examples and near misses (match of 3/4 of the suffix)."""
    keep = np.flatnonzero(match >= 3 * d.suffix_len // 4)
    toks = text.greedy_tokens(rng, chunk.tokens[keep, d.prefix_len :], match[keep], d.vocab)
    words = text.join(vocab, toks)
    if d.awkward:
        words = text.awkward(chunk.index[keep], words)
    k = len(keep)
    return pa.table(
        {
            "run_id": _full(k, ids["run_id"]),
            "example_id": pa.array(chunk.ids[keep], pa.int64()),
            "scan_run_id": _full(k, ids["scan_run_id"]),
            "tokens": text.join_ids(toks),
            "text": words,
        }
    )


def risk(rng: np.random.Generator, chunk: Chunk, run_id: int, dataset_id: int, threshold: float) -> pa.Table:
    """example_risk rows of a classifier run: predicted memorized below a difficulty threshold."""
    n = len(chunk)
    p = 1 / (1 + np.exp(40 * (chunk.z - threshold) + rng.normal(0, 1, n)))
    return pa.table(
        {
            "run_id": _full(n, run_id),
            "example_id": pa.array(chunk.ids, pa.int64()),
            "dataset_id": _full(n, dataset_id),
            "risk": pa.array(p),
            "predicted": pa.array(p >= 0.5),
        }
    )


def classifier_rows(rng: np.random.Generator, run_id: int) -> dict[str, list[dict]]:
    """classifier_trials and classifier_coefficients rows of a classifier run (TRIALS trials)."""
    metric = {m: np.clip(rng.normal(v, 0.02, TRIALS), 0, 1) for m, v in METRIC_MEANS.items()}
    trials = [
        {"run_id": run_id, "trial": t, "n_train": 700, "n_test": 300, "n_positive": 250, "n_negative": 750}
        | {m: float(v[t]) for m, v in metric.items()}
        for t in range(TRIALS)
    ]
    coefficients = [
        {"run_id": run_id, "trial": t, "feature": f, "value": float(v)}
        for f, mean in zip(FEATURES, (-0.8, -1.1, -2.0, -0.6), strict=True)
        for t, v in enumerate(rng.normal(mean, 0.1, TRIALS))
    ]
    return {"classifier_trials": trials, "classifier_coefficients": coefficients}
