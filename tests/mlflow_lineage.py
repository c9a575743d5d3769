"""The MLflow lineage check the integration tests share: what MLflow holds of a job that ran, read back
through MlflowClient and compared with the database's rows."""

from __future__ import annotations

import mlflow
from mlflow.entities import LoggedModelStatus
from sqlalchemy import select
from sqlalchemy.orm import Session

from kdplatform.pipeline import JobRunner
from kdplatform.pipeline.mlflow_inputs import MODEL_INPUTS, db_edges
from kdplatform.store.schema import Checkpoint, Role, Run, RunInput, StageKind, Status

DISTILLED = {Role.STUDENT, Role.STUDENT_CONVERGED, Role.STUDENT_FILTERED}
"""The students trained on the teacher's distributions (the hard student learns from D_hard, whose
generate run has the teacher among its model inputs)."""


def final_model(s: Session, run_id: int) -> str:
    return s.scalar(
        select(Checkpoint.mlflow_model_id).where(Checkpoint.run_id == run_id, Checkpoint.is_final)
    )


def check_chain(runner: JobRunner) -> dict[str, Run]:
    """Every trained model a READY LoggedModel pointing at its checkpoint; dataset inputs on every train
    and scan run; the teacher's model among each distilled student's inputs, the scanned model among
    each scan's, the model of every model edge of the database among its run's; MLflow's edges equal the
    database's. Returns the runs by stage key."""
    client = mlflow.MlflowClient(runner.tracking_uri)
    with Session(runner.engine) as s:
        runs = {r.stage_key: r for r in s.scalars(select(Run).where(Run.job_id == runner.job_id))}
        assert all(r.status == Status.DONE for r in runs.values())
        models = {
            k: final_model(s, r.id)
            for k, r in runs.items()
            if r.kind in (StageKind.TRAIN, StageKind.PRETRAIN)
        }
        teacher = models["train/teacher"]
        logged = client.search_logged_models([runner.tracker.experiment_id], max_results=1000)
        assert {m.model_id for m in logged} >= set(models.values()) and all(models.values())
        for key, mid in models.items():
            m = client.get_logged_model(mid)
            ck = s.scalar(select(Checkpoint).where(Checkpoint.mlflow_model_id == mid))
            assert m.status == LoggedModelStatus.READY
            assert m.source_run_id == runs[key].mlflow_run_id and m.tags["kdp.checkpoint"] == ck.path
            assert m.tags["mlflow.model.isExternal"] == "true" and m.params["stage_key"] == key
            val = next(x for x in m.metrics if x.key == "val_loss")
            assert abs(val.value - ck.val_loss) < 1e-9 and val.dataset_digest
        for key, r in runs.items():
            mlf = client.get_run(r.mlflow_run_id)
            inputs = {i.model_id for i in mlf.inputs.model_inputs}
            assert len(inputs) == len(mlf.inputs.model_inputs), f"{key}: a model input logged twice"
            if r.kind in (StageKind.TRAIN, StageKind.SCAN):
                contexts = {t.value for d in mlf.inputs.dataset_inputs for t in d.tags}
                assert contexts == {"training" if r.kind == StageKind.TRAIN else "scan"}, key
            if r.kind == StageKind.TRAIN and r.role in DISTILLED:
                assert teacher in inputs, key
            if r.kind == StageKind.SCAN:
                assert models[r.stage_key.removeprefix("scan/")] in inputs, key
            edges = select(RunInput.input_run_id).where(
                RunInput.run_id == r.id, RunInput.kind.in_(MODEL_INPUTS)
            )
            for source in s.scalars(edges):  # a fine-tune's base, the teacher of generate, a scan's reference
                assert final_model(s, source) in inputs, key
        assert db_edges(s, runner.job_id) == {
            r.mlflow_run_id: runner.tracker.edges(r.mlflow_run_id) for r in runs.values()
        }
    return runs
