"""MLflow's own lineage of a job, read back through MlflowClient (and, on a real `mlflow server`, its REST
API): dataset → teacher → student → scan as LoggedModels, dataset inputs and model inputs, the same edges
as the database's run_inputs, and the artifacts in the workdir (local store) or the server's store."""

from __future__ import annotations

import json
import urllib.request

import mlflow
from mlflow_lineage import check_chain, final_model
from sqlalchemy.orm import Session

from kdplatform.pipeline import JobRunner
from kdplatform.spec import load_spec
from kdplatform.store.schema import Role, StageKind


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
