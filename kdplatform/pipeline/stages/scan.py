"""The `scan` stage: a trained model's discoverable memorization, features and membership-inference
scores on every example of D and on the held-out non-members, written as Parquet shards, then ingested in
one transaction with the stage's `done`. The held-out split is scanned with the same distribution support
(vocab_size) as D, without the teacher's KL, greedy continuations or the audit: no view counts its
memorization beside D's. A base's scan (role base, `scan/pretrain/<name>`) is its loss alone:
:mod:`.scan_base`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Connection

from kdplatform.pipeline.arrow import with_ids
from kdplatform.pipeline.context import StageContext
from kdplatform.pipeline.datasets import HELDOUT_FILE
from kdplatform.pipeline.errors import kill_point
from kdplatform.pipeline.plan import TEACHER_KEY
from kdplatform.pipeline.scan_scores import SCORE_COLUMNS, extraction_rows, prefix_rows
from kdplatform.pipeline.stages import scan_base
from kdplatform.store import db
from kdplatform.store.schema import InputKind, Role, RunInput, ScanAudit

SCAN_COLUMNS = [
    "example_id",
    "memorized",
    "match_len",
    "suffix_logprob",
    "suffix_entropy",
    "ppl",
    "min_margin",
    *SCORE_COLUMNS,
]


def run(ctx: StageContext) -> None:
    if ctx.stage.role == Role.BASE:  # a base: its loss alone, the reference attack's calibration
        scan_base.run(ctx)
        return
    import torch

    from kdplatform.memorization.audit import AuditConfig
    from kdplatform.memorization.scan import ScanOptions
    from kdplatform.memorization.shards import read_audits, scan_to_shards
    from kdplatform.models import load_frozen, load_pretrained, logit_width

    stage, run_id = ctx.stage, ctx.run_id
    train_key = stage.deps[0]
    model_run, ck = ctx.final_checkpoint(train_key)
    ds = ctx.dataset()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_frozen(ctx.checkpoint_dir(train_key), device)  # bf16 on CUDA, logits upcast
    reference, ref_run = None, None
    if TEACHER_KEY in stage.deps[1:]:
        ref_run, _ = ctx.final_checkpoint(TEACHER_KEY)
        reference = load_frozen(ctx.checkpoint_dir(TEACHER_KEY), device)
    sc = ctx.spec.scan
    # Near-ties are re-decided by float32 generate() of the checkpoint itself (saved as fp32 master
    # weights), not of an upcast copy of the half-precision weights the scan ran in.
    generator = None
    if next(model.parameters()).dtype != torch.float32:
        generator = load_pretrained(ctx.checkpoint_dir(train_key)).requires_grad_(False).to(device).eval()
    shard_dir = ctx.layout.scan_shards(stage.key)
    options = ScanOptions()
    vocab = None if reference is None else min(logit_width(model), logit_width(reference))
    shards = scan_to_shards(
        model,
        Path(ds.path) / "train.parquet",
        shard_dir,
        ds.prefix_len,
        seq_len=ds.seq_len,
        reference=reference,
        batch_size=sc.batch_size,
        shard_size=sc.shard_size,
        greedy_min_match=sc.store_greedy_min_match,
        on_shard=lambda i: kill_point(f"shard:{stage.key}:{i}"),
        audit=AuditConfig(threshold=sc.audit_threshold, sample=sc.audit_sample),
        audit_generator=generator,
        options=options,
        vocab_size=vocab,
    )
    heldout_file, heldout = Path(ds.path) / HELDOUT_FILE, []
    if heldout_file.exists():
        heldout = scan_to_shards(
            model,
            heldout_file,
            shard_dir / "heldout",
            ds.prefix_len,
            seq_len=ds.seq_len,
            batch_size=sc.batch_size,
            shard_size=sc.shard_size,
            on_shard=lambda i: kill_point(f"shard:{stage.key}:heldout:{i}"),
            options=options,
            vocab_size=vocab,
        )
    audit = read_audits(shards)
    tok = ctx.tokenizer()
    n = memorized = 0
    ids = {"run_id": model_run, "dataset_id": ds.id, "scan_run_id": run_id}
    with ctx.session() as s, s.begin():
        conn = s.connection()
        for path in shards:
            t = pq.read_table(path)
            n += t.num_rows
            memorized += int(pc.sum(t.column("memorized")).as_py() or 0)
            _insert_scan_rows(conn, t, ds.prefix_len, options.extraction, ids)
            if reference is not None:
                kld = t.select(["example_id", "kld"])
                db.bulk_insert(conn, "example_kld", with_ids(kld, **ids, reference_run_id=ref_run))
            if "greedy_tokens" in t.column_names:
                _insert_greedy(conn, t, tok, run_id=model_run, scan_run_id=run_id)
        for path in heldout:
            _insert_scan_rows(conn, pq.read_table(path), ds.prefix_len, options.extraction, ids)
        ctx.ran_model_on(s, ds.id, model_run, ck)
        if ref_run is not None:
            s.add(RunInput(run_id=run_id, kind=InputKind.REFERENCE, input_run_id=ref_run))
        if audit is not None:
            s.add(ScanAudit(scan_run_id=run_id, run_id=model_run, **audit))
        kill_point(f"ingest:{stage.key}")
        ctx.finish(s)
    shutil.rmtree(shard_dir.parent, ignore_errors=True)
    rate = 100.0 * memorized / max(n, 1)
    ctx.tracker.log_metrics(ctx.mlflow_id, {"memorization_rate_pct": rate, "memorized": memorized})
    model_mlflow = ctx.run_row(train_key).mlflow_run_id
    if model_mlflow:
        rate_pct = {"memorization_rate_pct": rate}
        ctx.tracker.log_metrics(model_mlflow, rate_pct, model_id=ctx.model_id(train_key))
    ctx.echo(f"       memorized {memorized}/{n} = {rate:.2f}%")
    if audit is not None:
        ctx.echo(
            f"       audit ({audit['scan_dtype']}): {audit['checked']} re-decided by float32 generate() "
            f"({audit['near_ties']} near-ties, {audit['sampled']} sampled), {audit['disagreements']} "
            f"disagreed; memorized {audit['memorized_before']} -> {audit['memorized_after']}"
        )


def _insert_scan_rows(
    conn: Connection, shard: pa.Table, prefix_len: int, settings, ids: dict[str, int]
) -> None:
    """A shard's scan_results rows and its scores' long tables (extraction_scores, prefix_memorization)."""
    db.bulk_insert(conn, "scan_results", with_ids(shard.select(SCAN_COLUMNS), **ids))
    for table, rows in (
        ("extraction_scores", extraction_rows(shard, settings)),
        ("prefix_memorization", prefix_rows(shard, prefix_len)),
    ):
        if rows is not None:
            db.bulk_insert(conn, table, with_ids(rows, **ids))


def _insert_greedy(conn: Connection, shard: pa.Table, tok, **ids: int) -> None:
    """The greedy continuations a shard kept (near-memorized examples), as token ids and decoded text."""
    g = shard.filter(pc.is_valid(shard.column("greedy_tokens"))).select(["example_id", "greedy_tokens"])
    seqs = g.column("greedy_tokens").to_pylist()
    rows = pa.table(
        {
            "example_id": g.column("example_id"),
            "tokens": pa.array([" ".join(map(str, q)) for q in seqs], pa.string()),
            "text": pa.array(tok.batch_decode(seqs) if seqs else [], pa.string()),
        }
    )
    db.bulk_insert(conn, "greedy_continuations", with_ids(rows, **ids))
