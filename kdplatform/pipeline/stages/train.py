"""The `train` stage: one model of one role (teacher, baseline or a student) fine-tuned on D, its
checkpoints and lineage stored with it; a teacher or baseline with `train: null` is recorded as given."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
from sqlalchemy import select

from kdplatform.pipeline.context import StageContext
from kdplatform.pipeline.errors import DataError, kill_point
from kdplatform.pipeline.plan import CLASSIFY_KEY, DATA_KEY, HARD_DATA_KEY, TEACHER_KEY, exclusion_path
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

    from kdplatform.models import load_frozen, load_model, logit_width, n_params
    from kdplatform.train.loop import KDConfig, train

    stage, run_id, mlflow_id = ctx.stage, ctx.run_id, ctx.mlflow_id
    rs = role_spec(ctx.spec, stage.role)
    data_key = HARD_DATA_KEY if stage.role == Role.STUDENT_HARD else DATA_KEY
    ds = ctx.dataset(data_key)
    max_positions = ctx.spec.data.training_len  # ds.seq_len is the memorization window, maybe shorter
    model = load_model(rs.model, vocab_size=ds.vocab_size, max_positions=max_positions, seed=stage.seed)
    if model.get_input_embeddings().weight.shape[0] < ds.vocab_size:
        raise ValueError(
            f"{stage.key}: model embedding table ({model.get_input_embeddings().weight.shape[0]}) "
            f"is smaller than the tokenizer's vocabulary ({ds.vocab_size})"
        )
    teacher, kd = None, None
    inputs = [RunInput(run_id=run_id, kind=InputKind.DATASET, dataset_id=ds.id)]
    train_tokens = ctx.tokens("train", data_key)
    if stage.role == Role.STUDENT_FILTERED:
        train_tokens, excluded, source = _exclusion(ctx, train_tokens)
        inputs.append(RunInput(run_id=run_id, kind=InputKind.EXCLUSION, input_run_id=source))
        ctx.echo(f"       D_clean: {len(train_tokens)} examples ({excluded} excluded)")
    if stage.role == Role.STUDENT_HARD:
        _check_hard_data(ctx, train_tokens, model)
    cfg, target = rs.train, None
    if stage.role == Role.STUDENT_CONVERGED:
        cfg = cfg.model_copy(update={"epochs": stage.config["max_epochs"]})
        target = ctx.final_val_loss(stage.deps[2])
        ctx.echo(
            f"       trains until validation loss <= {target:.4f} (the baseline's), "
            f"at most {cfg.epochs} epochs"
        )
    if stage.role in DISTILLED:
        t_run, t_ck = ctx.final_checkpoint(TEACHER_KEY)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        teacher = load_frozen(ctx.checkpoint_dir(TEACHER_KEY), device)  # bf16 on CUDA, logits upcast
        kd = KDConfig(stage.objective, stage.temperature, stage.config.get("alpha", 0.0))
        inputs.append(RunInput(run_id=run_id, kind=InputKind.TEACHER, input_run_id=t_run, checkpoint_id=t_ck))

    def on_epoch(e) -> None:
        kill_point(f"epoch:{stage.key}:{e.epoch}")
        ctx.echo(
            f"       epoch {e.epoch}/{cfg.epochs}: train {e.train_loss:.3f}, val {e.val_loss:.3f} "
            f"({e.seconds:.1f} s)"
        )
        ctx.tracker.log_metrics(
            mlflow_id,
            {"train_loss": e.train_loss, "val_loss": e.val_loss, "val_ppl": e.val_ppl, "tokens": e.tokens},
            step=e.epoch,
        )

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
            on_epoch=on_epoch,
            desc=stage.key,
            state_dir=ctx.layout.state_dir(stage.key),
            stop_at_val_loss=target,
            stage_hash=ctx.plan.hashes[stage.key],
        )
    if res.discarded_state:
        ctx.echo(f"       starts fresh: {res.discarded_state}")
    ctx.tracker.log_metrics(
        mlflow_id,
        {"tokens_per_s": res.tokens_per_s, "final_val_loss": res.final.val_loss}
        | ({} if res.reached_target is None else {"reached_target": float(res.reached_target)}),
    )
    with ctx.session() as s, s.begin():
        name, config = rs.model.preset or rs.model.name, model.config.to_json_string()
        m = s.scalar(select(Model).where(Model.name == name, Model.config == config))
        if m is None:
            m = Model(
                name=name,
                revision=rs.model.revision,
                family=model.config.model_type,
                n_params=n_params(model),
                logit_width=logit_width(model),
                config=config,
            )
            s.add(m)
            s.flush()
        run = s.get(Run, run_id)
        run.model_id, run.dataset_id = m.id, ds.id
        epochs = res.epochs  # every epoch, also those before a resume
        for e in epochs:
            s.add(
                Checkpoint(
                    run_id=run_id,
                    path=str(out) if e is epochs[-1] else None,
                    epoch=e.epoch,
                    step=e.step,
                    tokens=e.tokens,
                    train_loss=e.train_loss,
                    val_loss=e.val_loss,
                    val_ppl=e.val_ppl,
                    is_final=e is epochs[-1],
                )
            )
        s.add_all(inputs)
        ctx.finish(s)
    ctx.echo(
        f"       val loss {res.final.val_loss:.3f}, ppl {res.final.val_ppl:.1f}, "
        f"{res.tokens_per_s:.0f} tok/s"
        + ("" if res.reached_target is None else f", beat the baseline: {res.reached_target}")
    )


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


def _exclusion(ctx: StageContext, tokens: np.ndarray) -> tuple[np.ndarray, int, int | None]:
    """D minus the exclusion set: the classifier's predicted-memorized examples, or ids from a file."""
    from kdplatform.analysis.filtering import clean_mask, stored_exclusion
    from kdplatform.data.examples import Examples

    ids = Examples.read(Path(ctx.dataset().path) / "train.parquet").example_ids
    exclude = ctx.stage.config["exclude"]
    if exclude == "classifier":
        source = ctx.run_row(CLASSIFY_KEY).id
        excluded = stored_exclusion(ctx.engine, ctx.job_id, run_id=source)
    else:
        source = None
        path = exclusion_path(exclude)
        try:
            excluded = np.loadtxt(path, dtype=np.int64, ndmin=1)
        except (OSError, ValueError) as e:
            raise DataError(f"filtered_student.exclude: cannot read example ids from {path}: {e}") from None
    keep = clean_mask(ids, excluded)
    return tokens[keep], int((~keep).sum()), source


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
