"""Write a synthetic study into a database the way the pipeline does: small tables first, then the
per-example tables in chunks of Arrow rows through kdplatform.store.db.bulk_insert (bounded memory at
1M examples), all in one transaction. DuckDB and PostgreSQL alike; no torch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Engine
from sqlalchemy import inspect as sa_inspect

from kdplatform.store import db, materialized
from kdplatform.store.schema import Role, StageKind
from kdplatform.testing import outcomes, plan
from kdplatform.testing import text as texts
from kdplatform.testing.design import DatasetDesign, Design
from kdplatform.testing.outcomes import Chunk
from kdplatform.testing.plan import PlannedJob
from kdplatform.testing.rows import Rows


@dataclass
class Study:
    """What was written: ids by name, the trained runs, and each trained run's memorized example ids."""

    engine: Engine
    jobs: dict[str, int]
    datasets: dict[str, int]
    """Dataset name -> id; a job's hard dataset is `<dataset>:hard`."""
    runs: pd.DataFrame
    """Trained runs: id, job_id, job, stage_key, role, seed, objective, temperature, dataset_id (the
    scanned dataset), train_dataset_id, model_id, scan_run_id, family."""
    stages: dict[str, dict[str, int]]
    """Job name -> stage key -> run id (every run of the job)."""
    trained: dict[tuple[str, str, str | None, float | None, int], int] = field(default_factory=dict)
    """(job, role, objective, temperature, seed) -> train run id."""
    mem: dict[int, set[int]] = field(default_factory=dict)
    classifier_runs: dict[str, int] = field(default_factory=dict)
    workdir: Path = Path()
    n_examples: int = 0
    examples: pd.DataFrame | None = None
    """With Design.keep_rows: the examples, scan_results and example_kld rows as written."""
    scans: pd.DataFrame | None = None
    kld: pd.DataFrame | None = None

    def run_ids(
        self, job: str, role: str, objective: object = "any", temperature: object = "any"
    ) -> list[int]:
        """Trained run ids of `job` and `role`; objective/temperature filter when given (None: NULL)."""
        r = self.runs[(self.runs.job_id == self.jobs[job]) & (self.runs.role == role)]
        if objective != "any":
            r = r[r.objective.isna()] if objective is None else r[r.objective == objective]
        if temperature != "any":
            r = r[r.temperature.isna()] if temperature is None else r[r.temperature == temperature]
        return sorted(int(x) for x in r.id)

    def union(self, runs: list[int]) -> set[int]:
        return set().union(*(self.mem[r] for r in runs))


def build_study(
    target: Engine | str, design: Design, *, log: Callable[[str], None] = lambda _: None
) -> Study:
    """Write `design` into `target` (a migrated engine, or a URL: migrated here, disposed after)."""
    engine = target if isinstance(target, Engine) else db.make_engine(target)
    if not isinstance(target, Engine):
        db.upgrade(engine)
    t0 = time.perf_counter()
    vocab_words = texts.words(np.random.default_rng([design.seed, 0]), design.vocab)
    vocab = pa.array(vocab_words, pa.string())
    with engine.begin() as conn:
        rows = Rows(conn)
        datasets, fresh = plan.datasets(conn, rows, design)
        jobs = [plan.plan_job(rows, design, j, i, datasets) for i, j in enumerate(design.jobs)]
        classifier_rng = np.random.default_rng([design.seed, 2])
        for job in jobs:
            if job.classifier is not None:
                for table, rs in outcomes.classifier_rows(classifier_rng, job.classifier).items():
                    for r in rs:
                        rows.add_plain(table, r)
        rows.flush()
    log(f"small tables written in {time.perf_counter() - t0:.1f} s")
    kept = _write_examples(engine, design, datasets, fresh, jobs, vocab, vocab_words, classifier_rng)
    with engine.begin() as conn:  # as `kdplatform run` ends: the jobs' copies of the slow views
        for job in jobs:
            materialized.refresh(conn, job.id)
    if not isinstance(target, Engine):
        engine.dispose()
    log(f"study written in {time.perf_counter() - t0:.1f} s")
    mem, frames = kept
    return Study(
        engine=engine,
        jobs={j.design.name: j.id for j in jobs},
        datasets=datasets,
        runs=_runs_frame(design, jobs),
        stages={j.design.name: j.stages for j in jobs},
        trained={
            (j.design.name, t.arm.role.value, t.arm.objective, t.arm.temperature, t.seed): t.ids["run_id"]
            for j in jobs
            for t in j.trained
        },
        mem=mem,
        classifier_runs={j.design.name: j.classifier for j in jobs if j.classifier is not None},
        workdir=design.workdir,
        n_examples=design.n_examples,
        **frames,
    )


def _chunk(d: Design, rng: np.random.Generator, start: int) -> Chunk:
    index = np.arange(start, min(d.n_examples, start + d.chunk_rows), dtype=np.int64)
    z = rng.random(len(index))
    toks = texts.tokens(rng, z, d.seq_len, d.vocab)
    zlib = np.maximum(20, d.seq_len * (1 + 4 * z) + rng.normal(0, d.seq_len / 5, len(z))).round()
    return Chunk(index, d.example_ids[0] + d.example_ids[1] * index, z, toks, zlib)


def _examples(
    d: Design, rng: np.random.Generator, chunk: Chunk, vocab: pa.Array, ds: DatasetDesign
) -> pa.Table:
    """examples rows of one dataset: texts of the token windows, zlib entropy rising with difficulty."""
    n, p = len(chunk), d.prefix_len
    prefix, suffix = texts.join(vocab, chunk.tokens[:, :p]), texts.join(vocab, chunk.tokens[:, p:])
    if d.awkward:
        prefix = texts.awkward(chunk.index, prefix)
    zlib = chunk.zlib + (rng.integers(-ds.zlib_jitter, ds.zlib_jitter + 1, n) if ds.zlib_jitter else 0)
    scale = 0.93 if ds.family != "gpt_neox" else 1.0
    return pa.table(
        {
            "example_id": pa.array(chunk.ids, pa.int64()),
            "split": pa.array(np.full(n, "train"), pa.string()),
            "n_tokens": pa.array(np.full(n, d.seq_len), pa.int32()),
            "text": pc.binary_join_element_wise(prefix, suffix, " "),
            "prefix_text": prefix,
            "suffix_text": suffix,
            "zlib_entropy": pa.array(zlib.astype(np.int32)),
            "zlib_bits_per_token": pa.array(8 * zlib / d.seq_len * scale + rng.normal(0, 0.05, n)),
        }
    )


def _with_dataset(rows: pa.Table, dataset_id: int) -> pa.Table:
    return rows.add_column(0, "dataset_id", pa.array(np.full(rows.num_rows, dataset_id, np.int32)))


def _write_examples(
    engine: Engine,
    d: Design,
    datasets: dict[str, int],
    fresh: list[tuple[str, DatasetDesign]],
    jobs: list[PlannedJob],
    vocab: pa.Array,
    vocab_words: list[str],
    classifier_rng: np.random.Generator,
) -> tuple[dict[int, set[int]], dict[str, pd.DataFrame]]:
    """Every per-example table, one transaction a chunk (DuckDB keeps a transaction's rows in memory
    until it commits); returns the memorized sets and (keep_rows) the frames."""
    mem: dict[int, set[int]] = {t.ids["run_id"]: set() for j in jobs for t in j.trained}
    kept: dict[str, list[pa.Table]] = {"examples": [], "scans": [], "kld": []}
    files = _TokenFiles(d, fresh, vocab_words)
    # A study may be built at an older schema revision (the migration tests): write the columns it has.
    schema = sa_inspect(engine)
    live = {t: {c["name"] for c in schema.get_columns(t)} for t in schema.get_table_names()}
    for c, start in enumerate(range(0, d.n_examples, d.chunk_rows)):
        rng = np.random.default_rng([d.seed, 1, c])
        chunk = _chunk(d, rng, start)
        files.write(chunk)
        ex_rng = np.random.default_rng([d.seed, 3, c])  # the same examples whichever datasets are reused
        by_design = {ds.name: _examples(d, ex_rng, chunk, vocab, ds) for ds in d.datasets}
        with engine.begin() as conn:

            def insert(table: str, rows: pa.Table, keep: str | None = None) -> None:
                rows = rows.select([c for c in rows.column_names if c in live[table]])
                db.bulk_insert(conn, table, rows)  # noqa: B023  (called within this iteration only)
                if keep and d.keep_rows:
                    kept[keep].append(rows)

            for name, ds in fresh:
                insert("examples", _with_dataset(by_design[ds.name], datasets[name]), "examples")
            for job in jobs:
                teacher: tuple[int, np.ndarray] | None = None
                for t in job.trained:
                    m, match, scans = outcomes.scan(
                        rng, d, chunk, t.arm.role, t.arm.capacity, teacher[1] if teacher else None, t.ids
                    )
                    insert("scan_results", scans, "scans")
                    if t.arm.role == Role.TEACHER:
                        teacher = (t.ids["run_id"], m)
                    elif job.design.kld and teacher:
                        insert("example_kld", outcomes.kld(rng, chunk, t.ids, teacher[0]), "kld")
                    if d.greedy:
                        insert("greedy_continuations", outcomes.greedy(rng, d, chunk, match, t.ids, vocab))
                    mem[t.ids["run_id"]].update(chunk.ids[m].tolist())
                if job.classifier is not None:
                    base = [a.capacity for a in job.design.arms if a.role == Role.BASELINE] or [0.01]
                    risk = outcomes.risk(
                        classifier_rng,
                        chunk,
                        job.classifier,
                        job.dataset,
                        base[0] * d.memorization.rate_scale,
                    )
                    insert("example_risk", risk)
    files.close()
    return mem, {k: pa.concat_tables(v).to_pandas() for k, v in kept.items() if v}


class _TokenFiles:
    """With Design.write_files: each new dataset's train.parquet (written chunk by chunk) and tokenizer."""

    def __init__(self, d: Design, fresh: list[tuple[str, DatasetDesign]], vocab: list[str]):
        self.writers: list[pq.ParquetWriter] = []
        self.paths = (
            [d.workdir / "data" / name for name, ds in fresh if ds.name == name] if d.write_files else []
        )
        for path in self.paths:
            texts.write_tokenizer(vocab, path / "tokenizer")

    def write(self, chunk: Chunk) -> None:
        if not self.paths:
            return
        rows = texts.token_table(chunk.ids, chunk.tokens)
        if not self.writers:
            for path in self.paths:
                path.mkdir(parents=True, exist_ok=True)
                self.writers.append(pq.ParquetWriter(path / "train.parquet", rows.schema))
        for w in self.writers:
            w.write_table(rows)

    def close(self) -> None:
        for w in self.writers:
            w.close()


def _runs_frame(d: Design, jobs: list[PlannedJob]) -> pd.DataFrame:
    family = {ds.name: ds.family for ds in d.datasets}
    return pd.DataFrame(
        [
            {
                "id": t.ids["run_id"],
                "job_id": j.id,
                "job": j.design.name,
                "stage_key": t.key,
                "kind": StageKind.TRAIN.value,
                "role": t.arm.role.value,
                "seed": t.seed,
                "objective": t.arm.objective,
                "temperature": t.arm.temperature,
                "dataset_id": t.ids["dataset_id"],
                "train_dataset_id": t.ids["train_dataset_id"],
                "model_id": t.ids["model_id"],
                "scan_run_id": t.ids["scan_run_id"],
                "family": family[j.design.dataset],
            }
            for j in jobs
            for t in j.trained
        ]
    )
