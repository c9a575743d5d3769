"""The Utility page (app/views/evaluation.py) on a database with lm-evaluation-harness scores of two
baseline and two hard-KD student seeds: its tables equal plain SQL over eval_scores; a job without an
eval stage says what to add."""

from __future__ import annotations

import datetime as dt

import pytest
from test_app_pages import frame_with, sql, texts

SCORES = {  # (role, seed) -> (tiny_lambada acc, winogrande acc)
    ("baseline", 0): (0.25, 0.50),
    ("baseline", 1): (0.35, 0.54),
    ("student_hard", 0): (0.20, 0.52),
    ("student_hard", 1): (0.30, 0.48),
}


@pytest.fixture(scope="module")
def eval_url(tmp_path_factory) -> str:
    from sqlalchemy.orm import Session

    from kdplatform.store import db
    from kdplatform.store.schema import EvalResult, Job, Run

    url = f"duckdb:///{tmp_path_factory.mktemp('evalpage') / 'eval.duckdb'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    now = dt.datetime(2026, 1, 1)
    with Session(engine) as s, s.begin():
        for j, name in ((1, "evaluated"), (2, "plain")):
            s.add(Job(id=j, name=name, spec="{}", spec_hash="h", workdir="/w", created_at=now))
        s.flush()
        run_id = 0
        for (role, seed), (lam, wino) in SCORES.items():
            key = f"train/{role}/s{seed}"
            common = dict(job_id=1, role=role, seed=seed, status="done", config="{}", config_hash="h")
            s.add(Run(id=run_id + 1, stage_key=key, kind="train", **common))
            s.add(Run(id=run_id + 2, stage_key=f"eval/{key}", kind="eval", **common))
            s.flush()
            for task, value in (("tiny_lambada", lam), ("winogrande", wino)):
                s.add(
                    EvalResult(
                        run_id=run_id + 1,
                        eval_run_id=run_id + 2,
                        task=task,
                        num_fewshot=0,
                        metric="acc",
                        value=value,
                        stderr=0.05,
                        n_samples=100,
                    )
                )
            run_id += 2
    engine.dispose()
    return url


def test_utility_page_shows_scores_per_model_and_the_hard_kd_comparison(open_page, eval_url):
    at = open_page(eval_url, "evaluation", 1)
    summary = frame_with(at, "role", "task", "metric", "runs", "mean", "std")
    want = sql(
        eval_url,
        "SELECT role, task, COUNT(*) AS runs, AVG(value) AS mean FROM eval_scores WHERE job_id = 1 "
        "GROUP BY role, task ORDER BY role, task",
    )
    got = summary.sort_values(["role", "task"]).reset_index(drop=True)
    assert got[["role", "task"]].values.tolist() == want[["role", "task"]].values.tolist()
    assert got.runs.tolist() == want.runs.tolist() == [2, 2, 2, 2]
    assert got["mean"].tolist() == pytest.approx(want["mean"].tolist())
    cmp = frame_with(at, "baseline", "student_hard", "difference").set_index("task")
    assert cmp.loc["tiny_lambada", "difference"] == pytest.approx(-0.05)
    assert cmp.loc["winogrande", "difference"] == pytest.approx(-0.02)
    assert cmp.seeds.tolist() == [2, 2]
    assert len(frame_with(at, "run_id", "stage_key", "value", "stderr")) == 8


def test_utility_page_without_eval_says_what_to_add(open_page, eval_url):
    at = open_page(eval_url, "evaluation", 2)
    assert "has no lm-evaluation-harness scores: add an `eval:` section" in texts(at)
