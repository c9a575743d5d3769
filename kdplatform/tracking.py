"""The one module that talks to MLflow: a parent run per job, a nested run per stage, lineage tags.

MLflow holds pointers and metrics; per-example rows live in the database. Datasets are logged by digest
and source, never row by row.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kdplatform.mlflow_store import ensure_store
from kdplatform.spec import SpecError

log = logging.getLogger(__name__)


def default_tracking_uri(workdir: Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(workdir).resolve() / 'mlflow.db'}"


class Tracker:
    """MLflow runs for one job. Stage runs are nested under the job's run and tagged with lineage."""

    def __init__(self, uri: str, experiment: str):
        import mlflow

        for name in ("alembic", "mlflow"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._mlflow = mlflow
        self.uri = uri
        ensure_store(uri)
        mlflow.set_tracking_uri(uri)
        self.client = mlflow.MlflowClient(uri)
        exp = self.client.get_experiment_by_name(experiment)
        self.experiment_id = exp.experiment_id if exp else self.client.create_experiment(experiment)

    def job_run(self, name: str, existing_id: str | None, params: Mapping[str, Any]) -> str:
        """The job's parent run: reopened when the job was run before, so reruns stay in one tree."""
        if existing_id:
            try:
                self.client.get_run(existing_id)
                return existing_id
            except Exception:
                log.warning("MLflow run %s not found in %s; starting a new job run", existing_id, self.uri)
        run = self.client.create_run(self.experiment_id, run_name=name, tags={"kdp.kind": "job"})
        self.client.log_batch(run.info.run_id, params=_params(params))
        self.client.set_terminated(run.info.run_id, "FINISHED")
        return run.info.run_id

    @contextmanager
    def stage(
        self, parent_id: str, name: str, params: Mapping[str, Any], tags: Mapping[str, str]
    ) -> Iterator[str]:
        run = self.client.create_run(
            self.experiment_id, run_name=name, tags={"mlflow.parentRunId": parent_id, **tags}
        )
        run_id = run.info.run_id
        self.client.log_batch(run_id, params=_params(params))
        try:
            yield run_id
        except BaseException:
            self.client.set_terminated(run_id, "FAILED")
            raise
        self.client.set_terminated(run_id, "FINISHED")

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric
        from mlflow.utils.time import get_current_time_millis

        now = get_current_time_millis()
        self.client.log_batch(
            run_id, metrics=[Metric(k, float(v), now, step or 0) for k, v in metrics.items()]
        )

    def log_dataset(self, run_id: str, name: str, path: str, digest: str, context: str = "training") -> None:
        from mlflow.data.meta_dataset import MetaDataset
        from mlflow.data.sources import LocalArtifactDatasetSource
        from mlflow.entities import DatasetInput, InputTag

        ds = MetaDataset(LocalArtifactDatasetSource(path), name=name, digest=digest[:36])
        tag = InputTag(key="mlflow.data.context", value=context)
        self.client.log_inputs(run_id, datasets=[DatasetInput(ds._to_mlflow_entity(), tags=[tag])])


def _params(params: Mapping[str, Any]):
    from mlflow.entities import Param

    return [Param(k, str(v)[:6000]) for k, v in params.items()]


def check_uri(uri: str) -> None:
    """MLflow can open a store at `uri` (its scheme is one MLflow's tracking and model registries know):
    SpecError naming the URI and the schemes, before the database is written."""
    try:
        from mlflow.tracking._model_registry.utils import _get_store_registry
        from mlflow.tracking._tracking_service.utils import _tracking_store_registry
    except ImportError:  # another MLflow layout: MLflow itself refuses the URI later
        return
    for registry in (_tracking_store_registry, _get_store_registry()):
        try:
            registry.get_store_builder(uri)
        except Exception:
            schemes = ", ".join(sorted(s for s in registry._registry if s))
            raise SpecError(
                f"mlflow_tracking_uri {uri!r}: not an MLflow tracking URI; use a path, or a URI of scheme "
                f"{schemes} (or unset it and MLFLOW_TRACKING_URI for the workdir's sqlite store)"
            ) from None
