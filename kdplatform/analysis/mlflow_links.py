"""Links from the dashboard to MLflow's own pages: each run's, and each trained model's LoggedModel.

The UI is the job's tracking server when its tracking URI is http(s) (jobs.mlflow_tracking_uri), else
the URL the dashboard was given (`--mlflow-ui`, $KDP_MLFLOW_UI) or `mlflow ui`'s default, with the command
that serves the job's store there.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import pandas as pd

from kdplatform.analysis.reading import Db, read

LOCAL_UI = "http://127.0.0.1:5000"
"""Where `mlflow ui` serves a store by default."""


@dataclass(frozen=True)
class MlflowLinks:
    """The UI the links open, how to serve it (empty for a server), and one row per run with an MLflow
    run: run_id, stage_key, mlflow_run_id, run_url, model_id, model_url (None: no LoggedModel)."""

    ui: str
    hint: str
    runs: pd.DataFrame


def is_http(uri: str | None) -> bool:
    return bool(uri) and uri.split(":", 1)[0].lower() in ("http", "https")


def ui_and_hint(tracking_uri: str | None, workdir: str | None, ui: str | None = None) -> tuple[str, str]:
    """The MLflow UI for a job's store (`ui` overrides it) and, for a store no server serves, the command
    that serves it there (a job recorded before migration 0006 has no URI: the workdir's sqlite store)."""
    if is_http(tracking_uri):
        return (ui or tracking_uri).rstrip("/"), ""
    uri = tracking_uri or f"sqlite:///{workdir}/mlflow.db"
    ui = (ui or LOCAL_UI).rstrip("/")
    port = urlsplit(ui).port or 5000
    return ui, f"`mlflow ui --backend-store-uri {uri} --port {port}` serves this job's store at {ui}"


def run_url(ui: str, run_id: str, experiment_id: str | None = None) -> str:
    if experiment_id:
        return f"{ui}/#/experiments/{experiment_id}/runs/{run_id}"
    return f"{ui}/#/runs/{run_id}"


def model_url(ui: str, experiment_id: str, model_id: str) -> str:
    return f"{ui}/#/experiments/{experiment_id}/models/{model_id}"


def mlflow_links(db: Db, job_id: int, ui: str | None = None) -> MlflowLinks:
    """The job's MLflow run and model links; `ui` overrides the UI of a store no server serves."""
    job = read(
        db, "SELECT workdir, mlflow_tracking_uri, mlflow_experiment_id FROM jobs WHERE id = :j", j=job_id
    )
    workdir, uri, exp = (None, None, None) if job.empty else job.iloc[0].tolist()
    base, hint = ui_and_hint(uri if isinstance(uri, str) else None, workdir, ui)
    exp = exp if isinstance(exp, str) and exp else None
    df = read(
        db,
        """
        SELECT r.id AS run_id, r.stage_key, r.mlflow_run_id, c.mlflow_model_id AS model_id
        FROM runs r LEFT JOIN checkpoints c ON c.run_id = r.id AND c.is_final
        WHERE r.job_id = :j AND r.mlflow_run_id IS NOT NULL
        ORDER BY r.id
        """,
        j=job_id,
    )
    df["run_url"] = [run_url(base, m, exp) for m in df["mlflow_run_id"]]
    df["model_url"] = [
        model_url(base, exp, m) if exp and isinstance(m, str) and m else None for m in df["model_id"]
    ]
    return MlflowLinks(base, hint, df)
