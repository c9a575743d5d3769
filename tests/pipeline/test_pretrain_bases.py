"""Pretrained bases end to end, on tiny jobs: the teacher starts from its own (larger) base, the baseline and
the student from one shared base with identical initial weights, recorded as BASE lineage edges; a base is
cached by content hash beside the workdirs, so a rerun skips it and another job with another D reuses it
without training; a hub checkpoint (a local float16 save_pretrained) stands in for a base untrained."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest
import torch
from sqlalchemy import text
from tiny_jobs import tiny_data

import kdplatform.models
from kdplatform.pipeline import JobRunner
from kdplatform.pipeline.errors import DataError
from kdplatform.spec import JobSpec

TEACHER = {"num_hidden_layers": 2, "hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2}
STUDENT = {"num_hidden_layers": 1, "hidden_size": 16, "intermediate_size": 32, "num_attention_heads": 2}
TRAIN = {"epochs": 1, "batch_size": 8, "lr": 3.0e-3, "warmup_ratio": 0.0, "checkpoint_every": None}
CORPUS = {"num_windows": 24, "val_windows": 8}


def _job(
    name: str, workdir: Path, bases: dict | None = None, student: str = "student", corpus=None, **data
) -> JobSpec:
    """A tiny job whose teacher starts from base `teacher`, baseline and student from base `student`."""
    bases = bases or {
        "teacher": {"model": {"preset": "tiny-teacher", "config": TEACHER}, "train": TRAIN},
        "student": {"model": {"preset": "tiny-student", "config": STUDENT}, "train": TRAIN},
    }
    return JobSpec.model_validate(
        {
            "name": name,
            "workdir": str(workdir),
            "data": tiny_data(**data),
            "pretrain": {"corpus": CORPUS | (corpus or {}), "bases": bases},
            "teacher": {"model": {"base": "teacher"}, "train": TRAIN},
            "baseline": {"model": {"base": student}, "train": TRAIN},
            "student": {"model": {"base": student}, "train": TRAIN, "distill": {"converged_max_epochs": 2}},
            "scan": {"shard_size": 16, "kld": False, "audit_sample": 0, "approximate_min_match": 0},
        }
    )


def _runner(spec: JobSpec) -> tuple[JobRunner, list[str]]:
    said: list[str] = []
    return JobRunner(spec, Path(spec.workdir), echo=said.append), said


def _block(said: list[str], key: str) -> str:
    """The lines a stage printed, from its [run ]/[skip] line to the next stage's."""
    lines = "\n".join(said).split("\n")
    start = next(i for i, line in enumerate(lines) if line.endswith(f"] {key}") or f"] {key} (" in line)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    return "\n".join(lines[start:end])


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """Two jobs beside each other (other D, same corpus and tokenizer), run one after the other; the
    initial weights every train stage starts from are recorded."""
    root = tmp_path_factory.mktemp("bases")
    initial: list[tuple[str | None, dict[str, torch.Tensor]]] = []
    load = kdplatform.models.load_model

    def recording(spec, **kw):
        model = load(spec, **kw)
        initial.append((kw.get("base"), {k: v.detach().clone() for k, v in model.state_dict().items()}))
        return model

    mp = pytest.MonkeyPatch()
    mp.setattr(kdplatform.models, "load_model", recording)
    try:
        a, said_a = _runner(_job("a", root / "a"))
        a.run()
        b, said_b = _runner(_job("b", root / "b", num_examples=20))
        b.run()
    finally:
        mp.undo()
    return root, (a, said_a), (b, said_b), initial


def _q(runner: JobRunner, sql: str, **p) -> list:
    with runner.engine.connect() as conn:
        return conn.execute(text(sql), p).all()


def test_baseline_and_student_start_from_one_base_the_teacher_from_its_own(jobs):
    root, (a, said), _, initial = jobs
    base_of = dict(
        _q(
            a,
            "SELECT r.stage_key, b.stage_key FROM run_inputs i JOIN runs r ON r.id = i.run_id "
            "JOIN runs b ON b.id = i.input_run_id JOIN checkpoints c ON c.id = i.checkpoint_id "
            "WHERE i.kind = 'base' AND c.run_id = b.id AND c.is_final",
        )
    )
    assert base_of == {
        "train/teacher": "pretrain/teacher",
        "train/baseline/s0": "pretrain/student",
        "train/student/s0/forward_kl/T2": "pretrain/student",
        "train/student_converged/s0": "pretrain/student",  # trained until it beats the baseline
    }
    rows = _q(
        a, "SELECT stage_key, kind, role, status FROM runs WHERE stage_key LIKE 'pretrain/%' ORDER BY 1"
    )
    assert rows == [
        ("pretrain/student", "pretrain", "base", "done"),
        ("pretrain/teacher", "pretrain", "base", "done"),
    ]
    paths = dict(
        _q(
            a,
            "SELECT r.stage_key, c.path FROM checkpoints c JOIN runs r ON r.id = c.run_id "
            "WHERE c.is_final AND r.kind = 'pretrain'",
        )
    )
    assert {Path(p).parent for p in paths.values()} == {root / "_bases"}
    assert json.loads((Path(paths["pretrain/student"]) / "base.json").read_text())["epochs"]
    sizes = dict(
        _q(
            a,
            "SELECT r.stage_key, m.n_params FROM runs r JOIN models m ON m.id = r.model_id "
            "WHERE r.kind = 'pretrain'",
        )
    )
    assert sizes["pretrain/teacher"] > sizes["pretrain/student"]  # a larger base for the teacher
    # Job a's stages loaded: the two base presets (no base), then the teacher, baseline, student and
    # converged student from their bases.
    base = kdplatform.models.load_pretrained(paths["pretrain/student"]).state_dict()
    (_, preset), _, (t, _), *starts = initial[:6]
    assert t == paths["pretrain/teacher"] and [p for p, _ in starts] == [paths["pretrain/student"]] * 3
    for _, weights in starts:  # baseline, student, converged student: identical initial weights
        assert set(weights) == set(base) and all(torch.equal(weights[k], base[k]) for k in base)
    assert not torch.equal(preset["lm_head.weight"], base["lm_head.weight"])  # pretraining moved it


def test_each_base_reports_its_validation_loss_on_the_corpus_and_on_d(jobs):
    _, (a, said), _, _ = jobs
    for key in ("pretrain/teacher", "pretrain/student"):
        block = _block(said, key)
        assert "cached base" in block and "on D (ppl" in block and "on the corpus" in block, block
    (loss,) = _q(
        a,
        "SELECT c.val_loss FROM checkpoints c JOIN runs r ON r.id = c.run_id "
        "WHERE r.stage_key = 'pretrain/student' AND c.is_final",
    )[0]
    assert math.isfinite(loss)
    printed = float(re.search(r"val loss ([0-9.]+) on D", _block(said, "pretrain/student")).group(1))
    assert loss == pytest.approx(printed, abs=6e-4), "the stored val_loss is the one on D's val split"
    lineage = _q(
        a,
        "SELECT d.name, d.num_train, d.num_val FROM run_inputs i JOIN runs r ON r.id = i.run_id "
        "JOIN datasets d ON d.id = i.dataset_id WHERE r.stage_key = 'pretrain/student'",
    )
    assert lineage == [("code:stdlib-code", 24, 8)]


def test_another_job_with_another_d_reuses_the_cached_bases(jobs):
    root, (a, _), (b, said_b), initial = jobs
    for key in ("pretrain/teacher", "pretrain/student"):
        assert "reused cached base" in _block(said_b, key) and "epoch 1/1" not in _block(said_b, key)
        assert a.plan.hashes[key] == b.plan.hashes[key] and a.plan.hashes["data"] != b.plan.hashes["data"]
    for r in (a, b):
        assert (
            len(_q(r, "SELECT id FROM runs WHERE role = 'base' AND kind = 'pretrain' AND status = 'done'"))
            == 2
        )
        assert len(_q(r, "SELECT id FROM run_inputs WHERE kind = 'base'")) == 4
    assert sorted(p.name for p in (root / "_bases").iterdir()) == sorted(
        ["corpus", a.plan.hashes["pretrain/teacher"], a.plan.hashes["pretrain/student"]]
    )


def test_bases_are_logged_models_and_inputs_of_the_models_fine_tuned_from_them(jobs):
    """Before the next test removes a cached base: its stages skipped after the base is pretrained again keep
    the first base's checkpoint and LoggedModel as their inputs (a known gap, see the closing note)."""
    import mlflow
    from mlflow_lineage import check_chain, final_model
    from sqlalchemy.orm import Session

    _, (a, _), _, _ = jobs
    runs = check_chain(a)
    client = mlflow.MlflowClient(a.tracking_uri)
    with Session(a.engine) as s:
        base = final_model(s, runs["pretrain/student"].id)
    for key in ("train/baseline/s0", "train/student/s0/forward_kl/T2"):
        assert base in {m.model_id for m in client.get_run(runs[key].mlflow_run_id).inputs.model_inputs}
    assert client.get_logged_model(base).tags["kdp.checkpoint"] == str(a.layout.base_dir("pretrain/student"))


def test_rerun_skips_the_bases_and_a_removed_cache_is_pretrained_again(jobs):
    _, (a, _), _, _ = jobs
    again, said = _runner(_job("a", Path(a.workdir)))
    again.run()
    assert all(line.startswith("[skip]") for line in said if line.startswith("["))
    shutil.rmtree(again.layout.base_dir("pretrain/student"))
    why = {s.stage.key: s.why for s in again.status()}
    assert (
        why["pretrain/student"] == "run: its cached base is gone" and why["pretrain/teacher"] == "skip: done"
    )
    third, said = _runner(_job("a", Path(a.workdir)))
    third.run()
    assert "cached base" in _block(said, "pretrain/student") and "epoch 1/1" in _block(
        said, "pretrain/student"
    )
    assert _block(said, "train/baseline/s0").startswith("[skip]")
    assert (again.layout.base_dir("pretrain/student") / "base.json").is_file()
    with third.engine.connect() as conn:  # the skipped baseline's base edge names the new checkpoint
        edge, final = conn.execute(
            text(
                "SELECT i.checkpoint_id, "
                "(SELECT c.id FROM checkpoints c WHERE c.run_id = b.id AND c.is_final) "
                "FROM run_inputs i JOIN runs r ON r.id = i.run_id JOIN runs b ON b.id = i.input_run_id "
                "WHERE r.stage_key = 'train/baseline/s0' AND i.kind = 'base' AND r.job_id = b.job_id"
            )
        ).one()
    assert edge is not None and edge == final


def test_a_base_cached_with_another_tokenizer_is_refused(jobs):
    root, (a, _), _, _ = jobs
    record_path = a.layout.base_dir("pretrain/teacher") / "base.json"
    record = json.loads(record_path.read_text())
    record_path.write_text(json.dumps(record | {"tokenizer": "0000000000000000"}))
    try:
        c, _ = _runner(_job("c", root / "c", num_examples=12))
        with pytest.raises(DataError, match="another tokenizer"):
            c.run()
        assert _q(c, "SELECT status FROM runs WHERE stage_key = 'pretrain/teacher'") == [("failed",)]
    finally:
        record_path.write_text(json.dumps(record))


def test_a_local_float16_checkpoint_stands_in_for_a_base(tmp_path):
    from kdplatform.data.corpus import load_documents
    from kdplatform.data.examples import train_tokenizer
    from kdplatform.models import build_neox, load_pretrained

    tok = train_tokenizer(load_documents("builtin", max_chars=60_000, seed=0), 280, tmp_path / "tok")
    hub = tmp_path / "hub"
    build_neox(len(tok), seed=3, max_position_embeddings=64, **STUDENT).to(torch.float16).save_pretrained(hub)
    tok.save_pretrained(hub)
    code = tmp_path / "code"
    code.mkdir()
    (code / "json.txt").write_text(Path(json.__file__).read_text())  # a files: corpus, no stdlib walk
    bases = {
        "teacher": {"model": {"preset": "tiny-teacher", "config": TEACHER}, "train": TRAIN},
        "hub": {"model": {"name": str(hub)}},
    }
    corpus = {"source": f"files:{code}"}
    spec = _job("hub", tmp_path / "w", bases, "hub", corpus, tokenizer={"name": str(tmp_path / "tok")})
    runner, said = _runner(spec)
    runner.run()
    assert "stands in as it is" in _block(said, "pretrain/hub") and "epoch" not in _block(
        said, "pretrain/hub"
    )
    ((path, epoch, train_loss, val_loss),) = _q(
        runner,
        "SELECT c.path, c.epoch, c.train_loss, c.val_loss FROM checkpoints c JOIN runs r ON r.id = c.run_id "
        "WHERE r.stage_key = 'pretrain/hub'",
    )
    assert path == str(hub) and epoch == 0 and math.isnan(train_loss) and math.isfinite(val_loss)
    edges = _q(
        runner,
        "SELECT r.stage_key FROM run_inputs i JOIN runs r ON r.id = i.run_id "
        "JOIN runs b ON b.id = i.input_run_id WHERE i.kind = 'base' AND b.stage_key = 'pretrain/hub' "
        "ORDER BY 1",
    )
    assert edges == [
        ("train/baseline/s0",),
        ("train/student/s0/forward_kl/T2",),
        ("train/student_converged/s0",),
    ]
    assert not (
        runner.layout.bases_dir / runner.plan.hashes["pretrain/hub"]
    ).exists()  # nothing trained to cache
    cfg = json.loads((runner.checkpoint_dir("train/baseline/s0") / "config.json").read_text())
    assert cfg.get("torch_dtype", cfg.get("dtype")) == "float32"  # fine-tuned as float32 master weights
    fine_tuned = load_pretrained(runner.checkpoint_dir("train/baseline/s0")).state_dict()
    load = kdplatform.models.load_model
    start = load(spec.baseline.model, vocab_size=0, max_positions=0, seed=0, base=path).state_dict()
    half = load_pretrained(hub, dtype=torch.float16).state_dict()
    assert all(start[k].dtype == torch.float32 and torch.equal(start[k], half[k].float()) for k in half)
    assert any(not torch.equal(fine_tuned[k], start[k]) for k in start)


def test_the_converged_student_targets_the_baselines_best_epoch(jobs):
    """The paper's rule: the student trains until it outperforms the baseline, i.e. until its validation
    loss is at most the lowest the baseline reached over its epochs (not its last epoch's)."""
    _, (a, said), _, _ = jobs
    block = _block(said, "train/student_converged/s0")
    target = float(re.search(r"validation loss <= ([0-9.]+) \(the baseline's best\)", block).group(1))
    (best,) = _q(
        a,
        "SELECT MIN(c.val_loss) FROM checkpoints c JOIN runs r ON r.id = c.run_id "
        "WHERE r.stage_key = 'train/baseline/s0'",
    )[0]
    assert target == pytest.approx(best, abs=6e-5)


def test_kdplatform_run_prints_each_base_and_each_models_validation_loss(jobs, tmp_path, capsys):
    """Rerun through the CLI (every stage skipped): the summary gives each model's final validation loss
    beside its memorization rate and each base's before fine-tuning, the numbers the checkpoints hold."""
    import yaml

    from kdplatform.cli import main

    _, (a, _), _, _ = jobs
    path = tmp_path / "a.yaml"
    path.write_text(yaml.safe_dump(a.spec.model_dump(mode="json")))
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    final = dict(
        _q(
            a,
            "SELECT r.stage_key, c.val_loss FROM checkpoints c JOIN runs r ON r.id = c.run_id "
            "WHERE c.is_final",
        )
    )
    bases = f"teacher {final['pretrain/teacher']:.3f}, student {final['pretrain/student']:.3f}"
    assert f"Bases before fine-tuning, validation loss on D's validation split: {bases}" in out
    header = next(line for line in out.splitlines() if line.lstrip().startswith("run_id"))
    assert header.split()[-1] == "val_loss"
    assert f"{final['train/baseline/s0']:.6f}"[:5] in out


def test_each_base_is_scanned_for_its_loss_and_is_its_models_reference(jobs):
    """Each base's loss-only scan stores its loss on every member and held-out example, and the reference
    attack of each model subtracts its own base's loss (the teacher's base is not the others')."""
    _, (a, _), _, _ = jobs
    rows = _q(
        a,
        "SELECT r.stage_key, COUNT(*), COUNT(DISTINCT x.example_id) FROM example_losses x "
        "JOIN runs r ON r.id = x.run_id GROUP BY r.stage_key ORDER BY 1",
    )
    n = a.spec.data.num_examples + a.spec.data.num_heldout
    assert rows == [("pretrain/student", n, n), ("pretrain/teacher", n, n)]
    edges = _q(
        a,
        "SELECT s.stage_key, s.role, i.kind, b.stage_key FROM run_inputs i JOIN runs s ON s.id = i.run_id "
        "JOIN runs b ON b.id = i.input_run_id WHERE s.stage_key LIKE 'scan/pretrain/%' ORDER BY 1",
    )
    assert edges == [
        ("scan/pretrain/student", "base", "model", "pretrain/student"),
        ("scan/pretrain/teacher", "base", "model", "pretrain/teacher"),
    ]
    by_stage = dict(
        _q(
            a,
            "SELECT r.stage_key, m.auc FROM membership_inference m JOIN runs r ON r.id = m.run_id "
            "WHERE m.attack = 'reference'",
        )
    )
    assert set(by_stage) == {
        "train/teacher",
        "train/baseline/s0",
        "train/student/s0/forward_kl/T2",
        "train/student_converged/s0",
    }
    # The teacher's reference score is minus its loss beyond its own base's, example by example.
    got = _q(
        a,
        "SELECT s.loss - x.loss FROM scan_results s JOIN runs r ON r.id = s.run_id "
        "JOIN run_inputs i ON i.run_id = r.id AND i.kind = 'base' "
        "JOIN example_losses x ON x.run_id = i.input_run_id AND x.example_id = s.example_id "
        "WHERE r.stage_key = 'train/teacher'",
    )
    assert len(got) == n and all(math.isfinite(v) for (v,) in got)


def test_approximate_stage_scores_every_member_from_the_long_match_threshold(jobs):
    """With scan.approximate_min_match 0, every member of D of every model gets its token-match share and
    edit distance, exact where the scan found it memorized, and the view counts them."""
    _, (a, _), _, _ = jobs
    rows = _q(
        a,
        "SELECT a.run_id, a.match_len, a.token_match, a.edit_distance, s.memorized FROM "
        "approximate_memorization a JOIN scan_results s ON s.run_id = a.run_id "
        "AND s.example_id = a.example_id",
    )
    runs = {r for r, *_ in rows}
    assert len(rows) == len(runs) * a.spec.data.num_examples and len(runs) == 4
    suffix = a.spec.data.seq_len - a.spec.data.prefix_len
    for _, match_len, token_match, edit, memorized in rows:
        assert 0 <= edit <= 1 and match_len / suffix <= token_match <= 1
        assert memorized == (token_match == 1) == (edit == 0)
    view = _q(a, "SELECT run_id, members, long_matches FROM approximate_memorization_rates")
    assert sorted(view) == sorted((r, a.spec.data.num_examples, a.spec.data.num_examples) for r in runs)
