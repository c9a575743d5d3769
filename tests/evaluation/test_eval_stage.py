"""The eval stage end to end on a tiny job, offline: lm-evaluation-harness runs two local tasks (a
LAMBADA-style last word, a Winogrande-style choice; tests/data/lm_eval_tasks) on the baseline and the
hard-KD student, and the stored scores equal lm-eval's own `simple_evaluate` loading the same checkpoint
and tokenizer itself; the view and the comparison equal pandas on the rows."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import text
from tiny_jobs import tiny_data

from kdplatform.pipeline import JobRunner
from kdplatform.spec import JobSpec

pytest.importorskip("lm_eval")

TASKS = "tests/data/lm_eval_tasks"
TINY = {"num_hidden_layers": 1, "hidden_size": 16, "intermediate_size": 32}
TRAIN = {"epochs": 1, "batch_size": 8, "lr": 3.0e-3, "checkpoint_every": None}
EVAL_TASKS = [
    {"name": "tiny_lambada"},
    {"name": "tiny_winogrande", "num_fewshot": 2, "limit": 6},
]
EVALUATED = ("train/baseline/s0", "train/student_hard/s0")


def _spec(root) -> JobSpec:
    role = {"model": {"preset": "tiny-student", "config": TINY}, "train": TRAIN}
    return JobSpec.model_validate(
        {
            "name": "eval16",
            "seeds": [0],
            "data": tiny_data(heldout_examples=0),
            "teacher": {"model": {"preset": "tiny-teacher", "config": TINY}, "train": TRAIN},
            "baseline": role,
            "student": role,
            "hard_student": role,
            "scan": {"kld": False, "audit_sample": 0},
            "eval": {
                "tasks": EVAL_TASKS,
                "roles": ["baseline", "student_hard"],
                "include_path": str(root / TASKS),
                "batch_size": 4,
                "bootstrap_iters": 50,
            },
        }
    )


@pytest.fixture(scope="module")
def job(tmp_path_factory, repo_root):
    runner = JobRunner(_spec(repo_root), tmp_path_factory.mktemp("eval16"), echo=lambda _: None)
    runner.run()
    yield runner
    runner.engine.dispose()


def q(runner, sql: str, **params) -> pd.DataFrame:
    with runner.engine.connect() as conn:
        res = conn.execute(text(sql), params)
        return pd.DataFrame(res.fetchall(), columns=list(res.keys()))


def test_one_eval_stage_per_evaluated_model_with_its_model_input(job):
    evals = [s for s in job.plan.stages if s.kind == "eval"]
    assert [s.key for s in evals] == [f"eval/{k}" for k in EVALUATED]
    edges = q(
        job,
        "SELECT r.stage_key, i.kind, t.stage_key AS model, i.checkpoint_id, c.is_final FROM run_inputs i "
        "JOIN runs r ON r.id = i.run_id JOIN runs t ON t.id = i.input_run_id "
        "JOIN checkpoints c ON c.id = i.checkpoint_id WHERE r.kind = 'eval' ORDER BY r.id",
    )
    assert list(zip(edges.stage_key, edges.kind, edges.model, strict=True)) == [
        (f"eval/{k}", "model", k) for k in EVALUATED
    ]
    assert edges.is_final.all()
    runs = q(job, "SELECT stage_key, status, role FROM runs WHERE kind = 'eval' ORDER BY id")
    assert list(runs.status) == ["done", "done"] and list(runs.role) == ["baseline", "student_hard"]


def test_stored_scores_equal_lm_evals_simple_evaluate(job, repo_root):
    import lm_eval

    from kdplatform.evaluation.harness import result_rows
    from kdplatform.evaluation.tasks import task_manager

    manager = task_manager(str(repo_root / TASKS), defaults=False)
    tokenizer = f"{job.dataset().path}/tokenizer"
    for key in EVALUATED:
        run_id = job.run_row(key).id
        stored = q(
            job,
            "SELECT task, num_fewshot, metric, value, stderr, n_samples FROM eval_results WHERE run_id = :r",
            r=run_id,
        )
        want = []
        for t in EVAL_TASKS:
            shots = t.get("num_fewshot", 0)
            out = lm_eval.simple_evaluate(
                model="hf",
                model_args={
                    "pretrained": str(job.checkpoint_dir(key)),
                    "tokenizer": tokenizer,
                    "dtype": "float32",
                    "device": "cpu",
                },
                tasks=[t["name"]],
                num_fewshot=shots,
                limit=t.get("limit"),
                batch_size=4,
                bootstrap_iters=50,
                task_manager=manager,
                log_samples=False,
            )
            want += list(result_rows(out, shots))
        want = pd.DataFrame(want)
        assert set(want.metric) == {"acc", "perplexity"}
        assert set(want.task) == {"tiny_lambada", "tiny_winogrande"}
        got = stored.sort_values(["task", "metric"]).reset_index(drop=True)
        want = want.sort_values(["task", "metric"]).reset_index(drop=True)
        assert (
            got[["task", "num_fewshot", "metric", "n_samples"]]
            .astype(str)
            .equals(want[["task", "num_fewshot", "metric", "n_samples"]].astype(str))
        )
        assert got.value.tolist() == pytest.approx(want.value.tolist(), rel=1e-6), key
        assert got.stderr.tolist() == pytest.approx(want.stderr.tolist(), rel=1e-6, nan_ok=True), key
    assert set(stored.n_samples) == {12, 6}  # every document of tiny_lambada; the limit of the other


def test_eval_scores_view_and_comparison_equal_pandas(job):
    from kdplatform.analysis.evaluation import eval_scores, eval_summary, hard_vs_baseline

    rows = q(
        job,
        "SELECT e.*, r.role, r.seed, r.stage_key, r.job_id FROM eval_results e "
        "JOIN runs r ON r.id = e.run_id",
    )
    view = q(job, "SELECT * FROM eval_scores")
    key = ["run_id", "task", "num_fewshot", "metric"]
    merged = rows.merge(view, on=key, suffixes=("", "_v"), validate="one_to_one")
    assert len(merged) == len(rows) == len(view) == 2 * 3
    for c in ("value", "stderr", "n_samples", "role", "seed", "stage_key", "job_id", "eval_run_id"):
        assert merged[c].astype(str).tolist() == merged[f"{c}_v"].astype(str).tolist(), c
    assert len(eval_scores(job.engine, job.job_id)) == len(view)
    summary = eval_summary(job.engine, job.job_id)
    assert set(summary.runs) == {1} and summary["std"].isna().all()
    pivot = rows.pivot_table(index=["task", "num_fewshot", "metric"], columns="role", values="value")
    cmp = hard_vs_baseline(job.engine, job.job_id).set_index(["task", "num_fewshot", "metric"])
    assert cmp.baseline.tolist() == pytest.approx(pivot.loc[cmp.index, "baseline"].tolist())
    want = (pivot.student_hard - pivot.baseline).loc[cmp.index]
    assert cmp.difference.tolist() == pytest.approx(want.tolist()) and len(cmp) == 3


def test_report_section_and_a_rerun_would_skip_the_evaluations(job):
    from kdplatform.analysis.report.evaluation import eval_section
    from kdplatform.analysis.report.sections import SECTIONS
    from kdplatform.pipeline.status import assess

    assert eval_section in SECTIONS  # the report renders it (the whole report: tests/analysis)
    section = "\n".join(eval_section(job.engine, job.job_id))
    assert section.startswith("## Utility (lm-evaluation-harness)")
    assert "| baseline | – | 1 | tiny_lambada | 0 | acc |" in section
    assert "| student_hard | – | 1 | tiny_winogrande | 2 | acc |" in section
    assert "Hard-KD student vs baseline (section 6)" in section
    for key in EVALUATED:
        stage = job.plan.get(f"eval/{key}")
        assert assess(stage, job.plan.hashes[stage.key], job.run_row(stage.key)).action == "skip"


def test_an_evaluation_cut_short_is_run_again_with_the_same_scores(job):
    """A process killed inside the stage leaves its run `running` and no rows (they commit with `done`):
    the next run redoes that evaluation alone, and lm-eval gives the same scores."""
    key = f"eval/{EVALUATED[0]}"
    run_id = job.run_row(key).id
    before = q(job, "SELECT * FROM eval_results WHERE eval_run_id = :r ORDER BY task, metric", r=run_id)
    with job.engine.begin() as conn:
        conn.execute(text("DELETE FROM eval_results WHERE eval_run_id = :r"), {"r": run_id})
        conn.execute(
            text("UPDATE runs SET status = 'running', finished_at = NULL WHERE id = :r"), {"r": run_id}
        )
    said: list[str] = []
    again = JobRunner(job.spec, job.workdir, echo=said.append)
    again.run()
    again.engine.dispose()
    assert [s for s in said if s.startswith(("[run ", "[resume]"))] == [
        f"[resume] {key} (left running by a process that died)"
    ]
    after = q(job, "SELECT * FROM eval_results WHERE eval_run_id = :r ORDER BY task, metric", r=run_id)
    pd.testing.assert_frame_equal(after, before)
