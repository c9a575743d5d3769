"""One training loop for every role: cross-entropy (teacher, baseline, hard-KD student) or soft KD.

Read top to bottom: set up (accelerate), train epochs, validate after each, save. The loss is the only
thing that differs between roles, chosen by whether a teacher is given.

Three properties shape the code:

- **Data order is a pure function of (seed, epoch)**: each epoch draws a fresh permutation from
  ``numpy.random.default_rng([seed, epoch])``, so a resumed run skips exactly the batches already consumed
  without replaying a data loader's generator.
- **``batch_size`` is the global batch**: every micro-batch is split across processes and each process's
  loss is weighted by its share of the step's tokens, so the averaged DDP gradient is the mean over the
  whole step's tokens, as in one process (equal up to float rounding, whatever the number of processes).
- **Resume is exact**: every ``checkpoint_every`` optimizer steps the full state (model, optimizer,
  scheduler, RNG of every process, position in the epoch, counters, epoch stats so far) is written under
  ``state_dir`` to a temporary name and renamed; a rerun picks the latest one up, and a run killed with
  SIGKILL and rerun ends bit-for-bit where an uninterrupted run would (CPU, float32).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from kdplatform.spec import TrainSpec
from kdplatform.train import losses, state
from kdplatform.train import plan as data_plan
from kdplatform.train.checks import (
    check_token_ids,
    logit_width,
    raise_if_non_finite,
    raise_if_non_finite_val,
)
from kdplatform.train.precision import as_master_weights
from kdplatform.train.state import STATE_PREFIX
from kdplatform.train.validate import evaluate, nll_sum_distributed

__all__ = ["STATE_PREFIX", "EpochStats", "KDConfig", "TrainResult", "evaluate", "save_checkpoint", "train"]


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    val_loss: float
    val_ppl: float
    tokens: int
    """Training tokens (predicted positions) seen since the start of the run, all processes together."""
    seconds: float
    step: int = 0
    """Optimizer steps taken since the start of the run, at the end of this epoch."""
    tokens_per_s: float = 0.0
    """This epoch's training throughput (all processes), validation and checkpointing excluded."""


@dataclass
class TrainResult:
    epochs: list[EpochStats] = field(default_factory=list)
    steps: int = 0
    """Optimizer steps (one per `grad_accum` micro-batches)."""
    tokens: int = 0
    seconds: float = 0.0
    """Wall time of the whole run, summed over resumed sessions."""
    tokens_per_s: float = 0.0
    """Training throughput over the run (all processes), validation and checkpointing excluded."""
    reached_target: bool | None = None
    """With `stop_at_val_loss`: whether an epoch's validation loss reached it; None without a target."""
    resumed_from: int | None = None
    """The optimizer step of the saved state this run continued from; None for a fresh start."""
    discarded_state: str | None = None
    """Why a saved state found in `state_dir` was removed instead of resumed (written for another stage:
    other model, initial weights, teacher, data, options or world size); None when none was discarded."""

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
    """Logits compared between models: the narrowest logit width (Pythia pads its widths differently).

    Read from unwrapped, unsharded models: under FSDP a prepared model's weights may be flat shards.
    """
    return min(logit_width(m) for m in models)


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
    state_dir: Path | None = None,
    stop_at_val_loss: float | None = None,
    stage_hash: str | None = None,
) -> TrainResult:
    """Train `model` on `train_tokens` [N, L]; with `teacher`, distil (soft KD) instead of plain CE.

    Stops after `cfg.epochs`, when `cfg.max_tokens` training tokens have been seen (the cosine schedule
    then spans that budget), or after the first epoch whose validation loss is <= `stop_at_val_loss` (the
    paper trains the student until it beats the baseline; epochs are then the compute cap).

    `model`'s weights are cast to float32 master weights first, whatever their dtype (`cfg.bf16` is
    autocast on CUDA, never bf16 weights); the frozen `teacher` may be in half precision, its logits are
    upcast. A non-finite loss or gradient norm raises :class:`~kdplatform.train.checks.NonFiniteLossError`
    naming `desc` and the step, before that update, and nothing is saved.

    With `state_dir`, the full training state is saved there every `cfg.checkpoint_every` optimizer steps
    and a rerun resumes from it, but only from a state written for the same run (see
    :mod:`kdplatform.train.state`; `stage_hash` is the caller's own identity of the run): any other is
    removed and the run starts fresh (`result.discarded_state` says why). `result.epochs` then holds every
    epoch, while `on_epoch` (main process only) is called only for the epochs this call finishes. The
    state is removed once the final weights are saved with `save_pretrained` to `out_dir` (written beside
    it, then renamed, so a crash never leaves a half-written checkpoint where a finished one is expected).
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from transformers import get_cosine_schedule_with_warmup

    use_bf16 = cfg.bf16 and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    acc = Accelerator(mixed_precision="bf16" if use_bf16 else "no")
    rank, world = acc.process_index, acc.num_processes
    check_token_ids(train_tokens, model, f"{desc}: training data")
    check_token_ids(val_tokens, model, f"{desc}: validation data")
    model = as_master_weights(model)
    # Identity, widths and the optimizer's view are taken before `prepare` may shard the weights.
    fingerprint = state.fingerprint(
        cfg,
        seed=seed,
        world=world,
        model_id=state.model_identity(model) if state_dir is not None else None,
        teacher_id=state.model_identity(teacher) if state_dir is not None else None,
        data=state.tokens_digest(train_tokens, val_tokens),
        kd=(kd or KDConfig()) if teacher is not None else None,
        stage_hash=stage_hash,
    )
    vocab = None
    if teacher is not None:
        teacher = teacher.to(acc.device).eval()
        vocab = shared_vocab(model, teacher)
    set_seed(seed)
    data = torch.as_tensor(np.asarray(train_tokens), dtype=torch.long)
    n, seq_len = data.shape
    seq_tokens = seq_len - 1
    total_steps = data_plan.total_steps(n, cfg, seq_tokens)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_steps), total_steps)
    # The scheduler stays unprepared: accelerate would step it once per process, since it assumes each
    # process iterates its own shard of batches; here every process takes every step of the global plan.
    # Prepared together: under FSDP2 accelerate swaps the optimizer's parameters for the sharded ones.
    model, optimizer = acc.prepare(model, optimizer)
    acc.register_for_checkpointing(scheduler)
    kd_cfg = kd or KDConfig()

    result = TrainResult(reached_target=None if stop_at_val_loss is None else False)
    first_epoch, skip_steps, tokens_at_epoch_start = 1, 0, 0
    ep_loss, ep_count, ep_seconds, ep_train_seconds, train_seconds, prior_seconds = 0.0, 0, 0.0, 0.0, 0.0, 0.0
    if state_dir is not None:
        state_dir = Path(state_dir)
        p, result.discarded_state = state.open_state(acc, state_dir, fingerprint)
        if p is not None:
            first_epoch, skip_steps = p["epoch"], p["step_in_epoch"]
            tokens_at_epoch_start = p["tokens_at_epoch_start"]
            ep_loss, ep_count = p["epoch_loss_sum"], p["epoch_count"]
            ep_seconds, ep_train_seconds = p["epoch_seconds"], p["epoch_train_seconds"]
            train_seconds, prior_seconds = p["train_seconds"], p["seconds"]
            result.steps, result.tokens, result.resumed_from = p["steps"], p["tokens"], p["steps"]
            result.epochs = [EpochStats(**e) for e in p["epochs"]]

    start = time.perf_counter()
    session_tokens = 0
    stop = False
    for epoch in range(first_epoch, cfg.epochs + 1):
        if epoch != first_epoch:
            tokens_at_epoch_start, skip_steps = result.tokens, 0
            ep_loss, ep_count, ep_seconds, ep_train_seconds = 0.0, 0, 0.0, 0.0
        ep_start = time.perf_counter() - ep_seconds
        perm = data_plan.permutation(seed, epoch, n)
        plan = data_plan.epoch_plan(
            n, cfg.batch_size, cfg.grad_accum, seq_tokens, tokens_at_epoch_start, cfg.max_tokens
        )
        model.train()
        bar = tqdm(
            total=sum(len(s) for s in plan),
            initial=sum(len(s) for s in plan[:skip_steps]),
            desc=f"{desc} epoch {epoch}/{cfg.epochs}",
            unit="batch",
            leave=False,
            disable=None if acc.is_local_main_process else True,
        )
        for step_in_epoch in range(skip_steps, len(plan)):
            t0 = time.perf_counter()
            micro = plan[step_in_epoch]
            step_positions = sum(e - s for s, e in micro) * seq_tokens
            step_loss = 0.0
            for i, (s, e) in enumerate(micro):
                rows = np.array_split(perm[s:e], world)[rank]
                ids = data[torch.as_tensor(rows if len(rows) else perm[s : s + 1])].to(acc.device)
                mask = torch.full((ids.shape[0], seq_tokens), len(rows) > 0, device=acc.device)
                sync = i == len(micro) - 1
                with contextlib.nullcontext() if sync else acc.no_sync(model):
                    loss = _loss(model, teacher, ids, mask, kd_cfg, vocab, acc)
                    local = int(mask.sum())
                    # Weighted so that DDP's mean over processes is the mean over all the step's tokens.
                    acc.backward(loss * (local * world / step_positions))
                step_loss += float(loss.item()) * local
                ep_count += local
                result.tokens += (e - s) * seq_tokens
                session_tokens += (e - s) * seq_tokens
                bar.update(1)
            ep_loss += step_loss
            grad_norm = acc.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            raise_if_non_finite(acc, step_loss, grad_norm, desc=desc, epoch=epoch, step=result.steps + 1)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            result.steps += 1
            dt = time.perf_counter() - t0
            train_seconds += dt
            ep_train_seconds += dt
            bar.set_postfix(
                loss=f"{loss.item():.3f}", tok_s=f"{session_tokens / max(train_seconds, 1e-9):.0f}"
            )
            if state_dir is not None and cfg.checkpoint_every and result.steps % cfg.checkpoint_every == 0:
                progress = {
                    "fingerprint": fingerprint,
                    "epoch": epoch,
                    "step_in_epoch": step_in_epoch + 1,
                    "batch_in_epoch": sum(len(x) for x in plan[: step_in_epoch + 1]),
                    "steps": result.steps,
                    "tokens": result.tokens,
                    "tokens_at_epoch_start": tokens_at_epoch_start,
                    "epoch_loss_sum": ep_loss,
                    "epoch_count": ep_count,
                    "epoch_seconds": time.perf_counter() - ep_start,
                    "epoch_train_seconds": ep_train_seconds,
                    "train_seconds": train_seconds,
                    "seconds": prior_seconds + time.perf_counter() - start,
                    "epochs": [asdict(x) for x in result.epochs],
                }
                state.save_state(acc, state_dir, result.steps, progress)
        bar.close()
        sums = torch.tensor([ep_loss, ep_count], dtype=torch.float64, device=acc.device)
        v_sum, v_count = nll_sum_distributed(model, np.asarray(val_tokens), cfg.batch_size, acc)
        sums = acc.reduce(
            torch.cat([sums, torch.tensor([v_sum, v_count], dtype=torch.float64, device=acc.device)])
        )
        train_loss_sum, train_count, val_sum, val_count = (float(x) for x in sums.cpu())
        val_loss = val_sum / val_count if val_count else math.nan
        if val_count:
            raise_if_non_finite_val(val_loss, desc=desc, epoch=epoch, step=result.steps)
        stats = EpochStats(
            epoch=epoch,
            train_loss=train_loss_sum / max(train_count, 1),
            val_loss=val_loss,
            val_ppl=math.exp(min(val_loss, 50.0)),
            tokens=result.tokens,
            seconds=time.perf_counter() - ep_start,
            step=result.steps,
            tokens_per_s=(result.tokens - tokens_at_epoch_start) / max(ep_train_seconds, 1e-9),
        )
        result.epochs.append(stats)
        if on_epoch is not None and acc.is_main_process:
            on_epoch(stats)
        if stop_at_val_loss is not None and val_loss <= stop_at_val_loss:
            result.reached_target = stop = True
        if cfg.max_tokens is not None and result.tokens >= cfg.max_tokens:
            stop = True
        if stop:
            break
    result.seconds = prior_seconds + time.perf_counter() - start
    result.tokens_per_s = result.tokens / max(train_seconds, 1e-9)
    acc.wait_for_everyone()
    # Every process takes part in gathering the full weights (under FSDP they are sharded); one writes.
    weights = acc.get_state_dict(model)
    if acc.is_main_process:
        save_checkpoint(acc.unwrap_model(model), out_dir, state_dict=weights)
        if state_dir is not None:
            state.remove_states(state_dir)
    acc.wait_for_everyone()
    return result


def _loss(model, teacher, ids: torch.Tensor, mask: torch.Tensor, kd: KDConfig, vocab: int | None, acc):
    """Mean training loss over the masked positions of one micro-batch: CE, or KD (+ alpha · CE)."""
    logits = model(input_ids=ids).logits[:, :-1]  # (B, L-1, V)
    labels = ids[:, 1:]
    if teacher is None:
        return losses.cross_entropy(logits, labels, mask)
    with torch.inference_mode(), acc.autocast():
        t_logits = teacher(input_ids=ids).logits[:, :-1]
    # A copy leaves inference mode (autograd may save it), in float32 whatever the teacher's precision.
    t_logits = t_logits.to(torch.float32, copy=True)
    loss = losses.kd_loss(kd.objective, logits, t_logits, mask, kd.temperature, vocab_size=vocab)
    if kd.alpha > 0:
        loss = (1 - kd.alpha) * loss + kd.alpha * losses.cross_entropy(logits, labels, mask)
    return loss


def save_checkpoint(model, out_dir: Path, *, state_dict: dict[str, torch.Tensor] | None = None) -> None:
    """`save_pretrained` to a temporary folder beside `out_dir`, then rename it into place.

    `state_dict` is the full (gathered) weights when `model` was sharded; default: the model's own.
    """
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a bar per one-shard save drowns the job's own progress lines
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    _plain(model).save_pretrained(tmp, state_dict=state_dict)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)


def _plain(model):
    """The model as its own transformers class: FSDP2 swaps in a subclass (FSDP<Name>), under which
    save_pretrained no longer finds the class's checkpoint key names (GPT-NeoX's head would be saved as
    lm_head.weight instead of embed_out.weight). A weightless meta-device twin saves the given weights."""
    name = type(model).__name__
    own = [c for c in type(model).__mro__[1:] if c.__name__ == name.removeprefix("FSDP")]
    if not name.startswith("FSDP") or not own:
        return model
    with torch.device("meta"):
        return own[0](model.config)
