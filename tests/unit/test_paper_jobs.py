"""The paper's jobs as the paper ran them (jobs/paper/), and the two spec options they need: data.train_len
(training windows longer than the memorization window) and `train: null` (a checkpoint used as it is)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from tiny_jobs import tiny_data

from kdplatform.pipeline import plan
from kdplatform.spec import DataSpec, JobSpec, SpecError, load_spec
from kdplatform.store.schema import Role

PAPER = Path(__file__).resolve().parents[2] / "jobs" / "paper"
PAPER_JOBS = sorted(PAPER.glob("*.yaml"))
STUDENT_ROLES = (Role.STUDENT, Role.STUDENT_HARD)


def test_every_paper_job_is_here():
    assert {p.name for p in PAPER_JOBS} == {
        "pythia-fineweb.yaml",
        "pythia-fineweb-temperature.yaml",
        "pythia-wikitext.yaml",
        "pythia-pretraining.yaml",
        "pythia-nemotron.yaml",
        "pythia-fineweb-1b.yaml",
        "olmo2-fineweb.yaml",
        "qwen3-fineweb.yaml",
        "olmo2-pythia-recipe.yaml",
        "qwen3-pythia-recipe.yaml",
    }


@pytest.mark.parametrize("job", PAPER_JOBS, ids=lambda p: p.name)
def test_paper_jobs_train_on_256_and_test_the_first_100(job):
    spec = load_spec(job)
    d = spec.data
    assert (d.train_len, d.training_len, d.seq_len, d.prefix_len) == (256, 256, 100, 50)
    p = plan(spec)
    assert p.get("data").config["train_len"] == 256 and p.get("data").config["seq_len"] == 100
    if spec.hard_student is not None:
        gen = p.get("hard_data").config
        assert d.training_len - gen["prefix_len"] == 206, "the teacher's greedy 206 tokens after 50"


@pytest.mark.parametrize(
    "job", [p for p in PAPER_JOBS if p.name != "pythia-pretraining.yaml"], ids=lambda p: p.name
)
def test_fine_tuning_jobs_train_for_table_2s_epochs(job):
    """Table 2: teachers 3 epochs; Pythia baselines and students 4 (the hard student: the same budget),
    OLMo-2's and Qwen-3's 5. A teacher used as it is (`train: null`) is another job's 3-epoch teacher."""
    p = plan(load_spec(job))
    trained = [s for s in p.stages if s.kind == "train"]
    assert trained
    five = job.name in ("olmo2-fineweb.yaml", "qwen3-fineweb.yaml")
    for st in trained:
        if st.role == Role.TEACHER and st.config["train"] is None:
            assert st.config["model"]["name"].endswith("-fineweb/checkpoints/train-teacher"), st.key
            continue
        expected = 3 if st.role == Role.TEACHER else 5 if five else 4
        assert st.config["train"]["epochs"] == expected, st.key
        assert st.config["train"]["lr"] == 5.0e-5


def test_pretraining_job_is_appendix_a6():
    spec = load_spec(PAPER / "pythia-pretraining.yaml")
    t, b, s = spec.teacher, spec.baseline, spec.student
    assert (t.model.name, t.model.revision, t.train) == ("EleutherAI/pythia-12b", "step116000", None)
    assert (b.model.name, b.model.revision, b.train) == ("EleutherAI/pythia-2.8b", "step116000", None)
    assert (s.model.name, s.model.revision) == ("EleutherAI/pythia-2.8b", "step115000")
    assert s.train.epochs == 5 and s.distill.temperature == [2.0] and s.distill.objective == ["forward_kl"]
    # Pythia's batch: 1024 sequences per step; one example stands for one sequence.
    assert spec.data.skip_examples == 115_000 * 1024 and spec.data.num_examples == 1_000 * 1024
    p = plan(spec)
    assert p.get("train/teacher").config["train"] is None
    assert p.get("train/baseline/s0").config["train"] is None
    students = [st for st in p.stages if st.kind == "train" and st.role in STUDENT_ROLES]
    assert [st.temperature for st in students] == [2.0]


@pytest.mark.parametrize("job", [p for p in PAPER_JOBS if load_spec(p).hard_student], ids=lambda p: p.name)
def test_hard_kd_jobs_evaluate_lambada_and_winogrande(job):
    """Section 6: the hard-KD student's utility beside the baseline's (and the soft student's), zero-shot;
    the task names are in lm-eval's registry, checked without downloading."""
    spec = load_spec(job)
    assert [(t.name, t.num_fewshot) for t in spec.eval.tasks] == [("lambada_openai", 0), ("winogrande", 0)]
    p = plan(spec)
    evaluated = {(st.role, st.seed) for st in p.stages if st.kind == "eval"}
    for role in (Role.BASELINE, Role.STUDENT_HARD):
        assert {(role, seed) for seed in spec.seeds} <= evaluated
    if importlib.util.find_spec("lm_eval") is not None:
        from kdplatform.evaluation.tasks import check_tasks

        check_tasks(spec.eval)


def test_hard_data_of_a_256_token_window_is_206_generated_tokens():
    from kdplatform.models import build_neox
    from kdplatform.train.hard_data import generate_hard_data

    teacher = build_neox(
        64,
        seed=0,
        max_position_embeddings=256,
        num_hidden_layers=1,
        hidden_size=16,
        num_attention_heads=2,
        intermediate_size=32,
    )
    rows = torch.randint(0, 64, (2, 256))
    hard = generate_hard_data(teacher, rows, 50, vocab_size=64)
    assert hard.shape == (2, 256)
    assert np.array_equal(hard[:, :50], rows[:, :50].numpy())
    assert not np.array_equal(hard[:, 50:], rows[:, 50:].numpy()), "206 tokens are the teacher's"


# The plan of this spec since migration 0005's held-out split (data.heldout_examples, whose default adds
# non-member windows and so changed D's data files and every hash on purpose). Fields added after it that a
# spec does not set (train_len, model.base, pretrain) must keep every stage hash, or the workdirs of
# running jobs would rerun from their data stage.
PINNED = {
    "data": "b73cabbd6a597034",
    "train/teacher": "17ed7369c4afd694",
    "scan/train/teacher": "56f3cbb3eaa502dd",
    "train/baseline/s0": "4f1be3ab6178b871",
    "scan/train/baseline/s0": "cd6eaa28cd728b50",
    "train/student/s0/forward_kl/T2": "d1e7a830e7211b97",
    "scan/train/student/s0/forward_kl/T2": "249f1e2da0fa5d6e",
    "hard_data": "a6ccabb3c81a04c9",
    "train/student_hard/s0": "57a704e353c6af58",
    "scan/train/student_hard/s0": "b9326b10d0f09c1f",
}


def _pinned_job(**data) -> dict:
    student = {"model": {"preset": "tiny-student"}}
    return {
        "name": "pin",
        "data": tiny_data(**data),
        "teacher": {"model": {"preset": "tiny-teacher"}},
        "baseline": student,
        "student": student,
        "hard_student": student,
    }


def test_a_spec_without_train_len_plans_the_hashes_it_planned_before():
    spec = JobSpec.model_validate(_pinned_job())
    assert plan(spec).hashes == PINNED
    dump = spec.model_dump(mode="json")
    assert "train_len" not in dump["data"] and "pretrain" not in dump and "eval" not in dump
    assert all("base" not in dump[role]["model"] for role in ("teacher", "baseline", "student"))


def test_train_len_changes_the_data_hash_and_everything_after_it():
    spec = JobSpec.model_validate(_pinned_job(train_len=24))
    hashes = plan(spec).hashes
    assert spec.model_dump(mode="json")["data"]["train_len"] == 24
    assert all(hashes[k] != PINNED[k] for k in PINNED), "every stage depends on the data"
    explicit = JobSpec.model_validate(_pinned_job(train_len=16))  # = seq_len: the same windows
    assert plan(explicit).hashes["data"] != PINNED["data"], "a train_len that is set is part of the config"


def test_training_len_defaults_to_seq_len():
    assert DataSpec(seq_len=40, prefix_len=20).training_len == 40
    assert DataSpec(seq_len=40, prefix_len=20, train_len=64).training_len == 64


def _write(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_train_len_shorter_than_seq_len_is_refused_naming_both(tmp_path):
    path = _write(tmp_path, _pinned_job(train_len=12))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    msg = str(err.value)
    assert str(path) in msg and "train_len (12)" in msg and "seq_len (16)" in msg and "omit it" in msg


def test_train_null_is_for_teacher_and_baseline_only(tmp_path):
    doc = _pinned_job()
    doc["teacher"] = doc["teacher"] | {"train": None}
    doc["baseline"] = doc["baseline"] | {"train": None}
    spec = load_spec(_write(tmp_path, doc))
    assert spec.teacher.train is None and spec.baseline.train is None
    for role in ("student", "hard_student"):
        bad = _pinned_job()
        bad[role] = bad[role] | {"train": None}
        with pytest.raises(SpecError, match=f"{role}.train"):
            load_spec(_write(tmp_path, bad))


def test_the_fineweb_job_starts_baseline_and_students_from_one_stand_in_base():
    """Pythia-1.4B stands in for the shared base (no pretraining): the baseline and every student depend
    on that one base stage, the teacher on the Pythia-12B one."""
    spec = load_spec(Path("jobs/paper/pythia-fineweb.yaml"))
    p = plan(spec)
    assert p.get("pretrain/student").config["model"]["name"] == "EleutherAI/pythia-1.4b"
    assert "train" not in p.get("pretrain/student").config
    for st in p.stages:
        if st.kind == "train":
            want = "pretrain/teacher" if st.key == "train/teacher" else "pretrain/student"
            assert st.deps[-1] == want, st.key
