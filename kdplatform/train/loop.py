"""One training loop for every role: cross-entropy (teacher, baseline, hard-KD student) or soft KD.

Read top to bottom: set up (accelerate), train epochs, validate after each, save. The loss is the only
thing that differs between roles, chosen by whether a teacher is given.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from kdplatform.spec import TrainSpec
from kdplatform.train import losses


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    val_loss: float
    val_ppl: float
    tokens: int
    seconds: float


@dataclass
class TrainResult:
    epochs: list[EpochStats] = field(default_factory=list)
    steps: int = 0
    tokens: int = 0
    seconds: float = 0.0

    @property
    def final(self) -> EpochStats:
        return self.epochs[-1]


@dataclass(frozen=True)
class KDConfig:
    """How a student learns from a teacher's logits (paper eq. 1 with objective forward_kl)."""

    objective: str = "forward_kl"
    temperature: float = 2.0
    alpha: float = 0.0


def shared_vocab(*models) -> int:
    """Logits compared between models: the narrowest logit width (Pythia pads its widths differently)."""
    return min(m.get_output_embeddings().weight.shape[0] for m in models)


@torch.inference_mode()
def evaluate(model, tokens: np.ndarray, batch_size: int, device: torch.device) -> float:
    """Mean next-token NLL over all positions of the held-out examples."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(tokens), batch_size):
        ids = torch.as_tensor(tokens[start : start + batch_size], device=device)
        logits = model(input_ids=ids).logits[:, :-1].float()
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="sum")
        total += nll.item()
        count += ids[:, 1:].numel()
    return total / max(count, 1)


def train(
    model,
    train_tokens: np.ndarray,
    val_tokens: np.ndarray,
    cfg: TrainSpec,
    *,
    seed: int,
    out_dir: Path,
    teacher=None,
    kd: KDConfig | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    desc: str = "train",
) -> TrainResult:
    """Train `model` on `train_tokens` [N, L]; with `teacher`, distil (soft KD) instead of plain CE.

    The final weights are saved with `save_pretrained` to `out_dir` (written beside it, then renamed, so
    a crash never leaves a half-written checkpoint where a finished one is expected).
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from transformers import get_cosine_schedule_with_warmup

    use_bf16 = cfg.bf16 and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    acc = Accelerator(
        mixed_precision="bf16" if use_bf16 else "no", gradient_accumulation_steps=cfg.grad_accum
    )
    set_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        TensorDataset(torch.as_tensor(train_tokens, dtype=torch.long)),
        batch_size=cfg.batch_size,
        shuffle=True,
        generator=gen,
        drop_last=False,
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(loader) / cfg.grad_accum)
    total_steps = steps_per_epoch * cfg.epochs
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_steps), total_steps)
    model, optimizer, loader, scheduler = acc.prepare(model, optimizer, loader, scheduler)
    vocab = None
    if teacher is not None:
        teacher = teacher.to(acc.device).eval()
        vocab = shared_vocab(acc.unwrap_model(model), teacher)
    kd = kd or KDConfig()

    result = TrainResult()
    seq_tokens = train_tokens.shape[1] - 1
    budget = cfg.max_tokens
    start = time.perf_counter()
    done = False
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        ep_start, ep_loss, ep_batches = time.perf_counter(), 0.0, 0
        bar = tqdm(
            loader,
            desc=f"{desc} epoch {epoch}/{cfg.epochs}",
            unit="batch",
            leave=False,
            disable=None if acc.is_local_main_process else True,
        )
        for (ids,) in bar:
            with acc.accumulate(model):
                logits = model(input_ids=ids).logits[:, :-1]  # (B, L-1, V)
                labels = ids[:, 1:]
                mask = torch.ones_like(labels, dtype=torch.bool)
                if teacher is None:
                    loss = losses.cross_entropy(logits, labels, mask)
                else:
                    with torch.inference_mode():
                        t_logits = teacher(input_ids=ids).logits[:, :-1]
                    t_logits = t_logits.clone()  # leave inference mode: autograd may save it
                    loss = losses.kd_loss(
                        kd.objective, logits, t_logits, mask, kd.temperature, vocab_size=vocab
                    )
                    if kd.alpha > 0:
                        loss = (1 - kd.alpha) * loss + kd.alpha * losses.cross_entropy(logits, labels, mask)
                acc.backward(loss)
                if acc.sync_gradients:
                    acc.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            ep_loss += loss.item()
            ep_batches += 1
            result.steps += 1
            result.tokens += ids.shape[0] * seq_tokens * acc.num_processes
            elapsed = time.perf_counter() - start
            bar.set_postfix(loss=f"{loss.item():.3f}", tok_s=f"{result.tokens / max(elapsed, 1e-9):.0f}")
            if budget is not None and result.tokens >= budget:
                done = True
                break
        val_loss = evaluate(acc.unwrap_model(model), val_tokens, cfg.batch_size, acc.device)
        stats = EpochStats(
            epoch=epoch,
            train_loss=ep_loss / max(ep_batches, 1),
            val_loss=val_loss,
            val_ppl=math.exp(min(val_loss, 50.0)),
            tokens=result.tokens,
            seconds=time.perf_counter() - ep_start,
        )
        result.epochs.append(stats)
        if on_epoch is not None and acc.is_main_process:
            on_epoch(stats)
        if done:
            break
    result.seconds = time.perf_counter() - start
    acc.wait_for_everyone()
    if acc.is_main_process:
        save_checkpoint(acc.unwrap_model(model), out_dir)
    acc.wait_for_everyone()
    return result


def save_checkpoint(model, out_dir: Path) -> None:
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
