"""The `canary` stage: one trained model on the canaries of D (data.canaries), after its scan. Each
canary's exact greedy extraction comes from the scan's one pass over its window (kdplatform.memorization.
scan), its exposure from ranking the true secret among the spec's alternatives (memorization.exposure);
the rows go to `canary_results` in bulk, in one transaction with the stage's `done`. Canaries are kept out
of scan_results, so the views of D's natural examples never count them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from kdplatform.pipeline.arrow import with_ids
from kdplatform.pipeline.context import StageContext
from kdplatform.store import db


def run(ctx: StageContext) -> None:
    import torch

    from kdplatform.data.canaries import CANARY_FILE, Canaries, alternatives, digit_ids
    from kdplatform.memorization import ScanOptions, scan_with
    from kdplatform.memorization.exposure import exposure, secret_logprobs
    from kdplatform.models import load_frozen, logit_width

    train_key, spec = ctx.stage.deps[0], ctx.spec.data.canaries
    model_run, ck = ctx.final_checkpoint(train_key)
    ds = ctx.dataset()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_frozen(ctx.checkpoint_dir(train_key), device)
    canaries = Canaries.read(Path(ds.path) / CANARY_FILE)
    windows = torch.as_tensor(canaries.examples.tokens[:, : ds.seq_len])
    vocab = min(ds.vocab_size, logit_width(model))
    res = scan_with(model, windows, ds.prefix_len, ScanOptions(scores=False), vocab_size=vocab)
    digits, k = digit_ids(ctx.tokenizer()), spec.secret_len
    ranks, exposures = [], []
    for i, (example_id, secret) in enumerate(
        zip(canaries.examples.example_ids, canaries.secrets, strict=True)
    ):
        candidates = np.concatenate(
            [windows[i, -k:].numpy()[None], digits[alternatives(spec, example_id, secret)]]
        )
        lp = secret_logprobs(model, windows[i, :-k], torch.as_tensor(candidates), vocab_size=vocab)
        rank, exp = exposure(lp[0], lp[1:])
        ranks.append(rank)
        exposures.append(exp)
    rows = pa.table(
        {
            "example_id": pa.array(canaries.examples.example_ids, pa.int64()),
            "memorized": pa.array(np.asarray(res.memorized, dtype=bool)),
            "match_len": pa.array(np.asarray(res.match_len), pa.int32()),
            "suffix_logprob": pa.array(np.asarray(res.suffix_logprob), pa.float64()),
            "rank": pa.array(ranks, pa.int32()),
            "alternatives": pa.array(np.full(len(canaries), spec.alternatives), pa.int32()),
            "exposure": pa.array(exposures, pa.float64()),
        }
    )
    with ctx.session() as s, s.begin():
        ids = {"run_id": model_run, "dataset_id": ds.id, "scan_run_id": ctx.run_id}
        db.bulk_insert(s.connection(), "canary_results", with_ids(rows, **ids))
        ctx.ran_model_on(s, ds.id, model_run, ck)
        ctx.finish(s)
    mem, exp = np.asarray(res.memorized, dtype=bool), np.asarray(exposures)
    ctx.tracker.log_metrics(
        ctx.mlflow_id, {"canaries_memorized": int(mem.sum()), "mean_exposure": exp.mean()}
    )
    counts = (
        f"x{c}: {mem[canaries.copies == c].sum()}/{(canaries.copies == c).sum()} "
        f"({exp[canaries.copies == c].mean():.1f} bits)"
        for c in spec.counts
    )
    top = np.log2(spec.alternatives + 1)
    ctx.echo(
        f"       canaries memorized by copies (mean exposure of at most {top:.1f} bits): " + ", ".join(counts)
    )
