"""The near-tie audit: min_margin per example, re-decision with float32 generate(), shard columns."""

from __future__ import annotations

import copy
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

from kdplatform.data.examples import Examples
from kdplatform.memorization import (
    AuditConfig,
    ScanOptions,
    audit_scan,
    greedy_reference,
    own_greedy_sequences,
    scan,
)
from kdplatform.memorization.shards import audit_path, read_audits, scan_to_shards

PREFIX, SEQ = 16, 48


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = GPTNeoXConfig(
        vocab_size=96,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        tie_word_embeddings=False,
    )
    return GPTNeoXForCausalLM(config).eval()


@pytest.fixture(scope="module")
def own(model) -> torch.Tensor:
    """The issue's case: 64 sequences that are the random model's own greedy continuations."""
    return own_greedy_sequences(model, 64, PREFIX, SEQ, seed=1)


def test_min_margin_is_the_smallest_top2_gap_over_the_deciding_positions(model):
    x = torch.randint(0, 8, (6, SEQ), generator=torch.Generator().manual_seed(3))
    res = scan(model, x, PREFIX)
    logits = model(input_ids=x[:, :-1]).logits[:, PREFIX - 1 :].float()
    top = logits.topk(2, -1).values
    gaps = (top[..., 0] - top[..., 1]).detach().numpy()
    for i in range(len(x)):
        deciding = gaps[i, : min(res.match_len[i] + 1, SEQ - PREFIX)]
        assert res.min_margin[i] == pytest.approx(deciding.min(), rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_scan_of_own_continuations_is_repaired_by_the_audit(model, own, dtype):
    """fp32 scan: all 64 memorized. A half-precision scan loses some at near-ties; the audit restores them."""
    assert scan(model, own, PREFIX).memorized.all()
    half = copy.deepcopy(model).to(dtype)
    res = scan(half, own, PREFIX)
    missed = ~res.memorized
    assert missed.any(), "half precision breaks some near-ties the other way"
    # The model is the float32 one (the half copy only runs the scan): it decodes the audit.
    fixed, audit = audit_scan(half, own, PREFIX, res, config=AuditConfig(sample=8), generator=model)
    record = audit.record()
    print(dtype, record)  # the figures the report quotes
    assert set(np.flatnonzero(missed)) <= set(audit.checked), "every miss was a near-tie"
    assert record["disagreements"] == int(missed.sum()) and record["memorized_after"] == 64
    assert fixed.memorized.all()
    ref = greedy_reference(model, own[audit.checked], PREFIX)
    np.testing.assert_array_equal(fixed.match_len[audit.checked], ref.match_len)


def test_audit_checks_near_ties_plus_a_seeded_sample(model, own):
    half = copy.deepcopy(model).to(torch.bfloat16)
    res = scan(half, own, PREFIX)
    threshold = float(np.quantile(res.min_margin, 0.25))
    cfg = AuditConfig(threshold=threshold, sample=5, seed=4)
    _, a = audit_scan(half, own, PREFIX, res, config=cfg, generator=model)
    near = np.flatnonzero(res.min_margin < threshold)
    np.testing.assert_array_equal(a.checked[a.near_tie], near)
    sampled = a.checked[~a.near_tie]
    assert len(sampled) == 5 and (res.min_margin[sampled] >= threshold).all()
    _, again = audit_scan(half, own, PREFIX, res, config=cfg, generator=model)
    np.testing.assert_array_equal(again.checked, a.checked)
    assert a.record()["checked"] == len(near) + 5 and a.record()["threshold"] == threshold
    with pytest.raises(ValueError, match="float32"):
        audit_scan(half, own, PREFIX, res, generator=half)


def test_audited_shards_store_margins_flags_and_records(model, own, tmp_path):
    Examples(np.arange(64) * 2, own.numpy()).write(tmp_path / "ex.parquet")
    half = copy.deepcopy(model).to(torch.bfloat16)
    shards = scan_to_shards(
        half,
        tmp_path / "ex.parquet",
        tmp_path / "out",
        PREFIX,
        shard_size=20,
        audit=AuditConfig(sample=3),
        audit_generator=model,
    )
    tables = [pq.read_table(p) for p in shards]
    assert all({"min_margin", "audited", "audit_disagreed"} <= set(x.column_names) for x in tables)
    assert all(
        json.loads(audit_path(p).read_text())["examples"] == x.num_rows
        for p, x in zip(shards, tables, strict=True)
    )
    total = read_audits(shards)
    assert total["examples"] == 64 and total["memorized_after"] == 64
    assert total["checked"] == sum(int(np.sum(x.column("audited").to_numpy())) for x in tables)
    assert total["disagreements"] == sum(int(np.sum(x.column("audit_disagreed").to_numpy())) for x in tables)
    assert all(x.column("memorized").to_numpy().all() for x in tables)
    scores = {"loss", "min_k_20", "min_k_pp_20", "pex_t100", "pex_t070_k40", f"memorized_p{PREFIX}"}
    assert all(scores <= set(x.column_names) for x in tables)
    # The audit's decision is the prefix length's own: memorized_p16 follows the resolved memorized.
    assert all(x.column(f"memorized_p{PREFIX}").equals(x.column("memorized")) for x in tables)
    plain = scan_to_shards(model, tmp_path / "ex.parquet", tmp_path / "plain", PREFIX, shard_size=20)
    assert read_audits(plain) is None and "audited" not in pq.read_table(plain[0]).column_names
    bare = scan_to_shards(
        model,
        tmp_path / "ex.parquet",
        tmp_path / "bare",
        PREFIX,
        shard_size=20,
        options=ScanOptions(scores=False),
    )
    names = pq.read_table(bare[0]).column_names
    assert "loss" in names and "min_k_20" not in names and f"memorized_p{PREFIX}" not in names
