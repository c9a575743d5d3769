"""The scan's scores beyond exact match against independent float64 formulas, generate() and sampling."""

from __future__ import annotations

import itertools
import sys

import numpy as np
import pytest
import torch
from transformers import GenerationConfig, GPTNeoXConfig, GPTNeoXForCausalLM, PreTrainedModel

from kdplatform.memorization import (
    EXTRACTION_SETTINGS,
    AuditConfig,
    ScanOptions,
    audit_scan,
    extraction_rate,
    greedy_reference,
    own_greedy_sequences,
    scan,
    scan_with,
)
from kdplatform.memorization.scores import (
    argmax_is_target,
    default_prefix_lens,
    min_k_mean,
    moments,
    tempered_logprob,
    top_values,
    window_memorized,
)

PREFIX, SEQ = 8, 24
SUFFIX = SEQ - PREFIX


def tiny(vocab: int = 100, seed: int = 0, layers: int = 2) -> PreTrainedModel:
    """A random GPT-NeoX; initializer_range 0.2 makes the distributions far from uniform."""
    torch.manual_seed(seed)
    config = GPTNeoXConfig(
        vocab_size=vocab,
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        initializer_range=0.2,
        tie_word_embeddings=False,
        bos_token_id=0,
        eos_token_id=0,
    )
    return GPTNeoXForCausalLM(config).eval()


def padded(vocab: int, width: int, seed: int) -> PreTrainedModel:
    """A model whose logit rows past `vocab` are large: any score that reads them comes out wrong."""
    model = tiny(width, seed)
    with torch.no_grad():
        model.get_output_embeddings().weight[vocab:] *= 6
    return model


def float64_scores(model: PreTrainedModel, x: torch.Tensor, vocab: int, prefix: int = PREFIX) -> dict:
    """Every new score from its formula in numpy float64, on the same L-1 inputs the scan feeds."""
    with torch.no_grad():
        z = model(input_ids=x[:, :-1]).logits.double().numpy()[..., :vocab]
    t = x[:, 1:].numpy()
    z = z - z.max(-1, keepdims=True)
    lp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    p = np.exp(lp)
    lp_true = np.take_along_axis(lp, t[..., None], -1)[..., 0]
    mu = (p * lp).sum(-1)
    sigma = np.sqrt((p * lp**2).sum(-1) - mu**2)
    n = lp_true.shape[1]
    k = max(1, int(np.floor(0.2 * n)))
    out = {
        "loss": -lp_true.mean(1),
        "min_k_20": np.sort(lp_true, 1)[:, :k].mean(1),
        "min_k_pp_20": np.sort((lp_true - mu) / sigma, 1)[:, :k].mean(1),
    }
    zs, ts = z[:, prefix - 1 :], t[:, prefix - 1 :]
    for tau, top_k in EXTRACTION_SETTINGS:
        s = zs / tau
        if top_k is not None:
            kth = -np.sort(-s, -1)[..., top_k - 1 : top_k]
            s = np.where(s >= kth, s, -np.inf)
        logp = (
            s - np.log(np.exp(s - s.max(-1, keepdims=True)).sum(-1, keepdims=True)) - s.max(-1, keepdims=True)
        )
        with np.errstate(invalid="ignore"):
            out[(tau, top_k)] = np.take_along_axis(logp, ts[..., None], -1)[..., 0].sum(1)
    return out


def assert_scores_match(res, want) -> None:
    for name in ("loss", "min_k_20", "min_k_pp_20"):
        np.testing.assert_allclose(getattr(res, name), want[name], rtol=1e-5, atol=1e-6, err_msg=name)
    for key in EXTRACTION_SETTINGS:
        got, exp = res.extraction_logprob[key], want[key]
        np.testing.assert_array_equal(np.isinf(got), np.isinf(exp), err_msg=str(key))
        finite = np.isfinite(exp)
        np.testing.assert_allclose(got[finite], exp[finite], rtol=1e-5, err_msg=str(key))


@pytest.mark.parametrize(("vocab", "width"), [(100, 100), (100, 128)])
def test_scores_match_float64_formulas(vocab, width):
    model = padded(vocab, width, seed=1) if width > vocab else tiny(vocab, seed=1)
    g = torch.Generator().manual_seed(2)
    own = own_greedy_sequences(model, 6, PREFIX, SEQ, seed=3)
    x = torch.cat([own.clamp_max(vocab - 1), torch.randint(0, vocab, (10, SEQ), generator=g)])
    res = scan(model, x, PREFIX, vocab_size=vocab)
    want = float64_scores(model, x, vocab)
    assert_scores_match(res, want)
    np.testing.assert_allclose(res.loss, np.log(res.ppl), rtol=1e-12)
    # Both top-40 outcomes occur: some suffix token falls outside the top 40 (probability 0), some not.
    assert (
        np.isinf(res.extraction_logprob[(1.0, 40)]).any()
        and np.isfinite(res.extraction_logprob[(1.0, 40)]).any()
    )
    if width > vocab:  # the padded rows win the argmax (full width), the scores never see them
        assert not res.memorized.any()


def test_scores_do_not_depend_on_chunks_or_batches(monkeypatch):
    model, teacher = tiny(seed=4), tiny(seed=5)
    x = torch.cat([own_greedy_sequences(model, 4, PREFIX, SEQ, seed=6), torch.randint(0, 100, (5, SEQ))])
    whole = scan(model, x, PREFIX, reference=teacher, batch_size=len(x))
    monkeypatch.setattr(sys.modules["kdplatform.memorization.scan"], "_CPU_CHUNK_ELEMENTS", 1)
    chunked = scan(model, x, PREFIX, reference=teacher, batch_size=2)
    for name, values in whole.as_columns().items():
        np.testing.assert_allclose(chunked.as_columns()[name], values, rtol=1e-6, err_msg=name)


def test_without_scores_the_paper_measures_are_unchanged():
    model, teacher = tiny(seed=7), tiny(seed=8)
    x = torch.cat([own_greedy_sequences(model, 4, PREFIX, SEQ, seed=9), torch.randint(0, 100, (5, SEQ))])
    full = scan(model, x, PREFIX, reference=teacher, return_greedy=True)
    plain = scan_with(model, x, PREFIX, ScanOptions(scores=False), reference=teacher, return_greedy=True)
    assert plain.min_k_20 is None and plain.extraction_logprob is None and plain.memorized_at is None
    assert set(plain.score_columns()) == {"loss"}
    for name, values in plain.as_columns().items():
        np.testing.assert_allclose(np.asarray(full.as_columns()[name]), np.asarray(values), rtol=1e-6)


def test_every_prefix_length_agrees_with_generate():
    model = tiny(seed=10)
    lens = (2, 4, 6, 8)
    g = torch.Generator().manual_seed(11)
    parts = [own_greedy_sequences(model, 4, k, SEQ, seed=12 + k) for k in lens]
    # Memorized from prefix 2, then one token changed late: inside the window of prefix 8, not of prefix 2.
    edited = own_greedy_sequences(model, 4, 2, SEQ, seed=20)
    edited[:, SEQ - 2] = (edited[:, SEQ - 2] + 1) % 100
    x = torch.cat([*parts, edited, torch.randint(0, 100, (4, SEQ), generator=g)])
    res = scan_with(model, x, PREFIX, ScanOptions(prefix_lens=lens))
    assert set(res.memorized_at) == set(lens)
    np.testing.assert_array_equal(res.memorized_at[PREFIX], res.memorized)
    for k in lens:
        want = greedy_reference(model, x[:, : k + SUFFIX], k).memorized
        np.testing.assert_array_equal(res.memorized_at[k], want, err_msg=f"prefix {k}")
    for i, k in enumerate(lens):
        assert res.memorized_at[k][4 * i : 4 * i + 4].all()
    assert res.memorized_at[2][16:20].all() and not res.memorized_at[8][16:20].any()
    with pytest.raises(ValueError, match="leave no room"):
        scan_with(model, x, PREFIX, ScanOptions(prefix_lens=(9,)))
    with pytest.raises(ValueError, match="temperatures must be > 0"):
        scan_with(model, x, PREFIX, ScanOptions(extraction=[(0.0, None)]))


def test_default_prefix_lengths_and_window_helper():
    assert default_prefix_lens(50, 100) == (25, 50)
    assert default_prefix_lens(60, 200) == (25, 50, 60)
    assert default_prefix_lens(8, 24) == (8,)
    correct = torch.rand(50, 30, generator=torch.Generator().manual_seed(13)) < 0.9
    got = window_memorized(correct, 10, [1, 5, 21])
    for j, k in enumerate([1, 5, 21]):
        np.testing.assert_array_equal(got[:, j].numpy(), correct[:, k - 1 : k + 9].numpy().all(1))


def test_audit_resolves_the_scans_own_prefix_length():
    model = tiny(seed=14)
    x = own_greedy_sequences(model, 6, PREFIX, SEQ, seed=15)
    res = scan(model, x, PREFIX)
    res.memorized_at[PREFIX][:] = False  # pretend the pass got them wrong; the audit re-decides them all
    fixed, _ = audit_scan(model, x, PREFIX, res, generator=model, config=AuditConfig(threshold=np.inf))
    np.testing.assert_array_equal(fixed.memorized_at[PREFIX], fixed.memorized)


def test_min_k_and_tempered_helpers_on_random_tensors():
    g = torch.Generator().manual_seed(16)
    for n in (1, 4, 5, 23, 99):
        v = torch.randn(7, n, generator=g)
        k = max(1, int(np.floor(0.2 * n)))
        want = np.sort(v.double().numpy(), 1)[:, :k].mean(1)
        np.testing.assert_allclose(min_k_mean(v).numpy(), want, rtol=1e-12)
    z = torch.randn(3, 5, 300, generator=g) * 4
    t = torch.randint(0, 300, (3, 5), generator=g)
    z64 = z.double().numpy()
    for tau, top_k in [(0.5, None), (1.3, 7)]:
        s = z64 / tau
        if top_k:
            s = np.where(s >= -np.sort(-s, -1)[..., top_k - 1 : top_k], s, -np.inf)
        m = s.max(-1, keepdims=True)
        logp = s - m - np.log(np.exp(s - m).sum(-1, keepdims=True))
        want = np.take_along_axis(logp, t.numpy()[..., None], -1)[..., 0]
        got = tempered_logprob(z, t, tau, top_k).numpy()
        np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
        np.testing.assert_allclose(got[np.isfinite(want)], want[np.isfinite(want)], rtol=1e-5)


TINY_V, TINY_PREFIX, TINY_SEQ = 5, 3, 6


@pytest.fixture(scope="module")
def small_vocab() -> PreTrainedModel:
    return tiny(TINY_V, seed=17, layers=1)


def test_extraction_probabilities_enumerate_to_one(small_vocab):
    """Over every possible suffix of one prefix, each setting's probabilities form a distribution."""
    prefix = [1, 4, 2]
    suffixes = list(itertools.product(range(TINY_V), repeat=TINY_SEQ - TINY_PREFIX))
    x = torch.tensor([prefix + list(s) for s in suffixes])
    settings = ((1.0, None), (0.7, None), (1.0, 2), (0.5, 3))
    res = scan_with(small_vocab, x, TINY_PREFIX, ScanOptions(extraction=settings))
    for key in settings:
        assert np.exp(res.extraction_logprob[key]).sum() == pytest.approx(1.0, abs=1e-5), key
    assert np.isinf(res.extraction_logprob[(1.0, 2)]).sum() > 0


@pytest.mark.parametrize(("tau", "top_k"), [(1.0, None), (0.7, None), (1.0, 2), (0.7, 2)])
def test_extraction_probability_matches_sampling(small_vocab, tau, top_k):
    """The chance that generate(do_sample) reproduces the suffix, counted over many samples."""
    g = torch.Generator().manual_seed(18)
    prefixes = torch.randint(0, TINY_V, (4, TINY_PREFIX), generator=g)
    greedy = greedy_reference(small_vocab, torch.cat([prefixes, prefixes], 1), TINY_PREFIX).greedy_tokens
    x = torch.cat([prefixes, torch.as_tensor(greedy, dtype=torch.long)], 1)  # likely suffixes: large p_ex
    p_ex = np.exp(
        scan_with(small_vocab, x, TINY_PREFIX, ScanOptions(extraction=[(tau, top_k)])).extraction_logprob[
            (tau, top_k)
        ]
    )
    draws = 4000
    config = GenerationConfig(
        do_sample=True,
        temperature=tau,
        top_k=top_k or 0,
        top_p=1.0,
        max_new_tokens=3,
        min_new_tokens=3,
        eos_token_id=None,
        pad_token_id=0,
    )
    saved, small_vocab.generation_config = small_vocab.generation_config, GenerationConfig()
    torch.manual_seed(19)
    try:
        with torch.no_grad():
            for row, p in zip(x, p_ex, strict=True):
                prefix = row[:TINY_PREFIX].repeat(draws, 1)
                out = small_vocab.generate(
                    prefix, attention_mask=torch.ones_like(prefix), generation_config=config
                )
                hits = (out[:, TINY_PREFIX:] == row[TINY_PREFIX:]).all(1).float().mean().item()
                assert abs(hits - p) <= 4 * np.sqrt(p * (1 - p) / draws) + 1e-3, (hits, p)
    finally:
        small_vocab.generation_config = saved


def test_extraction_rate_against_the_direct_formula():
    rng = np.random.default_rng(20)
    p_ex = np.concatenate([rng.uniform(0, 1, 500) ** 8, [0.0, 1.0, 1e-12]])
    with np.errstate(divide="ignore"):
        log_p = np.log(p_ex)
    for n, p in itertools.product((1, 10, 100, 1000), (0.1, 0.5, 0.9, 1.0)):
        want = np.mean(1 - (1 - p_ex) ** n >= p)
        assert extraction_rate(log_p, n, p) == pytest.approx(want), (n, p)
    assert (
        extraction_rate(np.array([0.0]), 1, 1.0) == 1.0
        and extraction_rate(np.array([-np.inf]), 10**6, 1e-9) == 0.0
    )
    with pytest.raises(ValueError):
        extraction_rate(log_p, 0, 0.5)


def test_argmax_is_target_decides_ties_like_argmax():
    g = torch.Generator().manual_seed(21)
    z = torch.randint(0, 4, (64, 3, 9), generator=g).float()  # integer logits: many exact ties
    t = torch.randint(0, 9, (64, 3), generator=g)
    t[:16] = z[:16].argmax(-1)  # some targets are the (first) argmax
    before = z.clone()
    correct, gap = argmax_is_target(z, t)
    np.testing.assert_array_equal(correct.numpy(), (before.argmax(-1) == t).numpy())
    top = before.topk(2, -1).values
    np.testing.assert_array_equal(gap[correct].numpy(), (top[..., 0] - top[..., 1])[correct].numpy())
    assert torch.equal(z, before)  # the masked target is restored
    assert correct.any() and (~correct & (gap == 0)).any()  # ties lost to an earlier index occur


def test_moments_against_float64_also_where_the_plain_formula_cancels():
    g = torch.Generator().manual_seed(22)
    z = torch.randn(6, 4, 500, generator=g) * torch.tensor([3.0, 1.0, 1e-2, 1e-4]).view(1, 4, 1)
    lp = z.log_softmax(-1)  # the last two scales are near-uniform: sigma^2 << mu^2
    mu, sigma = moments(lp)
    lp64 = lp.double().numpy()
    p = np.exp(lp64)
    mu64 = (p * lp64).sum(-1)
    sigma64 = np.sqrt((p * (lp64 - mu64[..., None]) ** 2).sum(-1))
    np.testing.assert_allclose(mu.numpy(), mu64, rtol=1e-6)
    np.testing.assert_allclose(sigma.numpy(), sigma64, rtol=1e-4)


@pytest.mark.parametrize("shape", [(3, 5, 4096), (7, 50_277), (2, 3, 1000), (4, 100)])
def test_top_values_equal_topk(shape):
    """The blocked top-k gives torch.topk's values exactly: random logits, heavy ties (small integers),
    masked -inf entries, a width not a multiple of the block, and widths too small to block."""
    g = torch.Generator().manual_seed(int(np.random.default_rng().integers(1 << 30)))
    z = torch.randn(*shape, generator=g) * 4
    ties = torch.randint(0, 6, shape, generator=g).float()
    masked = z.masked_fill(torch.rand(shape, generator=g) < 0.3, -torch.inf)
    for x in (z, ties, masked, z[..., : shape[-1] - 3]):
        for k in (1, 40, min(97, x.shape[-1])):
            assert torch.equal(top_values(x, k), x.topk(k, dim=-1).values), (shape, k)
