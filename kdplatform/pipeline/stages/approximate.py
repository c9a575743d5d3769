"""The optional `approximate` stage (scan.approximate_min_match): approximate memorization of one scanned
model's long matches, stored in `approximate_memorization` in one transaction with the stage's `done`.

The examples are the members of D whose scan (`scan_results.match_len`, audited) reproduced at least
`min_match` leading suffix tokens. A memorized one's greedy continuation is its suffix; the others' are
decoded with float32 `generate()` from the prefix. The scan's `greedy_continuations` cannot stand in: they
are the teacher-forced argmaxes, which equal the free continuation only up to its first mismatch, and the
free continuation after it is exactly what the partial-match measures are about.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import text

from kdplatform.pipeline.arrow import with_ids
from kdplatform.pipeline.context import StageContext
from kdplatform.pipeline.errors import kill_point
from kdplatform.store import db, views
from kdplatform.store.schema import InputKind, RunInput


def _long_matches(ctx: StageContext, model_run: int, dataset_id: int, min_match: int) -> dict[int, int]:
    """example_id -> match_len of the members of D the model's scan matched for >= min_match tokens."""
    sql = (
        f"SELECT s.example_id, s.match_len FROM ({views.part('member_scan_results')}) s "
        "WHERE s.run_id = :r AND s.dataset_id = :d AND s.match_len >= :m"
    )
    with ctx.engine.connect() as conn:
        rows = conn.execute(text(sql), {"r": model_run, "d": dataset_id, "m": min_match}).all()
    return {int(e): int(m) for e, m in rows}


def _tokens(path: Path, ids: list[int], seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows of `ids` from an examples file, in file order: ids [n] and their first seq_len tokens."""
    if not ids:
        return np.zeros(0, np.int64), np.zeros((0, seq_len), np.int64)
    t = pq.read_table(path, columns=["example_id", "tokens"], filters=[("example_id", "in", ids)])
    col = t.column("tokens").combine_chunks()
    tokens = col.flatten().to_numpy(zero_copy_only=False).reshape(len(t), col.type.list_size)
    return t.column("example_id").to_numpy(), np.ascontiguousarray(tokens[:, :seq_len]).astype(np.int64)


def run(ctx: StageContext) -> None:
    import torch

    from kdplatform.memorization import approximate_match, greedy_reference
    from kdplatform.models import load_pretrained

    stage = ctx.stage
    train_key, scan_key = stage.deps[0], stage.deps[1]
    model_run, ck = ctx.final_checkpoint(train_key)
    scan_run = ctx.run_row(scan_key).id
    ds = ctx.dataset()
    matches = _long_matches(ctx, model_run, ds.id, stage.config["min_match"])
    ids, tokens = _tokens(Path(ds.path) / "train.parquet", sorted(matches), ds.seq_len)
    suffix = tokens[:, ds.prefix_len :]
    match_len = np.array([matches[int(i)] for i in ids], dtype=np.int64)
    continuation = suffix.copy()  # memorized: the continuation is the suffix
    partial = match_len < suffix.shape[1]
    if partial.any():
        device = "cuda" if torch.cuda.is_available() else "cpu"
        model = load_pretrained(ctx.checkpoint_dir(train_key)).requires_grad_(False).to(device).eval()
        res = greedy_reference(
            model, torch.from_numpy(tokens[partial]), ds.prefix_len, batch_size=stage.config["batch_size"]
        )
        continuation[partial] = res.greedy_tokens
    token_match, edit = approximate_match(continuation, suffix)
    rows = pa.table(
        {
            "example_id": pa.array(ids, pa.int64()),
            "match_len": pa.array(match_len, pa.int32()),
            "token_match": pa.array(token_match, pa.float64()),
            "edit_distance": pa.array(edit, pa.float64()),
        }
    )
    with ctx.session() as s, s.begin():
        ids_ = {"run_id": model_run, "dataset_id": ds.id, "scan_run_id": ctx.run_id}
        db.bulk_insert(s.connection(), "approximate_memorization", with_ids(rows, **ids_))
        ctx.ran_model_on(s, ds.id, model_run, ck)
        s.add(RunInput(run_id=ctx.run_id, kind=InputKind.SCAN, input_run_id=scan_run))
        kill_point(f"ingest:{stage.key}")
        ctx.finish(s)
    mean = float(pc.mean(rows.column("token_match")).as_py() or 0.0) if len(ids) else float("nan")
    ctx.tracker.log_metrics(ctx.mlflow_id, {"approximate_examples": len(ids), "token_match_mean": mean})
    ctx.echo(
        f"       {len(ids)} long matches (>= {stage.config['min_match']} tokens), {int(partial.sum())} "
        f"decoded; mean token match {mean:.3f}"
    )
