"""bench/gpu_check.py: refuses cleanly without CUDA, and its --cpu-smoke mode runs every section."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "gpu_check.py"


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_refuses_without_cuda():
    proc = run()
    assert proc.returncode == 2 and "needs a CUDA device" in proc.stderr and proc.stdout == ""


def test_cpu_smoke_runs_every_section(tmp_path):
    proc = run("--cpu-smoke", "--out", str(tmp_path / "r.json"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["smoke"] and r["skipped"] == [] and r["bf16_matmul_tflops"] > 0
    assert [s["model"] for s in r["scan"]] == ["pythia-1.4b", "pythia-2.8b"]
    assert all(s["examples_per_s"] > 0 and s["fraction_of_bf16_ceiling"] > 0 for s in r["scan"])
    assert r["kd_step"]["losses_finite"] and r["kd_step"]["master_dtype"] == "float32"
    a = r["audit"]
    assert a["fp32_scan_memorized"] == a["examples"] == a["memorized_after"]
    assert a["scan_dtype"] == "bfloat16" and a["checked"] >= a["disagreements"]
