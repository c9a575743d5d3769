"""Where MLflow artifacts go, LoggedModel names, and the dashboard's links to MLflow's run and model pages
(kdplatform.analysis.mlflow_links) for a job on a tracking server and on a local store."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from kdplatform.analysis.mlflow_links import mlflow_links, ui_and_hint
from kdplatform.store import db
from kdplatform.store.schema import Checkpoint, Job, Run, StageKind, Status
from kdplatform.tracking import artifact_location, is_server, model_name


def test_artifacts_under_the_workdir_unless_a_server_has_its_own(tmp_path):
    assert (
        artifact_location(f"sqlite:///{tmp_path}/mlflow.db", tmp_path) == (tmp_path / "mlartifacts").as_uri()
    )
    assert artifact_location("postgresql://u@h/mlflow", tmp_path) == (tmp_path / "mlartifacts").as_uri()
    assert artifact_location("http://127.0.0.1:5000", tmp_path) is None and is_server("HTTPS://x")
    assert artifact_location("databricks", tmp_path) is None and not is_server(str(tmp_path))


def test_model_names_have_no_characters_mlflow_refuses():
    assert model_name("train/student/s0/forward_kl/T0.5") == "train-student-s0-forward_kl-T0-5"
    assert model_name("pretrain/code:small") == "pretrain-code-small"


def test_ui_from_a_server_uri_else_the_command_that_serves_the_store():
    assert ui_and_hint("http://mlflow.team:8080/", "/w") == ("http://mlflow.team:8080", "")
    assert ui_and_hint("http://mlflow.team:8080", "/w", "https://proxy/mlflow") == (
        "https://proxy/mlflow",
        "",
    )
    ui, hint = ui_and_hint("sqlite:////w/mlflow.db", "/w")
    assert ui == "http://127.0.0.1:5000" and "mlflow ui --backend-store-uri sqlite:////w/mlflow.db" in hint
    ui, hint = ui_and_hint(None, "/old", "http://127.0.0.1:5055")  # a job recorded before migration 0006
    assert ui == "http://127.0.0.1:5055" and "sqlite:////old/mlflow.db --port 5055" in hint


def test_run_and_model_links_of_a_job(tmp_path):
    engine = db.make_engine(f"duckdb:///{tmp_path / 'k.duckdb'}")
    db.upgrade(engine)
    now = dt.datetime(2026, 1, 1)
    with Session(engine) as s, s.begin():
        job = Job(name="j", spec="{}", spec_hash="h", workdir=str(tmp_path), created_at=now)
        job.mlflow_tracking_uri, job.mlflow_experiment_id = "http://srv:5000", "7"
        s.add(job)
        s.flush()
        for key, mlf in (("train/teacher", "r1"), ("scan/train/teacher", "r2"), ("data", None)):
            s.add(
                Run(
                    job_id=job.id,
                    stage_key=key,
                    kind=StageKind.TRAIN,
                    config="{}",
                    config_hash="h",
                    status=Status.DONE,
                    mlflow_run_id=mlf,
                )
            )
        s.flush()
        s.add(
            Checkpoint(
                run_id=1,
                path="/ck",
                epoch=1,
                step=1,
                tokens=1,
                train_loss=1.0,
                val_loss=1.0,
                val_ppl=2.7,
                is_final=True,
                mlflow_model_id="m-1",
            )
        )
        job_id = job.id
    links = mlflow_links(engine, job_id)
    assert links.ui == "http://srv:5000" and links.hint == ""
    assert links.runs["run_url"].tolist() == [
        "http://srv:5000/#/experiments/7/runs/r1",
        "http://srv:5000/#/experiments/7/runs/r2",
    ]
    urls = [u if isinstance(u, str) else None for u in links.runs["model_url"]]
    assert urls == ["http://srv:5000/#/experiments/7/models/m-1", None]
