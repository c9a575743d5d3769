"""The paper's other families, datasets and sizes as jobs (issue 19): OLMo-2 and Qwen-3 on FineWeb, Pythia
on Nemotron-CC-v2, Pythia-1B for the scale hierarchy, the cross-family baselines on Pythia's data and
recipe, and the `cross_scan:` stages that scan one job's models on another job's memorized examples."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kdplatform.cli import main
from kdplatform.pipeline import plan
from kdplatform.spec import JobSpec, SpecError, load_spec
from kdplatform.store.schema import Role, StageKind

PAPER = Path(__file__).resolve().parents[2] / "jobs" / "paper"
FAMILIES = {
    "olmo2": ("allenai/OLMo-2-1124-7B", "allenai/OLMo-2-0425-1B"),
    "qwen3": ("Qwen/Qwen3-8B", "Qwen/Qwen3-1.7B"),
}


def _spec(name: str) -> JobSpec:
    return load_spec(PAPER / f"{name}.yaml")


@pytest.mark.parametrize("job", sorted(PAPER.glob("*.yaml")), ids=lambda p: p.name)
def test_validate_and_plan_succeed_without_downloading(job, tmp_path, capsys):
    """`kdplatform validate` and `kdplatform plan` (on an empty local database, as the team one is not
    here) for every paper job: nothing is downloaded, as neither loads a model or a tokenizer."""
    assert main(["validate", str(job)]) == 0
    db = f"duckdb:///{tmp_path / 'kdp.duckdb'}"
    assert main(["plan", str(job), "--db", db, "--workdir", str(tmp_path / "w")]) == 0
    out = capsys.readouterr().out
    assert "data" in out and "never run" in out


@pytest.mark.parametrize("family", FAMILIES)
def test_family_jobs_use_the_familys_models_and_own_tokenizer(family):
    teacher, small = FAMILIES[family]
    spec = _spec(f"{family}-fineweb")
    assert spec.model_of(spec.teacher.model).name == teacher
    assert spec.model_of(spec.baseline.model).name == small == spec.model_of(spec.student.model).name
    assert spec.data.tokenizer.name == small
    assert spec.classifier is not None, "Tables 6 and 7"
    pythia = _spec("pythia-fineweb").data.model_dump()
    assert spec.data.model_dump() == pythia | {
        "tokenizer": {"name": small, "revision": None, "vocab_size": 4096}
    }


@pytest.mark.parametrize("family", FAMILIES)
def test_cross_family_baseline_has_the_pythia_baselines_data_and_hyperparameters(family):
    """Section 3.2.1: 'the exact same data and hyperparameters as the Pythia 1.4B baseline'."""
    spec, pythia = _spec(f"{family}-pythia-recipe"), _spec("pythia-fineweb")
    assert spec.data.model_dump(exclude={"tokenizer"}) == pythia.data.model_dump(exclude={"tokenizer"})
    assert spec.data.tokenizer.name == FAMILIES[family][1] == spec.model_of(spec.baseline.model).name
    assert spec.baseline.train == pythia.baseline.train and spec.student.train == pythia.student.train
    assert (
        spec.teacher.train is None
        and spec.teacher.model.name == f"./runs/{family}-fineweb/checkpoints/train-teacher"
    )
    other = "qwen3" if family == "olmo2" else "olmo2"
    assert spec.cross_scan.jobs == ["pythia-fineweb", f"{other}-pythia-recipe"]


def test_pythia_1b_shares_the_1_4b_baselines_dataset_and_recipe():
    """The scale hierarchy joins on the same dataset: the data stage's hash (its content) is the same."""
    small, main_job = _spec("pythia-fineweb-1b"), _spec("pythia-fineweb")
    assert plan(small).hashes["data"] == plan(main_job).hashes["data"]
    assert small.model_of(small.baseline.model).name == "EleutherAI/pythia-1b"
    assert small.baseline.train == main_job.baseline.train
    assert main_job.model_of(main_job.teacher.model).name == "EleutherAI/pythia-12b"


def test_nemotron_job_is_table_2s_third_column():
    spec = _spec("pythia-nemotron")
    assert spec.data.source == "hf:nvidia/Nemotron-CC-v2"
    assert spec.model_of(spec.teacher.model).name == "EleutherAI/pythia-12b"
    assert spec.model_of(spec.baseline.model).name == "EleutherAI/pythia-1.4b"


def test_cross_scan_stages_follow_the_models_they_scan():
    spec = _spec("pythia-fineweb")
    p = plan(spec)
    cross = [s for s in p.stages if s.kind == StageKind.CROSS_SCAN]
    assert [s.key for s in cross] == [
        f"cross_scan/{job}/{key}"
        for job in ("olmo2-pythia-recipe", "qwen3-pythia-recipe")
        for key in ("train/teacher", "train/baseline/s0", "train/baseline/s1", "train/baseline/s2")
    ]
    for st in cross:
        assert st.deps == (st.key.split("/", 2)[2], "data") and st.role in (Role.TEACHER, Role.BASELINE)
        assert st.config == {"job": st.key.split("/")[1], "examples": "memorized", "batch_size": None}


def test_a_cross_scan_section_leaves_every_other_stage_hash_as_it_was():
    doc = yaml.safe_load((PAPER / "pythia-fineweb.yaml").read_text())
    without = plan(JobSpec.model_validate({k: v for k, v in doc.items() if k != "cross_scan"})).hashes
    with_ = plan(JobSpec.model_validate(doc)).hashes
    assert {k: v for k, v in with_.items() if not k.startswith("cross_scan/")} == without
    assert "cross_scan" not in JobSpec.model_validate({**doc, "cross_scan": None}).model_dump()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"jobs": ["pin"]}, "names this job"),
        ({"jobs": []}, "cross_scan.jobs"),
        ({"jobs": ["a", "a"]}, "distinct"),
        ({"jobs": ["a"], "roles": ["student_hard"]}, "trains no student_hard"),
        ({"jobs": ["a"], "examples": "some"}, "cross_scan.examples"),
    ],
)
def test_bad_cross_scan_sections_are_refused(tmp_path, section, message):
    student = {"model": {"preset": "tiny-student"}}
    doc = {"name": "pin", "teacher": student, "baseline": student, "student": student, "cross_scan": section}
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError, match=message):
        load_spec(path)
