"""A run's `run_inputs` rows as MLflow inputs, so MLflow's lineage is the database's: each dataset edge a
dataset input (by digest, with the stage's context), each model edge (teacher, base, scanned model, scan
reference) the LoggedModel of the input run's final checkpoint (`checkpoints.mlflow_model_id`).

The runner logs them once a stage's rows are committed, read back from the database (`log_run_inputs`),
so the two cannot disagree; `db_edges` and tracking.Tracker.edges give both sides for a check. Edges
from one run to another that has no model (a filtered student's exclusion source, the classifier's scans)
stay `kdp.input.*` tags only: MLflow has no run-to-run input.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from kdplatform.store.schema import Checkpoint, Dataset, InputKind, Run, RunInput, StageKind
from kdplatform.tracking import DIGEST_LEN, DatasetRef, Tracker

MODEL_INPUTS = (InputKind.TEACHER, InputKind.BASE, InputKind.MODEL, InputKind.REFERENCE)
"""The run_inputs kinds whose input is a trained model: logged as its LoggedModel."""
CONTEXTS: dict[str, str] = {
    StageKind.DATA: "training",
    StageKind.PRETRAIN: "training",
    StageKind.TRAIN: "training",
    StageKind.GENERATE: "generation",
    StageKind.SCAN: "scan",
    StageKind.CLASSIFY: "classifier",
}
"""The MLflow dataset context of a stage kind's dataset inputs."""


def model_id(s: Session, run_id: int, checkpoint_id: int | None = None) -> str | None:
    """The LoggedModel id of a checkpoint (default: the run's final one); None if it has none."""
    if checkpoint_id is not None:
        return s.scalar(select(Checkpoint.mlflow_model_id).where(Checkpoint.id == checkpoint_id))
    return s.scalar(
        select(Checkpoint.mlflow_model_id).where(Checkpoint.run_id == run_id, Checkpoint.is_final)
    )


def inputs(s: Session, run_id: int) -> tuple[list[DatasetRef], list[str]]:
    """The datasets and LoggedModel ids a run's `run_inputs` rows name, in row order."""
    datasets, models = [], []
    for edge in s.scalars(select(RunInput).where(RunInput.run_id == run_id).order_by(RunInput.id)):
        if edge.kind == InputKind.DATASET and edge.dataset_id is not None:
            ds = s.get(Dataset, edge.dataset_id)
            datasets.append(DatasetRef(ds.name, ds.digest, ds.path))
        elif edge.kind in MODEL_INPUTS and edge.input_run_id is not None:
            mid = model_id(s, edge.input_run_id, edge.checkpoint_id)
            if mid is not None:
                models.append(mid)
    return datasets, models


def log_run_inputs(tracker: Tracker, s: Session, run_id: int, mlflow_id: str) -> None:
    """Log a committed run's inputs to its MLflow run."""
    datasets, models = inputs(s, run_id)
    kind = s.get(Run, run_id).kind
    if datasets or models:
        tracker.log_inputs(mlflow_id, datasets, CONTEXTS.get(kind, "training"), models)


def db_edges(s: Session, job_id: int) -> dict[str, set[tuple[str, str]]]:
    """Every run of a job with an MLflow run: its inputs as the database holds them, in the form
    Tracker.edges reads them from MLflow (("dataset", digest), ("model", LoggedModel id))."""
    out = {}
    for run in s.scalars(select(Run).where(Run.job_id == job_id, Run.mlflow_run_id.is_not(None))):
        datasets, models = inputs(s, run.id)
        out[run.mlflow_run_id] = {("dataset", d.digest[:DIGEST_LEN]) for d in datasets} | {
            ("model", m) for m in models
        }
    return out
