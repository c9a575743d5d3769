"""Cost of one training step: cross-entropy vs soft-KD with unchunked and chunked forward_kl.

Run from the repository root:

    .venv/bin/python bench/kd_step.py

A small GPTNeoX student (2 layers, hidden 128, vocab 50,304) takes SGD steps on batch 4 x seq 128
against precomputed teacher logits of Pythia's padded width (50,688), distilled over the shared
tokenizer's 50,277 tokens. Each variant runs in a fresh subprocess so that no variant inherits
another's allocations, and reports:

- step time: median wall-clock of the timed steps (forward, loss, backward, optimizer step);
- peak step memory: on CUDA, ``torch.cuda.max_memory_allocated`` minus the memory allocated before
  the steps; on CPU, the process's peak resident set size (VmHWM, reset through
  /proc/self/clear_refs, falling back to ``getrusage``'s ru_maxrss) minus its resident size before
  the steps. On CPU, memory comes from a second subprocess (1 warm-up + 1 step) in which glibc
  serves every allocation above 128 KiB with its own mmap, so freed tensors leave the RSS at once
  and the peak tracks memory live at the same time rather than the allocator's caching. The model,
  inputs and teacher logits are in the baseline; gradients and all activations of the step are in
  the delta.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

BATCH, SEQ = 4, 128
STUDENT_VOCAB, TEACHER_VOCAB, TOKENIZER_VOCAB = 50_304, 50_688, 50_277
TEMPERATURE = 2.0
CHUNK_SIZE = 64  # positions per chunk: 8 chunks of the 512 positions
VARIANTS = ("ce", "kd_unchunked", "kd_chunked")


def _rss_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Lower the kernel's RSS high-water mark to the current RSS, so setup peaks do not mask the step."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def run_variant(variant: str, steps: int) -> dict:
    import torch

    from kdplatform.models import build_neox
    from kdplatform.train import losses

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    shape = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=512)
    model = build_neox(STUDENT_VOCAB, seed=0, max_position_embeddings=SEQ, **shape).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    ids = torch.randint(0, TOKENIZER_VOCAB, (BATCH, SEQ), device=device)
    teacher = torch.randn(BATCH, SEQ, TEACHER_VOCAB, device=device) * 3
    kd_mask = torch.ones(BATCH, SEQ, dtype=torch.bool, device=device)
    ce_mask = kd_mask[:, 1:].contiguous()

    def step() -> float:
        logits = model(input_ids=ids).logits
        if variant == "ce":
            loss = losses.cross_entropy(logits[:, :-1], ids[:, 1:], ce_mask)
        else:
            chunk = CHUNK_SIZE if variant == "kd_chunked" else None
            loss = losses.forward_kl(
                logits, teacher, kd_mask, TEMPERATURE, vocab_size=TOKENIZER_VOCAB, chunk_size=chunk
            )
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    if device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        how = "cuda max_memory_allocated"
    else:
        reset = _reset_peak_rss()
        base = _rss_kib("VmRSS")
        if reset and base is not None:
            how = "peak RSS (VmHWM) - RSS"
        else:
            base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            how = "ru_maxrss - ru_maxrss before steps"

    loss = step()  # warm-up, excluded from the timing but not from the peak
    times = []
    for _ in range(steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        loss = step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)

    if device.type == "cuda":
        peak_mib = (torch.cuda.max_memory_allocated() - base) / 2**20
    elif how.startswith("peak RSS"):
        peak_mib = (_rss_kib("VmHWM") - base) / 1024
    else:
        peak_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    return {
        "variant": variant,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "step_ms": 1000 * statistics.median(times),
        "peak_mib": peak_mib,
        "loss": loss,
        "memory": how,
    }


def _child(variant: str, steps: int, env: dict[str, str]) -> dict:
    cmd = [sys.executable, __file__, "--variant", variant, "--steps", str(steps)]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="timed steps per variant (after 1 warm-up)")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.steps)))
        return

    # Memory is measured in its own process with a fixed mmap threshold, so large frees return to
    # the OS at once; time is measured with the default allocator, whose extra page faults it spares.
    mem_env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}
    rows = {}
    for variant in VARIANTS:
        rows[variant] = _child(variant, args.steps, dict(os.environ))
        rows[variant]["peak_mib"] = _child(variant, 1, mem_env)["peak_mib"]

    first = rows["ce"]
    logits_mib = BATCH * SEQ * STUDENT_VOCAB * 4 / 2**20
    print(
        f"student GPTNeoX 2x128, batch {BATCH} x seq {SEQ}, student vocab {STUDENT_VOCAB}, "
        f"teacher {TEACHER_VOCAB}, KD over {TOKENIZER_VOCAB} tokens, T={TEMPERATURE}, "
        f"chunk {CHUNK_SIZE} positions"
    )
    print(f"device {first['device']}, {first['threads']} threads, {args.steps} timed steps after 1 warm-up")
    print(f"peak step memory = {first['memory']}; one float32 [batch, seq, vocab] = {logits_mib:.0f} MiB")
    print()
    print(f"{'variant':<14}{'step ms':>10}{'peak MiB':>11}{'loss':>10}")
    for r in rows.values():
        print(f"{r['variant']:<14}{r['step_ms']:>10.0f}{r['peak_mib']:>11.0f}{r['loss']:>10.4f}")
    ce, kd, kdc = rows["ce"], rows["kd_unchunked"], rows["kd_chunked"]
    print()
    print(f"memory  kd_chunked / kd_unchunked = {kdc['peak_mib'] / kd['peak_mib']:.2f}")
    print(f"memory  kd_unchunked / ce         = {kd['peak_mib'] / ce['peak_mib']:.2f}")
    print(f"memory  kd_chunked / ce           = {kdc['peak_mib'] / ce['peak_mib']:.2f}")
    print(f"time    kd_unchunked / ce         = {kd['step_ms'] / ce['step_ms']:.2f}")
    print(f"time    kd_chunked / ce           = {kdc['step_ms'] / ce['step_ms']:.2f}")
    print(f"time    kd_chunked / kd_unchunked = {kdc['step_ms'] / kd['step_ms']:.2f}")


if __name__ == "__main__":
    main()
