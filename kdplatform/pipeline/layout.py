"""Every path the pipeline writes under a job's workdir, named once.

    <workdir>/kdp.duckdb                  the default database (store.db.default_url)
    <workdir>/mlflow.db                   the default MLflow store (tracking.default_tracking_uri)
    <workdir>/mlartifacts/                its experiment's artifacts unless a server keeps them
    <workdir>/.kdp-job                    the name of the job the workdir belongs to (joblock.claim)
    <workdir>/mlflow.db.tmp-<pid>         the MLflow store while it is migrated, then linked into place
                                          (tracking.artifact_location; the checkpoints stay where they are)
    <workdir>/.kdp-job.lock               the job's writer lock (joblock.JobLock)
    <workdir>/data/<hash>/                D: tokenizer/, train.parquet, val.parquet, heldout.parquet
    <workdir>/data_hard/<hash>/           D_hard: the teacher's continuations, train.parquet
    <workdir>/checkpoints/<key>/          a training stage's final model (key with / as -)
    <workdir>/checkpoints/<key>.state/    its resumable training state
    <workdir>/scans/<key>/<hash>/         a scan's Parquet shards until they are ingested
    <cache_dir>/<hash>/                   a trained base: its model and base.json (shared between jobs;
                                          default cache_dir <workdir>/../_bases)
    <cache_dir>/corpus/<digest>/          the bases' tokenized pretraining windows

Files are built in a per-process sibling (`staging`) and renamed into place (`publish`), so a killed
process never leaves a half-written directory under a final name.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kdplatform.pipeline.plan import DATA_KEY


def _flat(key: str) -> str:
    return key.replace("/", "-")


@dataclass(frozen=True)
class Layout:
    workdir: Path
    hashes: dict[str, str]
    """The plan's stage hashes: content-addressed directories are named by them."""
    cache_dir: Path | None = None
    """Where trained bases are cached (`pretrain.cache_dir`); None: `_bases` beside the workdir."""

    @property
    def lock_file(self) -> Path:
        return self.workdir / ".kdp-job.lock"

    def default_database_url(self) -> str:
        from kdplatform.store.db import default_url

        return default_url(self.workdir)

    def default_tracking_uri(self) -> str:
        from kdplatform.tracking import default_tracking_uri

        return default_tracking_uri(self.workdir)

    def data_dir(self, key: str = DATA_KEY) -> Path:
        return self.workdir / "data" / self.hashes[key]

    def hard_data_dir(self, key: str) -> Path:
        return self.workdir / "data_hard" / self.hashes[key]

    def checkpoint_dir(self, train_key: str) -> Path:
        return self.workdir / "checkpoints" / _flat(train_key)

    def state_dir(self, train_key: str) -> Path:
        out = self.checkpoint_dir(train_key)
        return out.with_name(out.name + ".state")

    @property
    def bases_dir(self) -> Path:
        return self.cache_dir if self.cache_dir is not None else self.workdir.parent / "_bases"

    def base_dir(self, pretrain_key: str) -> Path:
        """A trained base's cache directory, named by its stage hash (which no job's D is part of)."""
        return self.bases_dir / self.hashes[pretrain_key]

    def corpus_dir(self, digest: str) -> Path:
        return self.bases_dir / "corpus" / digest

    def scan_shards(self, scan_key: str) -> Path:
        """This config's shard directory; its parent (all configs of the stage) is removed after ingest."""
        return self.workdir / "scans" / _flat(scan_key) / self.hashes[scan_key]


def staging(out: Path) -> Path:
    """The sibling of `out` this process builds into before `publish` renames it into place."""
    return out.with_name(out.name + f".tmp-{os.getpid()}")


def publish(tmp: Path, out: Path) -> None:
    """Move a finished staging directory to its final name, replacing what an earlier attempt left."""
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)


@contextmanager
def building(out: Path) -> Iterator[Path]:
    """A fresh staging directory for `out`: published under `out` when the block finishes, removed if it
    raises (the one build-then-rename of the stages' directories)."""
    tmp = staging(out)
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        yield tmp
        publish(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
