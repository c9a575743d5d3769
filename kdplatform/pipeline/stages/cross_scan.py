"""The `cross_scan` stage: one of this job's models scanned on another job's examples of D.

Example identity across jobs is the text: the other job's texts are re-tokenized by this job's tokenizer
and each one's first seq_len tokens scanned with this job's prefix length, by the one pass of `scan` (its
decisions are not audited). Each row also carries the text hash, and the zlib bits per token of the
source's memorization text (its prefix + suffix) under this tokenizer: the same bytes, other token counts.
Lineage: the model, the other job's dataset, and the other job's scans whose memorized sets chose the
examples. The rows and `done` commit in one transaction; a stage cut short is run again.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from sqlalchemy import text
from sqlalchemy.orm import Session

from kdplatform.pipeline.arrow import with_ids
from kdplatform.pipeline.context import StageContext
from kdplatform.pipeline.errors import StageFailed, kill_point
from kdplatform.store import db
from kdplatform.store.schema import InputKind, Run, RunInput, StageKind, Status

SCANNED = ["memorized", "match_len", "suffix_logprob", "suffix_entropy", "ppl"]

_SOURCE = """
SELECT e.example_id, e.text, e.prefix_text, e.suffix_text, e.text_hash
FROM examples e
WHERE e.dataset_id = :ds AND e.split = 'train' {only_memorized}
ORDER BY e.example_id
"""
_MEMORIZED = """AND EXISTS (
    SELECT 1 FROM memorized_examples m JOIN runs r ON r.id = m.run_id
    WHERE r.job_id = :job AND m.dataset_id = e.dataset_id AND m.example_id = e.example_id)"""


def source_rows(s: Session, job: str, examples: str) -> tuple[int, list[int], list[tuple]]:
    """(dataset id, finished scan run ids, example rows) of the job named `job`; StageFailed, saying what
    to run, when that job or its data (or, for `memorized`, any finished scan) is not in this database."""
    job_id = s.scalar(text("SELECT id FROM jobs WHERE name = :n"), {"n": job})
    if job_id is None:
        raise StageFailed(f"cross_scan: no job {job!r} in this database; run it first (same database_url)")
    ds = s.scalar(
        text("SELECT dataset_id FROM runs WHERE job_id = :j AND kind = :k AND status = :d"),
        {"j": job_id, "k": StageKind.DATA, "d": Status.DONE},
    )
    scans = list(
        s.scalars(
            text("SELECT id FROM runs WHERE job_id = :j AND kind = :k AND status = :d ORDER BY id"),
            {"j": job_id, "k": StageKind.SCAN, "d": Status.DONE},
        )
    )
    if ds is None or (examples == "memorized" and not scans):
        missing = "data stage" if ds is None else "scans"
        raise StageFailed(f"cross_scan: job {job!r} has not finished its {missing}; run it first")
    sql = _SOURCE.format(only_memorized=_MEMORIZED if examples == "memorized" else "")
    rows = s.execute(text(sql), {"ds": ds, "job": job_id}).all()
    return ds, scans, [tuple(r) for r in rows]


def windows(rows: list[tuple], tok, seq_len: int) -> tuple[np.ndarray, np.ndarray, pa.Table]:
    """This tokenizer's first `seq_len` tokens of each source text that has that many ([N, seq_len]), the
    kept row indices, and per kept row: example id, text hash, n_tokens and zlib bits per token of the
    source's memorization text under this tokenizer."""
    from kdplatform.memorization.text import zlib_bits_per_token_many

    if not rows:
        return np.zeros((0, seq_len), np.int64), np.zeros(0, np.int64), pa.table({})
    ids = tok([r[1] for r in rows], add_special_tokens=False)["input_ids"]
    keep = np.asarray([i for i, x in enumerate(ids) if len(x) >= seq_len], np.int64)
    tokens = np.asarray([ids[i][:seq_len] for i in keep], np.int64).reshape(-1, seq_len)
    mem = [rows[i][2] + rows[i][3] for i in keep]
    n_tok = np.asarray([len(x) for x in tok(mem, add_special_tokens=False)["input_ids"]] if mem else [])
    meta = pa.table(
        {
            "example_id": pa.array([rows[i][0] for i in keep], pa.int64()),
            "text_hash": pa.array([rows[i][4] for i in keep], pa.string()),
            "n_tokens": pa.array(n_tok, pa.int32()),
            "zlib_bits_per_token": pa.array(
                zlib_bits_per_token_many(mem, np.maximum(n_tok, 1)), pa.float64()
            ),
        }
    )
    return tokens, keep, meta


def run(ctx: StageContext) -> None:
    import torch

    from kdplatform.memorization.scan import ScanOptions, scan_with
    from kdplatform.models import load_frozen

    cfg, run_id = ctx.stage.config, ctx.run_id
    train_key = ctx.stage.deps[0]
    model_run, ck = ctx.final_checkpoint(train_key)
    own = ctx.dataset()
    with ctx.session() as s:
        ds, scans, rows = source_rows(s, cfg["job"], cfg["examples"])
    tokens, _, meta = windows(rows, ctx.tokenizer(), own.seq_len)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_frozen(ctx.checkpoint_dir(train_key), device)
    chunk = ctx.spec.scan.shard_size
    parts = []
    for start in range(0, len(tokens), chunk):
        batch = torch.from_numpy(tokens[start : start + chunk])
        res = scan_with(model, batch, own.prefix_len, ScanOptions(scores=False), batch_size=cfg["batch_size"])
        parts.append(pa.table({c: getattr(res, c) for c in SCANNED}))
        kill_point(f"shard:{ctx.stage.key}:{start // chunk}")
    scanned = pa.concat_tables(parts) if parts else pa.table({c: pa.array([], pa.float64()) for c in SCANNED})
    memorized = int(np.sum(scanned.column("memorized").to_numpy(zero_copy_only=False))) if parts else 0
    with ctx.session() as s, s.begin():
        if len(tokens):
            table = meta
            for c in SCANNED:
                table = table.append_column(c, scanned.column(c))
            db.bulk_insert(
                s.connection(),
                "cross_scan_results",
                with_ids(table, run_id=model_run, dataset_id=ds, scan_run_id=run_id),
            )
        s.add(RunInput(run_id=run_id, kind=InputKind.MODEL, input_run_id=model_run, checkpoint_id=ck))
        s.add(RunInput(run_id=run_id, kind=InputKind.DATASET, dataset_id=ds))
        for scan_run in scans:
            s.add(RunInput(run_id=run_id, kind=InputKind.SCAN, input_run_id=scan_run))
        s.get(Run, run_id).dataset_id = ds
        kill_point(f"ingest:{ctx.stage.key}")
        ctx.finish(s)
    skipped = len(rows) - len(tokens)
    short = f" ({skipped} texts shorter than {own.seq_len} tokens left out)" if skipped else ""
    ctx.tracker.log_metrics(ctx.mlflow_id, {"examples": len(tokens), "memorized": memorized})
    ctx.echo(f"       {cfg['job']}: memorized {memorized}/{len(tokens)} of its texts{short}")
