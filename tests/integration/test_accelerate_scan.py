"""A 2-process accelerate scan (DDP path on CPU) splits the shards and gives the same table as one process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from kdplatform.data.examples import Examples
from kdplatform.memorization.shards import scan_to_shards


def _table(paths: list[Path]) -> pa.Table:
    return pa.concat_tables(pq.read_table(p) for p in sorted(paths)).sort_by("example_id")


@pytest.mark.skipif(
    shutil.which("accelerate", path=str(Path(sys.executable).parent)) is None,
    reason="accelerate launcher not installed",
)
def test_two_process_scan_equals_one_process(tmp_path):
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(0)
    model = GPTNeoXForCausalLM(
        GPTNeoXConfig(
            vocab_size=40, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64
        )
    )
    model.save_pretrained(tmp_path / "model")
    rng = np.random.default_rng()
    tokens = rng.integers(0, 8, size=(45, 16))  # small alphabet: some prefixes continue as the model predicts
    Examples(np.arange(45) * 3 + 1, tokens).write(tmp_path / "ex.parquet")

    one = scan_to_shards(
        model, tmp_path / "ex.parquet", tmp_path / "one", 8, shard_size=7, greedy_min_match=0
    )
    launcher = Path(sys.executable).parent / "accelerate"
    # accelerate runs several CPU processes through its multi-GPU (DDP) path on gloo; plain `--cpu`
    # with --num_processes would need mpirun and silently starts one process.
    env = os.environ | {"OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1"}
    worker = Path(__file__).with_name("scan_worker.py")
    subprocess.run(
        [
            str(launcher),
            "launch",
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            str(worker),
            str(tmp_path / "model"),
            str(tmp_path / "ex.parquet"),
            str(tmp_path / "two"),
        ],
        check=True,
        env=env,
        timeout=300,
    )
    ranks = sorted(p.name for p in (tmp_path / "two").glob("rank-*"))
    assert ranks == ["rank-0-of-2", "rank-1-of-2"], "two processes each scanned their shards"
    two = sorted((tmp_path / "two").glob("part-*.parquet"))
    assert len(two) == len(one) == 7
    a, b = _table(one), _table(two)
    assert a.num_rows == 45
    for col in ("example_id", "memorized", "match_len", "greedy_tokens"):
        assert a.column(col).to_pylist() == b.column(col).to_pylist(), col
    for col in ("suffix_logprob", "suffix_entropy", "ppl"):
        np.testing.assert_allclose(a.column(col).to_numpy(), b.column(col).to_numpy(), rtol=1e-5)


def test_scan_resumes_at_missing_shards(tmp_path):
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    model = GPTNeoXForCausalLM(
        GPTNeoXConfig(
            vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
        )
    )
    Examples(np.arange(20), np.random.default_rng().integers(0, 30, (20, 12))).write(tmp_path / "ex.parquet")
    paths = scan_to_shards(model, tmp_path / "ex.parquet", tmp_path / "s", 6, shard_size=6)
    full = _table(paths)
    paths[1].unlink()
    stamp = paths[0].stat().st_mtime_ns
    again = scan_to_shards(model, tmp_path / "ex.parquet", tmp_path / "s", 6, shard_size=6)
    assert paths[0].stat().st_mtime_ns == stamp, "finished shards are not redone"
    assert _table(again).equals(full)
