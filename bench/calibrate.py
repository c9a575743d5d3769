"""Calibrate the tiny study from the teacher and the baseline alone: memorization after every epoch.

    .venv/bin/python bench/calibrate.py --examples 400 --epochs 30 [--vocab 2048]

Trains the tiny-teacher and tiny-student presets with cross-entropy on the built-in corpus and scans every
training example after each epoch, printing one row per epoch (train/val loss, memorized %). The study's
epoch count is chosen where the teacher memorizes roughly 20-70 % and the baseline less, before any student
is trained (issue: calibrate without looking at student results).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import kdplatform  # noqa: E402,F401
from kdplatform.data.corpus import load_documents  # noqa: E402
from kdplatform.data.examples import make_windows, split_examples, train_tokenizer  # noqa: E402
from kdplatform.memorization import scan  # noqa: E402
from kdplatform.models import build_preset  # noqa: E402
from kdplatform.train.loop import evaluate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=400)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--presets", nargs="+", default=["tiny-teacher", "tiny-student"])
    args = ap.parse_args()
    docs = load_documents("builtin", max_chars=3_000_000, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        tok = train_tokenizer(docs, args.vocab, Path(tmp))
    windows = make_windows(docs, tok, 100, args.examples + 64)
    train, val = split_examples(windows, args.examples, 64)
    x = torch.as_tensor(train.tokens)
    print(f"{args.examples} examples x 100 tokens, vocab {len(tok)}, lr {args.lr}, batch {args.batch}")
    for preset in args.presets:
        torch.manual_seed(0)
        model = build_preset(preset, len(tok), 100)
        n = sum(p.numel() for p in model.parameters())
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
        steps = args.epochs * math.ceil(args.examples / args.batch)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s, total=steps: 0.5 * (1 + math.cos(math.pi * min(s / total, 1)))
        )
        print(f"\n{preset}: {n / 1e6:.2f}M parameters")
        print("epoch  train_loss  val_loss  memorized%  seconds")
        gen = torch.Generator().manual_seed(0)
        start = time.perf_counter()
        for epoch in range(1, args.epochs + 1):
            model.train()
            total = 0.0
            order = torch.randperm(len(x), generator=gen)
            for i in range(0, len(x), args.batch):
                ids = x[order[i : i + args.batch]]
                loss = model(input_ids=ids, labels=ids).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                opt.zero_grad()
                total += loss.item() * len(ids)
            vl = evaluate(model, val.tokens, 64, torch.device("cpu"))
            mem = 100 * scan(model, x, 50).memorized.mean()
            print(
                f"{epoch:5d}  {total / len(x):10.3f}  {vl:8.3f}  {mem:10.1f}  "
                f"{time.perf_counter() - start:7.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
