"""Training-step time under each OpenMP wait policy, side by side, each in a fresh process.

    .venv/bin/python bench/threads.py [--steps 20]

OMP_WAIT_POLICY is read when torch loads, so each policy runs in its own subprocess. The ratio tells
whether kdplatform's default (PASSIVE, set in kdplatform/__init__.py and the Makefile) is right here.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, sys, time, torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM
steps, layers, hidden = (int(a) for a in sys.argv[1:4])
torch.manual_seed(0)
cfg = GPTNeoXConfig(vocab_size=4096, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
                    intermediate_size=4 * hidden, max_position_embeddings=128)
model = GPTNeoXForCausalLM(cfg)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
ids = torch.randint(0, 4096, (16, 100))
times = []
for i in range(steps + 2):
    t = time.perf_counter()
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    opt.step()
    opt.zero_grad()
    times.append(time.perf_counter() - t)
times = sorted(times[2:])
print(json.dumps({"median_s": times[len(times) // 2], "threads": torch.get_num_threads()}))
"""


def run(policy: str | None, steps: int, layers: int, hidden: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(steps), str(layers), str(hidden)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    for contended in (False, True):
        hog = None
        if contended:
            hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            print("\n-- with one busy process competing for the cores (a second job, a test, the dashboard)")
        else:
            print("-- alone on the machine")
        try:
            measure(args.steps)
        finally:
            if hog is not None:
                hog.kill()


def measure(steps: int) -> None:
    for name, layers, hidden in [("tiny-teacher", 4, 256), ("tiny-student", 2, 128)]:
        print(
            f"{name} shape ({layers} x {hidden}, vocab 4096), batch 16 x 100 tokens, AdamW step; "
            f"median of {steps} steps"
        )
        results = {p or "unset": run(p, steps, layers, hidden) for p in ("PASSIVE", "ACTIVE", None)}
        for pol, r in results.items():
            print(f"  OMP_WAIT_POLICY={pol:8s} {r['median_s'] * 1000:8.1f} ms/step  ({r['threads']} threads)")
        base = results["PASSIVE"]["median_s"]
        for pol in ("ACTIVE", "unset"):
            print(f"  {pol} / PASSIVE = {results[pol]['median_s'] / base:.2f}x")


if __name__ == "__main__":
    main()
