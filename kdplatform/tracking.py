"""The one module that talks to MLflow: a parent run per job, a nested run per stage, lineage tags,
each trained checkpoint as an external LoggedModel, and every run's inputs (datasets and models).

MLflow holds pointers and metrics; per-example rows live in the database. Datasets are logged by digest
and source, never row by row; a checkpoint is logged by reference to its directory, never copied.
"""

from __future__ import annotations

import logging
import math
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kdplatform.mlflow_store import ensure_store
from kdplatform.spec import SpecError

log = logging.getLogger(__name__)


GENERATED = "generated"
"""The dataset context of a dataset a run made (MLflow has no dataset outputs): D_hard on `generate`."""
DIGEST_LEN = 36
"""MLflow's dataset digests are at most 36 characters: the leading part of the database's digest."""


def default_tracking_uri(workdir: Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(workdir).resolve() / 'mlflow.db'}"


def is_server(uri: str) -> bool:
    """A tracking server (which has its own artifact store), not a store this process opens itself."""
    return uri.split(":", 1)[0].lower() in ("http", "https", "databricks")


def artifact_location(uri: str, workdir: Path | None) -> str | None:
    """Where a new experiment keeps its artifacts: `<workdir>/mlartifacts` for a store opened here (else
    MLflow's default is `./mlruns` of whatever directory the command ran in), the server's own store."""
    if workdir is None or is_server(uri):
        return None
    return (Path(workdir).resolve() / "mlartifacts").as_uri()


@dataclass(frozen=True)
class DatasetRef:
    """A dataset as MLflow sees it: the database row's name, content digest and directory."""

    name: str
    digest: str
    source: str


class Tracker:
    """MLflow runs for one job. Stage runs are nested under the job's run and tagged with lineage."""

    def __init__(self, uri: str, experiment: str, workdir: Path | None = None):
        import mlflow

        for name in ("alembic", "mlflow"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._mlflow = mlflow
        self.uri = uri
        ensure_store(uri)
        mlflow.set_tracking_uri(uri)
        self.client = mlflow.MlflowClient(uri)
        artifacts = artifact_location(uri, workdir)
        exp = self.client.get_experiment_by_name(experiment)
        self.experiment_id = (
            exp.experiment_id if exp else self.client.create_experiment(experiment, artifacts)
        )

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

    def log_metrics(
        self,
        run_id: str,
        metrics: Mapping[str, float],
        step: int | None = None,
        *,
        model_id: str | None = None,
        dataset: DatasetRef | None = None,
    ) -> None:
        """Metrics of a run; with `model_id` also the LoggedModel's (non-finite ones are left out there),
        measured on `dataset`."""
        from mlflow.entities import Metric
        from mlflow.utils.time import get_current_time_millis

        now = get_current_time_millis()
        link = {}
        if dataset is not None:
            link = {"dataset_name": dataset.name, "dataset_digest": dataset.digest[:DIGEST_LEN]}
        values = {k: float(v) for k, v in metrics.items()}
        if model_id is not None:
            values = {k: v for k, v in values.items() if math.isfinite(v)}
            link["model_id"] = model_id
        self.client.log_batch(
            run_id, metrics=[Metric(k, v, now, step or 0, **link) for k, v in values.items()]
        )

    def log_dataset(self, run_id: str, name: str, path: str, digest: str, context: str = "training") -> None:
        self.log_inputs(run_id, [DatasetRef(name, digest, path)], context)

    def log_inputs(
        self, run_id: str, datasets: Sequence[DatasetRef], context: str, models: Sequence[str] = ()
    ) -> None:
        """Datasets (with their context: training, scan, ...) and LoggedModels (by id) as the run's
        inputs; a dataset the run already has is not logged twice (MLflow dedupes by name and digest),
        nor a model it already has."""
        from mlflow.entities import DatasetInput, InputTag, LoggedModelInput

        tag = InputTag(key="mlflow.data.context", value=context)
        had = set() if not models else {m.model_id for m in self.client.get_run(run_id).inputs.model_inputs}
        self.client.log_inputs(
            run_id,
            datasets=[DatasetInput(_dataset_entity(d), tags=[tag]) for d in datasets],
            models=[LoggedModelInput(m) for m in dict.fromkeys(models) if m not in had],
        )

    def log_model(
        self,
        run_id: str,
        name: str,
        path: str,
        *,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        dataset: DatasetRef | None,
        tags: Mapping[str, str],
        step: int = 0,
    ) -> str:
        """A checkpoint as an external LoggedModel of `run_id` (its output): the weights stay at `path`
        (tag `kdp.checkpoint`), the model holds its params and final metrics, the metrics linked to the
        model id and to `dataset` (the one they were measured on). Returns the model id."""
        from mlflow.entities import LoggedModelOutput, LoggedModelStatus
        from mlflow.models.utils import get_external_mlflow_model_spec
        from mlflow.utils.mlflow_tags import MLFLOW_MODEL_IS_EXTERNAL

        model = self.client.create_logged_model(
            self.experiment_id,
            name=model_name(name),
            source_run_id=run_id,
            tags={MLFLOW_MODEL_IS_EXTERNAL: "true", "kdp.checkpoint": path, **tags},
            params={p.key: p.value for p in _params(params)},
            model_type="causal-lm",
        )
        spec = get_external_mlflow_model_spec(model)  # the MLmodel file, so the model can be registered
        spec.metadata = (spec.metadata or {}) | {"kdp.checkpoint": path}
        with tempfile.TemporaryDirectory() as tmp:
            spec.save(str(Path(tmp) / "MLmodel"))
            self.client.log_model_artifacts(model.model_id, tmp)
        self.client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
        self.log_metrics(run_id, metrics, step=step, model_id=model.model_id, dataset=dataset)
        self.client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step)])
        return model.model_id

    def edges(self, run_id: str) -> set[tuple[str, str]]:
        """A run's inputs as MLflow holds them: ("dataset", digest) and ("model", LoggedModel id); a
        dataset the run made (context `generated`) is its output, not an input."""
        inputs = self.client.get_run(run_id).inputs
        datasets = {
            ("dataset", d.dataset.digest)
            for d in inputs.dataset_inputs
            if {t.key: t.value for t in d.tags}.get("mlflow.data.context") != GENERATED
        }
        return datasets | {("model", m.model_id) for m in inputs.model_inputs}


def model_name(key: str) -> str:
    """A stage key as a LoggedModel name, which may not hold / : . % or quotes."""
    return re.sub(r"[/:.%\"']", "-", key)


def _dataset_entity(d: DatasetRef):
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.data.sources import LocalArtifactDatasetSource

    return MetaDataset(
        LocalArtifactDatasetSource(d.source), name=d.name, digest=d.digest[:DIGEST_LEN]
    )._to_mlflow_entity()


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
