"""A generated study in a fresh database: three jobs, several roles, seeds and student configurations,
random memorized sets driven by a latent per-example difficulty so that they overlap.

The `study` fixture runs on DuckDB and on PostgreSQL (a fresh database on the throwaway server of
tests/pg_server.py, or on the server KDP_TEST_POSTGRES_URL names; skipped when neither is available).
Tests compare the views against `Study.mem`, the memorized sets kept in Python from the same rows.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from kdplatform.store import db

N = 240


@dataclass
class Study:
    engine: Engine
    jobs: dict[str, int]
    """job name -> id: alpha (full design), beta (shares alpha's dataset), gamma (other tokenizer)."""
    datasets: dict[str, int]
    runs: pd.DataFrame
    """Trained runs: id, job_id, role, seed, objective, temperature, dataset_id (scanned), family."""
    mem: dict[int, set[int]]
    """Trained run id -> memorized example ids."""
    scans: pd.DataFrame
    examples: pd.DataFrame
    kld: pd.DataFrame

    def run_ids(
        self, job: str, role: str, objective: object = "any", temperature: object = "any"
    ) -> list[int]:
        r = self.runs[(self.runs.job_id == self.jobs[job]) & (self.runs.role == role)]
        if objective != "any":
            r = r[r.objective.isna()] if objective is None else r[r.objective == objective]
        if temperature != "any":
            r = r[r.temperature.isna()] if temperature is None else r[r.temperature == temperature]
        return sorted(int(x) for x in r.id)

    def union(self, runs: list[int]) -> set[int]:
        return set().union(*(self.mem[r] for r in runs))


def _now() -> dt.datetime:
    return dt.datetime(2025, 1, 1)


def _arrow(rows: list[dict], schema: dict[str, pa.DataType]) -> pa.Table:
    return pa.table({k: pa.array([r[k] for r in rows], t) for k, t in schema.items()})


# (job, role, objective, temperature, seeds, capacity): an example is memorized with probability
# sigmoid(40 (capacity - difficulty)), plus rare random memorization (the teacher's "difficult" ones).
DESIGN = [
    ("alpha", "teacher", None, None, [0], 0.35),
    ("alpha", "baseline", None, None, [0, 1, 2], 0.25),
    ("alpha", "student", "forward_kl", 2.0, [0, 1, 2], 0.1),
    ("alpha", "student", "forward_kl", 1.0, [0, 1], 0.2),
    ("alpha", "student_hard", None, None, [0, 5], 0.15),
    ("alpha", "student_filtered", "forward_kl", 2.0, [0], 0.03),
    ("beta", "teacher", None, None, [0], 0.3),
    ("beta", "baseline", None, None, [0], 0.2),
    ("beta", "student", "forward_kl", 2.0, [0, 1], 0.1),
    ("gamma", "teacher", None, None, [0], 0.3),
    ("gamma", "baseline", None, None, [0], 0.2),
    ("gamma", "student", "reverse_kl", 2.0, [0], 0.1),
]


def generate(engine: Engine) -> Study:
    rng = np.random.default_rng(20240601)
    ids = np.sort(rng.choice(10**6, size=N, replace=False).astype(np.int64)) + 3_000_000_000
    z = rng.random(N)
    zlib = (120 + 400 * z + rng.normal(0, 20, N)).round().astype(int)
    bits = zlib * 8 / 100 + rng.normal(0, 0.3, N)
    jobs = {"alpha": 1, "beta": 2, "gamma": 3}
    specs = {
        "alpha": {
            "name": "alpha",
            "student": {"distill": {"objective": ["forward_kl"], "temperature": [1.0, 2.0]}},
        },
        "beta": {"name": "beta"},
        "gamma": {
            "name": "gamma",
            "student": {"distill": {"objective": ["reverse_kl"], "temperature": [2.0]}},
        },
    }
    datasets = {"pythia": 10, "olmo": 11}
    job_dataset = {"alpha": 10, "beta": 10, "gamma": 11}
    examples = pd.concat(
        [
            pd.DataFrame(
                {"dataset_id": 10, "example_id": ids, "zlib_entropy": zlib, "zlib_bits_per_token": bits}
            ),
            pd.DataFrame(
                {
                    "dataset_id": 11,
                    "example_id": ids,
                    "zlib_entropy": zlib + rng.integers(-5, 6, N),
                    "zlib_bits_per_token": 0.9 * bits + rng.normal(0, 0.2, N),
                }
            ),
        ]
    )
    run_rows, model_rows, scan_rows, kld_rows, mem = [], [], [], [], {}
    next_id = 100
    teacher_of: dict[str, int] = {}
    for job, role, objective, temperature, seeds, capacity in DESIGN:
        for seed in seeds:
            rid, sid, mid = next_id, next_id + 1, next_id + 2
            next_id += 3
            family = "olmo2" if job == "gamma" else "gpt_neox"
            common = {
                "job_id": jobs[job],
                "role": role,
                "seed": seed,
                "objective": objective,
                "temperature": temperature,
                "status": "done",
                "config": "{}",
                "config_hash": "h",
            }
            key = f"{role}/s{seed}/{objective}/{temperature}"
            run_rows.append(
                common
                | {
                    "id": rid,
                    "stage_key": f"train/{key}",
                    "kind": "train",
                    "model_id": mid,
                    "dataset_id": job_dataset[job],
                }
            )
            run_rows.append(
                common
                | {
                    "id": sid,
                    "stage_key": f"scan/{key}",
                    "kind": "scan",
                    "model_id": None,
                    "dataset_id": job_dataset[job],
                }
            )
            model_rows.append({"id": mid, "name": f"{job}-{role}", "family": family})
            p = 1 / (1 + np.exp(-40 * (capacity - z)))
            m = (rng.random(N) < p) | (rng.random(N) < 0.02)
            if role.startswith("student"):
                m |= np.isin(ids, list(mem[teacher_of[job]])) & (rng.random(N) < 0.05)
            mem[rid] = set(ids[m].tolist())
            ppl = np.exp(1 + 3 * z + rng.normal(0, 0.3, N))
            scan_rows.append(
                pd.DataFrame(
                    {
                        "run_id": rid,
                        "example_id": ids,
                        "dataset_id": job_dataset[job],
                        "scan_run_id": sid,
                        "memorized": m,
                        "match_len": np.where(m, 50, rng.integers(0, 50, N)),
                        "suffix_logprob": -60 * z * rng.random(N),
                        "suffix_entropy": 3 * z + rng.random(N),
                        "ppl": ppl,
                    }
                )
            )
            if role == "teacher":
                teacher_of[job] = rid
            elif job != "gamma":
                kld_rows.append(
                    pd.DataFrame(
                        {
                            "run_id": rid,
                            "reference_run_id": teacher_of[job],
                            "example_id": ids,
                            "dataset_id": job_dataset[job],
                            "scan_run_id": sid,
                            "kld": 2 * z + rng.random(N),
                        }
                    )
                )
    runs = pd.DataFrame(run_rows)
    scans = pd.concat(scan_rows, ignore_index=True)
    kld = pd.concat(kld_rows, ignore_index=True)
    with engine.begin() as conn:
        db.bulk_insert(
            conn,
            "jobs",
            _arrow(
                [
                    {
                        "id": i,
                        "name": n,
                        "spec": json.dumps(specs[n]),
                        "spec_hash": "x",
                        "workdir": "/tmp",
                        "created_at": _now(),
                    }
                    for n, i in jobs.items()
                ],
                {
                    "id": pa.int32(),
                    "name": pa.string(),
                    "spec": pa.string(),
                    "spec_hash": pa.string(),
                    "workdir": pa.string(),
                    "created_at": pa.timestamp("us"),
                },
            ),
        )
        db.bulk_insert(
            conn,
            "datasets",
            _arrow(
                [
                    {
                        "id": i,
                        "name": n,
                        "digest": n,
                        "source": "builtin",
                        "tokenizer": n,
                        "vocab_size": 100,
                        "seq_len": 100,
                        "prefix_len": 50,
                        "num_train": N,
                        "num_val": 0,
                        "path": "/tmp",
                        "created_at": _now(),
                    }
                    for n, i in datasets.items()
                ],
                {
                    "id": pa.int32(),
                    "name": pa.string(),
                    "digest": pa.string(),
                    "source": pa.string(),
                    "tokenizer": pa.string(),
                    "vocab_size": pa.int32(),
                    "seq_len": pa.int32(),
                    "prefix_len": pa.int32(),
                    "num_train": pa.int32(),
                    "num_val": pa.int32(),
                    "path": pa.string(),
                    "created_at": pa.timestamp("us"),
                },
            ),
        )
        db.bulk_insert(
            conn,
            "models",
            _arrow(
                [
                    r | {"revision": None, "n_params": 10**9, "logit_width": 100, "config": "{}"}
                    for r in model_rows
                ],
                {
                    "id": pa.int32(),
                    "name": pa.string(),
                    "revision": pa.string(),
                    "family": pa.string(),
                    "n_params": pa.int64(),
                    "logit_width": pa.int32(),
                    "config": pa.string(),
                },
            ),
        )
        db.bulk_insert(
            conn,
            "runs",
            _arrow(
                run_rows,
                {
                    "id": pa.int32(),
                    "job_id": pa.int32(),
                    "stage_key": pa.string(),
                    "kind": pa.string(),
                    "role": pa.string(),
                    "seed": pa.int32(),
                    "temperature": pa.float64(),
                    "objective": pa.string(),
                    "status": pa.string(),
                    "config": pa.string(),
                    "config_hash": pa.string(),
                    "model_id": pa.int32(),
                    "dataset_id": pa.int32(),
                },
            ),
        )
        ex = examples.assign(split="train", n_tokens=100, text="t", prefix_text="p", suffix_text="s")
        db.bulk_insert(conn, "examples", pa.Table.from_pandas(ex, preserve_index=False))
        db.bulk_insert(conn, "scan_results", pa.Table.from_pandas(scans, preserve_index=False))
        db.bulk_insert(conn, "example_kld", pa.Table.from_pandas(kld, preserve_index=False))
    trained = runs[runs.kind == "train"].merge(
        pd.DataFrame(model_rows).rename(columns={"id": "model_id"})[["model_id", "family"]], on="model_id"
    )
    return Study(engine, jobs, datasets, trained.reset_index(drop=True), mem, scans, examples, kld)


@contextmanager
def _postgres_url(request) -> Iterator[str]:
    """A fresh database on the shared throwaway server (tests/pg_server.py), dropped afterwards."""
    stop = None
    try:
        server = request.getfixturevalue("pg_server")
    except pytest.FixtureLookupError:  # tests/conftest.py does not import the server fixtures yet
        pytest.importorskip("psycopg", reason="PostgreSQL variant needs psycopg (extra 'postgres')")
        import pg_server

        if external := os.environ.get("KDP_TEST_POSTGRES_URL"):
            u = make_url(external)
            server = pg_server.PgServer(
                u.host, u.port or 5432, u.username, u.password, u.database or "postgres"
            )
        else:
            server, stop = pg_server.start_local_postgres()
    name = server.create_database()
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)
        if stop is not None:
            stop()


@pytest.fixture(scope="session", params=["duckdb", "postgresql"])
def study(request, tmp_path_factory) -> Iterator[Study]:
    with ExitStack() as stack:
        if request.param == "duckdb":
            url = f"duckdb:///{tmp_path_factory.mktemp('analysis') / 'study.duckdb'}"
        else:
            url = stack.enter_context(_postgres_url(request))
        engine = db.make_engine(url)
        stack.callback(engine.dispose)
        db.upgrade(engine)
        yield generate(engine)


CLASSIFIER_RUN = 999


@pytest.fixture(scope="session")
def classified(study: Study):
    """The classifier run on job alpha's T=2 students (few positives, as in the paper), stored as run
    CLASSIFIER_RUN."""
    from kdplatform.analysis import queries
    from kdplatform.analysis.classifier import ClassifierConfig, run_classifier, to_arrow

    features = queries.features(study.engine, study.jobs["alpha"], temperature=2.0)
    result = run_classifier(features, ClassifierConfig(seed=3, threshold=0.6))
    run = {
        "id": CLASSIFIER_RUN,
        "job_id": study.jobs["alpha"],
        "stage_key": "classify",
        "kind": "classifier",
        "status": "done",
        "config": "{}",
        "config_hash": "c",
    }
    with study.engine.begin() as conn:
        db.bulk_insert(
            conn,
            "runs",
            _arrow(
                [run],
                {
                    "id": pa.int32(),
                    "job_id": pa.int32(),
                    "stage_key": pa.string(),
                    "kind": pa.string(),
                    "status": pa.string(),
                    "config": pa.string(),
                    "config_hash": pa.string(),
                },
            ),
        )
        for table, rows in to_arrow(result, CLASSIFIER_RUN, study.datasets["pythia"]).items():
            db.bulk_insert(conn, table, rows)
    return features, result, CLASSIFIER_RUN
