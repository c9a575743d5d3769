"""What a transfer reads from the source: one job, its runs and everything their lineage names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table

from kdplatform.store.transfer.rows import TransferError, in_ids, literal, reflect, rows_of


@dataclass
class Source:
    """One job's rows in the source, read in one snapshot."""

    tables: dict[str, Table]
    job: dict[str, Any]
    runs: list[dict[str, Any]]
    models: list[dict[str, Any]]
    checkpoints: list[dict[str, Any]]
    run_inputs: list[dict[str, Any]]
    datasets: list[dict[str, Any]]
    """Parents before children."""
    external_runs: list[dict[str, Any]]
    """Runs of other jobs that this job's lineage edges point at (matched by job name + stage key)."""
    external_checkpoints: list[dict[str, Any]]

    @classmethod
    def read(cls, s: Connection, name: str) -> Source:
        t = reflect(s)
        jobs = rows_of(s, t["jobs"], f"name = {literal(name)}")
        if not jobs:
            raise TransferError(f"no job named {name!r} in the source database {s.engine.url}")
        job = jobs[0]
        runs = rows_of(s, t["runs"], f"job_id = {int(job['id'])}")
        run_ids = [r["id"] for r in runs]
        checkpoints = rows_of(s, t["checkpoints"], in_ids("run_id", run_ids))
        run_inputs = rows_of(s, t["run_inputs"], in_ids("run_id", run_ids))
        models = rows_of(s, t["models"], in_ids("id", [r["model_id"] for r in runs if r["model_id"]]))
        ext_ids = {i["input_run_id"] for i in run_inputs if i["input_run_id"]} - set(run_ids)
        external_runs = rows_of(s, t["runs"], in_ids("id", ext_ids))
        if external_runs:
            names = {
                j["id"]: j["name"]
                for j in rows_of(s, t["jobs"], in_ids("id", [r["job_id"] for r in external_runs]))
            }
            for r in external_runs:
                r["_job_name"] = names[r["job_id"]]
        ck_ids = {i["checkpoint_id"] for i in run_inputs if i["checkpoint_id"]}
        ext_ck = [c for c in rows_of(s, t["checkpoints"], in_ids("run_id", ext_ids)) if c["id"] in ck_ids]
        ds_ids = {r["dataset_id"] for r in runs if r["dataset_id"]}
        ds_ids |= {i["dataset_id"] for i in run_inputs if i["dataset_id"]}
        datasets: dict[int, dict[str, Any]] = {}
        todo = set(ds_ids)
        while todo:
            found = rows_of(s, t["datasets"], in_ids("id", todo))
            datasets.update({d["id"]: d for d in found})
            todo = {d["parent_dataset_id"] for d in found if d["parent_dataset_id"]} - set(datasets)
        ordered: list[dict[str, Any]] = []

        def visit(d: dict[str, Any]) -> None:
            if d in ordered:
                return
            if d["parent_dataset_id"]:
                visit(datasets[d["parent_dataset_id"]])
            ordered.append(d)

        for d in sorted(datasets.values(), key=lambda d: d["id"]):
            visit(d)
        return cls(t, job, runs, models, checkpoints, run_inputs, ordered, external_runs, ext_ck)
