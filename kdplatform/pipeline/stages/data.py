"""The `data` stage: D, the tokenized training and validation examples, and the held-out non-members,
built from the spec's corpus."""

from __future__ import annotations

from collections.abc import Callable

from kdplatform.pipeline.arrow import with_ids
from kdplatform.pipeline.context import StageContext, now
from kdplatform.pipeline.datasets import (
    HELDOUT_FILE,
    HELDOUT_SPLIT,
    array_digest,
    dataset_row,
    insert_examples,
)
from kdplatform.pipeline.errors import DataError
from kdplatform.pipeline.layout import Layout, building
from kdplatform.spec import JobSpec, hash_config
from kdplatform.store import db
from kdplatform.store.schema import Dataset, InputKind, Run, RunInput


def prepare_data(spec: JobSpec, layout: Layout, echo: Callable[[str], None]) -> None:
    """Build D's files (tokenizer, train/val/heldout Parquet) before anything is written to the database, so
    a corpus too small for the spec fails cleanly; content-addressed, so a rerun finds them done."""
    from kdplatform.data.canaries import CANARY_FILE, make_canaries
    from kdplatform.data.corpus import load_documents
    from kdplatform.data.examples import (
        heldout_split,
        load_tokenizer,
        make_windows,
        split_examples,
        train_tokenizer,
    )

    out = layout.data_dir()
    if (out / "train.parquet").exists():
        return
    d = spec.data
    n = f"{d.num_examples}+{d.val_examples}+{d.num_heldout}"
    canaries = "" if d.canaries is None else f", {d.canaries.n_canaries} canaries"
    echo(f"[prep] data: corpus {d.source}, tokenizer, {n} examples (train+val+heldout){canaries}")
    try:
        with building(out) as tmp:
            docs = load_documents(
                d.source,
                hf_config=d.hf_config,
                split=d.split,
                text_field=d.text_field,
                max_chars=d.max_corpus_chars,
                seed=d.seed,
            )
            if d.tokenizer.name:
                tok = load_tokenizer(d.tokenizer.name, d.tokenizer.revision)
                tok.save_pretrained(tmp / "tokenizer")
            else:
                tok = train_tokenizer(docs, d.tokenizer.vocab_size, tmp / "tokenizer")
            limit = d.skip_examples + d.num_examples + d.val_examples + d.num_heldout
            windows = make_windows(docs, tok, d.training_len, limit)
            train, val = split_examples(windows[d.skip_examples :], d.num_examples, d.val_examples)
            train.write(tmp / "train.parquet")
            val.write(tmp / "val.parquet")
            if d.num_heldout:
                rest = windows[d.skip_examples :]
                heldout_split(rest, d.num_examples, d.val_examples, d.num_heldout).write(tmp / HELDOUT_FILE)
            if d.canaries is not None:  # ids after every natural example's; no prefix shared with one
                make_canaries(
                    d.canaries,
                    tok,
                    width=d.training_len,
                    prefix_len=d.prefix_len,
                    seq_len=d.seq_len,
                    first_id=d.num_examples + d.val_examples + d.num_heldout,
                    natural=windows,
                ).write(tmp / CANARY_FILE)
    except (ValueError, KeyError, FileNotFoundError, OSError) as e:
        raise DataError(f"data ({d.source}): {e}") from None


def run(ctx: StageContext) -> None:
    from kdplatform.data.canaries import CANARY_FILE, CANARY_SPLIT, Canaries
    from kdplatform.data.examples import Examples, load_tokenizer

    d = ctx.spec.data
    out = ctx.layout.data_dir()
    prepare_data(ctx.spec, ctx.layout, ctx.echo)
    tok = load_tokenizer(out / "tokenizer")
    train, val = Examples.read(out / "train.parquet"), Examples.read(out / "val.parquet")
    splits = ["train", "val"]
    parts = {
        "train": array_digest(train.tokens),
        "val": array_digest(val.tokens),
        "tokenizer": d.tokenizer.name or f"bpe{d.tokenizer.vocab_size}",
    }
    if d.train_len is not None:  # windows longer than seq_len no longer imply the memorization window
        parts["window"] = [d.prefix_len, d.seq_len]
    if (out / HELDOUT_FILE).exists():  # in the digest only when present: datasets without keep theirs
        splits.append(HELDOUT_SPLIT)
        parts[HELDOUT_SPLIT] = array_digest(Examples.read(out / HELDOUT_FILE).tokens)
    canaries = Canaries.read(out / CANARY_FILE) if (out / CANARY_FILE).exists() else None
    if canaries is not None:  # likewise: in the digest only when the job has canaries
        parts[CANARY_SPLIT] = [array_digest(canaries.examples.tokens), canaries.copies.tolist()]
    digest = hash_config(parts)
    with ctx.session() as s, s.begin():

        def fill(ds: Dataset) -> None:
            for split in splits:
                insert_examples(s, ds.id, out / f"{split}.parquet", tok, d.prefix_len, split, d.seq_len)
            if canaries is not None:  # each canary once, whatever its copies in the training data
                insert_examples(s, ds.id, out / CANARY_FILE, tok, d.prefix_len, CANARY_SPLIT, d.seq_len)
                db.bulk_insert(s.connection(), "canaries", with_ids(canaries.rows(), dataset_id=ds.id))

        ds = dataset_row(
            s,
            digest,
            fill,
            lambda: Dataset(
                name=f"{ctx.spec.name}:{d.source}",
                digest=digest,
                source=d.source,
                tokenizer=d.tokenizer.name or f"bpe-{d.tokenizer.vocab_size}",
                vocab_size=len(tok),
                seq_len=d.seq_len,  # the memorization window; the files' windows have d.training_len
                prefix_len=d.prefix_len,
                num_train=len(train),
                num_val=len(val),
                path=str(out),
                created_at=now(),
            ),
        )
        ds.path = str(out)
        s.get(Run, ctx.run_id).dataset_id = ds.id
        s.add(RunInput(run_id=ctx.run_id, kind=InputKind.DATASET, dataset_id=ds.id))
        ctx.finish(s)
    ctx.tracker.log_dataset(ctx.mlflow_id, ds.name, str(out), digest)
    ctx.tracker.log_metrics(
        ctx.mlflow_id, {"num_train": len(train), "num_val": len(val), "vocab_size": len(tok)}
    )
    held = f" + {d.num_heldout} heldout" if HELDOUT_SPLIT in splits else ""
    if canaries is not None:
        held += f" + {len(canaries)} canaries ({int(canaries.copies.sum())} training rows)"
    size = f"{d.training_len} tokens" + ("" if d.train_len is None else f" (memorization: first {d.seq_len})")
    ctx.echo(f"       {len(train)} train + {len(val)} val{held} examples of {size}, vocab {len(tok)}")
