"""Databases the dashboard is tested on, and a helper that opens one page of it with AppTest.

- `smoke_url`: the smoke job's database (jobs/smoke.yaml, about a minute on 2 cores, once per session;
  KDP_APP_SMOKE_DB=/path/kdp.duckdb reuses one built before, for quick iterations).
- `synthetic_url`: bench/dashboard.py's generated study at 600 examples: memorized sets large enough
  for every figure, a classifier run, a filtered student, a second model family, dataset files and a
  tokenizer for token-level highlighting (about 2 s).
- `empty_url`: migrated, no rows; `missing_url`: no file at all.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from app_paths import APP, PAGES, ROOT


def load_bench():
    """bench/dashboard.py as a module (bench/ is not a package)."""
    name = "kdp_bench_dashboard"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / "dashboard.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def smoke_url(request) -> str:
    if prebuilt := os.environ.get("KDP_APP_SMOKE_DB"):
        return f"duckdb:///{Path(prebuilt).resolve()}"
    return request.getfixturevalue("smoke").database_url


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("synthetic")
    url = f"duckdb:///{work / 'study.duckdb'}"
    summary = load_bench().generate(
        url, 600, workdir=work, rate_scale=8.0, filtered=True, second_family=True, write_files=True
    )
    return summary | {"url": url}


@pytest.fixture(scope="session")
def synthetic_url(synthetic) -> str:
    return synthetic["url"]


@pytest.fixture(scope="session")
def empty_url(tmp_path_factory) -> str:
    from kdplatform.store import db

    url = f"duckdb:///{tmp_path_factory.mktemp('empty') / 'empty.duckdb'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def missing_url(tmp_path_factory) -> str:
    return f"duckdb:///{tmp_path_factory.mktemp('missing') / 'never-written.duckdb'}"


@pytest.fixture
def open_page(monkeypatch) -> Callable:
    """open_page(url, page, job_id=None, **session_state) -> AppTest after the page ran."""
    from streamlit.testing.v1 import AppTest

    def _open(url: str, page: str, job_id: int | None = None, **state):
        monkeypatch.setenv("KDP_DATABASE_URL", url)
        at = AppTest.from_file(str(APP), default_timeout=60)
        at.run()
        if job_id is not None:
            at.session_state["job_id"] = job_id
        for k, v in state.items():
            at.session_state[k] = v
        at.switch_page(PAGES[page]).run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return _open


@pytest.fixture(scope="session")
def pg_synthetic_url(pg_server, tmp_path_factory) -> Iterator[str]:
    """The synthetic study on PostgreSQL (the shared throwaway server; skipped when there is none)."""
    name = pg_server.create_database()
    url = pg_server.url(name)
    load_bench().generate(
        url,
        300,
        workdir=tmp_path_factory.mktemp("pg-synthetic"),
        rate_scale=8.0,
        filtered=True,
        write_files=True,
    )
    yield url
    pg_server.drop_database(name)
