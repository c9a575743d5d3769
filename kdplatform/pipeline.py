"""Plan a job into stages and run them: data, training runs by role, memorization scans.

Each stage is a run: a `runs` row (status, config, timings, lineage) and a nested MLflow run. Its
identity is a content hash of its config and its inputs' hashes, so a finished stage is skipped on rerun,
and a changed config reruns that stage and what depends on it. A stage's rows and its `done` status are
committed in one transaction; files are written beside their final name and renamed into place.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from kdplatform.spec import JobSpec, RoleSpec, hash_config
from kdplatform.store import db
from kdplatform.store.schema import Checkpoint, Dataset, Job, Model, Run, RunInput

log = logging.getLogger(__name__)


def kill_point(name: str) -> None:
    """Fault injection for the crash tests: SIGKILL this process at the named point when
    KDP_KILL_AT names it (e.g. `ingest:scan/train/teacher`). A no-op otherwise."""
    if os.environ.get("KDP_KILL_AT") == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


class DataError(Exception):
    """The data a spec asks for cannot be built (too little text, a missing file or field)."""


@dataclass(frozen=True)
class Stage:
    key: str
    kind: str
    """data | train | scan"""
    config: dict[str, Any]
    deps: tuple[str, ...] = ()
    role: str | None = None
    seed: int | None = None
    temperature: float | None = None
    objective: str | None = None


@dataclass
class Plan:
    stages: list[Stage]
    hashes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for st in self.stages:
            self.hashes[st.key] = hash_config(
                {"config": st.config, "deps": [self.hashes[d] for d in st.deps]}
            )

    def get(self, key: str) -> Stage:
        return next(s for s in self.stages if s.key == key)


def _fmt_t(t: float) -> str:
    return f"{t:g}"


def plan(spec: JobSpec) -> Plan:
    """The stage DAG of a job, in an order where every stage follows its inputs."""
    stages = [Stage("data", "data", spec.data.model_dump(mode="json"))]
    scan_cfg = spec.scan.model_dump(mode="json")

    def train(key: str, role: str, rs: RoleSpec, seed: int, deps: tuple[str, ...] = ("data",), **kw) -> None:
        cfg = {
            "model": rs.model.model_dump(mode="json"),
            "train": rs.train.model_dump(mode="json"),
            "seed": seed,
        }
        cfg.update({k: v for k, v in kw.items() if v is not None})
        t, obj = kw.get("temperature"), kw.get("objective")
        stages.append(Stage(key, "train", cfg, deps, role, seed, t, obj))
        scan_deps = (key, "data") + (("train/teacher",) if spec.scan.kld and role != "teacher" else ())
        stages.append(Stage(f"scan/{key}", "scan", scan_cfg, scan_deps, role, seed, t, obj))

    train("train/teacher", "teacher", spec.teacher, spec.seeds[0])
    for seed in spec.seeds:
        train(f"train/baseline/s{seed}", "baseline", spec.baseline, seed)
    d = spec.student.distill
    pairs = [(objective, t) for objective in d.objective for t in d.temperature]
    sweep = set(spec.seeds if d.sweep_seeds is None else d.sweep_seeds)
    for seed in spec.seeds:
        for objective, t in pairs if seed in sweep else pairs[:1]:
            train(
                f"train/student/s{seed}/{objective}/T{_fmt_t(t)}",
                "student",
                spec.student,
                seed,
                ("data", "train/teacher"),
                objective=objective,
                temperature=t,
                alpha=d.alpha,
            )
    if d.converged_max_epochs is not None:
        for seed in spec.seeds:
            train(
                f"train/student_converged/s{seed}",
                "student_converged",
                spec.student,
                seed,
                ("data", "train/teacher", f"train/baseline/s{seed}"),
                objective=d.objective[0],
                temperature=d.temperature[0],
                alpha=d.alpha,
                max_epochs=d.converged_max_epochs,
            )
    if spec.hard_student is not None:
        gen_cfg = {"prefix_len": spec.data.prefix_len, "shard_size": spec.scan.shard_size}
        stages.append(Stage("hard_data", "generate", gen_cfg, ("data", "train/teacher"), "teacher"))
        for seed in spec.hard_student.seeds or spec.seeds:
            train(
                f"train/student_hard/s{seed}", "student_hard", spec.hard_student, seed, ("data", "hard_data")
            )
    if spec.classifier is not None:
        scans = tuple(s.key for s in stages if s.kind == "scan")
        stages.append(Stage("classify", "classify", spec.classifier.model_dump(mode="json"), scans))
    fs = spec.filtered_student
    if fs is not None:
        exclusion = ("classify",) if fs.exclude == "classifier" else ()
        for seed in fs.seeds or spec.seeds:
            train(
                f"train/student_filtered/s{seed}",
                "student_filtered",
                fs,
                seed,
                ("data", "train/teacher", *exclusion),
                objective=fs.distill.objective[0],
                temperature=fs.distill.temperature[0],
                alpha=fs.distill.alpha,
                exclude=fs.exclude,
            )
    return Plan(stages)


class JobRunner:
    """Runs a job's plan against one database and one MLflow store."""

    def __init__(
        self,
        spec: JobSpec,
        workdir: Path,
        *,
        database_url: str | None = None,
        tracking_uri: str | None = None,
        echo: Callable[[str], None] = print,
    ):
        from kdplatform.tracking import default_tracking_uri

        self.spec = spec
        self.workdir = Path(workdir).resolve()
        self.database_url = database_url or spec.database_url or db.default_url(self.workdir)
        self.tracking_uri = tracking_uri or spec.mlflow_tracking_uri or default_tracking_uri(self.workdir)
        self.plan = plan(spec)
        self.echo = echo
        self.engine = None

    def open(self) -> None:
        """Migrate the database, open MLflow and record the job: the first writes a run makes."""
        from kdplatform.tracking import Tracker

        if self.engine is not None:
            return
        engine = db.make_engine(self.database_url)
        db.upgrade(engine)
        self.engine = engine
        self.tracker = Tracker(self.tracking_uri, f"kdp-{self.spec.name}")
        self.job_id, self.job_mlflow_id = self._job_row()

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def _job_row(self) -> tuple[int, str]:
        spec_json = json.dumps(self.spec.model_dump(mode="json"), sort_keys=True)
        with self._session() as s, s.begin():
            job = s.scalar(select(Job).where(Job.name == self.spec.name))
            mlflow_id = self.tracker.job_run(
                self.spec.name, job.mlflow_run_id if job else None, {"spec_hash": self.spec.content_hash()}
            )
            if job is None:
                job = Job(
                    name=self.spec.name,
                    spec=spec_json,
                    spec_hash=self.spec.content_hash(),
                    workdir=str(self.workdir),
                    mlflow_run_id=mlflow_id,
                    created_at=_now(),
                )
                s.add(job)
            else:
                job.spec, job.spec_hash, job.mlflow_run_id = spec_json, self.spec.content_hash(), mlflow_id
            s.flush()
            return job.id, mlflow_id

    # ----------------------------------------------------------------------------------------- running
    def run(self) -> None:
        """Run every stage not yet done, holding the job's lock; stages a dead process left are redone."""
        from kdplatform.joblock import JobLock
        from kdplatform.preflight import check

        check(self.spec, self.spec.name)
        db.preflight(self.database_url)
        with JobLock(self.workdir, self.spec.name):
            self.prepare_data()
            self.open()
            for stage in self.plan.stages:
                run = self._run_row(stage.key)
                h = self.plan.hashes[stage.key]
                if run is not None and run.status == "done" and run.config_hash == h:
                    self.echo(f"[skip] {stage.key} (done)")
                    continue
                if run is not None and run.status == "running":
                    self.echo(f"[resume] {stage.key} (left running by a process that died)")
                else:
                    self.echo(f"[run ] {stage.key}")
                self._execute(stage, h)

    def would_run(self) -> list[tuple[Stage, str]]:
        """What `run` would do with each stage and why, read without writing anything."""
        from sqlalchemy.engine import make_url

        u = make_url(self.database_url)
        rows: dict[str, Run] = {}
        if u.get_backend_name() != "duckdb" or Path(u.database or "").exists():
            engine = db.make_engine(self.database_url, read_only=True)
            try:
                with Session(engine) as s:
                    job = s.scalar(select(Job).where(Job.name == self.spec.name))
                    if job is not None:
                        rows = {r.stage_key: r for r in s.scalars(select(Run).where(Run.job_id == job.id))}
            except Exception as e:
                raise db.DatabaseError(f"cannot read {self.database_url}: {e}") from None
            finally:
                engine.dispose()
        out = []
        for st in self.plan.stages:
            r = rows.get(st.key)
            if r is None:
                why = "run: never run"
            elif r.status == "done" and r.config_hash == self.plan.hashes[st.key]:
                why = "skip: done"
            elif r.status == "done":
                why = "run: its config or an input changed"
            elif r.status == "running":
                why = "resume: left running by a process that died (or running now)"
            else:
                why = f"run: last attempt {r.status}" + (
                    f" ({r.error.splitlines()[0][:80]})" if r.error else ""
                )
            out.append((st, why))
        return out

    def _run_row(self, key: str) -> Run | None:
        with self._session() as s:
            return s.scalar(select(Run).where(Run.job_id == self.job_id, Run.stage_key == key))

    def _start(self, stage: Stage, h: str) -> int:
        """Mark the stage running and clear what an earlier attempt left, in one committed transaction."""
        with self._session() as s, s.begin():
            run = s.scalar(select(Run).where(Run.job_id == self.job_id, Run.stage_key == stage.key))
            if run is None:
                run = Run(
                    job_id=self.job_id,
                    stage_key=stage.key,
                    kind=stage.kind,
                    config="{}",
                    config_hash=h,
                    status="running",
                )
                s.add(run)
            run.kind, run.role, run.seed = stage.kind, stage.role, stage.seed
            run.temperature, run.objective = stage.temperature, stage.objective
            run.config, run.config_hash, run.status = json.dumps(stage.config, sort_keys=True), h, "running"
            run.started_at, run.finished_at, run.error = _now(), None, None
            s.flush()
            conn = s.connection()
            for table in ("scan_results", "example_kld", "greedy_continuations"):
                db.delete_rows(conn, table, scan_run_id=run.id)
            for table in (
                "checkpoints",
                "run_inputs",
                "classifier_trials",
                "classifier_coefficients",
                "example_risk",
            ):
                db.delete_rows(conn, table, run_id=run.id)
            return run.id

    def _execute(self, stage: Stage, h: str) -> None:
        run_id = self._start(stage, h)
        tags = {
            "kdp.stage_key": stage.key,
            "kdp.kind": stage.kind,
            "kdp.role": stage.role or "",
            "kdp.run_id": str(run_id),
        }
        for dep in stage.deps:
            dep_run = self._run_row(dep)
            if dep_run is not None and dep_run.mlflow_run_id:
                tags[f"kdp.input.{dep.split('/')[1] if '/' in dep else dep}"] = dep_run.mlflow_run_id
        try:
            with self.tracker.stage(
                self.job_mlflow_id, stage.key, stage.config | {"config_hash": h}, tags
            ) as mid:
                with self._session() as s, s.begin():
                    s.get(Run, run_id).mlflow_run_id = mid
                handler = {
                    "data": self._data,
                    "train": self._train,
                    "scan": self._scan,
                    "generate": self._generate,
                    "classify": self._classify,
                }[stage.kind]
                handler(stage, run_id, mid)
        except BaseException as e:
            with self._session() as s, s.begin():
                run = s.get(Run, run_id)
                run.status, run.error, run.finished_at = "failed", f"{type(e).__name__}: {e}", _now()
            raise

    def _finish(self, s: Session, run_id: int) -> None:
        run = s.get(Run, run_id)
        run.status, run.finished_at = "done", _now()
        run.seconds = (run.finished_at - run.started_at).total_seconds()

    # ------------------------------------------------------------------------------------------- data
    def dataset(self, key: str = "data") -> Dataset:
        """The dataset a stage produced: `data` (D) or `hard_data` (the teacher's generations)."""
        run = self._run_row(key)
        with self._session() as s:
            return s.get(Dataset, run.dataset_id)

    def _dataset_row(self, s: Session, digest: str, fill: Callable[[Dataset], None], make) -> Dataset:
        """The dataset with this content digest: found, or made and filled. Jobs sharing a database may make
        the same dataset at once: the loser of the unique-digest race takes the winner's row."""
        from sqlalchemy.exc import IntegrityError

        ds = s.scalar(select(Dataset).where(Dataset.digest == digest))
        if ds is not None:
            return ds
        if self.engine.dialect.name == "duckdb":  # one writer at a time, and no savepoints
            ds = make()
            s.add(ds)
            s.flush()
            fill(ds)
            return ds
        try:
            with s.begin_nested():
                ds = make()
                s.add(ds)
                s.flush()
                fill(ds)
            return ds
        except IntegrityError:
            return s.scalar(select(Dataset).where(Dataset.digest == digest))

    def _insert_examples(self, s: Session, ds_id: int, path: Path, tok, prefix_len: int, split: str) -> None:
        """Decoded texts and zlib entropy of an examples file, inserted in bounded chunks."""
        from kdplatform.data.examples import Examples, example_texts

        for batch in pq.ParquetFile(path).iter_batches(batch_size=20_000):
            rows = example_texts(Examples.from_arrow(pa.Table.from_batches([batch])), tok, prefix_len, split)
            rows = rows.append_column("dataset_id", pa.array(np.full(rows.num_rows, ds_id), pa.int32()))
            db.bulk_insert(s.connection(), "examples", rows)

    def data_dir(self) -> Path:
        return self.workdir / "data" / self.plan.hashes["data"]

    def prepare_data(self) -> None:
        """Build D's files (tokenizer, train/val Parquet) before anything is written to the database, so
        a corpus too small for the spec fails cleanly; content-addressed, so a rerun finds them done."""
        from kdplatform.data.corpus import load_documents
        from kdplatform.data.examples import load_tokenizer, make_windows, split_examples, train_tokenizer

        out = self.data_dir()
        if (out / "train.parquet").exists():
            return
        d = self.spec.data
        self.echo(f"[prep] data: corpus {d.source}, tokenizer, {d.num_examples}+{d.val_examples} examples")
        tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
        try:
            tmp.mkdir(parents=True, exist_ok=True)
            docs = load_documents(
                d.source,
                hf_config=d.hf_config,
                split=d.split,
                text_field=d.text_field,
                max_chars=d.max_corpus_chars,
                seed=d.seed,
            )
            if d.tokenizer.name:
                tok = load_tokenizer(d.tokenizer.name, d.tokenizer.revision)
                tok.save_pretrained(tmp / "tokenizer")
            else:
                tok = train_tokenizer(docs, d.tokenizer.vocab_size, tmp / "tokenizer")
            windows = make_windows(docs, tok, d.seq_len, d.skip_examples + d.num_examples + d.val_examples)
            train, val = split_examples(windows[d.skip_examples :], d.num_examples, d.val_examples)
            train.write(tmp / "train.parquet")
            val.write(tmp / "val.parquet")
            if out.exists():
                shutil.rmtree(out)
            tmp.rename(out)
        except (ValueError, KeyError, FileNotFoundError, OSError) as e:
            raise DataError(f"data ({d.source}): {e}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _data(self, stage: Stage, run_id: int, mlflow_id: str) -> None:
        from kdplatform.data.examples import Examples, load_tokenizer

        d = self.spec.data
        out = self.data_dir()
        self.prepare_data()
        tok = load_tokenizer(out / "tokenizer")
        train, val = Examples.read(out / "train.parquet"), Examples.read(out / "val.parquet")
        digest = hash_config(
            {
                "train": _digest(train.tokens),
                "val": _digest(val.tokens),
                "tokenizer": d.tokenizer.name or f"bpe{d.tokenizer.vocab_size}",
            }
        )
        with self._session() as s, s.begin():

            def fill(ds: Dataset) -> None:
                for split in ("train", "val"):
                    self._insert_examples(s, ds.id, out / f"{split}.parquet", tok, d.prefix_len, split)

            ds = self._dataset_row(
                s,
                digest,
                fill,
                lambda: Dataset(
                    name=f"{self.spec.name}:{d.source}",
                    digest=digest,
                    source=d.source,
                    tokenizer=d.tokenizer.name or f"bpe-{d.tokenizer.vocab_size}",
                    vocab_size=len(tok),
                    seq_len=d.seq_len,
                    prefix_len=d.prefix_len,
                    num_train=len(train),
                    num_val=len(val),
                    path=str(out),
                    created_at=_now(),
                ),
            )
            ds.path = str(out)
            s.get(Run, run_id).dataset_id = ds.id
            s.add(RunInput(run_id=run_id, kind="dataset", dataset_id=ds.id))
            self._finish(s, run_id)
        self.tracker.log_dataset(mlflow_id, ds.name, str(out), digest)
        self.tracker.log_metrics(
            mlflow_id, {"num_train": len(train), "num_val": len(val), "vocab_size": len(tok)}
        )
        self.echo(
            f"       {len(train)} train + {len(val)} val examples of {d.seq_len} tokens, vocab {len(tok)}"
        )

    def _tokens(self, split: str, key: str = "data") -> np.ndarray:
        from kdplatform.data.examples import Examples

        return Examples.read(Path(self.dataset(key).path) / f"{split}.parquet").tokens

    # --------------------------------------------------------------------------------------- generate
    def _generate(self, stage: Stage, run_id: int, mlflow_id: str) -> None:
        """D_hard: each training example's true prefix + the teacher's greedy continuation (section 6)."""
        import torch

        from kdplatform.data.examples import Examples
        from kdplatform.models import load_pretrained
        from kdplatform.train.hard_data import generate_hard_data

        src = self.dataset()
        t_run, t_ck = self._final_checkpoint("train/teacher")
        teacher = load_pretrained(self.checkpoint_dir("train/teacher"))
        if torch.cuda.is_available():
            teacher = teacher.cuda()
        out = self.workdir / "data_hard" / self.plan.hashes[stage.key]
        tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=True)
        writer = None
        for batch in pq.ParquetFile(Path(src.path) / "train.parquet").iter_batches(
            batch_size=self.spec.scan.shard_size
        ):
            ex = Examples.from_arrow(pa.Table.from_batches([batch]))
            hard = generate_hard_data(teacher, torch.as_tensor(ex.tokens), src.prefix_len)
            table = Examples(ex.example_ids, np.asarray(hard, dtype=np.int64)).to_arrow()
            writer = writer or pq.ParquetWriter(tmp / "train.parquet", table.schema)
            writer.write_table(table)
        writer.close()
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
        digest = hash_config(
            {
                "hard_from": src.digest,
                "teacher_ck": self.plan.hashes["train/teacher"],
                "tokens": _file_digest(out / "train.parquet"),
            }
        )
        tok = self.tokenizer()
        with self._session() as s, s.begin():

            def fill(ds: Dataset) -> None:
                self._insert_examples(s, ds.id, out / "train.parquet", tok, src.prefix_len, "train")

            ds = self._dataset_row(
                s,
                digest,
                fill,
                lambda: Dataset(
                    name=f"{src.name}:hard",
                    digest=digest,
                    source=f"hard:{src.digest}",
                    tokenizer=src.tokenizer,
                    vocab_size=src.vocab_size,
                    seq_len=src.seq_len,
                    prefix_len=src.prefix_len,
                    num_train=src.num_train,
                    num_val=0,
                    path=str(out),
                    parent_dataset_id=src.id,
                    created_at=_now(),
                ),
            )
            ds.path = str(out)
            s.get(Run, run_id).dataset_id = ds.id
            s.add(RunInput(run_id=run_id, kind="dataset", dataset_id=src.id))
            s.add(RunInput(run_id=run_id, kind="teacher", input_run_id=t_run, checkpoint_id=t_ck))
            self._finish(s, run_id)
        self.tracker.log_dataset(mlflow_id, f"{src.name}:hard", str(out), digest, context="generated")
        self.echo(f"       generated {src.num_train} teacher continuations")

    def tokenizer(self):
        from kdplatform.data.examples import load_tokenizer

        return load_tokenizer(Path(self.dataset().path) / "tokenizer")

    # ------------------------------------------------------------------------------------------ train
    def checkpoint_dir(self, train_key: str) -> Path:
        return self.workdir / "checkpoints" / train_key.replace("/", "-")

    def _final_checkpoint(self, train_key: str) -> tuple[int, int]:
        run = self._run_row(train_key)
        with self._session() as s:
            ck = s.scalar(select(Checkpoint).where(Checkpoint.run_id == run.id, Checkpoint.is_final))
            return run.id, ck.id

    def _train(self, stage: Stage, run_id: int, mlflow_id: str) -> None:
        from kdplatform.models import load_model, load_pretrained, logit_width, n_params
        from kdplatform.train.loop import KDConfig, train

        rs: RoleSpec = {
            "teacher": self.spec.teacher,
            "baseline": self.spec.baseline,
            "student": self.spec.student,
            "student_converged": self.spec.student,
            "student_hard": self.spec.hard_student,
            "student_filtered": self.spec.filtered_student,
        }[stage.role]
        ds = self.dataset("hard_data" if stage.role == "student_hard" else "data")
        model = load_model(rs.model, vocab_size=ds.vocab_size, max_positions=ds.seq_len, seed=stage.seed)
        if model.get_input_embeddings().weight.shape[0] < ds.vocab_size:
            raise ValueError(
                f"{stage.key}: model embedding table ({model.get_input_embeddings().weight.shape[0]}) "
                f"is smaller than the tokenizer's vocabulary ({ds.vocab_size})"
            )
        teacher, kd, inputs = None, None, [RunInput(run_id=run_id, kind="dataset", dataset_id=ds.id)]
        train_tokens = self._tokens("train", "hard_data" if stage.role == "student_hard" else "data")
        if stage.role == "student_filtered":
            train_tokens, excluded, source = self._exclusion(stage, train_tokens)
            inputs.append(RunInput(run_id=run_id, kind="exclusion", input_run_id=source))
            self.echo(f"       D_clean: {len(train_tokens)} examples ({excluded} excluded)")
        cfg, target = rs.train, None
        if stage.role == "student_converged":
            cfg = cfg.model_copy(update={"epochs": stage.config["max_epochs"]})
            target = self._final_val_loss(stage.deps[2])
            self.echo(
                f"       trains until validation loss <= {target:.4f} (the baseline's), "
                f"at most {cfg.epochs} epochs"
            )
        if stage.role in ("student", "student_filtered", "student_converged"):
            t_run, t_ck = self._final_checkpoint("train/teacher")
            teacher = load_pretrained(self.checkpoint_dir("train/teacher"))
            kd = KDConfig(stage.objective, stage.temperature, stage.config.get("alpha", 0.0))
            inputs.append(RunInput(run_id=run_id, kind="teacher", input_run_id=t_run, checkpoint_id=t_ck))

        def on_epoch(e) -> None:
            kill_point(f"epoch:{stage.key}:{e.epoch}")
            self.echo(
                f"       epoch {e.epoch}/{cfg.epochs}: train {e.train_loss:.3f}, val {e.val_loss:.3f} "
                f"({e.seconds:.1f} s)"
            )
            self.tracker.log_metrics(
                mlflow_id,
                {
                    "train_loss": e.train_loss,
                    "val_loss": e.val_loss,
                    "val_ppl": e.val_ppl,
                    "tokens": e.tokens,
                },
                step=e.epoch,
            )

        out = self.checkpoint_dir(stage.key)
        res = train(
            model,
            train_tokens,
            self._tokens("val"),
            cfg,
            seed=stage.seed,
            out_dir=out,
            teacher=teacher,
            kd=kd,
            on_epoch=on_epoch,
            desc=stage.key,
            state_dir=out.with_name(out.name + ".state"),
            stop_at_val_loss=target,
        )
        self.tracker.log_metrics(
            mlflow_id,
            {"tokens_per_s": res.tokens_per_s, "final_val_loss": res.final.val_loss}
            | ({} if res.reached_target is None else {"reached_target": float(res.reached_target)}),
        )
        with self._session() as s, s.begin():
            name, config = rs.model.preset or rs.model.name, model.config.to_json_string()
            m = s.scalar(select(Model).where(Model.name == name, Model.config == config))
            if m is None:
                m = Model(
                    name=name,
                    revision=rs.model.revision,
                    family=model.config.model_type,
                    n_params=n_params(model),
                    logit_width=logit_width(model),
                    config=config,
                )
                s.add(m)
                s.flush()
            run = s.get(Run, run_id)
            run.model_id, run.dataset_id = m.id, ds.id
            epochs = res.epochs  # every epoch, also those before a resume
            for e in epochs:
                s.add(
                    Checkpoint(
                        run_id=run_id,
                        path=str(out) if e is epochs[-1] else None,
                        epoch=e.epoch,
                        step=e.step,
                        tokens=e.tokens,
                        train_loss=e.train_loss,
                        val_loss=e.val_loss,
                        val_ppl=e.val_ppl,
                        is_final=e is epochs[-1],
                    )
                )
            s.add_all(inputs)
            self._finish(s, run_id)
        self.echo(
            f"       val loss {res.final.val_loss:.3f}, ppl {res.final.val_ppl:.1f}, "
            f"{res.tokens_per_s:.0f} tok/s"
            + ("" if res.reached_target is None else f", beat the baseline: {res.reached_target}")
        )

    def _final_val_loss(self, train_key: str) -> float:
        with self._session() as s:
            run = self._run_row(train_key)
            return s.scalar(
                select(Checkpoint.val_loss).where(Checkpoint.run_id == run.id, Checkpoint.is_final)
            )

    def _exclusion(self, stage: Stage, tokens: np.ndarray) -> tuple[np.ndarray, int, int | None]:
        """D minus the exclusion set: the classifier's predicted-memorized examples, or ids from a file."""
        from kdplatform.analysis.filtering import clean_mask, stored_exclusion
        from kdplatform.data.examples import Examples

        ids = Examples.read(Path(self.dataset().path) / "train.parquet").example_ids
        exclude = stage.config["exclude"]
        if exclude == "classifier":
            source = self._run_row("classify").id
            excluded = stored_exclusion(self.engine, self.job_id, run_id=source)
        else:
            source = None
            path = Path(exclude.removeprefix("file:"))
            try:
                excluded = np.loadtxt(path, dtype=np.int64, ndmin=1)
            except (OSError, ValueError) as e:
                raise DataError(
                    f"filtered_student.exclude: cannot read example ids from {path}: {e}"
                ) from None
        keep = clean_mask(ids, excluded)
        return tokens[keep], int((~keep).sum()), source

    # ------------------------------------------------------------------------------------------ classify
    def _classify(self, stage: Stage, run_id: int, mlflow_id: str) -> None:
        """Predict, from what is known before distillation, which examples the student memorizes."""
        from kdplatform.analysis import queries
        from kdplatform.analysis.classifier import ClassifierConfig, run_classifier, to_arrow

        c = self.spec.classifier
        cfg = ClassifierConfig(
            features=tuple(c.features),
            trials=c.trials,
            ratio=c.ratio,
            test_size=c.test_size,
            seed=c.seed,
            threshold=c.threshold,
        )
        ds = self.dataset()
        df = queries.features(self.engine, self.job_id, role=c.target)
        skipped = None
        try:
            res = run_classifier(df, cfg)
        except ValueError as e:
            skipped, res = f"skipped: {e}", None
        with self._session() as s, s.begin():
            if res is not None:
                for table, rows in to_arrow(res, run_id, ds.id).items():
                    db.bulk_insert(s.connection(), table, rows)
            for dep in stage.deps:
                s.add(RunInput(run_id=run_id, kind="scan", input_run_id=self._run_row(dep).id))
            run = s.get(Run, run_id)
            run.dataset_id, run.error = ds.id, skipped
            self._finish(s, run_id)
        if res is None:
            self.echo(f"       classifier {skipped}")
            return
        means = {
            f"{r.name}_mean": r.mean
            for r in res.summary.itertuples()
            if r.kind == "metric" and r.mean == r.mean
        }
        self.tracker.log_metrics(mlflow_id, means)
        auc = res.summary.set_index("name").loc["roc_auc", "mean"]
        n_pred = int(res.risk["predicted"].sum())
        self.echo(f"       {len(res.trials)} trials: ROC-AUC {auc:.3f}, {n_pred} predicted memorized")

    # ------------------------------------------------------------------------------------------- scan
    def _scan(self, stage: Stage, run_id: int, mlflow_id: str) -> None:
        """Scan a trained model on every example of D into Parquet shards, then ingest them in one go."""
        import torch

        from kdplatform.memorization.shards import scan_to_shards
        from kdplatform.models import load_pretrained

        train_key = stage.deps[0]
        model_run, ck = self._final_checkpoint(train_key)
        ds = self.dataset()
        device = "cuda" if torch.cuda.is_available() else "cpu"
        model = load_pretrained(self.checkpoint_dir(train_key)).to(device)
        reference, ref_run = None, None
        if "train/teacher" in stage.deps[1:]:
            ref_run, _ = self._final_checkpoint("train/teacher")
            reference = load_pretrained(self.checkpoint_dir("train/teacher")).to(device)
        sc = self.spec.scan
        shard_dir = self.workdir / "scans" / stage.key.replace("/", "-") / self.plan.hashes[stage.key]
        shards = scan_to_shards(
            model,
            Path(ds.path) / "train.parquet",
            shard_dir,
            ds.prefix_len,
            reference=reference,
            batch_size=sc.batch_size,
            shard_size=sc.shard_size,
            greedy_min_match=sc.store_greedy_min_match,
            on_shard=lambda i: kill_point(f"shard:{stage.key}:{i}"),
        )
        tok = self.tokenizer()
        n = memorized = 0
        with self._session() as s, s.begin():
            conn = s.connection()
            for path in shards:
                t = pq.read_table(path)
                k = t.num_rows
                n += k
                memorized += int(pc.sum(t.column("memorized")).as_py() or 0)
                const = {"run_id": model_run, "dataset_id": ds.id, "scan_run_id": run_id}
                extra = {c: pa.array(np.full(k, v), pa.int32()) for c, v in const.items()}
                base = t.select(SCAN_COLUMNS)
                db.bulk_insert(conn, "scan_results", _with(base, extra))
                if reference is not None:
                    kld = t.select(["example_id", "kld"])
                    db.bulk_insert(
                        conn,
                        "example_kld",
                        _with(kld, extra | {"reference_run_id": pa.array(np.full(k, ref_run), pa.int32())}),
                    )
                if "greedy_tokens" in t.column_names:
                    g = t.filter(pc.is_valid(t.column("greedy_tokens"))).select(
                        ["example_id", "greedy_tokens"]
                    )
                    seqs = g.column("greedy_tokens").to_pylist()
                    rows = pa.table(
                        {
                            "example_id": g.column("example_id"),
                            "tokens": pa.array([" ".join(map(str, q)) for q in seqs], pa.string()),
                            "text": pa.array(tok.batch_decode(seqs) if seqs else [], pa.string()),
                        }
                    )
                    m = rows.num_rows
                    db.bulk_insert(
                        conn,
                        "greedy_continuations",
                        _with(
                            rows,
                            {
                                "run_id": pa.array(np.full(m, model_run), pa.int32()),
                                "scan_run_id": pa.array(np.full(m, run_id), pa.int32()),
                            },
                        ),
                    )
            s.add(RunInput(run_id=run_id, kind="dataset", dataset_id=ds.id))
            s.add(RunInput(run_id=run_id, kind="model", input_run_id=model_run, checkpoint_id=ck))
            if ref_run is not None:
                s.add(RunInput(run_id=run_id, kind="reference", input_run_id=ref_run))
            s.get(Run, run_id).dataset_id = ds.id
            kill_point(f"ingest:{stage.key}")
            self._finish(s, run_id)
        shutil.rmtree(shard_dir.parent, ignore_errors=True)
        rate = 100.0 * memorized / max(n, 1)
        self.tracker.log_metrics(mlflow_id, {"memorization_rate_pct": rate, "memorized": memorized})
        model_mlflow = self._run_row(train_key).mlflow_run_id
        if model_mlflow:
            self.tracker.log_metrics(model_mlflow, {"memorization_rate_pct": rate})
        self.echo(f"       memorized {memorized}/{n} = {rate:.2f}%")

    # ---------------------------------------------------------------------------------------- results
    def rates(self):
        import pandas as pd

        with self.engine.connect() as conn:
            return pd.read_sql(
                text(
                    "SELECT run_id, role, seed, temperature, objective, model_name, examples, memorized, "
                    "CAST(rate_pct AS DOUBLE PRECISION) AS rate_pct FROM memorization_rates "
                    "WHERE job_id = :j ORDER BY run_id"
                ),
                conn,
                params={"j": self.job_id},
            )


def _digest(arr: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


SCAN_COLUMNS = ["example_id", "memorized", "match_len", "suffix_logprob", "suffix_entropy", "ppl"]


def _with(table: pa.Table, columns: dict[str, pa.Array]) -> pa.Table:
    for name, col in columns.items():
        table = table.append_column(name, col)
    return table


def _file_digest(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def python_version() -> str:
    return sys.version.split()[0]
