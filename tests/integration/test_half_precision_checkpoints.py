"""Issue 13 end to end: a job from local `save_pretrained` checkpoints stored in float16 / bfloat16 (tiny
GPT-NeoX, Llama and Qwen2; the teacher's logit width padded wider than the student's) fine-tunes the
teacher and a baseline, distils soft and hard students and scans them: finite, decreasing losses, float32
master weights in every saved checkpoint, and every audited scan decision equal to float32 generate().

Frozen models (the teacher, scanned models) run in the checkpoint's half precision here, on CPU too (the
policy's bf16-on-CUDA default patched), so that the scans are half-precision scans audited in float32."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from sqlalchemy import text
from tiny_jobs import tiny_data

from kdplatform.data.corpus import load_documents
from kdplatform.data.examples import Examples, train_tokenizer
from kdplatform.memorization import greedy_reference
from kdplatform.models import load_pretrained
from kdplatform.pipeline import JobRunner
from kdplatform.spec import JobSpec

VOCAB = 280
SMALL = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}


def _config(arch: str, vocab_size: int):
    from transformers import GPTNeoXConfig, LlamaConfig, Qwen2Config

    common = dict(SMALL, vocab_size=vocab_size, max_position_embeddings=64, tie_word_embeddings=False)
    if arch == "gpt_neox":
        return GPTNeoXConfig(rotary_pct=0.25, use_parallel_residual=True, **common)
    cls = LlamaConfig if arch == "llama" else Qwen2Config
    return cls(num_key_value_heads=1, **common)


def _checkpoint(out: Path, arch: str, vocab_size: int, dtype: torch.dtype, tok, seed: int) -> Path:
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(_config(arch, vocab_size)).to(dtype)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    docs = load_documents("builtin", max_chars=60_000, seed=0)
    out = tmp_path_factory.mktemp("tok")
    return train_tokenizer(docs, VOCAB, out), out


@pytest.mark.parametrize(
    "arch, dtype",
    [("gpt_neox", torch.float16), ("llama", torch.bfloat16), ("qwen2", torch.float16)],
    ids=["gpt_neox-fp16", "llama-bf16", "qwen2-fp16"],
)
def test_half_precision_checkpoints_train_distil_and_scan(tmp_path, monkeypatch, tokenizer, arch, dtype):
    import kdplatform.models

    monkeypatch.setattr(kdplatform.models, "inference_dtype", lambda device, half=True: dtype)
    tok, tok_dir = tokenizer
    n = len(tok)
    teacher = _checkpoint(tmp_path / "teacher", arch, n + 37, dtype, tok, 0)  # padded wider
    student = _checkpoint(tmp_path / "student", arch, n + 5, dtype, tok, 1)
    train = {"epochs": 2, "batch_size": 8, "lr": 3.0e-3, "warmup_ratio": 0.0, "checkpoint_every": None}
    spec = JobSpec.model_validate(
        {
            "name": f"half-{arch}",
            "data": tiny_data(tokenizer={"name": str(tok_dir)}),
            "teacher": {"model": {"name": str(teacher)}, "train": train},
            "baseline": {"model": {"name": str(student)}, "train": train},
            "student": {"model": {"name": str(student)}, "train": train},
            "hard_student": {"model": {"name": str(student)}, "train": train},
            "scan": {"shard_size": 16, "audit_sample": 16, "store_greedy_min_match": None},
        }
    )
    runner = JobRunner(spec, tmp_path / "work", echo=lambda _: None)
    runner.run()
    with runner.engine.connect() as conn:
        q = lambda sql, **p: conn.execute(text(sql), p).all()  # noqa: E731
        assert {r[0] for r in q("SELECT status FROM runs")} == {"done"}
        for key in ("train/teacher", "train/baseline/s0", "train/student/s0/forward_kl/T2"):
            run_id = runner.run_row(key).id
            losses = q(
                "SELECT train_loss, val_loss FROM checkpoints WHERE run_id = :r ORDER BY epoch", r=run_id
            )
            assert all(math.isfinite(x) for row in losses for x in row), (key, losses)
            assert losses[-1][1] < losses[0][1], (key, losses)  # validation loss decreases
            cfg = json.loads((runner.checkpoint_dir(key) / "config.json").read_text())
            assert cfg.get("torch_dtype", cfg.get("dtype")) == "float32", key  # fp32 master weights saved
        assert q("SELECT DISTINCT logit_width FROM models ORDER BY 1") == [(n + 5,), (n + 37,)]
        hard = Examples.read(Path(runner.dataset("hard_data").path) / "train.parquet").tokens
        assert int(hard.max()) < n  # the teacher's argmax never picks a padding column
        audits = q("SELECT examples, checked, disagreements, scan_dtype FROM scan_audits")
        assert len(audits) == 4 and all(a[1] == a[0] == 16 for a in audits)  # every example audited
        assert {a[3] for a in audits} == {str(dtype).removeprefix("torch.")}  # half-precision scans
        ds = runner.dataset()
        ex = Examples.read(Path(ds.path) / "train.parquet")
        for key in ("train/teacher", "train/student_hard/s0"):
            rows = q(
                "SELECT memorized, match_len FROM scan_results WHERE run_id = :r AND example_id IN "
                "(SELECT example_id FROM examples WHERE split = 'train') ORDER BY example_id",
                r=runner.run_row(key).id,
            )
            order = np.argsort(ex.example_ids)
            ref = greedy_reference(
                load_pretrained(runner.checkpoint_dir(key)), torch.as_tensor(ex.tokens[order]), ds.prefix_len
            )
            assert [bool(r[0]) for r in rows] == ref.memorized.tolist()
            assert [int(r[1]) for r in rows] == ref.match_len.tolist()
