"""The `eval` stage: one trained model's lm-evaluation-harness scores on the job's `eval:` tasks, stored in
eval_results with the stage's `done` in one transaction (a killed evaluation is run again whole), with a
`model` input edge to the evaluated run's final checkpoint, as a scan has."""

from __future__ import annotations

import math

from kdplatform.pipeline.arrow import with_ids
from kdplatform.pipeline.context import StageContext
from kdplatform.pipeline.errors import kill_point
from kdplatform.store import db
from kdplatform.store.schema import InputKind, RunInput


def run(ctx: StageContext) -> None:
    import torch

    from kdplatform.evaluation.harness import evaluate
    from kdplatform.models import load_frozen

    stage = ctx.stage
    train_key = stage.deps[0]
    model_run, ck = ctx.final_checkpoint(train_key)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_frozen(ctx.checkpoint_dir(train_key), device)  # bf16 on CUDA; lm-eval softmaxes in fp32
    rows = evaluate(model, ctx.tokenizer(), ctx.spec.eval, echo=ctx.echo)
    with ctx.session() as s, s.begin():
        db.bulk_insert(
            s.connection(), "eval_results", with_ids(rows, run_id=model_run, eval_run_id=ctx.run_id)
        )
        s.add(RunInput(run_id=ctx.run_id, kind=InputKind.MODEL, input_run_id=model_run, checkpoint_id=ck))
        kill_point(f"ingest:{stage.key}")
        ctx.finish(s)
    metrics = {
        f"{r['task']}.{r['metric']}.{r['num_fewshot']}shot".replace(",", "."): r["value"]
        for r in rows.to_pylist()
        if math.isfinite(r["value"])
    }
    ctx.tracker.log_metrics(ctx.mlflow_id, metrics)
    model_mlflow = ctx.run_row(train_key).mlflow_run_id
    if model_mlflow:
        ctx.tracker.log_metrics(model_mlflow, {f"eval.{k}": v for k, v in metrics.items()})
