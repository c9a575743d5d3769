"""The per-example measures of a scan, in row order: what :func:`~kdplatform.memorization.scan.scan`
returns and what its shards store."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from kdplatform.memorization import scores as sc

SCORE_FIELDS = ("loss", "min_k_20", "min_k_pp_20")
"""The scalar score fields added for membership inference (``score_columns`` flattens the rest)."""
_SCORES = {*SCORE_FIELDS, "extraction_logprob", "memorized_at"}


@dataclass
class ScanResult:
    """Per-example measures, each a 1-D array of length N in row order (``greedy_tokens`` is [N, S]).

    ``kld`` is None when no reference model was given; ``greedy_tokens`` only when requested.
    """

    memorized: np.ndarray
    match_len: np.ndarray
    suffix_logprob: np.ndarray
    suffix_entropy: np.ndarray
    ppl: np.ndarray
    kld: np.ndarray | None = None
    greedy_tokens: np.ndarray | None = None
    min_margin: np.ndarray | None = None
    """Smallest top-1 minus top-2 logit (float32) over the suffix positions that decide the outcome:
    positions 0..match_len (the matched ones and the first mismatch; all S when memorized). Small values
    are near-ties that another kernel or precision may decide differently; +inf when S is 0 or V is 1."""
    loss: np.ndarray | None = None
    """Mean NLL (nats) over the L-1 predicted tokens (log ``ppl``): the loss attack, lower = member-like."""
    min_k_20: np.ndarray | None = None
    """Mean of the lowest floor(0.2 n) (at least 1) log p(x_t | x_<t) over the n = L-1 predicted tokens."""
    min_k_pp_20: np.ndarray | None = None
    """The same over z_t = (log p(x_t) - mu_t) / sigma_t, the moments of log p under the model at t."""
    extraction_logprob: dict[tuple[float, int | None], np.ndarray] | None = None
    """Per (temperature, top_k): log-probability that one sample from the prefix reproduces the suffix."""
    memorized_at: dict[int, np.ndarray] | None = None
    """Per prefix length k: greedy decoding from x[:k] reproduces the S = L - prefix_len tokens after it.
    ``memorized_at[prefix_len]`` is ``memorized``; the others come from the same teacher-forced argmaxes."""

    def __len__(self) -> int:
        return len(self.memorized)

    def score_columns(self) -> dict[str, np.ndarray]:
        """The scores beyond the paper's measures, one flat column each (empty for a ``generate`` result):
        ``loss``, ``min_k_20``, ``min_k_pp_20``, ``pex_t<tau>[_k<k>]`` per extraction setting
        (:func:`~.scores.extraction_column`) and ``memorized_p<k>`` per prefix length."""
        cols = {name: getattr(self, name) for name in SCORE_FIELDS if getattr(self, name) is not None}
        for key, values in (self.extraction_logprob or {}).items():
            cols[sc.extraction_column(*key)] = values
        for k, values in (self.memorized_at or {}).items():
            cols[sc.prefix_column(k)] = values
        return cols

    def as_columns(self) -> dict[str, np.ndarray | list[np.ndarray]]:
        """Columns for ``pyarrow.table``; absent fields are left out, ``greedy_tokens`` is a list column,
        the scores are :meth:`score_columns`."""
        cols: dict[str, np.ndarray | list[np.ndarray]] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and f.name not in _SCORES:
                cols[f.name] = list(value) if f.name == "greedy_tokens" else value
        return cols | self.score_columns()

    to_dict = as_columns
