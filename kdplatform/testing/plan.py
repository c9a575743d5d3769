"""The small tables of a synthetic study: datasets (reused by digest), jobs, their stages (runs), models,
checkpoints and lineage edges, with the pipeline's stage keys. Rows are queued on a `Rows` and written
in one go; the per-example tables follow in synthetic.py.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import Connection, text

from kdplatform.store.schema import InputKind, Role, StageKind, Status
from kdplatform.testing.design import Arm, DatasetDesign, Design, JobDesign
from kdplatform.testing.rows import Rows, at


@dataclass
class Trained:
    arm: Arm
    seed: int
    ids: dict[str, int]
    """run_id (the train run), scan_run_id, dataset_id (scanned), model_id, train_dataset_id."""
    key: str


@dataclass
class PlannedJob:
    design: JobDesign
    id: int
    dataset: int
    trained: list[Trained] = field(default_factory=list)
    stages: dict[str, int] = field(default_factory=dict)
    classifier: int | None = None


def stage_key(arm: Arm, seed: int) -> str:
    """The pipeline's stage key of a trained configuration (the one teacher has no seed in it)."""
    if arm.role == Role.TEACHER and len(arm.seeds) == 1:
        return "train/teacher"
    parts = [f"train/{arm.role}", f"s{seed}"]
    if arm.role == Role.STUDENT:
        parts += [str(arm.objective), f"T{arm.temperature:g}"]
    return "/".join(parts)


def datasets(
    conn: Connection, rows: Rows, d: Design
) -> tuple[dict[str, int], list[tuple[str, DatasetDesign]]]:
    """Dataset name -> id (reusing stored digests), and the (name, design) of those new here, whose
    examples this build writes. Each dataset a hard-data job uses gets a `<name>:hard` child."""
    hard_of = {j.dataset for j in d.jobs if j.hard_data}
    out: dict[str, int] = {}
    fresh: list[tuple[str, DatasetDesign]] = []
    for ds in d.datasets:
        digest = d.digest(ds)
        made = [(ds.name, digest, None, ds.id)]
        if ds.name in hard_of:
            made.append((f"{ds.name}:hard", f"hard-{digest}", ds.name, None))
        for name, dg, parent, pinned in made:
            found = conn.execute(text("SELECT id FROM datasets WHERE digest = :d"), {"d": dg}).scalar()
            if found is not None:
                out[name] = int(found)
                continue
            out[name] = rows.add(
                "datasets",
                {
                    "name": f"synthetic:{name}",
                    "digest": dg,
                    "source": f"hard:{digest}" if parent else "synthetic",
                    "tokenizer": f"words-{ds.family}",
                    "vocab_size": d.vocab + 1,
                    "seq_len": d.seq_len,
                    "prefix_len": d.prefix_len,
                    "num_train": d.n_examples,
                    "num_val": 0,
                    "path": str(d.workdir / "data" / name),
                    "parent_dataset_id": out[parent] if parent else None,
                    "created_at": at(len(out)),
                },
                pinned=pinned,
            )
            if parent is None or d.hard_examples:
                fresh.append((name, ds))
    return out, fresh


def plan_job(rows: Rows, d: Design, jd: JobDesign, index: int, datasets: dict[str, int]) -> PlannedJob:
    """The job's small-table rows: the job, its stages, models, checkpoints and lineage edges."""
    spec = {"name": jd.name} | jd.spec
    job_id = rows.add(
        "jobs",
        {
            "name": jd.name,
            "spec": json.dumps(spec),
            "spec_hash": hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16],
            "workdir": str(d.workdir / jd.name),
            "mlflow_run_id": f"mlflow-job-{jd.name}",
            "created_at": at(index),
        },
    )
    job = PlannedJob(jd, job_id, datasets[jd.dataset])
    family = next(ds.family for ds in d.datasets if ds.name == jd.dataset)

    def run(key: str, kind: StageKind, arm: Arm | None = None, seed=None, dataset=None, model=None) -> int:
        n = len(job.stages)
        rid = rows.add(
            "runs",
            {
                "job_id": job_id,
                "stage_key": key,
                "kind": kind,
                "role": arm.role if arm else (Role.TEACHER if kind == StageKind.GENERATE else None),
                "seed": seed,
                "temperature": arm.temperature if arm else None,
                "objective": arm.objective if arm else None,
                "status": Status.DONE,
                "config": json.dumps({"key": key}),
                "config_hash": hashlib.sha256(key.encode()).hexdigest()[:16],
                "model_id": model,
                "dataset_id": dataset,
                "mlflow_run_id": f"mlflow-{jd.name}-{key}",
            }
            | _timings(d, 60 * (index * 100 + n)),
        )
        job.stages[key] = rid
        return rid

    def edge(rid: int, kind: InputKind, dataset=None, input_run=None, checkpoint=None) -> None:
        if d.provenance:
            rows.add(
                "run_inputs",
                {
                    "run_id": rid,
                    "kind": kind,
                    "dataset_id": dataset,
                    "input_run_id": input_run,
                    "checkpoint_id": checkpoint,
                },
            )

    if d.provenance:
        edge(run("data", StageKind.DATA, dataset=job.dataset), InputKind.DATASET, dataset=job.dataset)
    teacher: tuple[int, int | None] | None = None
    hard = datasets.get(f"{jd.dataset}:hard") if jd.hard_data else None
    for arm in jd.arms:
        for seed in arm.seeds:
            train_ds = hard if hard is not None and arm.role == Role.STUDENT_HARD else job.dataset
            if train_ds != job.dataset and d.provenance and "hard_data" not in job.stages:
                hd = run("hard_data", StageKind.GENERATE, dataset=train_ds)
                edge(hd, InputKind.DATASET, dataset=job.dataset)
                edge(hd, InputKind.TEACHER, input_run=teacher[0], checkpoint=teacher[1])
            model = rows.add(
                "models",
                {
                    "name": f"{family}-{arm.role}",
                    "revision": None,
                    "family": family,
                    "n_params": 12_000_000_000 if arm.role == Role.TEACHER else 1_400_000_000,
                    "logit_width": d.vocab + 1,
                    "config": json.dumps({"role": arm.role}),
                },
            )
            key = stage_key(arm, seed)
            tr = run(key, StageKind.TRAIN, arm, seed, train_ds, model)
            final = _checkpoints(rows, d, tr, arm, seed, key)
            edge(tr, InputKind.DATASET, dataset=train_ds)
            if arm.role.is_student and arm.role != Role.STUDENT_HARD and teacher:
                edge(tr, InputKind.TEACHER, input_run=teacher[0], checkpoint=teacher[1])
            sc = run(f"scan/{key}", StageKind.SCAN, arm, seed, job.dataset)
            edge(sc, InputKind.DATASET, dataset=job.dataset)
            edge(sc, InputKind.MODEL, input_run=tr, checkpoint=final)
            if arm.role == Role.TEACHER:
                teacher = (tr, final)
            elif jd.kld and teacher:
                edge(sc, InputKind.REFERENCE, input_run=teacher[0])
            ids = {
                "run_id": tr,
                "scan_run_id": sc,
                "dataset_id": job.dataset,
                "model_id": model,
                "train_dataset_id": train_ds,
            }
            job.trained.append(Trained(arm, seed, ids, key))
    if jd.classifier:
        student = next(a for a in jd.arms if a.role == Role.STUDENT)
        job.classifier = run("classify", StageKind.CLASSIFY, student, dataset=job.dataset)
    return job


def _timings(d: Design, start: float) -> dict:
    if not d.provenance:
        return {}
    return {"started_at": at(start), "finished_at": at(start + 30), "seconds": 30.0}


def _checkpoints(rows: Rows, d: Design, run_id: int, arm: Arm, seed: int, key: str) -> int | None:
    """Three epochs of checkpoints, weights kept for the final one only; returns the final's id."""
    if not d.provenance:
        return None
    final = None
    for epoch in (1, 2, 3):
        loss = 3.2 - 0.3 * epoch + (0.4 if arm.role != Role.TEACHER else 0.0) + 0.01 * seed
        final = rows.add(
            "checkpoints",
            {
                "run_id": run_id,
                "path": str(d.workdir / "checkpoints" / key) if epoch == 3 else None,
                "epoch": epoch,
                "step": epoch * 1000,
                "tokens": epoch * 1000 * d.seq_len * 16,
                "train_loss": loss - 0.1,
                "val_loss": loss,
                "val_ppl": float(np.exp(loss)),
                "is_final": epoch == 3,
            },
        )
    return final
