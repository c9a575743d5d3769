"""The `train` stage: one model of one role (teacher, baseline or a student) fine-tuned on D, its
checkpoints and lineage stored with it; a teacher or baseline with `train: null` is recorded as given."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
from sqlalchemy import select

from kdplatform.pipeline.context import StageContext
from kdplatform.pipeline.errors import DataError
from kdplatform.pipeline.plan import (
    CLASSIFY_KEY,
    DATA_KEY,
    HARD_DATA_KEY,
    TEACHER_KEY,
    base_key,
)
from kdplatform.pipeline.records import checkpoint_rows, epoch_logger, model_row, register_model
from kdplatform.spec import JobSpec, RoleSpec
from kdplatform.store.schema import Checkpoint, InputKind, Model, Role, Run, RunInput

DISTILLED = (Role.STUDENT, Role.STUDENT_FILTERED, Role.STUDENT_CONVERGED)
"""The roles trained against the teacher's distributions (the hard student learns from its text)."""
AS_IS_BATCH_SIZE = 8
"""Validation rows per forward pass for a `train: null` role (which has no train.batch_size)."""


def role_spec(spec: JobSpec, role: Role) -> RoleSpec:
    return {
        Role.TEACHER: spec.teacher,
        Role.BASELINE: spec.baseline,
        Role.STUDENT: spec.student,
        Role.STUDENT_CONVERGED: spec.student,
        Role.STUDENT_HARD: spec.hard_student,
        Role.STUDENT_FILTERED: spec.filtered_student,
    }[role]


def run(ctx: StageContext) -> None:
    import torch

    from kdplatform.models import load_frozen, load_model
    from kdplatform.train.loop import KDConfig, train

    stage, run_id = ctx.stage, ctx.run_id
    rs = role_spec(ctx.spec, stage.role)
    data_key = HARD_DATA_KEY if stage.role == Role.STUDENT_HARD else DATA_KEY
    ds = ctx.dataset(data_key)
    inputs = [RunInput(run_id=run_id, kind=InputKind.DATASET, dataset_id=ds.id)]
    base, origin = None, ctx.spec.model_of(rs.model)
    if rs.model.base is not None:
        base, b_run, b_ck = _base_checkpoint(ctx, base_key(rs.model.base))
        inputs.append(RunInput(run_id=run_id, kind=InputKind.BASE, input_run_id=b_run, checkpoint_id=b_ck))
    model = load_model(
        rs.model,
        vocab_size=ds.vocab_size,
        max_positions=ctx.spec.data.training_len,  # ds.seq_len is the memorization window
        seed=stage.seed,
        base=base,
        base_revision=origin.revision,
    )
    if model.get_input_embeddings().weight.shape[0] < ds.vocab_size:
        raise ValueError(
            f"{stage.key}: model embedding table ({model.get_input_embeddings().weight.shape[0]}) "
            f"is smaller than the tokenizer's vocabulary ({ds.vocab_size})"
        )
    teacher, kd = None, None
    train_tokens = ctx.tokens("train", data_key)
    if stage.role == Role.STUDENT_FILTERED:
        train_tokens, excluded, source = _exclusion(ctx, train_tokens)
        inputs.append(RunInput(run_id=run_id, kind=InputKind.EXCLUSION, input_run_id=source))
        ctx.echo(f"       D_clean: {len(train_tokens)} examples ({excluded} excluded)")
    if stage.role == Role.STUDENT_HARD:
        _check_hard_data(ctx, train_tokens, model)
    train_tokens = _with_canaries(ctx, data_key, train_tokens)
    cfg, target = rs.train, None
    if stage.role == Role.STUDENT_CONVERGED:
        cfg = cfg.model_copy(update={"epochs": stage.config["max_epochs"]})
        target = ctx.best_val_loss(stage.deps[2])
        ctx.echo(
            f"       trains until validation loss <= {target:.4f} (the baseline's best), "
            f"at most {cfg.epochs} epochs"
        )
    if stage.role in DISTILLED:
        t_run, t_ck = ctx.final_checkpoint(TEACHER_KEY)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        teacher = load_frozen(ctx.checkpoint_dir(TEACHER_KEY), device)  # bf16 on CUDA, logits upcast
        kd = KDConfig(stage.objective, stage.temperature, stage.config.get("alpha", 0.0))
        inputs.append(RunInput(run_id=run_id, kind=InputKind.TEACHER, input_run_id=t_run, checkpoint_id=t_ck))

    out = ctx.checkpoint_dir(stage.key)
    if cfg is None:  # `train: null`: the checkpoint as it is
        ctx.echo("       train: null: the checkpoint is used as it is (no training)")
        res = _as_is(model, ctx.tokens("val"), out)
    else:
        res = train(
            model,
            train_tokens,
            ctx.tokens("val"),
            cfg,
            seed=stage.seed,
            out_dir=out,
            teacher=teacher,
            kd=kd,
            on_epoch=epoch_logger(ctx, cfg.epochs),
            desc=stage.key,
            state_dir=ctx.layout.state_dir(stage.key),
            stop_at_val_loss=target,
            stage_hash=ctx.plan.hashes[stage.key],
        )
    _save_tokenizer(ctx, out)
    if res.discarded_state:
        ctx.echo(f"       starts fresh: {res.discarded_state}")
    model_id = register_model(
        ctx,
        str(out),
        res.final,
        ctx.dataset(),
        {"tokens_per_s": res.tokens_per_s, "final_val_loss": res.final.val_loss}
        | ({} if res.reached_target is None else {"reached_target": float(res.reached_target)}),
    )
    with ctx.session() as s, s.begin():
        m = model_row(s, origin.preset or origin.name, origin.revision, model)
        run = s.get(Run, run_id)
        run.model_id, run.dataset_id = m.id, ds.id
        # every epoch, also those before a resume; the final one names its LoggedModel
        s.add_all(checkpoint_rows(run_id, res.epochs, str(out), model_id))
        s.add_all(inputs)
        ctx.finish(s)
    ctx.echo(
        f"       val loss {res.final.val_loss:.3f}, ppl {res.final.val_ppl:.1f}, "
        f"{res.tokens_per_s:.0f} tok/s"
        + ("" if res.reached_target is None else f", beat the baseline: {res.reached_target}")
    )


def _save_tokenizer(ctx: StageContext, out: Path) -> None:
    """D's tokenizer beside the weights: a checkpoint is then a model another job can name by path (the
    paper's jobs reuse a fine-tuned teacher as it is), and preflight finds its tokenizer there."""
    from accelerate import PartialState

    if PartialState().is_main_process:
        ctx.tokenizer().save_pretrained(out)
    PartialState().wait_for_everyone()


def _as_is(model, val_tokens: np.ndarray, out: Path):
    """`train: null` (the A.6 teacher and baseline are published checkpoints): the weights saved unchanged
    where a trained role's go, so every reader finds them in one place pinned to the revision, and one
    epoch-0 result with the validation loss. No training loss (NaN), no steps or tokens."""
    from accelerate import PartialState

    from kdplatform.train.loop import EpochStats, TrainResult, save_checkpoint
    from kdplatform.train.precision import as_master_weights
    from kdplatform.train.validate import evaluate

    state, start = PartialState(), time.perf_counter()
    model = as_master_weights(model).to(state.device)
    val_loss = evaluate(model, val_tokens, AS_IS_BATCH_SIZE, state.device)
    if state.is_main_process:
        save_checkpoint(model, out)
    state.wait_for_everyone()
    seconds = time.perf_counter() - start
    stats = EpochStats(0, math.nan, val_loss, math.exp(min(val_loss, 50.0)), tokens=0, seconds=seconds)
    return TrainResult(epochs=[stats], seconds=seconds)


def _base_checkpoint(ctx: StageContext, key: str) -> tuple[str, int, int]:
    """The base a model starts from: its checkpoint (cache path, or the hub name standing in), run and
    checkpoint ids; a cached base that was removed since its stage ran is a clear error."""
    b_run, b_ck = ctx.final_checkpoint(key)
    with ctx.session() as s:
        path = s.get(Checkpoint, b_ck).path
    if Path(path).is_absolute() and not Path(path).exists():
        raise DataError(
            f"{ctx.stage.key}: the base of {key} is gone from the cache ({path}); run the job again "
            "(its pretrain stage then pretrains the base again)"
        )
    return path, b_run, b_ck


def _exclusion(ctx: StageContext, tokens: np.ndarray) -> tuple[np.ndarray, int, int | None]:
    """D minus the exclusion set: the classifier's predicted-memorized examples, or ids from a file."""
    from kdplatform.analysis.filtering import clean_mask, stored_exclusion
    from kdplatform.data.examples import Examples
    from kdplatform.preflight import exclusion_ids

    ids = Examples.read(Path(ctx.dataset().path) / "train.parquet").example_ids
    exclude = ctx.stage.config["exclude"]
    if exclude == "classifier":
        source = ctx.run_row(CLASSIFY_KEY).id
        excluded = stored_exclusion(ctx.engine, ctx.job_id, run_id=source)
    else:
        source = None
        excluded = exclusion_ids(exclude)  # read as preflight checked it
    keep = clean_mask(ids, excluded)
    return tokens[keep], int((~keep).sum()), source


def _with_canaries(ctx: StageContext, data_key: str, tokens: np.ndarray) -> np.ndarray:
    """The training rows with each canary of D repeated its `copies` times (a filtered student's too: the
    classifier predicts over natural examples only); for the hard student, the teacher's continuations
    of the canaries' prefixes, which its data stage generated with the same ids."""
    from kdplatform.data.canaries import CANARY_FILE, Canaries, with_copies
    from kdplatform.data.examples import Examples

    path = Path(ctx.dataset().path) / CANARY_FILE
    if not path.exists():
        return tokens
    canaries = Canaries.read(path)
    windows = canaries.examples
    if data_key != DATA_KEY:
        windows = Examples.read(Path(ctx.dataset(data_key).path) / CANARY_FILE)
        if not np.array_equal(windows.example_ids, canaries.examples.example_ids):
            raise DataError(f"{ctx.stage.key}: {data_key}'s canaries are not D's")
    out = with_copies(tokens, windows, canaries.copies)
    ctx.echo(f"       {len(canaries)} canaries, {len(out) - len(tokens)} training rows with their copies")
    return out


def _check_hard_data(ctx: StageContext, tokens: np.ndarray, student) -> None:
    """D_hard's ids must fit the student's embedding: a clear error naming both widths, before training."""
    from kdplatform.train.hard_data import check_hard_data

    with ctx.session() as s:
        width = s.scalar(
            select(Model.logit_width)
            .join(Run, Run.model_id == Model.id)
            .where(Run.id == ctx.run_row(TEACHER_KEY).id)
        )
    try:
        check_hard_data(tokens, student, int(width))
    except ValueError as e:
        raise DataError(f"{ctx.stage.key}: {e}") from None
