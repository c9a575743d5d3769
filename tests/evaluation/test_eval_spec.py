"""The `eval:` section (kdplatform/spec/evaluation.py), its stages in the plan, lm-eval's results as rows,
and the preflight check of task names (kdplatform/evaluation/tasks.py), without running a model."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
import yaml
from tiny_jobs import tiny_data

from kdplatform.evaluation import tasks as eval_tasks
from kdplatform.evaluation.harness import result_rows
from kdplatform.pipeline import plan
from kdplatform.spec import JobSpec, SpecError, load_spec

TASKS = Path(__file__).resolve().parents[1] / "data" / "lm_eval_tasks"


def _job(**eval_section) -> dict:
    student = {"model": {"preset": "tiny-student"}}
    job = {
        "name": "ev",
        "data": tiny_data(),
        "teacher": {"model": {"preset": "tiny-teacher"}},
        "baseline": student,
        "student": student,
        "hard_student": student,
    }
    return job | ({"eval": eval_section} if eval_section else {})


def _load(tmp_path: Path, job: dict) -> JobSpec:
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    return load_spec(path)


def test_tasks_by_name_or_with_settings(tmp_path):
    spec = _load(tmp_path, _job(tasks=["lambada_openai", {"name": "winogrande", "num_fewshot": 5}]))
    assert [(t.name, t.num_fewshot, t.limit) for t in spec.eval.tasks] == [
        ("lambada_openai", 0, None),
        ("winogrande", 5, None),
    ]
    assert spec.eval.roles is None and spec.eval.bootstrap_iters == 100_000


@pytest.mark.parametrize(
    ("section", "said"),
    [
        ({"tasks": []}, "eval.tasks: List should have at least 1 item"),
        (
            {"tasks": ["winogrande", {"name": "winogrande"}]},
            "'winogrande' with num_fewshot 0 is listed twice",
        ),
        ({"tasks": ["lambada openai"]}, "eval.tasks.0.name: String should match pattern"),
        ({"tasks": [{"name": "winogrande", "num_fewshot": -1}]}, "eval.tasks.0.num_fewshot"),
        ({"tasks": [{"name": "winogrande", "limit": 0}]}, "eval.tasks.0.limit"),
        ({"tasks": [{"name": "winogrande", "shots": 5}]}, "eval.tasks.0.shots: unknown key"),
        ({"tasks": ["winogrande"], "roles": []}, "eval.roles: is empty; omit it"),
        ({"tasks": ["winogrande"], "roles": ["base"]}, "eval.roles.0: Input should be 'teacher'"),
        ({"tasks": ["winogrande"], "batch_size": True}, "eval.batch_size"),
    ],
)
def test_bad_eval_sections_are_refused_naming_the_field(tmp_path, section, said):
    with pytest.raises(SpecError) as e:
        _load(tmp_path, _job(**section))
    assert said in str(e.value)


def test_eval_roles_are_the_trained_roles_of_the_schema():
    from typing import get_args

    from kdplatform.spec.evaluation import EvalRole
    from kdplatform.store.schema import Role

    assert set(get_args(EvalRole)) == {r.value for r in Role} - {Role.BASE}


def test_roles_the_job_does_not_train_are_refused(tmp_path):
    job = _job(tasks=["winogrande"], roles=["baseline", "student_filtered", "student_converged"])
    with pytest.raises(SpecError, match="eval.roles: the job trains no student_filtered, student_converged"):
        _load(tmp_path, job)


def test_eval_stages_follow_the_roles_and_leave_the_other_hashes_alone():
    without = plan(JobSpec.model_validate(_job()))
    assert "eval" not in JobSpec.model_validate(_job()).model_dump(mode="json")
    every = plan(JobSpec.model_validate(_job(tasks=["winogrande"])))
    trained = [s.key for s in without.stages if s.kind == "train"]
    assert [s.key for s in every.stages if s.kind == "eval"] == [f"eval/{k}" for k in trained]
    assert {k: v for k, v in every.hashes.items() if not k.startswith("eval/")} == without.hashes
    some = plan(JobSpec.model_validate(_job(tasks=["winogrande"], roles=["student_hard", "baseline"])))
    evals = [s for s in some.stages if s.kind == "eval"]
    assert [(s.key, s.role, s.deps) for s in evals] == [
        ("eval/train/baseline/s0", "baseline", ("train/baseline/s0", "data")),
        ("eval/train/student_hard/s0", "student_hard", ("train/student_hard/s0", "data")),
    ]
    assert "roles" not in evals[0].config  # which models are evaluated, not how
    assert some.hashes["eval/train/baseline/s0"] == every.hashes["eval/train/baseline/s0"]
    five = plan(JobSpec.model_validate(_job(tasks=[{"name": "winogrande", "num_fewshot": 5}])))
    assert five.hashes["eval/train/baseline/s0"] != every.hashes["eval/train/baseline/s0"]


def test_the_local_task_files_are_part_of_the_eval_identity(tmp_path):
    local = tmp_path / "tasks"
    shutil.copytree(TASKS, local, ignore=shutil.ignore_patterns("__pycache__"))
    job = _job(tasks=["tiny_lambada"], include_path=str(local), roles=["baseline"])
    before = plan(JobSpec.model_validate(job)).hashes["eval/train/baseline/s0"]
    with (local / "tiny_lambada.jsonl").open("a") as f:
        f.write('{"text": "one more passage ends with a word"}\n')
    after = plan(JobSpec.model_validate(job)).hashes["eval/train/baseline/s0"]
    assert before != after
    shutil.rmtree(local)
    with pytest.raises(SpecError, match="eval.include_path: .* is not a folder of lm-eval task files"):
        plan(JobSpec.model_validate(job))


def test_result_rows_name_metrics_and_their_stderr():
    results = {
        "results": {
            "lam": {"alias": "lam", "acc,none": 0.5, "acc_stderr,none": 0.1, "perplexity,none": 12.0},
            "gsm": {"exact_match,strict-match": 0.25, "exact_match_stderr,strict-match": "N/A"},
            "grp": {"acc,none": 0.4, "acc_stderr,none": 0.05},
        },
        "n-shot": {"lam": 0, "gsm": 5},
        "n-samples": {"lam": {"original": 10, "effective": 4}, "gsm": {"original": 8, "effective": 8}},
    }
    rows = {(r["task"], r["metric"]): r for r in result_rows(results, 3)}
    assert set(rows) == {
        ("lam", "acc"),
        ("lam", "perplexity"),
        ("gsm", "exact_match,strict-match"),
        ("grp", "acc"),
    }
    assert rows["lam", "acc"] | {} == {
        "task": "lam",
        "num_fewshot": 0,
        "metric": "acc",
        "value": 0.5,
        "stderr": 0.1,
        "n_samples": 4,
    }
    assert rows["lam", "perplexity"]["stderr"] is None
    assert rows["gsm", "exact_match,strict-match"]["stderr"] is None  # lm-eval's "N/A"
    assert rows["grp", "acc"]["n_samples"] is None and rows["grp", "acc"]["num_fewshot"] == 3


lm_eval = pytest.importorskip("lm_eval")


def _eval(**section) -> JobSpec:
    return JobSpec.model_validate(_job(**section))


def test_registry_and_local_names_are_known_without_downloading():
    assert {"lambada_openai", "winogrande"} <= eval_tasks.declared_names()
    assert eval_tasks.local_names(str(TASKS)) == {"tiny_lambada", "tiny_winogrande"}
    spec = _eval(tasks=["tiny_lambada", "lambada_openai", "winogrande"], include_path=str(TASKS))
    eval_tasks.check_tasks(spec.eval)
    assert eval_tasks.needs_registry(spec.eval)
    assert not eval_tasks.needs_registry(_eval(tasks=["tiny_winogrande"], include_path=str(TASKS)).eval)


def test_unknown_tasks_are_refused_at_preflight_with_the_nearest_names(monkeypatch):
    from kdplatform.preflight import check

    # lm-eval's full index takes tens of seconds to build; a small one stands in for it here.
    monkeypatch.setattr(eval_tasks, "registry_names", lambda: frozenset({"winogrande", "lambada_openai"}))
    spec = _eval(tasks=["winogrande", "tiny_lambda"], include_path=str(TASKS))
    with pytest.raises(SpecError) as e:
        check(spec, "job.yaml")
    said = str(e.value)
    assert said.startswith("job.yaml: eval.tasks.1.name: no lm-eval task 'tiny_lambda' in its registry")
    assert "did you mean 'tiny_lambada'" in said
    with pytest.raises(SpecError, match="eval.include_path: '/no/such/dir' is not a folder"):
        eval_tasks.check_tasks(_eval(tasks=["winogrande"], include_path="/no/such/dir").eval)


def test_a_job_with_eval_needs_lm_eval_installed(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "lm_eval" else real(name, *a)
    )
    with pytest.raises(
        SpecError, match=r"eval: lm-evaluation-harness is not installed; install the `eval` extra"
    ):
        eval_tasks.check_tasks(_eval(tasks=["winogrande"]).eval)
