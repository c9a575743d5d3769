"""Throughput and memory of ``kdplatform.memorization.scan`` against the pipeline it replaces.

Run from the repository root:

    .venv/bin/python bench/scan.py [--quick]

On the same examples (a quarter memorized by construction, a quarter one-token edits of those, half
random) and for two random-init GPTNeoX shapes, a tiny preset and a Pythia-70m-shaped model, it times
(a) ``scan`` with every feature and a reference model of the same shape, (b) the naive pipeline a
researcher would write (``generate`` for memorization, then one forward pass per feature: log-probability,
entropy, perplexity, and for KLD a model and a reference forward), (c) ``greedy_reference`` alone. It
prints examples/s, the ratios a/b and a/c, whether (a) and (c) agree on every (memorized, match_len),
and the achieved GFLOP/s of (a) against a large float32 matmul timed in the same run. Finally it measures
the peak RSS of a scan over 5k and 50k rows in fresh subprocesses, which must not grow with N.
The cost of the scores beyond exact match (min-k %, min-k %++, probabilistic extraction, every prefix
length: ``ScanOptions(scores=False)`` is the scan without them) is timed on the same examples, with and
without a reference model, the two alternated and each the best of five, in CPU seconds of this process
(wall seconds beside them); the goal is at most 1.2x. ``--scores`` runs that comparison alone.
Peak RSS is the child's VmHWM (/proc/self/status): ru_maxrss would report the parent's peak, which a child
inherits over fork/exec. The whole run takes about 6 minutes on 2 CPU cores; ``--quick`` (about 3) is smaller.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, PreTrainedModel  # noqa: E402

from kdplatform.memorization import ScanOptions, greedy_reference, scan, scan_with  # noqa: E402
from kdplatform.memorization.scan import default_batch_size  # noqa: E402

SEQ, PREFIX = 100, 50
SUFFIX = SEQ - PREFIX
PRESETS = {
    "tiny": dict(
        num_hidden_layers=4, hidden_size=128, num_attention_heads=4, intermediate_size=512, vocab_size=4096
    ),
    "pythia-70m-shape": dict(
        num_hidden_layers=6, hidden_size=512, num_attention_heads=8, intermediate_size=2048, vocab_size=50304
    ),
    # The memory runs push 50k rows through the full vocabulary math: one narrow layer and a small vocabulary
    # keep that near a minute; keeping anything per position would still show as ~5 GB at 50k rows.
    "memory": dict(
        num_hidden_layers=1, hidden_size=32, num_attention_heads=4, intermediate_size=128, vocab_size=256
    ),
}


def build(preset: str, seed: int) -> PreTrainedModel:
    torch.manual_seed(seed)
    config = GPTNeoXConfig(max_position_embeddings=SEQ, bos_token_id=0, eos_token_id=0, **PRESETS[preset])
    return GPTNeoXForCausalLM(config).eval()


def examples(model: PreTrainedModel, n: int, seed: int) -> torch.Tensor:
    """A quarter memorized by construction (the model's own greedy continuations), a quarter of those with
    one suffix token changed, the rest random rows."""
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(seed)
    k = n // 4
    prefixes = torch.randint(0, vocab, (k, PREFIX), generator=g)
    placeholder = torch.cat(
        [prefixes, torch.zeros(k, SUFFIX, dtype=torch.long)], 1
    )  # only the prefix is read
    own = torch.cat(
        [prefixes, torch.as_tensor(greedy_reference(model, placeholder, PREFIX).greedy_tokens)], 1
    )
    changed = own.clone()
    pos = PREFIX + torch.randint(0, SUFFIX, (k,), generator=g)
    changed[torch.arange(k), pos] = (changed[torch.arange(k), pos] + 1) % vocab
    return torch.cat([own, changed, torch.randint(0, vocab, (n - 2 * k, SEQ), generator=g)])


def naive_pipeline(
    model: PreTrainedModel, reference: PreTrainedModel, x: torch.Tensor, batch_size: int
) -> dict:
    """What one would write feature by feature: generate, then a separate forward for each measure."""
    out: dict[str, list] = {k: [] for k in ("memorized", "logprob", "entropy", "ppl", "kld")}
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            b = x[start : start + batch_size]
            prefix = b[:, :PREFIX]
            gen = model.generate(
                prefix,
                attention_mask=torch.ones_like(prefix),
                do_sample=False,
                max_new_tokens=SUFFIX,
                min_new_tokens=SUFFIX,
                pad_token_id=0,
            )
            out["memorized"].append((gen[:, PREFIX:] == b[:, PREFIX:]).all(1))
            lp = F.log_softmax(model(b).logits.float()[:, PREFIX - 1 : -1], -1)
            out["logprob"].append(lp.gather(-1, b[:, PREFIX:, None]).squeeze(-1).sum(1))
            lp = F.log_softmax(model(b).logits.float()[:, PREFIX - 1 : -1], -1)
            out["entropy"].append(-(lp.exp() * lp).sum(-1).mean(1))
            logits = model(b).logits.float()[:, :-1]
            nll = F.cross_entropy(logits.transpose(1, 2), b[:, 1:], reduction="none")
            out["ppl"].append(nll.mean(1).exp())
            lp = F.log_softmax(model(b).logits.float()[:, PREFIX - 1 : -1], -1)
            lr = F.log_softmax(reference(b).logits.float()[:, PREFIX - 1 : -1], -1)
            out["kld"].append(F.kl_div(lp, lr, log_target=True, reduction="none").sum(-1).mean(1))
    return {k: torch.cat(v).numpy() for k, v in out.items()}


def matmul_params(model: PreTrainedModel) -> tuple[int, int]:
    """(parameters in the per-token matmuls of the body, parameters of the output head); the input
    embedding is a lookup and is not counted."""
    skip = {id(p) for p in model.get_input_embeddings().parameters()}
    head = sum(p.numel() for p in model.get_output_embeddings().parameters())
    skip |= {id(p) for p in model.get_output_embeddings().parameters()}
    body = sum(p.numel() for p in model.parameters() if id(p) not in skip)
    return body, head


def scan_flops_per_example(model: PreTrainedModel, reference: PreTrainedModel) -> float:
    """2·params·tokens for the body and head of both models (scan feeds L-1 tokens; the reference's head
    runs on the S suffix positions only), plus attention scores and mixing, 2·2·layers·T²·d, full square."""
    t = SEQ - 1
    total = 0.0
    for m, head_tokens in ((model, t), (reference, SUFFIX)):
        body, head = matmul_params(m)
        c = m.config
        total += 2 * body * t + 2 * head * head_tokens + 4 * c.num_hidden_layers * t * t * c.hidden_size
    return total


def matmul_gflops() -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    best = float("inf")
    for _ in range(6):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * 2048**3 / best / 1e9


def timed(fn):
    t0 = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0


def score_cost(
    model: PreTrainedModel, reference: PreTrainedModel | None, x: torch.Tensor, repeats: int = 5
) -> tuple[list[float], list[float]]:
    """Best of `repeats` (wall, CPU) seconds of the scan (without, with) the new scores, alternated so
    that load hits both. CPU seconds (this process's threads, ``time.process_time``) are what the scores
    cost; wall seconds on a shared machine also count the time other processes held the cores."""
    best = [[float("inf")] * 2, [float("inf")] * 2]
    for _ in range(repeats):
        for i, options in enumerate((ScanOptions(scores=False), ScanOptions())):
            c0 = time.process_time()
            _, t = timed(lambda options=options: scan_with(model, x, PREFIX, options, reference=reference))
            best[i] = [min(best[i][0], t), min(best[i][1], time.process_time() - c0)]
    return best[0], best[1]


def print_score_cost(model: PreTrainedModel, reference: PreTrainedModel, x: torch.Tensor) -> None:
    for label, ref in (("model + reference", reference), ("model only       ", None)):
        (plain, plain_cpu), (full, full_cpu) = score_cost(model, ref, x)
        print(
            f"scores cost, {label}: without {plain_cpu:.2f} CPU s, with min-k/min-k++/extraction/prefixes "
            f"{full_cpu:.2f} CPU s = {full_cpu / plain_cpu:.2f}x (goal <= 1.2x; wall {plain:.2f} s -> "
            f"{full:.2f} s = {full / plain:.2f}x; best of 5, alternated)"
        )


def compare(preset: str, n: int) -> None:
    model, reference = build(preset, 0), build(preset, 1)
    x = examples(model, n, seed=2)
    bs = default_batch_size(torch.device("cpu"), SEQ, model.config.vocab_size)
    warm = x[:2]
    scan(model, warm, PREFIX, reference=reference)
    naive_pipeline(model, reference, warm, bs)
    greedy_reference(model, warm, PREFIX)

    # The peak is timed right before and after (a), so that other load on the machine hits both alike.
    peak_before = matmul_gflops()
    a, ta = timed(lambda: scan(model, x, PREFIX, reference=reference, return_greedy=True))
    peak_gflops = max(peak_before, matmul_gflops())
    b, tb = timed(lambda: naive_pipeline(model, reference, x, bs))
    c, tc = timed(lambda: greedy_reference(model, x, PREFIX))
    _, t0 = timed(lambda: scan(model, x, PREFIX))

    agree = bool((a.memorized == c.memorized).all() and (a.match_len == c.match_len).all())
    flops = scan_flops_per_example(model, reference) * n
    body, head = matmul_params(model)
    print(
        f"\n== {preset}: {body / 1e6:.2f}M body + {head / 1e6:.2f}M head params per model, N={n}, L={SEQ}, "
        f"batch {bs}, {int(a.memorized.sum())} memorized =="
    )
    print(f"(a) scan, all features + reference : {n / ta:9.2f} examples/s  ({ta:.2f} s)")
    print(f"(b) naive generate + 5 forwards     : {n / tb:9.2f} examples/s  ({tb:.2f} s)")
    print(f"(c) greedy_reference (generate)     : {n / tc:9.2f} examples/s  ({tc:.2f} s)")
    print(f"(a0) scan, model only, no reference : {n / t0:9.2f} examples/s  ({t0:.2f} s)")
    print(f"speed-up a/b = {tb / ta:.2f}x, a/c = {tc / ta:.2f}x, a0/c = {tc / t0:.2f}x")
    print(f"every (memorized, match_len) agrees between a and c: {agree}")
    print_score_cost(model, reference, x)
    print(
        f"naive memorized agrees with scan: {bool((b['memorized'] == a.memorized).all())}; "
        f"max |kld diff| {np.abs(b['kld'] - a.kld).max():.2e}, max rel ppl diff "
        f"{np.abs(b['ppl'] / a.ppl - 1).max():.2e}"
    )
    print(
        f"(a) achieved {flops / ta / 1e9:.1f} GFLOP/s = {100 * flops / ta / 1e9 / peak_gflops:.0f}% of "
        f"{peak_gflops:.1f} GFLOP/s (float32 2048x2048 matmul, best of 6 before and 6 after (a)); "
        f"{flops / n / 1e9:.3f} GFLOP per example counted"
    )


def proc_status_kib(field: str) -> int:
    """VmRSS (resident now) or VmHWM (peak resident) of this process, in KiB. VmHWM belongs to the address
    space created at exec, whereas ru_maxrss carries the parent's peak over fork/exec into a child."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(f"{field}:"))


def memory_child(n: int) -> None:
    model, reference = build("memory", 0), build("memory", 1)
    x = torch.randint(0, model.config.vocab_size, (n, SEQ))
    before = proc_status_kib("VmRSS")
    _, t = timed(lambda: scan(model, x, PREFIX, reference=reference))
    print(json.dumps({"n": n, "before_kib": before, "peak_kib": proc_status_kib("VmHWM"), "seconds": t}))


def memory(ns: list[int]) -> None:
    c = PRESETS["memory"]
    print(
        f"\n== peak memory of scan (fresh subprocess each; peak = VmHWM, before = VmRSS before the scan; "
        f"GPTNeoX {c['num_hidden_layers']} layer, hidden {c['hidden_size']}, vocab {c['vocab_size']}, "
        f"reference model, all features and scores) =="
    )
    for n in ns:
        proc = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(n)], capture_output=True, text=True, check=True
        )
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        before, peak = r["before_kib"] / 1024, r["peak_kib"] / 1024
        inputs = n * SEQ * 8 / 2**20
        print(
            f"N={n:>6}: RSS before scan {before:7.1f} MiB (token_ids {inputs:.1f} MiB), "
            f"peak {peak:7.1f} MiB, scan adds {peak - before:6.1f} MiB, {n / r['seconds']:.0f} examples/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small N, for a smoke run")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--scores", action="store_true", help="only the cost of the scores, both presets")
    args = parser.parse_args()
    if args.memory_child is not None:
        memory_child(args.memory_child)
        return
    if args.scores:
        for preset, n in (("tiny", 256), ("pythia-70m-shape", 32)):
            model, reference = build(preset, 0), build(preset, 1)
            x = examples(model, n, seed=2)
            scan_with(model, x[:2], PREFIX, ScanOptions(), reference=reference)
            print(f"== {preset}, N={n}, load average {os.getloadavg()[0]:.2f} ==")
            print_score_cost(model, reference, x)
        return
    start = time.perf_counter()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}"
    )
    compare("tiny", 64 if args.quick else 256)
    compare("pythia-70m-shape", 8 if args.quick else 32)
    memory([1000, 10000] if args.quick else [5000, 50000])
    print(f"\ntotal {time.perf_counter() - start:.0f} s, load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
