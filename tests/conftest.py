"""Shared fixtures. Thread policy first: OpenMP reads it when torch loads."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
if workers := os.environ.get("PYTEST_XDIST_WORKER_COUNT"):  # `make test` runs pytest-xdist workers: the
    # cores are shared between them, so each worker's torch (and its subprocesses) takes its share.
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // int(workers))))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.pop("MLFLOW_TRACKING_URI", None)

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def smoke(tmp_path_factory):
    """jobs/smoke.yaml run once per session (about a minute): every stage kind, read by many tests."""
    from kdplatform.pipeline import JobRunner
    from kdplatform.spec import load_spec

    said: list[str] = []
    runner = JobRunner(
        load_spec(ROOT / "jobs" / "smoke.yaml"), tmp_path_factory.mktemp("smoke"), echo=said.append
    )
    runner.run()
    runner.said = said
    return runner


from pg_server import *  # noqa: E402,F403  (PostgreSQL and MLflow server fixtures)
