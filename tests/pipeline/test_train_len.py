"""data.train_len: a job trains on windows longer than the memorization window (the paper: 256 tokens, of
which the first 100 are tested), and a `train: null` role is recorded as the checkpoint it was given.

One tiny job, run once: training windows of TRAIN_LEN tokens, memorization on the first SEQ_LEN, a trained
teacher (which memorizes some examples), an untrained baseline read from a local checkpoint, a soft and a
hard student. TRAIN_LEN is above 128, the presets' smallest position table, so the model's positions show
that it was built for the training length.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from sqlalchemy import text
from tiny_jobs import tiny_data

from kdplatform.data.examples import Examples, load_tokenizer
from kdplatform.memorization import greedy_reference
from kdplatform.models import build_preset, load_pretrained
from kdplatform.spec import JobSpec
from kdplatform.train.validate import evaluate

SEQ_LEN, PREFIX_LEN, TRAIN_LEN = 16, 8, 136
TEACHER = {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128}
TINY = {"num_hidden_layers": 1, "hidden_size": 16, "intermediate_size": 32}
TRAIN = {"epochs": 1, "batch_size": 8, "lr": 3.0e-3, "checkpoint_every": None}


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    from kdplatform.pipeline import JobRunner

    root = tmp_path_factory.mktemp("train_len")
    torch.manual_seed(0)
    given = root / "given-baseline"
    build_preset("tiny-student", 260, TRAIN_LEN, TINY).save_pretrained(given)
    student = {"model": {"preset": "tiny-student", "config": TINY}, "train": TRAIN}
    spec = JobSpec.model_validate(
        {
            "name": "trainlen",
            "data": tiny_data(seq_len=SEQ_LEN, prefix_len=PREFIX_LEN, train_len=TRAIN_LEN),
            "teacher": {
                "model": {"preset": "tiny-teacher", "config": TEACHER},
                "train": {"epochs": 60, "batch_size": 4, "lr": 1.0e-2, "checkpoint_every": None},
            },
            "baseline": {"model": {"name": str(given)}, "train": None},
            "student": student,
            "hard_student": student,
            "scan": {"shard_size": 16, "kld": False, "audit_sample": 0, "store_greedy_min_match": 0},
        }
    )
    said: list[str] = []
    runner = JobRunner(spec, root / "work", echo=said.append)
    runner.run()
    runner.said, runner.given = said, given
    return runner


def q(job, sql: str, **params) -> list[tuple]:
    with job.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params).all()]


def test_training_windows_have_the_training_length(job):
    ds = job.dataset()
    assert ds.seq_len == SEQ_LEN and ds.prefix_len == PREFIX_LEN, "the row keeps the memorization window"
    for split in ("train", "val"):
        assert Examples.read(Path(ds.path) / f"{split}.parquet").tokens.shape[1] == TRAIN_LEN
    teacher = load_pretrained(job.checkpoint_dir("train/teacher"))
    assert teacher.config.max_position_embeddings == TRAIN_LEN
    assert any(f"examples of {TRAIN_LEN} tokens (memorization: first {SEQ_LEN})" in s for s in job.said)


def test_scan_decides_on_the_first_seq_len_tokens_as_generate_does(job):
    ds = job.dataset()
    ex = Examples.read(Path(ds.path) / "train.parquet")
    window = torch.as_tensor(ex.tokens[:, :SEQ_LEN])
    memorized_somewhere = False
    for key in ("train/teacher", "train/baseline/s0", "train/student/s0/forward_kl/T2"):
        rows = q(
            job,
            "SELECT s.example_id, s.memorized, s.match_len FROM scan_results s "
            "JOIN runs r ON r.id = s.run_id "
            "JOIN examples e ON e.dataset_id = s.dataset_id AND e.example_id = s.example_id "
            "WHERE r.stage_key = :k AND e.split = 'train' ORDER BY s.example_id",
            k=key,
        )
        assert [r[0] for r in rows] == ex.example_ids.tolist()
        match = np.array([r[2] for r in rows])
        assert match.max() <= SEQ_LEN - PREFIX_LEN
        ref = greedy_reference(load_pretrained(job.checkpoint_dir(key)), window, PREFIX_LEN)
        assert np.array_equal(match, ref.match_len), key
        assert np.array_equal(np.array([r[1] for r in rows], dtype=bool), ref.memorized), key
        memorized_somewhere |= bool(ref.memorized.any())
    assert memorized_somewhere, "the teacher memorizes some examples, so the decisions are not all False"
    greedy = q(job, "SELECT tokens FROM greedy_continuations")
    assert greedy and all(len(t.split()) == SEQ_LEN - PREFIX_LEN for (t,) in greedy)


def test_hard_data_continues_to_the_training_length(job):
    d, hard = job.dataset(), job.dataset("hard_data")
    assert hard.seq_len == SEQ_LEN
    orig = Examples.read(Path(d.path) / "train.parquet")
    gen = Examples.read(Path(hard.path) / "train.parquet")
    assert gen.tokens.shape[1] == TRAIN_LEN, f"{TRAIN_LEN - PREFIX_LEN} generated tokens after the prefix"
    assert np.array_equal(orig.tokens[:, :PREFIX_LEN], gen.tokens[:, :PREFIX_LEN])
    teacher = load_pretrained(job.checkpoint_dir("train/teacher"))
    assert greedy_reference(teacher, torch.as_tensor(gen.tokens), PREFIX_LEN).memorized.all()


def test_example_rows_split_text_by_window(job):
    ds = job.dataset()
    tok = load_tokenizer(Path(ds.path) / "tokenizer")
    ex = Examples.read(Path(ds.path) / "train.parquet")
    rows = q(
        job,
        "SELECT example_id, n_tokens, text, prefix_text, suffix_text, zlib_entropy, zlib_bits_per_token "
        "FROM examples WHERE dataset_id = :d AND split = 'train' ORDER BY example_id",
        d=ds.id,
    )
    assert [r[0] for r in rows] == ex.example_ids.tolist()
    for (_, n_tokens, full, prefix, suffix, z, bits), row in zip(rows, ex.tokens, strict=True):
        assert n_tokens == TRAIN_LEN and full == tok.decode(row.tolist()), "text is the whole window"
        assert prefix == tok.decode(row[:PREFIX_LEN].tolist())
        assert suffix == tok.decode(row[PREFIX_LEN:SEQ_LEN].tolist()), "the suffix ends at seq_len"
        memo = tok.decode(row[:SEQ_LEN].tolist()).encode("utf-8")
        assert z == len(zlib.compress(memo)), "zlib is over the memorization sequence"
        assert bits == pytest.approx(8 * z / SEQ_LEN)


def test_untrained_role_is_the_given_checkpoint(job):
    key = "train/baseline/s0"
    given, saved = load_pretrained(job.given), load_pretrained(job.checkpoint_dir(key))
    for (name, a), (_, b) in zip(given.state_dict().items(), saved.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert any("the checkpoint is used as it is" in s for s in job.said)
    rows = q(
        job,
        "SELECT c.epoch, c.step, c.tokens, c.train_loss, c.val_loss, c.is_final, r.status FROM checkpoints c "
        "JOIN runs r ON r.id = c.run_id WHERE r.stage_key = :k",
        k=key,
    )
    assert len(rows) == 1
    epoch, step, tokens, train_loss, val_loss, is_final, status = rows[0]
    assert (epoch, step, tokens, is_final, status) == (0, 0, 0, True, "done")
    assert math.isnan(train_loss), "no training, no training loss"
    val = Examples.read(Path(job.dataset().path) / "val.parquet").tokens
    assert val_loss == pytest.approx(evaluate(given, val, 8, torch.device("cpu")), rel=1e-6)
    assert job.run_row("scan/" + key).status == "done"
