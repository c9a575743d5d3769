"""Scan a dataset file into Parquet shards: bounded memory, resumable, split across processes.

Examples are read `shard_size` at a time; each shard's results go to `part-NNNNN.parquet` (written to a
temporary name, then renamed), so a killed scan resumes at the first missing shard and memory does not grow
with the dataset. Under `accelerate launch`, process r of w scans shards r, r + w, ...; the union of the
shards is the same table as one process writes.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from tqdm.auto import tqdm

from kdplatform.memorization.audit import AuditConfig, audit_scan
from kdplatform.memorization.scan import ScanOptions, scan_with


def shard_path(out_dir: Path, index: int) -> Path:
    return Path(out_dir) / f"part-{index:05d}.parquet"


def audit_path(shard: Path) -> Path:
    """The audit record written beside a shard (before the shard itself, so a shard implies its record)."""
    return Path(shard).with_suffix(".audit.json")


def read_audits(shards: list[Path]) -> dict[str, int | float | str] | None:
    """The audit records of `shards` summed into one (None when the scan was not audited)."""
    records = [json.loads(audit_path(p).read_text()) for p in shards if audit_path(p).exists()]
    if not records:
        return None
    total: dict[str, int | float | str] = {
        k: sum(r[k] for r in records) for k in records[0] if isinstance(records[0][k], int)
    }
    return total | {"threshold": records[0]["threshold"], "scan_dtype": records[0]["scan_dtype"]}


def n_shards(examples_path: Path, shard_size: int) -> int:
    rows = pq.ParquetFile(examples_path).metadata.num_rows
    return max(1, -(-rows // shard_size))


def _read_shard(pf: pq.ParquetFile, index: int, shard_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows [index * shard_size, (index + 1) * shard_size) of an examples file: ids [n] and tokens [n, L]."""
    start, stop = index * shard_size, (index + 1) * shard_size
    ids, toks, seen = [], [], 0
    for batch in pf.iter_batches(batch_size=min(shard_size, 65_536), columns=["example_id", "tokens"]):
        lo, hi = max(start - seen, 0), min(stop - seen, batch.num_rows)
        seen += batch.num_rows
        if hi <= lo:
            if seen >= stop:
                break
            continue
        part = batch.slice(lo, hi - lo)
        col = part.column("tokens")
        width = col.type.list_size
        ids.append(part.column("example_id").to_numpy())
        toks.append(col.flatten().to_numpy(zero_copy_only=False).reshape(-1, width))
        if seen >= stop:
            break
    return np.concatenate(ids), np.concatenate(toks).astype(np.int64)


def scan_to_shards(
    model,
    examples_path: Path,
    out_dir: Path,
    prefix_len: int,
    *,
    seq_len: int | None = None,
    reference=None,
    batch_size: int | None = None,
    shard_size: int = 50_000,
    greedy_min_match: int | None = None,
    rank: int = 0,
    world_size: int = 1,
    on_shard: Callable[[int], None] | None = None,
    audit: AuditConfig | None = None,
    audit_generator=None,
    options: ScanOptions | None = None,
    vocab_size: int | None = None,
) -> list[Path]:
    """Scan this process's shards of `examples_path` (missing ones only) and return their paths.

    Each row's first `seq_len` tokens are scanned (prefix + suffix: the memorization window, shorter than
    the training windows when the job sets `data.train_len`); None scans whole rows.

    Greedy continuations are kept (as a list column) only for examples with match_len >=
    `greedy_min_match`; None stores none. With `audit`, each shard's near-ties and a random sample (seeded
    by the shard index) are re-decided with float32 generate() (`audit_generator`, default a float32 copy
    of a half-precision `model`): the shard then stores the resolved decisions, `audited` and
    `audit_disagreed` per example, and its audit record beside it (:func:`read_audits`). `options` chooses
    the scores (prefix lengths, extraction settings); each shard stores :meth:`ScanResult.score_columns`.
    `vocab_size` fixes the support of the distributions (default: the smaller logit width of `model` and
    `reference`): a second file scanned without the reference gets the same one through it.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pf = pq.ParquetFile(examples_path)
    mine = [i for i in range(n_shards(examples_path, shard_size)) if i % world_size == rank]
    todo = [i for i in mine if not shard_path(out_dir, i).exists()]
    half = next(model.parameters()).dtype != torch.float32
    if todo and audit is not None and audit_generator is None and half:
        audit_generator = copy.deepcopy(model).float()  # made once, not per shard
    for index in tqdm(todo, desc="scan shards", unit="shard", disable=None if rank == 0 else True):
        ids, tokens = _read_shard(pf, index, shard_size)
        tokens = np.ascontiguousarray(tokens[:, :seq_len])  # the one place scanning cuts the window
        res = scan_with(
            model,
            torch.from_numpy(tokens),
            prefix_len,
            options or ScanOptions(),
            batch_size=batch_size,
            reference=reference,
            vocab_size=vocab_size,
            return_greedy=greedy_min_match is not None,
        )
        record = None
        if audit is not None:
            cfg = replace(audit, seed=audit.seed + 1_000_003 * index)
            res, checked = audit_scan(
                model, torch.from_numpy(tokens), prefix_len, res, config=cfg, generator=audit_generator
            )
            record = checked.record()
        cols = {
            "example_id": pa.array(ids, pa.int64()),
            "memorized": pa.array(res.memorized, pa.bool_()),
            "match_len": pa.array(res.match_len, pa.int32()),
            "suffix_logprob": pa.array(res.suffix_logprob, pa.float64()),
            "suffix_entropy": pa.array(res.suffix_entropy, pa.float64()),
            "ppl": pa.array(res.ppl, pa.float64()),
            "min_margin": pa.array(res.min_margin, pa.float64()),
        }
        if record is not None:
            cols["audited"] = pa.array(np.isin(np.arange(len(ids)), checked.checked), pa.bool_())
            cols["audit_disagreed"] = pa.array(np.isin(np.arange(len(ids)), checked.disagreed), pa.bool_())
        if res.kld is not None:
            cols["kld"] = pa.array(res.kld, pa.float64())
        for name, values in res.score_columns().items():
            cols[name] = pa.array(values, pa.bool_() if values.dtype == bool else pa.float64())
        if res.greedy_tokens is not None:
            keep = res.match_len >= greedy_min_match
            cols["greedy_tokens"] = pa.array(
                [row.tolist() if k else None for row, k in zip(res.greedy_tokens, keep, strict=True)],
                pa.list_(pa.int32()),
            )
        final = shard_path(out_dir, index)
        tmp = final.with_name(final.name + f".tmp-{os.getpid()}")
        if record is not None:
            audit_path(final).write_text(json.dumps(record))
        pq.write_table(pa.table(cols), tmp)
        tmp.rename(final)
        if on_shard is not None:
            on_shard(index)
    return [shard_path(out_dir, i) for i in mine]


def file_losses(
    model,
    examples_path: Path,
    *,
    seq_len: int | None = None,
    batch_size: int | None = None,
    shard_size: int = 50_000,
) -> tuple[np.ndarray, np.ndarray]:
    """(example ids, mean NLL) of every row of an examples file, its first `seq_len` tokens, read
    `shard_size` rows at a time: the loss-only pass of a reference model (:func:`~.losses.example_losses`).
    Two floats per example stay in memory, so no shard files are written."""
    from kdplatform.memorization.losses import example_losses

    pf = pq.ParquetFile(examples_path)
    ids, losses = [], []
    for index in range(n_shards(examples_path, shard_size)):
        shard_ids, tokens = _read_shard(pf, index, shard_size)
        tokens = np.ascontiguousarray(tokens[:, :seq_len])
        ids.append(shard_ids)
        losses.append(example_losses(model, torch.from_numpy(tokens), batch_size=batch_size))
    return np.concatenate(ids), np.concatenate(losses)
