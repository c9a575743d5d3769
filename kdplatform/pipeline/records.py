"""Rows and progress lines every training stage (`pretrain`, `train`) writes the same way: the `models`
row of a loaded model, a `checkpoints` row per epoch, the per-epoch echo and MLflow metrics, and the
final checkpoint as an MLflow LoggedModel."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from kdplatform.pipeline.context import StageContext
from kdplatform.pipeline.errors import kill_point
from kdplatform.store.schema import Checkpoint, Dataset, Model
from kdplatform.tracking import DatasetRef

if TYPE_CHECKING:
    from kdplatform.train.loop import EpochStats


def model_row(s: Session, name: str, revision: str | None, model) -> Model:
    """The `models` row of this architecture (name and config): found, or added."""
    from kdplatform.models import logit_width, n_params

    config = model.config.to_json_string()
    m = s.scalar(select(Model).where(Model.name == name, Model.config == config))
    if m is None:
        m = Model(
            name=name,
            revision=revision,
            family=model.config.model_type,
            n_params=n_params(model),
            logit_width=logit_width(model),
            config=config,
        )
        s.add(m)
        s.flush()
    return m


def checkpoint_rows(
    run_id: int, epochs: Sequence[EpochStats], path: str, model_id: str | None = None
) -> list[Checkpoint]:
    """One row per epoch; the last is the final checkpoint, the only one with a path (and LoggedModel)."""
    return [
        Checkpoint(
            run_id=run_id,
            path=path if e is epochs[-1] else None,
            mlflow_model_id=model_id if e is epochs[-1] else None,
            epoch=e.epoch,
            step=e.step,
            tokens=e.tokens,
            train_loss=e.train_loss,
            val_loss=e.val_loss,
            val_ppl=e.val_ppl,
            is_final=e is epochs[-1],
        )
        for e in epochs
    ]


def epoch_logger(ctx: StageContext, epochs: int) -> Callable[[EpochStats], None]:
    """The `on_epoch` of train(): a kill point for the crash tests, a progress line, MLflow metrics."""
    key = ctx.stage.key

    def on_epoch(e: EpochStats) -> None:
        kill_point(f"epoch:{key}:{e.epoch}")
        ctx.echo(
            f"       epoch {e.epoch}/{epochs}: train {e.train_loss:.3f}, val {e.val_loss:.3f} "
            f"({e.seconds:.1f} s)"
        )
        ctx.tracker.log_metrics(
            ctx.mlflow_id,
            {"train_loss": e.train_loss, "val_loss": e.val_loss, "val_ppl": e.val_ppl, "tokens": e.tokens},
            step=e.epoch,
        )

    return on_epoch


def register_model(
    ctx: StageContext, path: str, final: EpochStats, val_data: Dataset, metrics: dict[str, float]
) -> str:
    """The final checkpoint at `path` as an MLflow LoggedModel of the stage's run (by reference: nothing
    is copied), with the stage's params, and its final epoch's and `metrics` linked to the model and to
    `val_data` (the dataset whose validation split they were measured on). Returns the model id."""
    st = ctx.stage
    return ctx.tracker.log_model(
        ctx.mlflow_id,
        st.key,
        path,
        params=st.config | {"config_hash": ctx.plan.hashes[st.key], "stage_key": st.key},
        metrics={"train_loss": final.train_loss, "val_loss": final.val_loss, "val_ppl": final.val_ppl}
        | {"tokens": final.tokens, "epoch": final.epoch}
        | metrics,
        dataset=DatasetRef(val_data.name, val_data.digest, val_data.path),
        tags={"kdp.stage_key": st.key, "kdp.role": st.role or "", "kdp.run_id": str(ctx.run_id)},
        step=final.epoch,
    )
