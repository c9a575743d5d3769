"""What a stage may use, handed to it by the runner: the spec, the plan, the workdir layout, the job's
rows and the tracker. Stages import this module, never the runner, so the runner can import every stage
without closing an import cycle.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from kdplatform.pipeline.edges import reattach_checkpoint_edges
from kdplatform.pipeline.layout import Layout
from kdplatform.pipeline.plan import DATA_KEY, Plan, Stage
from kdplatform.spec import JobSpec
from kdplatform.store.schema import Checkpoint, Dataset, InputKind, Run, RunInput, Status

if TYPE_CHECKING:
    import numpy as np

    from kdplatform.tracking import Tracker


def now() -> dt.datetime:
    """UTC without a zone: what the `runs` timestamps hold."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass
class JobView:
    """One job's rows as its stages read them: the runs, datasets and final checkpoints of their inputs."""

    engine: Engine
    job_id: int
    layout: Layout

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def run_row(self, key: str) -> Run | None:
        with self.session() as s:
            return s.scalar(select(Run).where(Run.job_id == self.job_id, Run.stage_key == key))

    def dataset(self, key: str = DATA_KEY) -> Dataset:
        """The dataset a stage produced: `data` (D) or `hard_data` (the teacher's generations)."""
        run = self.run_row(key)
        with self.session() as s:
            return s.get(Dataset, run.dataset_id)

    def final_checkpoint(self, train_key: str) -> tuple[int, int]:
        """(run id, checkpoint id) of a training stage's final checkpoint."""
        run = self.run_row(train_key)
        with self.session() as s:
            ck = s.scalar(select(Checkpoint).where(Checkpoint.run_id == run.id, Checkpoint.is_final))
            return run.id, ck.id

    def model_id(self, train_key: str) -> str | None:
        """The MLflow LoggedModel of a training stage's final checkpoint (None: registered before 0006)."""
        _, ck = self.final_checkpoint(train_key)
        with self.session() as s:
            return s.get(Checkpoint, ck).mlflow_model_id

    def best_val_loss(self, train_key: str) -> float:
        """The lowest validation loss of a training run over its epochs: the paper's stopping rule trains
        a student until it outperforms the baseline, and a baseline that overfits is outperformed only by
        beating its best epoch, not its (worse) last one."""
        run = self.run_row(train_key)
        with self.session() as s:
            return s.scalar(select(func.min(Checkpoint.val_loss)).where(Checkpoint.run_id == run.id))

    def checkpoint_dir(self, train_key: str) -> Path:
        return self.layout.checkpoint_dir(train_key)

    def tokens(self, split: str, key: str = DATA_KEY) -> np.ndarray:
        from kdplatform.data.examples import Examples

        return Examples.read(Path(self.dataset(key).path) / f"{split}.parquet").tokens

    def tokenizer(self):
        from kdplatform.data.examples import load_tokenizer

        return load_tokenizer(Path(self.dataset().path) / "tokenizer")


def finish(s: Session, run_id: int) -> None:
    """Mark a run done, in the transaction that writes its rows: both commit or neither does. Edges of
    other runs detached from its checkpoints when it started again name its new final one."""
    run = s.get(Run, run_id)
    run.status, run.finished_at = Status.DONE, now()
    run.seconds = (run.finished_at - run.started_at).total_seconds()
    s.flush()
    reattach_checkpoint_edges(s.connection(), run_id)


@dataclass
class StageContext(JobView):
    """Everything one stage's function gets: its stage, its run, and the job around it."""

    spec: JobSpec
    plan: Plan
    stage: Stage
    run_id: int
    mlflow_id: str
    tracker: Tracker
    echo: Callable[[str], None]

    def finish(self, s: Session) -> None:
        finish(s, self.run_id)

    def ran_model_on(self, s: Session, dataset_id: int, model_run: int, checkpoint_id: int | None) -> None:
        """The lineage of a stage that runs one model over one dataset (scan, canary, approximate, a
        base's loss scan): its dataset and model edges, and the dataset on its runs row."""
        s.add(RunInput(run_id=self.run_id, kind=InputKind.DATASET, dataset_id=dataset_id))
        s.add(
            RunInput(
                run_id=self.run_id, kind=InputKind.MODEL, input_run_id=model_run, checkpoint_id=checkpoint_id
            )
        )
        s.get(Run, self.run_id).dataset_id = dataset_id
