"""The `classify` stage: predict, from what is known before distillation, which examples the student
memorizes (the paper's classifier), and store its trials, coefficients and per-example risk."""

from __future__ import annotations

from kdplatform.pipeline.context import StageContext
from kdplatform.store import db
from kdplatform.store.schema import InputKind, Run, RunInput


def run(ctx: StageContext) -> None:
    from kdplatform.analysis.classifier import ClassifierConfig, run_classifier, to_arrow
    from kdplatform.analysis.features import features

    c = ctx.spec.classifier
    cfg = ClassifierConfig(
        features=tuple(c.features),
        trials=c.trials,
        ratio=c.ratio,
        test_size=c.test_size,
        seed=c.seed,
        threshold=c.threshold,
    )
    ds = ctx.dataset()
    target = c.target
    df = features(ctx.engine, ctx.job_id, role=target)
    positives = int(df["student_memorized"].sum()) if len(df) else 0
    if positives < c.min_positives and c.fallback is not None:
        ctx.echo(
            f"       the {target} memorized {positives} examples (< classifier.min_positives = "
            f"{c.min_positives}): positives from the {c.fallback} instead (classifier.fallback)"
        )
        target = c.fallback
        df = features(ctx.engine, ctx.job_id, role=target)
    skipped = None
    try:
        res = run_classifier(df, cfg)
    except ValueError as e:
        skipped, res = f"skipped: {e}", None
    with ctx.session() as s, s.begin():
        if res is not None:
            for table, rows in to_arrow(res, ctx.run_id, ds.id).items():
                db.bulk_insert(s.connection(), table, rows)
        for dep in ctx.stage.deps:
            s.add(RunInput(run_id=ctx.run_id, kind=InputKind.SCAN, input_run_id=ctx.run_row(dep).id))
        run = s.get(Run, ctx.run_id)
        run.dataset_id, run.error = ds.id, skipped
        run.role = target  # whose memorization is the positive class: the target, or its fallback
        ctx.finish(s)
    if res is None:
        ctx.echo(f"       classifier {skipped}")
        return
    means = {
        f"{r.name}_mean": r.mean for r in res.summary.itertuples() if r.kind == "metric" and r.mean == r.mean
    }
    ctx.tracker.log_metrics(ctx.mlflow_id, means)
    auc = res.summary.set_index("name").loc["roc_auc", "mean"]
    n_pred = int(res.risk["predicted"].sum())
    ctx.echo(f"       {len(res.trials)} trials: ROC-AUC {auc:.3f}, {n_pred} predicted memorized")
