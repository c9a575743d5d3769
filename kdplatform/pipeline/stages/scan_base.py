"""The loss-only scan of a base (stage `scan/pretrain/<name>`, kind scan, role base): its mean NLL on
every member of D and every held-out non-member, stored in `example_losses` in one transaction with the
stage's `done`. It is the reference of the reference attack (the view membership_inference) for every
model fine-tuned from that base; nothing else of the scan is computed, as no view compares a base's
memorization."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from kdplatform.pipeline.arrow import with_ids
from kdplatform.pipeline.context import StageContext
from kdplatform.pipeline.datasets import HELDOUT_FILE
from kdplatform.pipeline.errors import kill_point
from kdplatform.pipeline.plan import PRETRAIN_PREFIX
from kdplatform.store import db


def run(ctx: StageContext) -> None:
    import torch

    from kdplatform.memorization.shards import file_losses
    from kdplatform.models import load_frozen
    from kdplatform.pipeline.stages.train import _base_checkpoint

    stage, cfg = ctx.stage, ctx.stage.config
    base_stage = stage.deps[0]
    name = base_stage.removeprefix(PRETRAIN_PREFIX)
    path, base_run, base_ck = _base_checkpoint(ctx, base_stage)
    base = ctx.spec.pretrain.bases[name]
    revision = base.model.revision if base.train is None else None
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_frozen(path, device, revision)  # bf16 on CUDA, logits upcast, as the scans
    ds = ctx.dataset()
    files = {"train": Path(ds.path) / "train.parquet", "heldout": Path(ds.path) / HELDOUT_FILE}
    means: dict[str, float] = {}
    with ctx.session() as s, s.begin():
        conn = s.connection()
        for split, file in files.items():
            if not file.exists():
                continue
            ids, loss = file_losses(
                model, file, seq_len=ds.seq_len, batch_size=cfg["batch_size"], shard_size=cfg["shard_size"]
            )
            means[split] = float(np.mean(loss)) if len(loss) else float("nan")
            rows = pa.table({"example_id": pa.array(ids, pa.int64()), "loss": pa.array(loss, pa.float64())})
            ids_ = {"run_id": base_run, "dataset_id": ds.id, "scan_run_id": ctx.run_id}
            db.bulk_insert(conn, "example_losses", with_ids(rows, **ids_))
        ctx.ran_model_on(s, ds.id, base_run, base_ck)
        kill_point(f"ingest:{stage.key}")
        ctx.finish(s)
    ctx.tracker.log_metrics(ctx.mlflow_id, {f"{split}_loss": v for split, v in means.items()})
    ctx.echo("       loss " + ", ".join(f"{v:.3f} on {split}" for split, v in means.items()))
