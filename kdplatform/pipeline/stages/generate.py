"""The `generate` stage: D_hard, each training example's true prefix followed by the teacher's greedy
continuation to the training length (the paper's section 6: 206 tokens after a 50-token prefix, 256 in all),
the training data of the hard-label student."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kdplatform.pipeline.context import StageContext, now
from kdplatform.pipeline.datasets import dataset_row, file_digest, insert_examples
from kdplatform.pipeline.layout import building
from kdplatform.pipeline.plan import TEACHER_KEY
from kdplatform.spec import hash_config
from kdplatform.store.schema import Dataset, InputKind, Run, RunInput
from kdplatform.tracking import GENERATED


def run(ctx: StageContext) -> None:
    import torch

    from kdplatform.data.canaries import CANARY_FILE, CANARY_SPLIT
    from kdplatform.data.examples import Examples
    from kdplatform.models import load_frozen, logit_width
    from kdplatform.train.hard_data import generate_hard_data

    src = ctx.dataset()
    t_run, t_ck = ctx.final_checkpoint(TEACHER_KEY)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    teacher = load_frozen(ctx.checkpoint_dir(TEACHER_KEY), device)  # bf16 on CUDA; argmax on fp32 logits
    # The argmax skips the teacher's padding columns: every generated id is a token of the tokenizer,
    # which every student of the job can embed (the stage's config says so: argmax_vocab).
    vocab = min(src.vocab_size, logit_width(teacher))
    out = ctx.layout.hard_data_dir(ctx.stage.key)
    files = ["train.parquet"] + ([CANARY_FILE] if (Path(src.path) / CANARY_FILE).exists() else [])
    with building(out) as tmp:
        for name in files:  # D's canaries too: the hard student sees the teacher's version of them
            writer = None
            for batch in pq.ParquetFile(Path(src.path) / name).iter_batches(
                batch_size=ctx.spec.scan.shard_size
            ):
                ex = Examples.from_arrow(pa.Table.from_batches([batch]).select(["example_id", "tokens"]))
                hard = generate_hard_data(
                    teacher, torch.as_tensor(ex.tokens), src.prefix_len, vocab_size=vocab
                )
                table = Examples(ex.example_ids, np.asarray(hard, dtype=np.int64)).to_arrow()
                writer = writer or pq.ParquetWriter(tmp / name, table.schema)
                writer.write_table(table)
            writer.close()
    digest = hash_config(
        {
            "hard_from": src.digest,
            "teacher_ck": ctx.plan.hashes[TEACHER_KEY],
            "tokens": file_digest(out / "train.parquet"),
        }
    )
    tok = ctx.tokenizer()
    with ctx.session() as s, s.begin():

        def fill(ds: Dataset) -> None:
            insert_examples(s, ds.id, out / "train.parquet", tok, src.prefix_len, "train", src.seq_len)
            if CANARY_FILE in files:
                insert_examples(s, ds.id, out / CANARY_FILE, tok, src.prefix_len, CANARY_SPLIT, src.seq_len)

        ds = dataset_row(
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
                created_at=now(),
            ),
        )
        ds.path = str(out)
        s.get(Run, ctx.run_id).dataset_id = ds.id
        s.add(RunInput(run_id=ctx.run_id, kind=InputKind.DATASET, dataset_id=src.id))
        s.add(RunInput(run_id=ctx.run_id, kind=InputKind.TEACHER, input_run_id=t_run, checkpoint_id=t_ck))
        ctx.finish(s)
    ctx.tracker.log_dataset(ctx.mlflow_id, f"{src.name}:hard", str(out), digest, context=GENERATED)
    ctx.echo(f"       generated {src.num_train} teacher continuations")
