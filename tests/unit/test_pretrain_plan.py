"""The `pretrain:` section: its validation errors, and the plan it makes (base stages first, the train
stages of `base:` models after their base, a base's identity independent of D's size and range)."""

from __future__ import annotations

import copy

import pytest
import yaml

from kdplatform.cli import main
from kdplatform.pipeline import plan
from kdplatform.spec import JobSpec
from kdplatform.store.schema import Role, StageKind

TRAIN = {"epochs": 1, "batch_size": 8}
JOB = {
    "name": "bases",
    "pretrain": {
        "corpus": {"num_windows": 40, "val_windows": 8},
        "bases": {
            "teacher": {"model": {"preset": "tiny-teacher"}, "train": {"epochs": 3}},
            "student": {"model": {"preset": "tiny-student"}, "train": {"epochs": 2}},
        },
    },
    "seeds": [0, 1],
    "teacher": {"model": {"base": "teacher"}, "train": TRAIN},
    "baseline": {"model": {"base": "student"}, "train": TRAIN},
    "student": {"model": {"base": "student"}, "train": TRAIN, "distill": {"converged_max_epochs": 3}},
    "hard_student": {"model": {"preset": "tiny-student"}, "train": TRAIN},
}


def _job(**over) -> dict:
    job = copy.deepcopy(JOB)
    for path, value in over.items():
        *parents, last = path.split(".")
        node = job
        for p in parents:
            node = node.setdefault(p, {})
        if value is None:
            node.pop(last)
        else:
            node[last] = value
    return job


@pytest.mark.parametrize(
    "over, words",
    [
        ({"baseline.model": {"base": "huge"}}, ["baseline.model.base", "'huge'", "student, teacher"]),
        ({"pretrain": None}, ["teacher.model.base", "no `pretrain:` section"]),
        ({"pretrain.bases.student.model": {"base": "teacher"}}, ["pretrain.bases.student", "another base"]),
        ({"pretrain.bases.student.train": None}, ["pretrain.bases.student", "needs `train`"]),
        ({"pretrain.bases": {}}, ["pretrain.bases"]),
        ({"pretrain.bases.teacher.model": {"preset": "tiny-teacher", "name": "x"}}, ["exactly one"]),
        ({"student.model": {"base": "student", "revision": "main"}}, ["student.model", "revision"]),
        ({"pretrain.corpus.source": "ftp://x"}, ["pretrain.corpus.source", "stdlib-code"]),
    ],
)
def test_bad_pretrain_sections_exit_2_naming_the_field(tmp_path, capsys, over, words):
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(_job(**over)))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and all(w in err for w in words), err


def test_a_hub_checkpoint_stands_in_for_a_base_without_training():
    spec = JobSpec.model_validate(
        _job(**{"pretrain.bases.hub": {"model": {"name": "EleutherAI/pythia-14m"}}})
    )
    st = plan(spec).get("pretrain/hub")
    assert (
        st.config == {"model": spec.pretrain.bases["hub"].model.model_dump(mode="json")} and st.seed is None
    )
    assert spec.model_of(spec.baseline.model).preset == "tiny-student"
    assert spec.model_of(spec.hard_student.model).preset == "tiny-student"


def test_base_stages_come_first_and_train_stages_depend_on_their_base():
    p = plan(JobSpec.model_validate(JOB))
    keys = [s.key for s in p.stages]
    assert keys[:3] == ["data", "pretrain/teacher", "pretrain/student"]
    for key in keys[1:3]:
        st = p.get(key)
        assert (st.kind, st.role, st.deps, st.seed) == (StageKind.PRETRAIN, Role.BASE, ("data",), 0)
    assert p.get("train/teacher").deps == ("data", "pretrain/teacher")
    for seed in (0, 1):
        assert p.get(f"train/baseline/s{seed}").deps == ("data", "pretrain/student")
        assert p.get(f"train/student/s{seed}/forward_kl/T2").deps[-1] == "pretrain/student"
        conv = p.get(f"train/student_converged/s{seed}").deps
        assert conv[2] == f"train/baseline/s{seed}" and conv[-1] == "pretrain/student"
        assert "pretrain/student" not in p.get(f"train/student_hard/s{seed}").deps  # a preset from scratch


def test_a_base_is_the_same_for_any_d_of_the_same_corpus_and_tokenizer():
    base = plan(JobSpec.model_validate(JOB)).hashes
    for data in ({"num_examples": 500}, {"val_examples": 10}, {"skip_examples": 7}, {"prefix_len": 20}):
        other = plan(JobSpec.model_validate(_job(data=data))).hashes
        assert other["data"] != base["data"]
        assert other["pretrain/student"] == base["pretrain/student"], data
        assert other["train/baseline/s0"] != base["train/baseline/s0"]  # fine-tuned on the other D
    for data in ({"seq_len": 64}, {"tokenizer": {"vocab_size": 1000}}, {"seed": 3}, {"max_corpus_chars": 99}):
        assert (
            plan(JobSpec.model_validate(_job(data=data))).hashes["pretrain/student"]
            != base["pretrain/student"]
        )
    for over in (
        {"pretrain.corpus.num_windows": 41},
        {"pretrain.bases.student.train.lr": 1e-4},
        {"seeds": [1]},
    ):
        assert (
            plan(JobSpec.model_validate(_job(**over))).hashes["pretrain/student"] != base["pretrain/student"]
        )
    cached = plan(JobSpec.model_validate(_job(**{"pretrain.cache_dir": "/elsewhere"}))).hashes
    assert cached == base  # where the cache is changes nothing
    changed = plan(JobSpec.model_validate(_job(**{"pretrain.bases.student.train.epochs": 5}))).hashes
    assert changed["train/baseline/s0"] != base["train/baseline/s0"]  # another base: fine-tuned again
    assert changed["train/teacher"] == base["train/teacher"]


def test_plan_command_lists_the_base_stages(tmp_path, capsys):
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(_job(workdir=str(tmp_path / "w"))))
    assert main(["plan", str(path)]) == 0
    out = capsys.readouterr().out
    assert "pretrain/teacher" in out and "pretrain/student" in out and "pretrain" in out.split("\n")[1]


@pytest.mark.parametrize("used", [True, False], ids=["used", "unused"])
def test_a_missing_hub_stand_in_is_refused_before_anything_is_written(tmp_path, capsys, used):
    over = {"pretrain.bases.hub": {"model": {"name": str(tmp_path / "no-such-model")}}}
    if used:
        over["baseline.model"] = {"base": "hub"}
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(_job(workdir=str(tmp_path / "w"), **over)))
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "pretrain.bases.hub.model" in err and "does not exist" in err, err
    assert not (tmp_path / "w").exists()
