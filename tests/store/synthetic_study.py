"""A small generated job written the way the pipeline writes: ORM rows for jobs, runs, lineage and
checkpoints (ids from the sequences), Arrow bulk ingest for the per-example tables. Used by the backend
and transfer tests; no torch, so it takes a fraction of a second on either database."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import numpy as np
import pyarrow as pa
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from kdplatform.store import db
from kdplatform.store.schema import Checkpoint, Dataset, Job, Model, Run, RunInput

# Texts that break naive CSV/COPY or encoding paths.
AWKWARD = [
    "",
    "plain",
    'quote " and "" doubled',
    "comma, separated, text",
    "line one\nline two\r\nline three",
    "tab\there",
    "backslash \\ and \\N and \\.",
    "\\.",
    "NULL",
    "unicode: naïve café – 数据 – 🙂",
    "  leading and trailing spaces  ",
]


def _t(i: int) -> dt.datetime:
    return dt.datetime(2025, 1, 1, 12, 0, 0) + dt.timedelta(seconds=i, microseconds=123456)


def build_study(engine: Engine, name: str = "study", seed: int = 0, n: int = 120) -> dict[str, int]:
    """Write job `name` (teacher, two baselines, a soft and a hard-data student, their scans) and
    return stage key -> run id. The dataset digest depends on `seed`, so jobs of different seeds have
    different datasets and jobs of the same seed share one."""
    rng = np.random.default_rng(seed)
    digest = hashlib.sha256(f"data-{seed}".encode()).hexdigest()
    runs: dict[str, int] = {}
    with Session(engine) as s, s.begin():
        job = Job(
            name=name,
            spec=json.dumps({"name": name, "seed": seed}),
            spec_hash=f"spec-{name}",
            workdir=f"/tmp/{name}",
            mlflow_run_id=f"mlflow-job-{name}",
            created_at=_t(0),
        )
        s.add(job)
        ds = s.query(Dataset).filter_by(digest=digest).one_or_none()
        new_ds = ds is None
        if new_ds:
            ds = Dataset(
                name=f"{name}:builtin",
                digest=digest,
                source="builtin",
                tokenizer="bpe-512",
                vocab_size=512,
                seq_len=40,
                prefix_len=20,
                num_train=n,
                num_val=0,
                path=f"/data/{digest[:8]}",
                created_at=_t(1),
            )
            s.add(ds)
            s.flush()
            hard = Dataset(
                name=f"{name}:hard",
                digest=f"hard-{digest}",
                source=f"hard:{digest}",
                tokenizer="bpe-512",
                vocab_size=512,
                seq_len=40,
                prefix_len=20,
                num_train=n,
                num_val=0,
                path=f"/data/hard-{digest[:8]}",
                parent_dataset_id=ds.id,
                created_at=_t(2),
            )
            s.add(hard)
        s.flush()
        hard = s.query(Dataset).filter_by(digest=f"hard-{digest}").one()

        def run(key: str, kind: str, role=None, seed_=None, objective=None, temperature=None, dataset=ds):
            r = Run(
                job_id=job.id,
                stage_key=key,
                kind=kind,
                role=role,
                seed=seed_,
                temperature=temperature,
                objective=objective,
                status="done",
                config=json.dumps({"key": key}),
                config_hash=hashlib.sha256(key.encode()).hexdigest()[:16],
                dataset_id=dataset.id,
                mlflow_run_id=f"mlflow-{name}-{key}",
                started_at=_t(len(runs) * 10),
                finished_at=_t(len(runs) * 10 + 5),
                seconds=5.0,
            )
            s.add(r)
            s.flush()
            runs[key] = r.id
            return r

        data = run("data", "data")
        s.add(RunInput(run_id=data.id, kind="dataset", dataset_id=ds.id))
        trains = [
            ("train/teacher", "teacher", 0, None, None, ds),
            ("train/baseline/s0", "baseline", 0, None, None, ds),
            ("train/baseline/s1", "baseline", 1, None, None, ds),
            ("train/student/s0/forward_kl/T2", "student", 0, "forward_kl", 2.0, ds),
            ("train/student_hard/s0", "student_hard", 0, None, None, hard),
        ]
        finals: dict[str, int] = {}
        for key, role, sd, obj, temp, dset in trains:
            r = run(key, "train", role, sd, obj, temp, dset)
            m = Model(
                name=f"tiny-{role}",
                revision=None,
                family="gpt_neox",
                n_params=10**6 + len(runs),
                logit_width=512,
                config=json.dumps({"role": role}),
            )
            s.add(m)
            s.flush()
            r.model_id = m.id
            for epoch in range(3):
                ck = Checkpoint(
                    run_id=r.id,
                    path=f"/ck/{key}" if epoch == 2 else None,
                    epoch=epoch,
                    step=10 * epoch,
                    tokens=1000 * (epoch + 1),
                    train_loss=3.0 - epoch * 0.5,
                    val_loss=3.2 - epoch * 0.4,
                    val_ppl=float(np.exp(3.2 - epoch * 0.4)),
                    is_final=epoch == 2,
                )
                s.add(ck)
                s.flush()
            finals[key] = ck.id
            s.add(RunInput(run_id=r.id, kind="dataset", dataset_id=dset.id))
            if role in ("student", "student_hard"):
                s.add(
                    RunInput(
                        run_id=r.id,
                        kind="teacher",
                        input_run_id=runs["train/teacher"],
                        checkpoint_id=finals["train/teacher"],
                    )
                )
        for key, role, sd, obj, temp, _ in trains:
            sc = run(f"scan/{key}", "scan", role, sd, obj, temp, ds)
            s.add(RunInput(run_id=sc.id, kind="dataset", dataset_id=ds.id))
            s.add(RunInput(run_id=sc.id, kind="model", input_run_id=runs[key], checkpoint_id=finals[key]))
        s.flush()
        conn = s.connection()
        ids = np.arange(n, dtype=np.int64) * 7 + 3  # stable ids, not 0..n-1
        if new_ds:
            texts = [
                AWKWARD[i % len(AWKWARD)] + f" #{i}" if i % 3 else AWKWARD[i % len(AWKWARD)] for i in range(n)
            ]
            for d in (ds, hard):
                db.bulk_insert(
                    conn,
                    "examples",
                    pa.table(
                        {
                            "dataset_id": pa.array(np.full(n, d.id), pa.int32()),
                            "example_id": pa.array(ids, pa.int64()),
                            "split": pa.array(["train"] * n),
                            "n_tokens": pa.array(np.full(n, 40), pa.int32()),
                            "text": pa.array(texts),
                            "prefix_text": pa.array([t[:5] for t in texts]),
                            "suffix_text": pa.array([t[5:] for t in texts]),
                            "zlib_entropy": pa.array(rng.integers(10, 400, n), pa.int32()),
                            "zlib_bits_per_token": pa.array(rng.random(n) * 8),
                        }
                    ),
                )
        difficulty = rng.random(n)
        capacity = {"teacher": 0.5, "baseline": 0.3, "student": 0.15, "student_hard": 0.2}
        for key, role, *_ in trains:
            mem = difficulty < capacity[role] + rng.normal(0, 0.05, n)
            db.bulk_insert(
                conn,
                "scan_results",
                pa.table(
                    {
                        "run_id": pa.array(np.full(n, runs[key]), pa.int32()),
                        "example_id": pa.array(ids, pa.int64()),
                        "dataset_id": pa.array(np.full(n, ds.id), pa.int32()),
                        "scan_run_id": pa.array(np.full(n, runs[f"scan/{key}"]), pa.int32()),
                        "memorized": pa.array(mem),
                        "match_len": pa.array(np.where(mem, 20, rng.integers(0, 20, n)), pa.int32()),
                        "suffix_logprob": pa.array(-rng.random(n) * 50),
                        "suffix_entropy": pa.array(rng.random(n) * 3),
                        "ppl": pa.array(1 + rng.random(n) * 100),
                    }
                ),
            )
            if role != "teacher":
                db.bulk_insert(
                    conn,
                    "example_kld",
                    pa.table(
                        {
                            "run_id": pa.array(np.full(n, runs[key]), pa.int32()),
                            "reference_run_id": pa.array(np.full(n, runs["train/teacher"]), pa.int32()),
                            "example_id": pa.array(ids, pa.int64()),
                            "dataset_id": pa.array(np.full(n, ds.id), pa.int32()),
                            "scan_run_id": pa.array(np.full(n, runs[f"scan/{key}"]), pa.int32()),
                            "kld": pa.array(rng.random(n)),
                        }
                    ),
                )
            k = int(mem.sum())
            db.bulk_insert(
                conn,
                "greedy_continuations",
                pa.table(
                    {
                        "run_id": pa.array(np.full(k, runs[key]), pa.int32()),
                        "example_id": pa.array(ids[mem], pa.int64()),
                        "scan_run_id": pa.array(np.full(k, runs[f"scan/{key}"]), pa.int32()),
                        "tokens": pa.array([" ".join(map(str, range(i % 5, i % 5 + 4))) for i in range(k)]),
                        "text": pa.array([AWKWARD[i % len(AWKWARD)] for i in range(k)]),
                    }
                ),
            )
    return runs


# Columns whose values are ids of other rows (compared through stage keys, not raw values).
def dump(engine: Engine, tables: list[str] | None = None) -> dict[str, list[tuple]]:
    """Every row of every table (sorted), for exact before/after comparisons."""
    with engine.connect() as conn:
        names = tables or sorted(t for t in db.table_names(engine) if t != "alembic_version")
        out = {}
        for t in names:
            rows = conn.execute(text(f'SELECT * FROM "{t}"')).all()
            out[t] = sorted((tuple(r) for r in rows), key=repr)
        return out
