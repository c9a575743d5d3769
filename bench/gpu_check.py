"""GPU check of the precision path: scan throughput, a soft-KD step, and the audit's agreement in bf16.

Run from the repository root on a CUDA machine (no downloads: random-init models of Pythia shapes):

    .venv/bin/python bench/gpu_check.py [--out result.json]
    .venv/bin/python bench/gpu_check.py --cpu-smoke      # tiny shapes on CPU: checks the script itself

Measured in one run, at most about 8 minutes (every section checks a deadline and is skipped, saying so,
when too little time is left):

- ceiling: the bf16 matmul rate (TFLOP/s) of this GPU, timed on large square matmuls in the same run;
- scan: examples/s and achieved TFLOP/s of ``scan`` on bf16 Pythia-1.4B- and 2.8B-shaped models (100-token
  examples, prefix 50), and that rate as a fraction of the ceiling (forward FLOPs = 2 x non-embedding
  parameters x tokens, attention excluded, so the fraction is a slight underestimate);
- kd_step: one soft-KD optimizer step of a 1.4B-shaped student (float32 master weights, AdamW, bf16
  autocast) against a frozen bf16 2.8B-shaped teacher whose logit width is padded past the student's:
  median step time and peak memory (``torch.cuda.max_memory_allocated``);
- audit: a 1.4B-shaped model's own greedy continuations (memorized by construction, float32 generate),
  scanned in bf16, then audited: the fp32 and bf16 scan counts and the audit record.

It prints one JSON object (also written to ``--out``). Without CUDA it refuses (exit status 2) unless
``--cpu-smoke`` is given.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

PYTHIA = {
    "pythia-1.4b": dict(
        num_hidden_layers=24, hidden_size=2048, num_attention_heads=16, intermediate_size=8192
    ),
    "pythia-2.8b": dict(
        num_hidden_layers=32, hidden_size=2560, num_attention_heads=32, intermediate_size=10240
    ),
}
SMOKE = {
    "pythia-1.4b": dict(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, intermediate_size=128),
    "pythia-2.8b": dict(num_hidden_layers=2, hidden_size=96, num_attention_heads=4, intermediate_size=192),
}
FULL = dict(
    vocab=50_304,
    teacher_vocab=50_688,
    seq=100,
    prefix=50,
    scan_n=4096,
    kd_batch=8,
    kd_seq=256,
    audit_n=64,
    matmul=8192,
    budget_s=480,
)
TINY = dict(
    vocab=512,
    teacher_vocab=576,
    seq=24,
    prefix=12,
    scan_n=32,
    kd_batch=2,
    kd_seq=16,
    audit_n=16,
    matmul=256,
    budget_s=120,
)


def build(shape: dict, vocab: int, device: torch.device, dtype: torch.dtype, seed: int = 0):
    """A random-init GPT-NeoX of a Pythia shape, initialised on `device` (fast on a GPU), in `dtype`."""
    from kdplatform.models import build_neox

    with device:
        model = build_neox(vocab, seed=seed, max_position_embeddings=2048, **shape)
    return model.to(dtype)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_ceiling(device: torch.device, n: int) -> float:
    """bf16 matmul TFLOP/s: the best of a few timed runs of an n x n x n product."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    best = float("inf")
    for _ in range(5):
        sync(device)
        t = time.perf_counter()
        for _ in range(4):
            a @ b
        sync(device)
        best = min(best, (time.perf_counter() - t) / 4)
    return 2 * n**3 / best / 1e12


def dense_params(model) -> int:
    """Parameters that cost 2 FLOPs per token in a forward pass: all but the input embedding."""
    return sum(p.numel() for p in model.parameters()) - model.get_input_embeddings().weight.numel()


def check_scan(name: str, shape: dict, p: dict, device: torch.device, ceiling: float) -> dict:
    from kdplatform.memorization import scan

    model = build(shape, p["vocab"], device, torch.bfloat16).eval()
    x = torch.randint(0, p["vocab"], (p["scan_n"], p["seq"]))
    scan(model, x[: max(1, p["scan_n"] // 8)], p["prefix"])  # warm-up
    sync(device)
    t = time.perf_counter()
    scan(model, x, p["prefix"])
    sync(device)
    dt = time.perf_counter() - t
    tflops = 2 * dense_params(model) * p["scan_n"] * (p["seq"] - 1) / dt / 1e12
    del model
    return {
        "model": name,
        "examples_per_s": p["scan_n"] / dt,
        "tflops": tflops,
        "fraction_of_bf16_ceiling": tflops / ceiling,
    }


def check_kd_step(p: dict, shapes: dict, device: torch.device, steps: int = 4) -> dict:
    """The trainer's soft-KD step: fp32 student, bf16 autocast on CUDA, frozen bf16 teacher, AdamW."""
    from kdplatform.train import losses

    student = build(shapes["pythia-1.4b"], p["vocab"], device, torch.float32).train()
    teacher = build(shapes["pythia-2.8b"], p["teacher_vocab"], device, torch.bfloat16, seed=1).eval()
    teacher.requires_grad_(False)
    opt = torch.optim.AdamW(student.parameters(), lr=5e-5)
    ids = torch.randint(0, p["vocab"], (p["kd_batch"], p["kd_seq"]), device=device)
    mask = torch.ones(p["kd_batch"], p["kd_seq"] - 1, dtype=torch.bool, device=device)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device.type == "cuda"
        else torch.autocast("cpu", enabled=False)
    )
    times, loss_values = [], []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for i in range(steps + 1):
        sync(device)
        t = time.perf_counter()
        with autocast:
            logits = student(input_ids=ids).logits[:, :-1]
            with torch.no_grad():
                t_logits = teacher(input_ids=ids).logits[:, :-1].float()
        loss = losses.kd_loss(
            "forward_kl", logits, t_logits, mask, 2.0, vocab_size=p["vocab"], chunk_size=512
        )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync(device)
        if i:  # the first step allocates the optimizer state
            times.append(time.perf_counter() - t)
        loss_values.append(loss.item())
    out = {
        "step_s": statistics.median(times),
        "tokens": p["kd_batch"] * p["kd_seq"],
        "losses_finite": all(map(lambda v: v == v and abs(v) != float("inf"), loss_values)),
        "master_dtype": str(next(student.parameters()).dtype).removeprefix("torch."),
    }
    if device.type == "cuda":
        out["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    del student, teacher, opt
    return out


def check_audit(p: dict, shapes: dict, device: torch.device) -> dict:
    from kdplatform.memorization import AuditConfig, audit_scan, own_greedy_sequences, scan

    fp32 = build(shapes["pythia-1.4b"], p["vocab"], device, torch.float32).eval()
    x = own_greedy_sequences(fp32, p["audit_n"], p["prefix"], p["seq"], seed=1)
    n32 = int(scan(fp32, x, p["prefix"]).memorized.sum())
    half = copy.deepcopy(fp32).to(torch.bfloat16)
    res = scan(half, x, p["prefix"])
    _, audit = audit_scan(half, x, p["prefix"], res, config=AuditConfig(sample=16), generator=fp32)
    return {"examples": p["audit_n"], "fp32_scan_memorized": n32, **audit.record()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny shapes on CPU: checks the script only")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if not args.cpu_smoke and not torch.cuda.is_available():
        print(
            "gpu_check: needs a CUDA device (none found); --cpu-smoke runs tiny shapes on CPU",
            file=sys.stderr,
        )
        return 2
    p, shapes = (TINY, SMOKE) if args.cpu_smoke else (FULL, PYTHIA)
    device = torch.device("cpu" if args.cpu_smoke else "cuda")
    deadline = time.monotonic() + p["budget_s"]
    result: dict = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "smoke": args.cpu_smoke,
        "skipped": [],
    }
    t0 = time.monotonic()
    result["bf16_matmul_tflops"] = ceiling = matmul_ceiling(device, p["matmul"])
    sections = [
        (f"scan:{name}", lambda n=name: check_scan(n, shapes[n], p, device, ceiling)) for name in shapes
    ]
    sections += [
        ("kd_step", lambda: check_kd_step(p, shapes, device)),
        ("audit", lambda: check_audit(p, shapes, device)),
    ]
    reserve = {"kd_step": 0.15, "audit": 0.15}  # leave time for the sections after the scans
    for name, run in sections:
        left = deadline - time.monotonic()
        if left < reserve.get(name, 0.1) * p["budget_s"]:
            result["skipped"].append(f"{name}: {left:.0f} s left")
            continue
        value = run()
        if name.startswith("scan:"):
            result.setdefault("scan", []).append(value)
        else:
            result[name] = value
        if device.type == "cuda":
            torch.cuda.empty_cache()
    result["seconds"] = time.monotonic() - t0
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
