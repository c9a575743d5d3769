"""MLflow's own lineage of a job, read back through MlflowClient (and, on a real `mlflow server`, its REST
API): dataset → teacher → student → scan as LoggedModels, dataset inputs and model inputs, the same edges
as the database's run_inputs, and the artifacts in the workdir (local store) or the server's store."""

from __future__ import annotations

import json
import urllib.request

import mlflow
from mlflow.entities import LoggedModelStatus
from sqlalchemy import select
from sqlalchemy.orm import Session

from kdplatform.pipeline import JobRunner
from kdplatform.pipeline.mlflow_inputs import db_edges
from kdplatform.spec import load_spec
from kdplatform.store.schema import Checkpoint, InputKind, Role, Run, RunInput, StageKind, Status

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
    each scan's (and the generate run's teacher); MLflow's edges equal the database's. Returns the runs
    by stage key."""
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
            if r.kind in (StageKind.TRAIN, StageKind.SCAN):
                contexts = {t.value for d in mlf.inputs.dataset_inputs for t in d.tags}
                assert contexts == {"training" if r.kind == StageKind.TRAIN else "scan"}, key
            if r.kind == StageKind.TRAIN and r.role in DISTILLED:
                assert teacher in inputs, key
            if r.kind in (StageKind.SCAN, StageKind.GENERATE):
                source = s.scalar(
                    select(RunInput.input_run_id).where(
                        RunInput.run_id == r.id, RunInput.kind.in_([InputKind.MODEL, InputKind.TEACHER])
                    )
                )
                assert final_model(s, source) in inputs, key
        assert db_edges(s, runner.job_id) == {
            r.mlflow_run_id: runner.tracker.edges(r.mlflow_run_id) for r in runs.values()
        }
    return runs


def test_local_store_lineage_and_artifacts_in_the_workdir(smoke):
    check_chain(smoke)
    exp = mlflow.MlflowClient(smoke.tracking_uri).get_experiment(smoke.tracker.experiment_id)
    assert exp.artifact_location == (smoke.workdir / "mlartifacts").as_uri()


def test_lineage_on_a_real_mlflow_server(mlflow_server, tmp_path, repo_root):
    runner = JobRunner(
        load_spec(repo_root / "jobs" / "micro.yaml"),
        tmp_path,
        tracking_uri=mlflow_server,
        echo=lambda _: None,
    )
    runner.run()
    runs = check_chain(runner)
    exp = mlflow.MlflowClient(mlflow_server).get_experiment(runner.tracker.experiment_id)
    assert exp.artifact_location.startswith("mlflow-artifacts:"), "the server's own artifact store"
    student = next(r for r in runs.values() if r.kind == StageKind.TRAIN and r.role == Role.STUDENT)
    with urllib.request.urlopen(
        f"{mlflow_server}/api/2.0/mlflow/runs/get?run_id={student.mlflow_run_id}"
    ) as r:
        got = json.load(r)["run"]
    req = urllib.request.Request(
        f"{mlflow_server}/api/2.0/mlflow/logged-models/search",
        data=json.dumps({"experiment_ids": [runner.tracker.experiment_id]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req) as r:
        found = json.load(r)["models"]
    print(json.dumps({"runs/get": got, "logged-models/search": found}, indent=1))
    with Session(runner.engine) as s:
        teacher = final_model(s, runs["train/teacher"].id)
        own = final_model(s, student.id)
    assert teacher in {m["model_id"] for m in got["inputs"]["model_inputs"]}
    assert [m["model_id"] for m in got["outputs"]["model_outputs"]] == [own]
    assert got["inputs"]["dataset_inputs"] and {m["info"]["model_id"] for m in found} >= {teacher, own}
