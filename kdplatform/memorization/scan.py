"""Discoverable-memorization scan: every per-example measure from one teacher-forced forward pass.

An example ``x`` (length ``L``) is *memorized* when greedy decoding of ``S = L - prefix_len`` tokens from
the prefix ``x[:prefix_len]`` reproduces the suffix exactly (the paper's discoverable memorization).
Greedy decoding is deterministic, so it reproduces the suffix iff, at every suffix position, the argmax
of the model's next-token distribution *given the true history* is the true next token: as long as the
generated tokens equal the true ones, the generator's context is the true sequence. Hence under teacher
forcing on the true sequence, ``match_len`` (how many leading suffix tokens greedy decoding reproduces) is
the index of the first suffix position whose argmax differs from the true token, and ``memorized`` is
``match_len == S``. One batched forward pass therefore gives memorization, log-probability, entropy,
perplexity and (with a second model on the same batch) the teacher-baseline KL divergence, with no
sequential decoding.

Caveat: incremental decoding with a KV cache and a full teacher-forced pass compute the same logits with
different kernels, so an argmax that is a numerical near-tie may differ between the two in the last
bits, and in half precision by much more (bf16 keeps 8 significant bits). Each example therefore carries
``min_margin``, the smallest top-1 minus top-2 logit gap (float32) over the suffix positions that decide
its outcome, and :func:`kdplatform.memorization.audit.audit_scan` re-decides the near-ties (and a random
sample of the rest) with float32 ``generate``. All vocabulary math upcasts the logits to float32 first.

The argmax uses the model's full logits, exactly as ``generate`` does. Distributions (log-probability,
perplexity, entropy, KL) are renormalized over the first ``vocab_size`` logits, so that models of one
family whose logit widths differ only by padding (Pythia-12B 50,688; Pythia-1.4B 50,304; tokenizer
50,277) are compared over the same support.

The same pass also gives the membership-inference scores (loss, min-k %, min-k %++), probabilistic
extraction and memorization at other prefix lengths (:mod:`.scores`, walked by :mod:`.scored`);
``ScanOptions(scores=False)`` runs the paper's measures alone, the scan as it was before them.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import PreTrainedModel

from kdplatform.memorization import scores as sc
from kdplatform.memorization.result import ScanResult
from kdplatform.memorization.scored import finite_, scored_batch

__all__ = ["ScanOptions", "ScanResult", "default_batch_size", "scan", "scan_with"]

# float32 elements per temporary of the chunked vocabulary math: bounds memory independently of B, L, V.
# On CPU a few MiB keeps the temporaries in cache (measured about 2x faster than 32 MiB); CUDA wants
# fewer, larger kernels.
_CPU_CHUNK_ELEMENTS = 1 << 20
_CUDA_CHUNK_ELEMENTS = 1 << 26


def _model_name(model: PreTrainedModel) -> str:
    path = getattr(model.config, "_name_or_path", "") or ""
    return f"{type(model).__name__}({path})" if path else type(model).__name__


def _embedding_rows(model: PreTrainedModel) -> int:
    return int(model.get_input_embeddings().weight.shape[0])


def _logit_width(model: PreTrainedModel) -> int:
    head = model.get_output_embeddings()
    if head is not None and getattr(head, "weight", None) is not None:
        return int(head.weight.shape[0])
    return int(model.config.get_text_config().vocab_size)


def _check_reads(model: PreTrainedModel, role: str, max_id: int) -> None:
    """Refuse a model that cannot embed every token: it would index out of range or silently misread."""
    rows = _embedding_rows(model)
    if max_id >= rows:
        raise ValueError(
            f"{role} {_model_name(model)} has an input embedding table of {rows} rows, but the largest token "
            f"id is {max_id}: it does not share the tokenizer of these sequences"
        )


def _device(model: PreTrainedModel) -> torch.device:
    return next(model.parameters()).device


def default_batch_size(device: torch.device, seq_len: int, logit_width: int) -> int:
    """Rows per forward: 32 on CPU, 128 on CUDA; fewer when a batch's float32 logits would pass 1/8 GiB."""
    cap, budget = (128, 8 << 30) if device.type == "cuda" else (32, 1 << 30)
    return max(1, min(cap, budget // max(1, seq_len * logit_width * 4)))


def chunk_positions(device: torch.device, rows: int, vocab_size: int) -> int:
    """Positions per chunk of the vocabulary math, so that one float32 temporary [rows, chunk, V] stays
    within the device's budget."""
    budget = _CUDA_CHUNK_ELEMENTS if device.type == "cuda" else _CPU_CHUNK_ELEMENTS
    return max(1, budget // (rows * vocab_size))


def _accepts_logits_to_keep(model: PreTrainedModel) -> bool:
    return "logits_to_keep" in inspect.signature(model.forward).parameters


def _validate(token_ids: torch.Tensor, prefix_len: int) -> tuple[int, int]:
    if token_ids.ndim != 2:
        raise ValueError(f"token_ids must be [N, L], got shape {tuple(token_ids.shape)}")
    if token_ids.dtype.is_floating_point or token_ids.dtype == torch.bool:
        raise ValueError(f"token_ids must be integer, got {token_ids.dtype}")
    seq_len = token_ids.shape[1]
    if not 1 <= prefix_len < seq_len:
        raise ValueError(f"prefix_len must be in [1, L-1] = [1, {seq_len - 1}], got {prefix_len}")
    if token_ids.numel() and int(token_ids.min()) < 0:
        raise ValueError("token_ids contain negative ids")
    return seq_len, seq_len - prefix_len


@dataclass(frozen=True)
class ScanOptions:
    """What the pass computes beyond the paper's measures; :func:`scan` uses the defaults."""

    scores: bool = True
    """Membership-inference scores, probabilistic extraction and other prefix lengths (False: the paper's
    measures only, as the scan was before them; kept for the benchmark)."""
    prefix_lens: Sequence[int] | None = None
    """Prefix lengths of ``memorized_at``, each with the same suffix length; None: the scan's own and every
    multiple of 25 up to it (:func:`~.scores.default_prefix_lens`)."""
    extraction: Sequence[tuple[float, int | None]] = field(default=sc.EXTRACTION_SETTINGS)
    """(temperature, top_k) settings of probabilistic extraction."""


def scan(
    model: PreTrainedModel,
    token_ids: torch.Tensor,
    prefix_len: int = 50,
    *,
    batch_size: int | None = None,
    reference: PreTrainedModel | None = None,
    vocab_size: int | None = None,
    return_greedy: bool = False,
) -> ScanResult:
    """Scan N fixed-length sequences for discoverable memorization and per-example features.

    ``token_ids`` is [N, L] with no padding; the suffix is the last ``L - prefix_len`` tokens. Fields:
    ``memorized``, ``match_len`` (greedy argmax over the model's full logits); ``suffix_logprob`` (sum of
    log p(true token) over the suffix); ``suffix_entropy`` (mean entropy, nats, of the S distributions that
    predict the suffix tokens); ``ppl`` (exp of the mean NLL over the L-1 predicted tokens) and ``loss``
    (that mean NLL); ``kld`` (mean over those S positions of KL(P_reference || P_model), when ``reference``
    is given); ``min_k_20``, ``min_k_pp_20``, ``extraction_logprob`` and ``memorized_at`` (see
    :class:`ScanResult` and :mod:`~kdplatform.memorization.scores`).

    Distributions are log-softmax over the first ``vocab_size`` logits (default: the smaller logit width of
    ``model`` and ``reference``). ``return_greedy`` adds ``greedy_tokens`` [N, S]: the teacher-forced argmax
    at each suffix position. It equals the free greedy continuation up to and including the first mismatch
    (positions < match_len + 1); beyond it free generation would condition on its own tokens instead.
    """
    return scan_with(
        model,
        token_ids,
        prefix_len,
        ScanOptions(),
        batch_size=batch_size,
        reference=reference,
        vocab_size=vocab_size,
        return_greedy=return_greedy,
    )


def scan_with(
    model: PreTrainedModel,
    token_ids: torch.Tensor,
    prefix_len: int,
    options: ScanOptions,
    *,
    batch_size: int | None = None,
    reference: PreTrainedModel | None = None,
    vocab_size: int | None = None,
    return_greedy: bool = False,
) -> ScanResult:
    """:func:`scan` with its :class:`ScanOptions` chosen (prefix lengths, extraction settings)."""
    seq_len, suffix_len = _validate(token_ids, prefix_len)
    n = token_ids.shape[0]
    max_id = int(token_ids.max()) if n else -1
    _check_reads(model, "model", max_id)
    widths = [_logit_width(model)]
    if reference is not None:
        _check_reads(reference, "reference", max_id)
        widths.append(_logit_width(reference))
    if vocab_size is None:
        vocab_size = min(widths)
    if not 0 < vocab_size <= min(widths):
        raise ValueError(f"vocab_size {vocab_size} must be in [1, {min(widths)}] (logit widths {widths})")
    if max_id >= vocab_size:
        raise ValueError(f"vocab_size {vocab_size} excludes token id {max_id}: its probability is undefined")
    if options.scores:
        lens = options.prefix_lens or sc.default_prefix_lens(prefix_len, seq_len)
        lens = sc.check_prefix_lens(lens, suffix_len, seq_len)
        options = ScanOptions(True, lens, sc.check_extraction(options.extraction))

    device = _device(model)
    if batch_size is None:
        batch_size = default_batch_size(device, seq_len, max(widths))
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")

    acc = _Accumulators(
        n, suffix_len, device, options, with_kld=reference is not None, with_greedy=return_greedy
    )
    models = [model] if reference is None else [model, reference]
    training = [m.training for m in models]
    for m in models:
        m.eval()
    try:
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                batch = token_ids[start : start + batch_size].to(device=device, dtype=torch.long)
                _scan_batch(model, reference, batch, prefix_len, vocab_size, acc, start)
    finally:
        for m, was_training in zip(models, training, strict=True):
            m.train(was_training)
    return acc.result(seq_len)


class _Accumulators:
    """Per-example sums kept on the model's device and copied to host once, so batches need no sync."""

    def __init__(
        self,
        n: int,
        suffix_len: int,
        device: torch.device,
        options: ScanOptions,
        *,
        with_kld: bool,
        with_greedy: bool,
    ):
        def zeros(*shape: int) -> torch.Tensor:
            return torch.zeros(n, *shape, dtype=torch.float64, device=device)

        self.suffix_len, self.options = suffix_len, options
        self.match_len = torch.zeros(n, dtype=torch.long, device=device)
        self.suffix_logprob, self.entropy_sum, self.nll_sum = zeros(), zeros(), zeros()
        self.kld_sum = zeros() if with_kld else None
        self.greedy = torch.zeros(n, suffix_len, dtype=torch.int32, device=device) if with_greedy else None
        self.min_margin = torch.full((n,), torch.inf, dtype=torch.float32, device=device)
        self.min_k = self.min_k_pp = self.extraction = self.memorized_at = None
        if options.scores:
            self.min_k, self.min_k_pp = zeros(), zeros()
            self.extraction = zeros(len(options.extraction))
            self.memorized_at = torch.zeros(n, len(options.prefix_lens), dtype=torch.bool, device=device)

    def result(self, seq_len: int) -> ScanResult:
        match_len = self.match_len.cpu().numpy()
        loss = self.nll_sum / (seq_len - 1)
        res = ScanResult(
            memorized=match_len == self.suffix_len,
            match_len=match_len,
            suffix_logprob=self.suffix_logprob.cpu().numpy(),
            suffix_entropy=(self.entropy_sum / self.suffix_len).cpu().numpy(),
            ppl=torch.exp(loss).cpu().numpy(),
            kld=None if self.kld_sum is None else (self.kld_sum / self.suffix_len).cpu().numpy(),
            greedy_tokens=None if self.greedy is None else self.greedy.cpu().numpy(),
            min_margin=self.min_margin.cpu().numpy().astype(np.float64),
            loss=loss.cpu().numpy(),
        )
        if self.options.scores:
            res.min_k_20, res.min_k_pp_20 = self.min_k.cpu().numpy(), self.min_k_pp.cpu().numpy()
            ex, at = self.extraction.cpu().numpy(), self.memorized_at.cpu().numpy()
            res.extraction_logprob = {key: ex[:, i].copy() for i, key in enumerate(self.options.extraction)}
            res.memorized_at = {k: at[:, i].copy() for i, k in enumerate(self.options.prefix_lens)}
        return res


def _scan_batch(
    model: PreTrainedModel,
    reference: PreTrainedModel | None,
    batch: torch.Tensor,
    prefix_len: int,
    vocab_size: int,
    acc: _Accumulators,
    start: int,
) -> None:
    rows = slice(start, start + batch.shape[0])
    # The logits at position j predict token j+1; the last token predicts nothing, so it is not fed.
    inputs, targets = batch[:, :-1], batch[:, 1:]
    n_pred = inputs.shape[1]
    first_suffix = prefix_len - 1  # logit position that predicts the first suffix token
    logits = model(input_ids=inputs, use_cache=False).logits
    ref_logits = None
    if reference is not None:
        ref_inputs = inputs.to(_device(reference))
        if _accepts_logits_to_keep(reference):
            out = reference(input_ids=ref_inputs, use_cache=False, logits_to_keep=acc.suffix_len)
            ref_logits = out.logits
        else:
            ref_logits = reference(input_ids=ref_inputs, use_cache=False).logits[:, first_suffix:]
        ref_logits = ref_logits.to(logits.device)

    b = batch.shape[0]
    chunk = chunk_positions(logits.device, b, vocab_size)
    if acc.options.scores:
        scored_batch(logits, ref_logits, targets, first_suffix, vocab_size, chunk, acc, rows)
        return
    # Prefix positions only feed the perplexity: log p(true token) needs a logsumexp, not the distribution.
    for c0 in range(0, first_suffix, chunk):
        c1 = min(c0 + chunk, first_suffix)
        z = logits[:, c0:c1, :vocab_size].float()
        lp_true = z.gather(-1, targets[:, c0:c1, None]).squeeze(-1) - z.logsumexp(-1)
        acc.nll_sum[rows] -= lp_true.double().sum(1)
    correct = torch.empty(b, acc.suffix_len, dtype=torch.bool, device=logits.device)
    margin = torch.full((b, acc.suffix_len), torch.inf, dtype=torch.float32, device=logits.device)
    for c0 in range(first_suffix, n_pred, chunk):
        c1 = min(c0 + chunk, n_pred)
        suf = slice(c0 - first_suffix, c1 - first_suffix)
        t = targets[:, c0:c1]
        z = logits[:, c0:c1].float()  # full width, as generate() picks; float32 whatever the model's dtype
        pred = z.argmax(-1)
        correct[:, suf] = pred == t
        if z.shape[-1] > 1:
            top = z.topk(2, dim=-1).values
            margin[:, suf] = top[..., 0] - top[..., 1]
        if acc.greedy is not None:
            acc.greedy[rows, suf] = pred.int()
        lp = z[..., :vocab_size].log_softmax(-1)
        lp_true = lp.gather(-1, t.unsqueeze(-1)).squeeze(-1).double().sum(1)
        acc.suffix_logprob[rows] += lp_true
        acc.nll_sum[rows] -= lp_true
        lp = finite_(lp)
        acc.entropy_sum[rows] -= torch.linalg.vecdot(lp.exp(), lp).double().sum(1)
        if ref_logits is not None:
            lr = finite_(ref_logits[:, suf, :vocab_size].float().log_softmax(-1))
            acc.kld_sum[rows] += torch.linalg.vecdot(lr.exp(), lr - lp).double().sum(1)
    matched = correct.long().cumprod(1)
    acc.match_len[rows] = matched.sum(1)
    # A position decides the outcome when every earlier suffix token matched: 0..match_len.
    deciding = torch.ones_like(correct)
    deciding[:, 1:] = matched[:, :-1].bool()
    acc.min_margin[rows] = margin.masked_fill(~deciding, torch.inf).amin(1) if acc.suffix_len else torch.inf
