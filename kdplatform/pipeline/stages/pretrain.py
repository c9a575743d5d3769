"""The `pretrain` stage: one base of `pretrain.bases`, pretrained with cross-entropy on the corpus in D's
tokenizer, or a hub checkpoint or local path standing in for one (used as it is).

A trained base lives in the cache (`pipeline.bases`), not the workdir: a rerun, or another job with the
same corpus, base and tokenizer, reuses it without training. Either way the base is this job's run (role
base, its model and checkpoint rows), which the train stages starting from it name as their BASE input.

Its checkpoint rows' `val_loss` is on D's validation split, as every other run's, so a base's loss is
comparable with the fine-tuned models' in SQL: pretraining validates on this job's D val after each epoch
(no decision reads it), and a base reused from the cache records one final row measured on this job's D.
The loss on the corpus's held-out windows goes to MLflow (`code_val_loss`) and the cache's base.json.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import asdict, replace
from pathlib import Path

from kdplatform.pipeline.bases import check_tokenizer, code_windows, publish_base, read_base, tokenizer_digest
from kdplatform.pipeline.context import StageContext, now
from kdplatform.pipeline.datasets import dataset_row
from kdplatform.pipeline.layout import staging
from kdplatform.pipeline.plan import PRETRAIN_PREFIX
from kdplatform.pipeline.records import checkpoint_rows, epoch_logger, model_row, register_model
from kdplatform.spec import BaseSpec
from kdplatform.store.schema import Dataset, InputKind, Run, RunInput

EVAL_BATCH = 16


def run(ctx: StageContext) -> None:
    import torch

    from kdplatform.models import load_frozen
    from kdplatform.train.loop import EpochStats
    from kdplatform.train.validate import evaluate

    stage = ctx.stage
    name = stage.key.removeprefix(PRETRAIN_PREFIX)
    base = ctx.spec.pretrain.bases[name]
    ds, tok = ctx.dataset(), ctx.tokenizer()
    tok_digest = tokenizer_digest(Path(ds.path) / "tokenizer")
    seq_len = ctx.spec.data.training_len
    corpus = code_windows(ctx.layout, ctx.spec.pretrain.corpus, tok, tok_digest, seq_len, ctx.echo)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    val = ctx.tokens("val")
    if base.train is None:
        path, revision = base.model.name, base.model.revision
        model = load_frozen(path, device, revision)
        data_val = evaluate(model, val, EVAL_BATCH, device)
        code_val = evaluate(model, corpus.val, EVAL_BATCH, device)
        epochs = [EpochStats(0, math.nan, data_val, _ppl(data_val), 0, 0.0)]  # never trained here
        ctx.echo(f"       stands in as it is: {path}" + (f" at {revision}" if revision else ""))
    else:
        out = ctx.layout.base_dir(stage.key)
        record, trained = read_base(out), False
        if record is not None:
            check_tokenizer(record, out, tok_digest)
            ctx.echo(f"       reused cached base {out} (trained in {record['seconds']:.0f} s)")
        else:
            record, trained = _train(ctx, base, corpus, val, tok_digest, out), True
        path, epochs = str(out), [EpochStats(**e) for e in record["epochs"]]
        model = load_frozen(out, device, dtype=torch.float32)  # tiny: evaluated as it was trained
        data_val, code_val = evaluate(model, val, EVAL_BATCH, device), record["code_val_loss"]
        if not trained:  # the cached epochs were validated on another job's D: one row on this one's
            epochs = [replace(epochs[-1], val_loss=data_val, val_ppl=_ppl(data_val))]
    model_id = register_model(
        ctx,
        path,
        epochs[-1],
        ds,
        {"code_val_loss": code_val, "data_val_loss": data_val, "data_val_ppl": _ppl(data_val)},
    )
    with ctx.session() as s, s.begin():
        code = dataset_row(
            s,
            corpus.digest,
            lambda _: None,  # the corpus's texts are never scanned: no `examples` rows
            lambda: Dataset(
                name=f"code:{ctx.spec.pretrain.corpus.source}",
                digest=corpus.digest,
                source=ctx.spec.pretrain.corpus.source,
                tokenizer=ds.tokenizer,
                vocab_size=ds.vocab_size,
                seq_len=seq_len,
                prefix_len=0,
                num_train=len(corpus.train),
                num_val=len(corpus.val),
                path=str(corpus.path),
                created_at=now(),
            ),
        )
        m = model_row(s, base.model.preset or base.model.name, base.model.revision, model)
        run = s.get(Run, ctx.run_id)
        run.model_id, run.dataset_id = m.id, code.id
        s.add_all(checkpoint_rows(ctx.run_id, epochs, path, model_id))
        s.add(RunInput(run_id=ctx.run_id, kind=InputKind.DATASET, dataset_id=code.id))
        ctx.finish(s)
    ctx.echo(
        f"       base {name}: val loss {data_val:.3f} on D (ppl {_ppl(data_val):.1f}), "
        f"{code_val:.3f} on the corpus"
    )


def _ppl(loss: float) -> float:
    return math.exp(min(loss, 50.0))


def _train(ctx: StageContext, base: BaseSpec, corpus, val, tok_digest: str, out: Path) -> dict:
    """Pretrain the base into a staging directory, validating on D's val split `val` after each epoch, then
    publish it with its record (which also holds the loss on the corpus's held-out windows)."""
    from kdplatform.models import load_model
    from kdplatform.train.loop import train
    from kdplatform.train.validate import evaluate

    stage = ctx.stage
    vocab = ctx.dataset().vocab_size
    model = load_model(base.model, vocab_size=vocab, max_positions=corpus.train.shape[1], seed=stage.seed)
    if model.get_input_embeddings().weight.shape[0] < vocab:
        raise ValueError(
            f"{stage.key}: model embedding table ({model.get_input_embeddings().weight.shape[0]}) "
            f"is smaller than the tokenizer's vocabulary ({vocab})"
        )
    tmp = staging(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        res = train(
            model,
            corpus.train,
            val,
            base.train,
            seed=stage.seed,
            out_dir=tmp,
            on_epoch=epoch_logger(ctx, base.train.epochs),
            desc=stage.key,
            state_dir=ctx.layout.state_dir(stage.key),
            stage_hash=ctx.plan.hashes[stage.key],
        )
        if res.discarded_state:
            ctx.echo(f"       starts fresh: {res.discarded_state}")
        record = {
            "config": stage.config,
            "stage_hash": ctx.plan.hashes[stage.key],
            "tokenizer": tok_digest,
            "corpus": corpus.digest,
            "code_val_loss": evaluate(model, corpus.val, EVAL_BATCH, model.device),
            "seconds": res.seconds,
            "tokens": res.tokens,
            "tokens_per_s": res.tokens_per_s,
            "epochs": [asdict(e) for e in res.epochs],
        }
        publish_base(tmp, out, record)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ctx.tracker.log_metrics(
        ctx.mlflow_id, {"tokens_per_s": res.tokens_per_s, "pretrain_seconds": res.seconds}
    )
    ctx.echo(f"       cached base {out} ({res.seconds:.0f} s, {res.tokens_per_s:.0f} tok/s)")
    return record
