"""scan() against independent references: generate(), a hand-written greedy loop, float64 formulas."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
)

from kdplatform.memorization import ScanResult, greedy_reference, scan

PREFIX, SEQ = 8, 24
SUFFIX = SEQ - PREFIX
FAMILIES = ["gpt_neox", "gpt2", "llama"]


def tiny(family: str, vocab: int = 100, seed: int = 0) -> PreTrainedModel:
    """A 2-layer random model; initializer_range 0.2 makes the distributions far from uniform."""
    torch.manual_seed(seed)
    common = dict(vocab_size=vocab, initializer_range=0.2, bos_token_id=0, eos_token_id=0)
    if family == "gpt_neox":
        config = GPTNeoXConfig(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=64,
            **common,
        )
        return GPTNeoXForCausalLM(config).eval()
    if family == "gpt2":
        return GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=64, **common)).eval()
    config = LlamaConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        **common,
    )
    return LlamaForCausalLM(config).eval()


def greedy_loop(model: PreTrainedModel, prefix: torch.Tensor, steps: int) -> torch.Tensor:
    """Greedy decoding written out: re-run the whole context each step (no cache, no generate)."""
    x = prefix
    with torch.no_grad():
        for _ in range(steps):
            x = torch.cat([x, model(input_ids=x).logits[:, -1].argmax(-1, keepdim=True)], 1)
    return x


def examples(model: PreTrainedModel, n_each: int, seed: int, vocab: int = 100):
    """Rows memorized by construction, copies with suffix token p changed (match_len p), random rows."""
    g = torch.Generator().manual_seed(seed)
    own = greedy_loop(model, torch.randint(0, vocab, (n_each, PREFIX), generator=g), SUFFIX)
    changed = own.clone()
    p = torch.randint(0, SUFFIX, (n_each,), generator=g)
    rows = torch.arange(n_each)
    shift = torch.randint(1, vocab, (n_each,), generator=g)
    changed[rows, PREFIX + p] = (changed[rows, PREFIX + p] + shift) % vocab
    rand = torch.randint(0, vocab, (n_each, SEQ), generator=g)
    expected = np.concatenate([np.full(n_each, SUFFIX), p.numpy(), np.full(n_each, -1)])
    return torch.cat([own, changed, rand]), expected


def float64_reference(model, x, vocab_size=None, reference=None, feed_last=True):
    """Every feature from explicit formulas on float64 logits (of whole rows unless ``feed_last=False``)."""
    with torch.no_grad():
        z = model(input_ids=x if feed_last else x[:, :-1]).logits.double()
        v = vocab_size or z.shape[-1]
        lp = torch.log_softmax(z[:, : SEQ - 1, :v], -1)
        lp_true = lp.gather(-1, x[:, 1:, None]).squeeze(-1)
        suf = lp[:, PREFIX - 1 :]
        out = {
            "suffix_logprob": lp_true[:, PREFIX - 1 :].sum(1),
            "suffix_entropy": -(suf.exp() * suf).sum(-1).mean(1),
            "ppl": torch.exp(-lp_true.mean(1)),
        }
        if reference is not None:
            r = torch.log_softmax(reference(input_ids=x).logits.double()[:, PREFIX - 1 : -1, :v], -1)
            out["kld"] = (r.exp() * (r - suf)).sum(-1).mean(1)
    return {k: t.numpy() for k, t in out.items()}


@pytest.mark.parametrize("family", FAMILIES)
def test_scan_agrees_with_generate_and_greedy_loop(family):
    model = tiny(family, seed=1)
    x, expected = examples(model, 8, seed=2)
    res = scan(model, x, PREFIX, return_greedy=True)
    ref = greedy_reference(model, x, PREFIX, batch_size=5)

    np.testing.assert_array_equal(res.match_len, ref.match_len)
    np.testing.assert_array_equal(res.memorized, ref.memorized)
    known = expected >= 0
    np.testing.assert_array_equal(res.match_len[known], expected[known])
    assert res.memorized.any() and not res.memorized.all()
    assert res.memorized.dtype == bool and res.match_len.shape == (len(x),)
    np.testing.assert_array_equal(res.memorized, res.match_len == SUFFIX)
    # The stored teacher-forced continuation is the free greedy one through the first mismatch.
    for row, m in enumerate(res.match_len):
        k = min(int(m) + 1, SUFFIX)
        np.testing.assert_array_equal(res.greedy_tokens[row, :k], ref.greedy_tokens[row, :k])
    np.testing.assert_array_equal(ref.greedy_tokens[: len(x) // 3], x[: len(x) // 3, PREFIX:].numpy())


@pytest.mark.parametrize("family", FAMILIES)
def test_features_match_float64_formulas(family):
    model, teacher = tiny(family, seed=3), tiny(family, seed=4)
    x = torch.randint(0, 100, (11, SEQ), generator=torch.Generator().manual_seed(5))
    res = scan(model, x, PREFIX, reference=teacher)
    want = float64_reference(model, x, reference=teacher)
    for name, values in want.items():
        np.testing.assert_allclose(getattr(res, name), values, rtol=1e-5, err_msg=name)
    assert (res.kld > 0.05).all()  # non-trivial divergences, so the relative check means something


def test_kld_against_reference_with_padded_logits():
    model = tiny("gpt_neox", vocab=100, seed=6)
    teacher = tiny("gpt_neox", vocab=128, seed=7)  # padded logit width, token ids stay < 100
    x = torch.randint(0, 100, (9, SEQ), generator=torch.Generator().manual_seed(8))
    res = scan(model, x, PREFIX, reference=teacher)
    want = float64_reference(model, x, vocab_size=100, reference=teacher)
    for name, values in want.items():
        np.testing.assert_allclose(getattr(res, name), values, rtol=1e-5, err_msg=name)
    # With the roles swapped the default slice is again the smaller width, and the argmax stays full-width.
    swapped = scan(teacher, x, PREFIX, reference=model)
    want = float64_reference(teacher, x, vocab_size=100, reference=model)
    np.testing.assert_allclose(swapped.kld, want["kld"], rtol=1e-5)
    np.testing.assert_array_equal(swapped.match_len, greedy_reference(teacher, x, PREFIX).match_len)


def test_explicit_vocab_size_renormalizes_but_argmax_stays_full():
    model, teacher = tiny("llama", seed=9), tiny("llama", seed=10)
    own, _ = examples(model, 4, seed=11)
    x = torch.cat([own, torch.randint(0, 90, (4, SEQ))])
    keep = (x < 90).all(1)
    x = x[keep]
    res = scan(model, x, PREFIX, reference=teacher, vocab_size=90)
    want = float64_reference(model, x, vocab_size=90, reference=teacher)
    for name, values in want.items():
        np.testing.assert_allclose(getattr(res, name), values, rtol=1e-5, err_msg=name)
    full = scan(model, x, PREFIX)
    np.testing.assert_array_equal(res.match_len, full.match_len)
    assert not np.allclose(res.suffix_entropy, full.suffix_entropy)
    with pytest.raises(ValueError, match="vocab_size"):
        scan(model, torch.full((1, SEQ), 95), PREFIX, vocab_size=90)


def test_refuses_model_that_cannot_embed_the_tokens():
    model = tiny("gpt2", vocab=100, seed=12)
    small = tiny("gpt2", vocab=64, seed=13)
    x = torch.randint(0, 100, (3, SEQ))
    x[0, 5] = 99
    with pytest.raises(ValueError, match=r"reference GPT2LMHeadModel.*64 rows.*largest token id is 99"):
        scan(model, x, PREFIX, reference=small)
    with pytest.raises(ValueError, match=r"model GPT2LMHeadModel.*64 rows.*99"):
        scan(small, x, PREFIX)
    with pytest.raises(ValueError, match="64 rows"):
        greedy_reference(small, x, PREFIX)


def test_batch_size_does_not_change_results():
    model, teacher = tiny("gpt_neox", seed=14), tiny("gpt_neox", seed=15)
    x, _ = examples(model, 5, seed=16)
    runs = [
        scan(model, x, PREFIX, reference=teacher, batch_size=b, return_greedy=True) for b in (1, 7, len(x))
    ]
    for other in runs[1:]:
        np.testing.assert_array_equal(other.match_len, runs[0].match_len)
        np.testing.assert_array_equal(other.greedy_tokens, runs[0].greedy_tokens)
        for name in ("suffix_logprob", "suffix_entropy", "ppl", "kld"):
            np.testing.assert_allclose(getattr(other, name), getattr(runs[0], name), rtol=1e-6)


def test_small_chunks_give_the_same_answer(monkeypatch):
    model, teacher = tiny("gpt2", seed=17), tiny("gpt2", seed=18)
    x, _ = examples(model, 3, seed=19)
    whole = scan(model, x, PREFIX, reference=teacher)
    # The module is shadowed by the function of the same name in the package namespace.
    monkeypatch.setattr(
        sys.modules["kdplatform.memorization.scan"], "_CPU_CHUNK_ELEMENTS", 1
    )  # 1 position/chunk
    chunked = scan(model, x, PREFIX, reference=teacher)
    np.testing.assert_array_equal(chunked.match_len, whole.match_len)
    for name in ("suffix_logprob", "suffix_entropy", "ppl", "kld"):
        np.testing.assert_allclose(getattr(chunked, name), getattr(whole, name), rtol=1e-6)


def test_bf16_model():
    model = tiny("llama", seed=20).to(torch.bfloat16)
    x, _ = examples(model, 4, seed=21)
    res = scan(model, x, PREFIX, reference=tiny("llama", seed=22).to(torch.bfloat16))
    # bf16 rounding depends on the sequence length, so the reference runs on the same L-1 inputs as scan.
    want = float64_reference(model, x, feed_last=False)
    for name, values in want.items():
        np.testing.assert_allclose(getattr(res, name), values, rtol=1e-5, err_msg=name)
    with torch.no_grad():
        logits = model(input_ids=x[:, :-1]).logits[:, PREFIX - 1 :]
    np.testing.assert_array_equal(res.memorized, (logits.argmax(-1) == x[:, PREFIX:]).all(1).numpy())
    assert np.isfinite(res.kld).all()


def test_checkpoint_generation_defaults_do_not_leak_into_the_audit():
    model = tiny("gpt_neox", seed=23)
    x, _ = examples(model, 6, seed=24)
    # An eos that greedy decoding emits: with min_new_tokens it would be masked unless the audit hides it.
    frequent = int(np.bincount(x[:6, PREFIX:].flatten().numpy()).argmax())
    model.generation_config.eos_token_id = frequent
    model.generation_config.repetition_penalty = 5.0
    ref = greedy_reference(model, x, PREFIX)
    np.testing.assert_array_equal(ref.match_len, scan(model, x, PREFIX).match_len)
    assert model.generation_config.eos_token_id == frequent  # restored


def test_result_shape_columns_and_mode_restored():
    model = tiny("gpt2", seed=25).train()
    x = torch.randint(0, 100, (4, SEQ))
    res = scan(model, x, PREFIX)
    assert model.training
    assert res.kld is None and res.greedy_tokens is None and len(res) == 4
    cols = res.as_columns()
    base = {"memorized", "match_len", "suffix_logprob", "suffix_entropy", "ppl", "min_margin", "loss"}
    scores = {
        "min_k_20",
        "min_k_pp_20",
        "pex_t100",
        "pex_t070",
        "pex_t100_k40",
        "pex_t070_k40",
        "memorized_p8",
    }
    assert set(cols) == base | scores
    assert all(len(c) == 4 for c in cols.values())
    pa = pytest.importorskip("pyarrow")
    table = pa.table(scan(model, x, PREFIX, reference=model, return_greedy=True).as_columns())
    assert table.num_rows == 4 and table.column("greedy_tokens").type == pa.list_(pa.int32())
    np.testing.assert_allclose(table.column("kld").to_numpy(), 0.0, atol=1e-6)
    empty = scan(model, x[:0], PREFIX)
    assert isinstance(empty, ScanResult) and len(empty) == 0


def test_rejects_bad_input():
    model = tiny("gpt2", seed=26)
    x = torch.randint(0, 100, (2, SEQ))
    for bad_prefix in (0, SEQ):
        with pytest.raises(ValueError, match="prefix_len"):
            scan(model, x, bad_prefix)
    with pytest.raises(ValueError, match=r"\[N, L\]"):
        scan(model, x[0], PREFIX)
    with pytest.raises(ValueError, match="integer"):
        scan(model, x.float(), PREFIX)
